"""Multi-axis gated MLPs (MAXIM): token mixing inside local blocks and across a global grid.

An NHWC image is cut into a (gh x gw) grid of (fh x fw) patches (`tokens_first` lays the result out with
the tokens a layer mixes first):
- block mixing fixes the patch size (fh, fw) and mixes the fh*fw pixels of each patch (local);
- grid mixing fixes the grid (gh, gw), so fh = H // gh, and mixes the gh*gw patches at the same
  offset (dilated, global).
Both mixing kernels have a size set by the block/grid size, not by the image: the model is fully
convolutional as long as every level's size divides.

`official_names()` on each module gives the flax Linen names of the reference checkpoint.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import Linear, dense_concat, dense_operands, dense_split
from flaxzoo.layers.mlp import gelu_tanh
from flaxzoo.layers.norm import LayerNorm

Size2 = tuple[int, int]
LN_EPS = 1e-6  # flax's LayerNorm default, which MAXIM uses everywhere
gmlp_init = host_init.normal(0.02)  # the reference's gMLP Dense init
zeros = host_init.constant(0.0)


def _check_divisible(h: int, w: int, size: Size2, what: str) -> None:
    if h % size[0] or w % size[1]:
        raise ValueError(f"Feature map {h}x{w} is not divisible by the {what} {tuple(size)}. Pad the input to the "
                         f"model's size multiple (MAXIM.size_multiple) first; flaxzoo.eval.restore does this for you.")


def grid_patch(h: int, w: int, grid: Size2) -> Size2:
    """Patch size that cuts an h x w map into the given grid (exact division required)."""
    _check_divisible(h, w, grid, "grid size")
    return h // grid[0], w // grid[1]


def tokens_first(x: jax.Array, patch: Size2, mode: str) -> jax.Array:
    """(N, H, W, C) cut into (fh, fw) patches -> (T, N * G, C), the tokens that mode mixes first.

    mode "block": T = fh*fw pixels of a patch, G = the grid cells; "grid": T = the gh*gw grid cells,
    G = the offsets in a patch. Every other op of a gMLP layer is per token, so it can run in this
    layout, and the mixing is then one plain matmul (`mix_tokens(..., axis=0)`): one move of the
    activations in and one out, where cutting into (N, grid, block, C) and mixing along an inner axis
    moved them four times (each an element transpose on XLA:CPU, MAXIM's costliest loop fusions).
    """
    n, h, w, c = x.shape
    _check_divisible(h, w, patch, "patch size")
    fh, fw = patch
    x = x.reshape(n, h // fh, fh, w // fw, fw, c)
    order = (2, 4, 0, 1, 3, 5) if mode == "block" else (1, 3, 0, 2, 4, 5)
    x = x.transpose(order)
    return x.reshape(x.shape[0] * x.shape[1], -1, c)


def tokens_last(x: jax.Array, patch: Size2, mode: str, n: int, height: int, width: int) -> jax.Array:
    """Inverse of `tokens_first`: (T, N * G, C) -> (N, H, W, C)."""
    fh, fw = patch
    gh, gw = height // fh, width // fw
    lead = (fh, fw, n, gh, gw) if mode == "block" else (gh, gw, n, fh, fw)
    x = x.reshape(*lead, x.shape[-1])
    order = (2, 3, 0, 4, 1, 5) if mode == "block" else (2, 0, 3, 1, 4, 5)
    return x.transpose(order).reshape(n, height, width, -1)


def mix_tokens(x: jax.Array, dense: nnx.Module, axis: int) -> jax.Array:
    """Apply a Dense layer along a token axis of (N, T_grid, T_block, C): y[t'] = sum_t x[t] K[t, t'] + b[t'].

    One matmul with the kernel on the left, K^T (T' x T) times x read as (T, everything else), instead of
    `dense` between two swaps of the token axis to the end: those swaps were element-by-element transposes
    of every activation, 15% of MAXIM's CPU time. The result comes out token-major and moves back as whole
    channel rows, a move XLA fuses into the gate's multiply.
    """
    axis = axis % x.ndim
    (x,), kernel, bias = dense_operands(dense, (x,))
    y = jax.lax.dot_general(kernel, x, (((0,), (axis,)), ((), ())), precision=dense.precision)
    y = jnp.moveaxis(y, 0, axis)
    if bias is not None:
        y = y + bias.reshape((-1,) + (1,) * (x.ndim - 1 - axis))
    return y


def _token_dense(tokens: int, *, use_bias: bool, bias_init=zeros, dtype, rngs) -> Linear:
    return Linear(tokens, tokens, use_bias=use_bias, axes=("length", "length"), kernel_init=gmlp_init,
                  bias_init=bias_init, dtype=dtype, rngs=rngs)


class GatingUnit(nnx.Module):
    """gMLP spatial gating: split channels into u, v; return u * (mix(LN(v)) + 1).

    `token_axis`: the axis of the tokens mixed: 0 in `tokens_first` layout (what GmlpLayer uses); in an
    (N, grid cells, patch pixels, C) layout, -3 mixes across grid cells (GridGatingUnit) and -2 within a
    block (BlockGatingUnit).
    """

    def __init__(self, dim: int, tokens: int, *, token_axis: int, use_bias: bool = True, dtype=None,
                 rngs: nnx.Rngs):
        self.token_axis = token_axis
        self.norm = LayerNorm(dim // 2, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.token_mix = _token_dense(tokens, use_bias=use_bias, dtype=dtype, rngs=rngs)

    def official_names(self):
        return {"norm": "intermediate_layernorm", "token_mix": "Dense_0"}

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.gate(*jnp.split(x, 2, axis=-1))

    def gate(self, u: jax.Array, v: jax.Array) -> jax.Array:
        """The unit on its two halves, for callers that computed them apart (`dense_split`)."""
        v = mix_tokens(self.norm(v), self.token_mix, self.token_axis)
        return u * (v + 1.0)


class GmlpLayer(nnx.Module):
    """Residual gMLP over blocked tokens: x + out(gate(gelu(in(LN(x))))), grid or block flavour.

    mode "grid": `size` is the grid (gh, gw); mode "block": `size` is the patch (fh, fw).
    """

    def __init__(self, dim: int, size: Size2, *, mode: str, factor: int = 2, use_bias: bool = True,
                 dropout_rate: float = 0.0, dtype=None, rngs: nnx.Rngs):
        if mode not in ("grid", "block"):
            raise ValueError(f"mode must be 'grid' or 'block', got {mode!r}")
        self.mode = mode
        self.size = tuple(size)
        hidden = dim * factor
        tokens = self.size[0] * self.size[1]
        self.norm = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.in_project = Linear(dim, hidden, use_bias=use_bias, axes=("embed", "mlp"),
                                 kernel_init=gmlp_init, bias_init=zeros,
                                 dtype=dtype, rngs=rngs)
        # the layer works on `tokens_first` layout: the mixed tokens are axis 0
        self.gating = GatingUnit(hidden, tokens, token_axis=0, use_bias=use_bias, dtype=dtype, rngs=rngs)
        self.out_project = Linear(hidden // 2, dim, use_bias=use_bias, axes=("mlp", "embed"),
                                 kernel_init=gmlp_init, bias_init=zeros,
                                  dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs if dropout_rate > 0 else None)

    def official_names(self):
        gating = "GridGatingUnit" if self.mode == "grid" else "BlockGatingUnit"
        return {"norm": "LayerNorm", "gating": gating}

    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, _ = x.shape
        patch = grid_patch(h, w, self.size) if self.mode == "grid" else self.size
        x = tokens_first(x, patch, self.mode)
        u, v = (gelu_tanh(half) for half in dense_split(self.in_project, self.norm(x)))
        y = self.dropout(self.out_project(self.gating.gate(u, v)))
        return tokens_last(x + y, patch, self.mode, n, h, w)


class MultiAxisGmlpBlock(nnx.Module):
    """MAXIM's MAB: LN -> Dense -> gelu -> half the channels grid-mixed, half block-mixed -> Dense -> + x."""

    def __init__(self, dim: int, *, block_size: Size2, grid_size: Size2, block_gmlp_factor: int = 2,
                 grid_gmlp_factor: int = 2, input_proj_factor: int = 2, use_bias: bool = True,
                 dropout_rate: float = 0.0, dtype=None, rngs: nnx.Rngs):
        hidden = dim * input_proj_factor
        self.norm = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.in_project = Linear(dim, hidden, use_bias=use_bias, axes=("embed", "mlp"),
                                 kernel_init=gmlp_init, bias_init=zeros,
                                 dtype=dtype, rngs=rngs)
        self.grid_gmlp = GmlpLayer(hidden // 2, grid_size, mode="grid", factor=grid_gmlp_factor, use_bias=use_bias,
                                   dropout_rate=dropout_rate, dtype=dtype, rngs=rngs)
        self.block_gmlp = GmlpLayer(hidden // 2, block_size, mode="block", factor=block_gmlp_factor,
                                    use_bias=use_bias, dropout_rate=dropout_rate, dtype=dtype, rngs=rngs)
        self.out_project = Linear(hidden, dim, use_bias=use_bias, axes=("mlp", "embed"),
                                 kernel_init=gmlp_init, bias_init=zeros,
                                  dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs if dropout_rate > 0 else None)

    def official_names(self):
        return {"norm": "LayerNorm_in", "grid_gmlp": "GridGmlpLayer", "block_gmlp": "BlockGmlpLayer"}

    def __call__(self, x: jax.Array) -> jax.Array:
        u, v = (gelu_tanh(half) for half in dense_split(self.in_project, self.norm(x)))
        return x + self.dropout(dense_concat(self.out_project, [self.grid_gmlp(u), self.block_gmlp(v)]))


class SpatialGatingWeights(nnx.Module):
    """Cross-gating weights (MAXIM's GetSpatialGatingWeights): like the MAB but the gate itself is the output.

    Unlike `GatingUnit` there is no LayerNorm on the mixed half and no "+1"; the mixing Dense
    layers start from bias 1 instead. The reference never forwards its input_proj_factor here,
    so the projection factor is always 2.
    """

    def __init__(self, dim: int, *, block_size: Size2, grid_size: Size2, use_bias: bool = True,
                 dropout_rate: float = 0.0, dtype=None, rngs: nnx.Rngs):
        hidden = dim * 2
        self.block_size = tuple(block_size)
        self.grid_size = tuple(grid_size)
        ones = host_init.constant(1.0)
        self.norm = LayerNorm(dim, eps=LN_EPS, dtype=dtype, rngs=rngs)
        self.in_project = Linear(dim, hidden, use_bias=use_bias, axes=("embed", "mlp"),
                                 kernel_init=host_init.lecun_normal(), bias_init=zeros, dtype=dtype, rngs=rngs)
        self.grid_mix = _token_dense(self.grid_size[0] * self.grid_size[1], use_bias=use_bias, bias_init=ones,
                                     dtype=dtype, rngs=rngs)
        self.block_mix = _token_dense(self.block_size[0] * self.block_size[1], use_bias=use_bias, bias_init=ones,
                                      dtype=dtype, rngs=rngs)
        self.out_project = Linear(hidden, dim, use_bias=use_bias, axes=("mlp", "embed"),
                                  kernel_init=host_init.lecun_normal(), bias_init=zeros, dtype=dtype, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate, rngs=rngs if dropout_rate > 0 else None)

    def official_names(self):
        return {"norm": "LayerNorm_in", "grid_mix": "Dense_0", "block_mix": "Dense_1"}

    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, _ = x.shape
        u, v = (gelu_tanh(half) for half in dense_split(self.in_project, self.norm(x)))
        patch = grid_patch(h, w, self.grid_size)
        u = tokens_last(mix_tokens(tokens_first(u, patch, "grid"), self.grid_mix, 0), patch, "grid", n, h, w)
        v = tokens_last(mix_tokens(tokens_first(v, self.block_size, "block"), self.block_mix, 0), self.block_size,
                        "block", n, h, w)
        return self.dropout(dense_concat(self.out_project, [u, v]))
