"""Baseline directions on the same activations A (d, n): difference in means (supervised), a TopK sparse
autoencoder trained with optax, and PCA (the floor). Each returns directions as columns (d, m).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flaxzoo.validate import InputError, check_positive_int


def diffmeans(A: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(d, C): mean activation of the tokens of class c minus the mean of all other tokens."""
    labels = np.asarray(labels)
    if labels.shape != (A.shape[1],):
        raise InputError(f"labels must give one class per token, shape ({A.shape[1]},); got {labels.shape}.")
    A = np.asarray(A, np.float64)
    out = np.zeros((A.shape[0], num_classes))
    for c in range(num_classes):
        inside = labels == c
        if not inside.any() or inside.all():
            raise InputError(f"Class {c} has {'no' if not inside.any() else 'all the'} tokens; DiffMeans needs "
                             f"tokens inside and outside every class.")
        out[:, c] = A[:, inside].mean(1) - A[:, ~inside].mean(1)
    return out.astype(np.float32)


def pca(A: np.ndarray, k: int) -> np.ndarray:
    """(d, k): the top-k principal directions of the (token-centred) activations."""
    A = np.asarray(A, np.float64)
    u, _, _ = np.linalg.svd(A - A.mean(1, keepdims=True), full_matrices=False)
    return u[:, :k].astype(np.float32)


@dataclasses.dataclass
class TopKSAE:
    """x_hat = W_dec^T topk(relu(W_enc^T (x - b_dec) + b_enc)) + b_dec, decoder rows unit norm."""
    W_enc: np.ndarray  # (d, m)
    b_enc: np.ndarray  # (m,)
    W_dec: np.ndarray  # (m, d)
    b_dec: np.ndarray  # (d,)
    k: int
    losses: np.ndarray

    @property
    def directions(self) -> np.ndarray:
        """(d, m) decoder directions (unit norm), the vectors one steers with."""
        return self.W_dec.T

    def encode(self, A: np.ndarray) -> np.ndarray:
        """(m, n) sparse codes of A (d, n)."""
        return np.asarray(_encode(_params(self), jnp.asarray(A, jnp.float32).T, self.k)).T


def _params(sae):
    return {"W_enc": jnp.asarray(sae.W_enc), "b_enc": jnp.asarray(sae.b_enc), "W_dec": jnp.asarray(sae.W_dec),
            "b_dec": jnp.asarray(sae.b_dec)}


def _encode(p, x, k):
    pre = jax.nn.relu((x - p["b_dec"]) @ p["W_enc"] + p["b_enc"])
    threshold = jax.lax.top_k(pre, k)[0][:, -1:]
    return jnp.where(pre >= threshold, pre, 0.0)


def train_topk_sae(A: np.ndarray, latents: int, k: int, *, steps: int = 1000, batch_size: int = 256,
                   lr: float = 1e-3, seed: int = 0) -> TopKSAE:
    """Train a TopK SAE (Gao et al. 2024 style) on the columns of A with Adam on the reconstruction MSE."""
    latents, k, steps = (check_positive_int(v, n) for v, n in ((latents, "latents"), (k, "k"), (steps, "steps")))
    if k > latents:
        raise InputError(f"k = {k} active latents is more than latents = {latents}.")
    X = np.asarray(A, np.float32).T  # (n, d)
    n, d = X.shape
    rng = np.random.default_rng(seed)
    W_dec = rng.standard_normal((latents, d)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    params = {"W_enc": jnp.asarray(W_dec.T.copy()), "b_enc": jnp.zeros((latents,)), "W_dec": jnp.asarray(W_dec),
              "b_dec": jnp.asarray(np.median(X, 0))}
    opt = optax.adam(lr)
    batches = jnp.asarray(rng.integers(0, n, size=(steps, min(batch_size, n))))
    Xj = jnp.asarray(X)

    def loss_fn(p, x):
        return jnp.mean(jnp.sum(jnp.square(_encode(p, x, k) @ p["W_dec"] + p["b_dec"] - x), -1))

    def body(carry, idx):
        p, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(p, Xj[idx])
        updates, state = opt.update(grads, state, p)
        p = optax.apply_updates(p, updates)
        p = dict(p, W_dec=p["W_dec"] / jnp.linalg.norm(p["W_dec"], axis=1, keepdims=True))
        return (p, state), loss

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), batches))(params)
    params = {key: np.asarray(v) for key, v in params.items()}
    return TopKSAE(k=k, losses=np.asarray(losses), **params)
