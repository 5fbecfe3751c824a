"""Semi-nonnegative matrix factorisation of MLP activations (Shafran, Geiger, Geva 2025).

A (d_mlp x n_tokens) ~= Z Y with **Y >= 0** (k x n, the coefficients: how much token j expresses
feature i) and Z (d x k) **mixed sign**, winner-take-all sparse over neurons (the features). This is
Ding, Li & Jordan's semi-NMF (X ~= F G^T, G >= 0) with the paper's WTA step. Libraries that call the
*opposite* split "semi-NMF" (nonnegative dictionary, signed codes) solve a different problem.

One iteration, in this order (the golden cases in tests/golden/snmf/ pin each step):
  1. Z <- A Y^T (Y Y^T + reg I)^-1                 exact least squares
  2. WTA: per column of Z keep the entries with |z| >= its m-th largest |z|, m = max(1, ceil(p d))
  3. rescale: r_i = max(||Y_i||, eps_norm); Y_i /= r_i; Z_:,i *= r_i   (Z Y unchanged)
  4. Y <- Y * sqrt((P+ + Q- Y) / (P- + Q+ Y + eps_den)), P = Z^T A, Q = Z^T Z  (stays >= 0)
  5. loss = ||A - Z Y||_F^2; the best iterate (strictly lower loss) is kept: WTA makes the loss
     non-monotone, so the last iterate is not the answer.

Cost per iteration: O(d n k) flops (A Y^T, Z^T A, Z Y) plus O(k^3); memory: A, one d x n
residual, and the d x k / k x n factors (three copies each for last/best), in A's dtype.
The loop is a jitted `lax.while_loop` run `chunk` iterations per call, so one compile serves
any `max_iter` and Python sees progress between chunks.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np

from flaxzoo.validate import InputError, check_int, check_positive_int

Init = Literal["random", "svd", "kmeans"]
INITS = ("random", "svd", "kmeans")
REG = 1e-6  # ridge on Y Y^T in the Z step
EPS_DEN = 1e-6  # added to the Y-step denominator
EPS_NORM = 1e-8  # floor of a coefficient row's norm in the rescale
Y_FLOOR = 1e-6  # random/svd inits start strictly positive: a multiplicative update never leaves 0


@dataclasses.dataclass
class SNMFResult:
    """Z (d, k) features, Y (k, n) >= 0 coefficients: the best iterate (lowest loss).

    Z_last, Y_last: the final iterate; losses: ||A - ZY||_F^2 after each iteration run;
    best_iter: 0-based index into losses of the best iterate; n_iter: iterations run.
    """
    Z: np.ndarray
    Y: np.ndarray
    Z_last: np.ndarray
    Y_last: np.ndarray
    losses: np.ndarray
    best_iter: int
    n_iter: int

    @property
    def loss(self) -> float:
        return float(self.losses[self.best_iter])

    def relative_error(self, A) -> float:
        """||A - Z Y||_F / ||A||_F of the best iterate."""
        A = np.asarray(A, np.float64)
        return float(np.linalg.norm(A - self.Z.astype(np.float64) @ self.Y) / np.linalg.norm(A))


def kept_per_feature(sparsity: float, d: int) -> int:
    """m = max(1, ceil(sparsity * d)): how many neurons each feature keeps."""
    return max(1, min(d, math.ceil(sparsity * d)))


def wta(Z: jax.Array, m: int) -> jax.Array:
    """Hard winner-take-all per column: keep entries whose |value| reaches the column's m-th largest |value|."""
    if m >= Z.shape[0]:
        return Z
    threshold = jax.lax.top_k(jnp.abs(Z).T, m)[0][:, -1]  # (k,)
    return jnp.where(jnp.abs(Z) >= threshold[None, :], Z, 0.0)


def _pos(M):
    return (jnp.abs(M) + M) / 2


def _neg(M):
    return (jnp.abs(M) - M) / 2


