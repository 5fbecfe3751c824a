"""Hierarchical SNMF: factor the features again with decreasing ranks r1 > r2 > ...

Level 1 is an SNMF of the activations, A ~= Z1 Y1. Level l+1 factors the previous level's
features, treating each feature as a "token": Z_l (d x r_l) ~= Z_{l+1} Y_{l+1}, Y_{l+1} (r_{l+1} x r_l)
>= 0. So A ~= Z_L Y_L ... Y_1, and column i of Y_{l+1} says how much each coarse feature contributes
to fine feature i: the tree links fine feature i to the coarse features that build it.
`finetune_steps` > 0 then trains the whole product chain end to end with optax Adam on
||A - Z_L Y_L ... Y_1||^2 / (d n), Y's kept >= 0 by projection and Z_L on its WTA support; the
finer levels' features are then the partial products Z_L Y_L ... Y_{l+1}.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from flaxzoo.interpret import snmf
from flaxzoo.validate import InputError, check_int


@dataclasses.dataclass
class Hierarchy:
    """features[l]: (d, r_{l+1}) features of level l (0 = finest); mixing[l]: (r_{l+2}, r_{l+1}) >= 0, how much
    each level-(l+1) feature contributes to each level-l feature; Y: (r1, n) token coefficients of level 0."""
    features: list[np.ndarray]
    mixing: list[np.ndarray]
    Y: np.ndarray
    ranks: tuple[int, ...]
    finetune_losses: np.ndarray | None = None

    def children(self, level: int, min_share: float = 0.5) -> dict[int, list[int]]:
        """For each feature of `level` (>= 1): the level-(level-1) features it builds, i.e. those that take at
        least `min_share` of their mixing weight from it (every fine feature goes at least to its largest)."""
        if not 1 <= level < len(self.features):
            raise InputError(f"level must be in 1..{len(self.features) - 1} (level 0 has no children); got {level}.")
        W = self.mixing[level - 1]  # (r_coarse, r_fine)
        share = W / np.maximum(W.sum(0, keepdims=True), 1e-30)
        tree = {j: [] for j in range(W.shape[0])}
        for i in range(W.shape[1]):
            parents = set(np.flatnonzero(share[:, i] >= min_share)) | {int(share[:, i].argmax())}
            for j in sorted(parents):
                tree[int(j)].append(i)
        return tree

    def tree(self, min_share: float = 0.5) -> dict:
        """The whole tree as plain JSON: {"ranks": [...], "levels": [{coarse: [fine, ...]}, ...]} (level 1 first)."""
        return {"ranks": list(self.ranks),
                "levels": [{str(j): c for j, c in self.children(level, min_share).items()}
                           for level in range(1, len(self.features))]}


def _chain(Z_top, Ys):
    """Features of every level, coarse to fine, from the top features and the mixing chain."""
    out = [Z_top]
    for Y in reversed(Ys):
        out.append(out[-1] @ Y)
    return out[::-1]  # finest first


def finetune(A, Z_top, mixings, Y, *, steps: int, lr: float):
    """Adam on the product chain; returns (Z_top, mixings, Y, losses)."""
    mask = (Z_top != 0).astype(Z_top.dtype)
    params = {"Z": jnp.asarray(Z_top), "W": [jnp.asarray(w) for w in mixings], "Y": jnp.asarray(Y)}
    opt = optax.adam(lr)
    A = jnp.asarray(A, params["Z"].dtype)
    scale = 1.0 / A.size

    def loss_fn(p):
        recon = p["Z"]
        for W in reversed(p["W"]):
            recon = recon @ W
        return jnp.sum(jnp.square(A - recon @ p["Y"])) * scale

    def body(carry, _):
        p, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, state = opt.update(grads, state, p)
        p = optax.apply_updates(p, updates)
        p = {"Z": p["Z"] * mask, "W": [jnp.maximum(w, 0) for w in p["W"]], "Y": jnp.maximum(p["Y"], 0)}
        return (p, state), loss

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=steps))(params)
    return (np.asarray(params["Z"]), [np.asarray(w) for w in params["W"]], np.asarray(params["Y"]),
            np.asarray(losses))


def fit(A, ranks, *, sparsity: float = 0.01, max_iter: int = 2000, patience: int = 1500, seed: int = 42,
        init: str = "random", finetune_steps: int = 0, lr: float = 1e-3) -> Hierarchy:
    """Hierarchical SNMF of A (d, n) with strictly decreasing `ranks` (r1 > r2 > ...), each level a `snmf.fit`."""
    ranks = tuple(check_int(r, "each rank", minimum=1) for r in ranks)
    if not ranks or any(a <= b for a, b in zip(ranks, ranks[1:])):
        raise InputError(f"ranks must be a non-empty, strictly decreasing list (r1 > r2 > ...); got {list(ranks)}.")
    check_int(finetune_steps, "finetune_steps", minimum=0)
    first = snmf.fit(A, ranks[0], sparsity=sparsity, max_iter=max_iter, patience=patience, seed=seed, init=init)
    Z, Y = first.Z, first.Y
    tops, mixings = [Z], []
    for r in ranks[1:]:
        level = snmf.fit(tops[-1], r, sparsity=sparsity, max_iter=max_iter, patience=patience, seed=seed, init=init)
        tops.append(level.Z)
        mixings.append(level.Y)
    losses = None
    if finetune_steps and len(ranks) > 1:
        Z_top, mixings, Y, losses = finetune(np.asarray(A), tops[-1], mixings, Y, steps=finetune_steps, lr=lr)
        tops = [np.asarray(z) for z in _chain(jnp.asarray(Z_top), [jnp.asarray(w) for w in mixings])]
    return Hierarchy(features=tops, mixing=mixings, Y=Y, ranks=ranks, finetune_losses=losses)
