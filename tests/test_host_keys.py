"""Host-side key derivation while a model is built (flaxzoo/layers/host_keys.py): the same keys, the same
weights and the same final RNG state as NNX's own fold-in, without compiling or dispatching per parameter."""
import contextlib

import jax
import numpy as np
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.layers import host_keys


def _as_numbers(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(x)), str(jax.random.key_impl(x))
    return np.asarray(x), str(x.dtype)


def _assert_same_state(a, b):
    la, lb = jax.tree.leaves_with_path(nnx.state(a)), jax.tree.leaves_with_path(nnx.state(b))
    assert [p for p, _ in la] == [p for p, _ in lb]
    for (path, x), (_, y) in zip(la, lb):
        (vx, kx), (vy, ky) = _as_numbers(x), _as_numbers(y)
        assert kx == ky and np.array_equal(vx, vy), jax.tree_util.keystr(path)


def test_fold_in_is_jax_fold_in_bit_for_bit():
    rng = np.random.default_rng(0)
    keys = [(0, 0), (0, 1), (0xFFFFFFFF, 0xFFFFFFFF)] + [tuple(int(v) for v in rng.integers(0, 2**32, 2)) for _ in range(40)]
    data = [0, 1, 2, 7, 2**31, 2**32 - 1] + [int(v) for v in rng.integers(0, 2**32, 10)]
    for key in keys:
        jax_key = jax.random.wrap_key_data(np.array(key, dtype=np.uint32))
        for d in data:
            expected = np.asarray(jax.random.key_data(jax.random.fold_in(jax_key, np.uint32(d))))
            assert host_keys.fold_in(key, d) == tuple(int(v) for v in expected), (key, d)


def test_seed_rngs_is_nnx_rngs_of_the_same_seed():
    for seed in (0, 1, 12345, 2**32 - 1):
        _assert_same_state(host_keys.seed_rngs(seed), nnx.Rngs(seed))


def _build(name, host, **kwargs):
    """create_model with the given streams, host keys on or off (off: NNX's own fold-in)."""
    rngs = nnx.Rngs(0, dropout=5)
    real = host_keys.host_keys
    if not host:
        host_keys.host_keys = contextlib.nullcontext
    try:
        return flaxzoo.create_model(name, rngs=rngs, **kwargs), rngs
    finally:
        host_keys.host_keys = real


@pytest.mark.parametrize("name,kwargs", [
    ("swin_test_tiny", {"drop_path_rate": 0.1, "drop_rate": 0.1}),  # DropPath and Dropout fork streams
    ("uoe_lm_tiny", {}),
    ("maxim_tiny", {}),
])
def test_create_model_gives_nnx_weights_and_rng_state(name, kwargs):
    model, rngs = _build(name, True, **kwargs)
    reference, reference_rngs = _build(name, False, **kwargs)
    _assert_same_state(model, reference)  # parameters and every stream a layer keeps
    _assert_same_state(rngs, reference_rngs)  # the caller's Rngs end where NNX leaves them
    assert all(type(s) is nnx.RngStream for s in vars(rngs).values() if isinstance(s, nnx.RngStream))
    assert all(type(s) is nnx.RngStream for _, s in nnx.iter_graph(model) if isinstance(s, nnx.RngStream))
    assert int(rngs.default.count.get_value()) > 0  # keys were handed out, and counted


def test_other_prng_implementations_are_left_to_nnx():
    rngs = nnx.Rngs(jax.random.key(3, impl="rbg"))
    reference = nnx.Rngs(jax.random.key(3, impl="rbg"))
    with host_keys.host_keys(rngs):
        assert type(rngs.default) is nnx.RngStream
        key = rngs.params()
    assert np.array_equal(jax.random.key_data(key), jax.random.key_data(reference.params()))
    _assert_same_state(rngs, reference)


def test_keys_inside_the_context_follow_on_from_earlier_draws():
    rngs, reference = nnx.Rngs(9), nnx.Rngs(9)
    rngs.params(), reference.params()  # the count is 1 when the build starts
    with host_keys.host_keys(rngs):
        assert type(rngs.default) is not nnx.RngStream
        with host_keys.host_keys(rngs):  # a nested build goes on from the same count
            inner = rngs.params()
        keys = [inner, rngs.params(), rngs.default.fork().key.get_value()]
    expected = [reference.params(), reference.params(), reference.default.fork().key.get_value()]
    for k, e in zip(keys, expected):
        assert np.array_equal(jax.random.key_data(k), jax.random.key_data(e))
    _assert_same_state(rngs, reference)
    assert np.array_equal(jax.random.key_data(rngs.params()), jax.random.key_data(reference.params()))


def test_create_model_dispatches_no_key_derivation(monkeypatch):
    """NNX's stream call is an eager jax.random.fold_in plus a count update per parameter (and five one-off
    compilations on the first model of a process); create_model derives none of them on the device."""
    calls = []
    real = jax.random.fold_in
    monkeypatch.setattr(jax.random, "fold_in", lambda *a, **k: calls.append(1) or real(*a, **k))
    flaxzoo.create_model("swin_test_tiny", drop_path_rate=0.1, rngs=nnx.Rngs(4))
    assert not calls
    nnx.Rngs(4).params()  # the patch is the one NNX's streams call
    assert calls


def test_a_traced_build_still_traces():
    shapes = nnx.eval_shape(lambda: flaxzoo.create_model("swin_test_tiny"))
    model = flaxzoo.create_model("swin_test_tiny")
    assert jax.tree.map(lambda x: (x.shape, x.dtype), nnx.state(shapes, nnx.Param)) == \
        jax.tree.map(lambda x: (x.shape, x.dtype), nnx.state(model, nnx.Param))
