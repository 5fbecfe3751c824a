"""Hierarchical proxy-node field (after HPR3D): a tree of proxy nodes holds a shape's SDF and colour.

After the abstract of Wang et al., "Hierarchical Proxy Representation for High-Fidelity 3D Reconstruction
and Controllable Editing" (arXiv 2507.11971, 2025), which publishes no code: this is flaxzoo's own design
from that description, not a reproduction.

Nodes sit on and inside the surface in L levels (root, then each node's children; placed from the shape,
`proxy_tree.py`). Each node has a position p, a radius r, a frame (rotation R, scale s; identity until an
edit) and a latent code. A query x
  1. per level, takes the k nodes with the smallest normalised distance t = |x - p| / (s r) (static k,
     brute force, so it jits);
  2. computes local coordinates u = R^T (x - p) / (s r) and a weight w = bump(t) softplus(g_l(t)), with
     bump(t) = max(0, 1 - t^2)^2 (support t < 1) and g_l a small learned function of distance (the
     "neural interpolation");
  3. runs the level's node network f_l([u, z_node + z_parent-chain]) for each of the k nodes: a node's code
     is its own plus its ancestors', so children refine what their parents hold;
  4. averages the k outputs with the weights (sum w h / (sum w + eps)) into one feature per level;
  5. decodes the levels' features, concatenated, into the signed distance and RGB (sigmoid).
Why codes and one network per level, rather than a separate MLP per node: a per-node MLP query gathers
k weight matrices per point (B k H^2 memory traffic), a code gathers k vectors (B k C); the parameter
count still grows with the node count, N C per level, which is what compactness is measured against.
Because weights vanish for t >= 1 and the k nodes are chosen by t, nodes moved by an edit change the field
only inside their old and new supports: outside it is unchanged (to float rounding).

Parameters carry logical axis names: codes ("nodes", "embed"), networks ("embed", "mlp") / ("mlp", "embed").
"nodes" is not in the default sharding rules, so codes are replicated unless a rule maps it.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from flaxzoo.layers import host_init
from flaxzoo.layers.linear import Linear, param_init
from flaxzoo.models import proxy_tree
from flaxzoo.models.registry import register
from flaxzoo.validate import InputError, check_positive_int


class NodeBuffer(nnx.Variable):
    """Node geometry (positions, radii, frames, parents): state that is placed and edited, never trained."""


def _bump(t):
    return jnp.square(jnp.maximum(1.0 - jnp.square(t), 0.0))


def _dense(i, o, axes, rngs, dtype):
    return Linear(i, o, axes=axes, kernel_init=host_init.lecun_normal(), dtype=dtype, rngs=rngs)


class CoordinateMlp(nnx.Module):
    """in -> hidden -> hidden -> out with SiLU (smooth, so the eikonal term has second derivatives)."""

    def __init__(self, in_features: int, hidden: int, out_features: int, *, dtype=None, rngs: nnx.Rngs):
        self.fc1 = _dense(in_features, hidden, ("embed", "mlp"), rngs, dtype)
        self.fc2 = _dense(hidden, hidden, ("mlp", "embed"), rngs, dtype)
        self.fc3 = _dense(hidden, out_features, ("embed", "mlp"), rngs, dtype)

    def __call__(self, x):
        return self.fc3(jax.nn.silu(self.fc2(jax.nn.silu(self.fc1(x)))))


class DistanceWeight(nnx.Module):
    """w(t) = bump(t) * softplus(g(t)): learned inside the support t < 1, exactly zero outside."""

    def __init__(self, hidden: int, *, rngs: nnx.Rngs):
        self.fc1 = _dense(1, hidden, ("embed", "mlp"), rngs, None)
        self.fc2 = _dense(hidden, 1, ("mlp", "embed"), rngs, None)

    def __call__(self, t):
        g = self.fc2(jax.nn.silu(self.fc1(t[..., None])))[..., 0]
        return _bump(t) * jax.nn.softplus(g + 1.0)


class ProxyField(nnx.Module):
    """Signed distance and colour from a tree of proxy nodes; `model(x)` -> (sdf (...,), rgb (..., 3))."""

    def __init__(self, level_sizes=(1, 8, 64), *, shape: str = "builtin:sphere", k: int = 8, code_dim: int = 16,
                 node_hidden: int = 32, feature_dim: int = 16, decoder_hidden: int = 64, weight_hidden: int = 8,
                 radius_scale: float = 1.5, candidates: int = 8192, placement_seed: int = 0, dtype=None,
                 rngs: nnx.Rngs):
        sizes = tuple(int(n) for n in level_sizes)
        if not sizes or sizes[0] != 1 or any(b % a for a, b in zip(sizes, sizes[1:])) or any(
                b <= a for a, b in zip(sizes, sizes[1:])):
            raise InputError(f"level_sizes must start with 1 (the root) and each level must be a larger multiple of "
                             f"the one before, e.g. (1, 8, 64); got {level_sizes}.")
        for name, value in dict(k=k, code_dim=code_dim, node_hidden=node_hidden, feature_dim=feature_dim,
                                decoder_hidden=decoder_hidden, weight_hidden=weight_hidden).items():
            check_positive_int(value, name)
        self.level_sizes, self.k, self.shape_name = sizes, int(k), shape
        from flaxzoo.data import meshes

        tree = proxy_tree.place_tree(
            proxy_tree.candidate_points(meshes.load_shape(shape), candidates, seed=placement_seed),
            sizes, radius_scale=radius_scale, seed=placement_seed)
        # numpy first, then one transfer each: eager jnp ops would compile a kernel per shape
        f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
        self.positions = nnx.List([NodeBuffer(f32(p)) for p in tree.positions])
        self.radii = nnx.List([NodeBuffer(f32(r)) for r in tree.radii])
        self.rotations = nnx.List([NodeBuffer(f32(np.tile(np.eye(3), (n, 1, 1)))) for n in sizes])
        self.scales = nnx.List([NodeBuffer(f32(np.ones(n))) for n in sizes])
        self.parents = nnx.List([NodeBuffer(jnp.asarray(np.maximum(p, 0).astype(np.int32))) for p in tree.parents])
        code_init = param_init(host_init.normal(0.1), ("nodes", "embed"))
        self.codes = nnx.List([nnx.Param(code_init(rngs.params(), (n, code_dim))) for n in sizes])
        self.node_nets = nnx.List([CoordinateMlp(3 + code_dim, node_hidden, feature_dim, dtype=dtype, rngs=rngs)
                                   for _ in sizes])
        self.weights = nnx.List([DistanceWeight(weight_hidden, rngs=rngs) for _ in sizes])
        self.decoder = CoordinateMlp(feature_dim * len(sizes), decoder_hidden, 4, dtype=dtype, rngs=rngs)

    def chain_codes(self) -> list[jax.Array]:
        """Each node's code plus its ancestors' (root first)."""
        chained = [self.codes[0][...]]
        for level in range(1, len(self.level_sizes)):
            chained.append(self.codes[level][...] + chained[-1][self.parents[level][...]])
        return chained

    def level_feature(self, level: int, x: jax.Array, code: jax.Array) -> jax.Array:
        """The weighted feature (B, F) of level `level` at points x (B, 3)."""
        p, r = self.positions[level][...], self.radii[level][...] * self.scales[level][...]
        k = min(self.k, len(p))
        t2 = jnp.sum(jnp.square(x[:, None, :] - p[None]), -1) / jnp.square(r)[None]
        _, idx = jax.lax.top_k(-jax.lax.stop_gradient(t2), k)  # (B, k): the k nodes nearest in t
        offset = jnp.einsum("bki,bkij->bkj", x[:, None, :] - p[idx], self.rotations[level][...][idx])
        u = offset / r[idx][..., None]
        t = jnp.sqrt(jnp.sum(jnp.square(u), -1) + 1e-12)
        w = self.weights[level](t)
        h = self.node_nets[level](jnp.concatenate([u, code[idx]], -1))
        return jnp.sum(w[..., None] * h, 1) / (jnp.sum(w, 1, keepdims=True) + 1e-6)

    def __call__(self, x: jax.Array):
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != 3:
            raise InputError(f"ProxyField takes points (..., 3); got shape {x.shape}.")
        lead = x.shape[:-1]
        flat = x.reshape(-1, 3).astype(jnp.float32)
        codes = self.chain_codes()
        features = [self.level_feature(level, flat, codes[level]) for level in range(len(self.level_sizes))]
        out = self.decoder(jnp.concatenate(features, -1)).astype(jnp.float32)
        return out[:, 0].reshape(lead), jax.nn.sigmoid(out[:, 1:]).reshape(*lead, 3)


def parameter_count(level_sizes, *, code_dim=16, node_hidden=32, feature_dim=16, decoder_hidden=64,
                    weight_hidden=8, **_) -> int:
    """The exact number of parameters of a ProxyField with these settings (the presets' counts are tested)."""
    def mlp(i, h, o):
        return i * h + h + h * h + h + h * o + o

    levels = len(level_sizes)
    per_level = mlp(3 + code_dim, node_hidden, feature_dim) + (weight_hidden * 2 + weight_hidden + 1)
    return code_dim * sum(level_sizes) + levels * per_level + mlp(feature_dim * levels, decoder_hidden, 4)


# ------------------------------------------------------------------------------------------- evaluation

@functools.lru_cache(maxsize=8)
def _jitted(graphdef):
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))