def step(A: jax.Array, Y: jax.Array, m: int, reg: float = REG, eps_den: float = EPS_DEN,
         eps_norm: float = EPS_NORM) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One SNMF iteration from coefficients Y: returns (Z, Y_new, loss)."""
    k = Y.shape[0]
    gram = Y @ Y.T + reg * jnp.eye(k, dtype=Y.dtype)
    Z = jnp.linalg.solve(gram, Y @ A.T).T  # gram is symmetric: (A Y^T gram^-1)^T = gram^-1 Y A^T
    Z = wta(Z, m)
    norms = jnp.maximum(jnp.linalg.norm(Y, axis=1), eps_norm)
    Y = Y / norms[:, None]
    Z = Z * norms[None, :]
    P = Z.T @ A
    Q = Z.T @ Z
    Y = Y * jnp.sqrt((_pos(P) + _neg(Q) @ Y) / (_neg(P) + _pos(Q) @ Y + eps_den))
    loss = jnp.sum(jnp.square(A - Z @ Y))
    return Z, Y, loss


@functools.partial(jax.jit, static_argnames=("m", "chunk", "eps"), donate_argnames=("state",))
def _run_chunk(A, state, limit, patience, tol, *, m: int, chunk: int, eps: tuple[float, float, float]):
    """Up to `chunk` iterations, stopping early at `limit` iterations or when patience runs out."""
    start = state["i"]

    def cond(s):
        return (s["i"] < jnp.minimum(limit, start + chunk)) & (s["since"] < patience)

    def body(s):
        Z, Y, loss = step(A, s["Y"], m, *eps)
        better = loss < s["best_loss"]
        # patience counts iterations without an improvement larger than tol (relative to the best)
        real = jnp.isinf(s["best_loss"]) | (s["best_loss"] - loss > tol * jnp.abs(s["best_loss"]))
        pick = lambda new, old: jnp.where(better, new, old)  # noqa: E731
        return dict(i=s["i"] + 1, Z=Z, Y=Y,
                    best_loss=pick(loss, s["best_loss"]), best_Z=pick(Z, s["best_Z"]), best_Y=pick(Y, s["best_Y"]),
                    best_iter=jnp.where(better, s["i"], s["best_iter"]),
                    since=jnp.where(real, 0, s["since"] + 1),
                    losses=s["losses"].at[s["i"] % chunk].set(loss))

    return jax.lax.while_loop(cond, body, state)


def _check_matrix(A) -> np.ndarray | jax.Array:
    shape, dtype = getattr(A, "shape", None), getattr(A, "dtype", None)
    if shape is None or len(shape) != 2:
        raise InputError(f"A must be a 2-D array (d_mlp neurons x n_tokens); got "
                         f"{'no array' if shape is None else f'shape {tuple(shape)}'}.")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(f"A must be floating point (float32 or float64); got {dtype}. Cast it first.")
    return A


def random_init(k: int, n: int, seed: int, dtype=np.float32) -> np.ndarray:
    """Y ~ U(0, 1) clamped at 1e-6 (the paper's init), drawn on the host (no compile per shape)."""
    return np.maximum(np.random.default_rng(seed).uniform(size=(k, n)), Y_FLOOR).astype(dtype)


def svd_init(A: np.ndarray, k: int) -> np.ndarray:
    """Y = max(sqrt(S) V^T, 1e-6) from the top-k SVD, each component's sign chosen so its row sums positive."""
    _, s, vt = np.linalg.svd(np.asarray(A, np.float64), full_matrices=False)
    vt = vt[:k] * np.sign(vt[:k].sum(1, keepdims=True) + 1e-30)
    return np.maximum(np.sqrt(s[:k])[:, None] * vt, Y_FLOOR).astype(A.dtype)


def kmeans_init(A: np.ndarray, k: int, seed: int, iters: int = 20) -> np.ndarray:
    """Y = one-hot cluster assignment of each token (Lloyd's k-means on the columns of A), floored at 1e-6.

    k-means is semi-NMF with a one-hot Y, so it is a natural start.
    """
    X = np.asarray(A, np.float64).T  # (n, d)
    rng = np.random.default_rng(seed)
    centres = X[rng.choice(X.shape[0], size=k, replace=False)]
    for _ in range(iters):
        dist = (X ** 2).sum(1)[:, None] - 2 * X @ centres.T + (centres ** 2).sum(1)[None]
        label = dist.argmin(1)
        for c in range(k):
            members = X[label == c]
            if len(members):
                centres[c] = members.mean(0)
            else:  # an empty cluster restarts on the worst-fit token
                centres[c] = X[dist.min(1).argmax()]
    Y = np.full((k, X.shape[0]), Y_FLOOR)
    Y[label, np.arange(X.shape[0])] = 1.0
    return Y.astype(A.dtype)


def initial_coefficients(A, k: int, init: str, Y0, seed: int) -> np.ndarray:
    d, n = A.shape
    if Y0 is not None:
        Y0 = np.asarray(Y0)
        if Y0.shape != (k, n):
            raise InputError(f"Y0 must have shape (k, n) = ({k}, {n}); got {Y0.shape}.")
        if not np.all(np.isfinite(Y0)) or Y0.min() < 0:
            raise InputError("Y0 must be finite and >= 0 (Y is the nonnegative factor); clamp it, e.g. "
                             "np.maximum(Y0, 1e-6).")
        return Y0.astype(A.dtype)
    if init not in INITS:
        raise InputError(f"init must be one of {INITS}; got {init!r}.")
    if init == "random":
        return random_init(k, n, seed, np.dtype(A.dtype))
    if init == "svd":
        return svd_init(np.asarray(A), k)
    return kmeans_init(np.asarray(A), k, seed)


def fit(A, k: int, *, sparsity: float = 0.01, max_iter: int = 2000, patience: int = 1500, tol: float = 0.0,
        init: Init = "random", Y0=None, seed: int = 42, chunk: int = 100,
        callback: Callable[[int, float], None] | None = None, reg: float = REG, eps_denominator: float = EPS_DEN,
        eps_norm: float = EPS_NORM) -> SNMFResult:
    """Fit A (d, n) ~= Z (d, k) Y (k, n), Y >= 0, Z WTA-sparse (a fraction `sparsity` of neurons per feature).

    The dtype of A (float32 or float64; float64 needs jax x64 enabled) is the compute dtype.
    Stops after `max_iter` iterations, or after `patience` iterations without a loss improvement
    larger than `tol` times the best loss. `init`: "random" (Y ~ U(0,1), from `seed`), "svd" or
    "kmeans"; `Y0` (k, n) overrides it. `callback(iterations_done, best_loss)` runs between chunks.
    reg, eps_denominator, eps_norm: the ridge of the Z step, the Y-step denominator's epsilon and the rescale's
    norm floor (the paper's 1e-6, 1e-6, 1e-8).
    """
    A = _check_matrix(A)
    d, n = A.shape
    k = check_positive_int(k, "k")
    if k > n:  # k > d (an overcomplete dictionary) is allowed; more features than tokens is not
        raise InputError(f"k = {k} features is more than the n = {n} tokens of A {(d, n)}; use a smaller k or "
                         f"more tokens.")
    if not (isinstance(sparsity, (int, float)) and 0 < sparsity <= 1):
        raise InputError(f"sparsity is the kept fraction of neurons per feature, in (0, 1]; got {sparsity!r} "
                         f"(1.0 turns winner-take-all off).")
    max_iter = check_positive_int(max_iter, "max_iter")
    patience = check_positive_int(patience, "patience")
    chunk = check_positive_int(chunk, "chunk")
    check_int(seed, "seed")
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise InputError(f"tol must be a number >= 0; got {tol!r}.")
    if np.dtype(A.dtype) == np.float64 and not jax.config.jax_enable_x64:
        raise InputError("A is float64 but jax x64 is off, so it would silently run in float32. Enable it "
                         "(jax.config.update('jax_enable_x64', True) or `with jax.enable_x64(True):`) or pass "
                         "A.astype(np.float32).")
    if isinstance(A, np.ndarray) and not np.all(np.isfinite(A)):
        raise InputError("A has NaN or inf entries; drop those tokens before fitting.")
    Y = initial_coefficients(A, k, init, Y0, seed)
    dtype = jnp.dtype(A.dtype)
    A = jnp.asarray(A)
    m = kept_per_feature(float(sparsity), d)
    # distinct buffers for every entry: the state is donated to each chunk
    state = dict(i=jnp.int32(0), Z=jnp.zeros((d, k), dtype), Y=jnp.asarray(Y, dtype),
                 best_loss=jnp.asarray(jnp.inf, dtype), best_Z=jnp.zeros((d, k), dtype), best_Y=jnp.array(Y, dtype), best_iter=jnp.int32(-1), since=jnp.int32(0),
                 losses=jnp.zeros((chunk,), dtype))
    losses = []
    while True:
        before = int(state["i"])
        state = _run_chunk(A, state, max_iter, patience, jnp.asarray(tol, dtype), m=m, chunk=chunk,
                           eps=(float(reg), float(eps_denominator), float(eps_norm)))
        done = int(state["i"])
        # the chunk's ring buffer holds iterations before..done-1 at positions i % chunk
        losses.extend(np.asarray(state["losses"])[[i % chunk for i in range(before, done)]])
        if callback is not None:
            callback(done, float(state["best_loss"]))
        if done >= max_iter or int(state["since"]) >= patience or done == before:
            break
    host = {key: np.asarray(v) for key, v in state.items()}
    return SNMFResult(Z=host["best_Z"], Y=host["best_Y"], Z_last=host["Z"], Y_last=host["Y"],
                      losses=np.asarray(losses), best_iter=int(host["best_iter"]), n_iter=int(host["i"]))