def evaluate(model: nnx.Module, points, *, chunk: int = 32768):
    """sdf (N,), rgb (N, 3) as numpy for any number of points, in jitted chunks of `chunk` points (the last
    one padded), so every call with the same chunk size reuses one compiled program."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    graphdef, state = nnx.split(model)
    fn = _jitted(graphdef)
    sdf, rgb = np.empty(len(points), np.float32), np.empty((len(points), 3), np.float32)
    for s in range(0, len(points), chunk):
        block = points[s:s + chunk]
        padded = np.concatenate([block, np.zeros((chunk - len(block), 3), np.float32)]) if len(block) < chunk else block
        d, c = fn(state, padded)
        sdf[s:s + len(block)], rgb[s:s + len(block)] = np.asarray(d)[:len(block)], np.asarray(c)[:len(block)]
    return sdf, rgb


# ----------------------------------------------------------------------------------------------- presets

# Sizes by leaf count; `proxy_field_tiny` is the tests' preset. k nodes per level (fewer where a level has
# fewer nodes). Parameter counts: see tests/test_proxy_field.py.
PRESETS = {
    "proxy_field_tiny": dict(level_sizes=(1, 4, 16), k=4, code_dim=8, node_hidden=16, feature_dim=8,
                             decoder_hidden=32, weight_hidden=4, candidates=2048),
    "proxy_field_64": dict(level_sizes=(1, 8, 64), k=8, code_dim=16, node_hidden=32, feature_dim=16,
                           decoder_hidden=64),
    "proxy_field_512": dict(level_sizes=(1, 8, 64, 512), k=8, code_dim=16, node_hidden=32, feature_dim=16,
                            decoder_hidden=64),
    "proxy_field_4096": dict(level_sizes=(1, 16, 256, 4096), k=8, code_dim=16, node_hidden=48, feature_dim=16,
                             decoder_hidden=96, candidates=32768),
}
for _name, _kwargs in PRESETS.items():
    register(_name, "proxy_field", ProxyField, info=dict(task="field"), **_kwargs)
