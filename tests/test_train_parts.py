"""The loop's mechanisms one by one: schedule, weight-decay mask, layer decay, gradient accumulation,
mixed precision, the divergence guard, EMA, the masked whole-split eval, and the config errors."""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from flaxzoo.models.registry import create_model
from flaxzoo.train import optim
from flaxzoo.train.step import init_train_state, make_train_step, state_arrays, state_from_arrays
from flaxzoo.train.tasks import get_loss_fn

TINY_SWIN = dict(img_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 2), in_chans=1, drop_path_rate=0.0)


def optim_config(**kw):
    return ml_collections.ConfigDict(dict(dict(name="adamw", lr=1e-3, weight_decay=0.05, warmup_steps=10,
                                               clip_norm=0.0, min_lr_ratio=0.1, layer_decay=1.0), **kw))


def flat(tree):
    return {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_schedule_warmup_cosine_min():
    s = optim.make_schedule(optim_config(), 110)
    assert float(s(0)) == 0.0
    np.testing.assert_allclose(float(s(5)), 0.5e-3, rtol=1e-6)  # linear warm-up
    np.testing.assert_allclose(float(s(10)), 1e-3, rtol=1e-6)  # peak
    np.testing.assert_allclose(float(s(60)), 1e-4 + 0.5 * (1e-3 - 1e-4), rtol=1e-5)  # cosine half way
    np.testing.assert_allclose(float(s(110)), 1e-4, rtol=1e-5)  # min_lr_ratio * lr at the end


def test_weight_decay_mask_follows_timm():
    model = nnx.eval_shape(lambda: create_model("swinv2_test_tiny", **TINY_SWIN))
    mask = flat(optim.decay_mask(nnx.state(model, nnx.Param)))
    decayed = {k for k, v in mask.items() if v}
    assert any("['qkv']['kernel']" in k for k in decayed) and any("['mlp']['fc1']['kernel']" in k for k in decayed)
    for k in decayed:
        for skipped in ("['bias']", "['scale']", "logit_scale", "q_bias", "v_bias", "['cpb']"):
            assert skipped not in k, k
    v1 = nnx.eval_shape(lambda: create_model("swin_test_tiny", **TINY_SWIN))
    mask = flat(optim.decay_mask(nnx.state(v1, nnx.Param)))
    tables = [k for k in mask if "relative_position_bias_table" in k]
    assert tables and not any(mask[k] for k in tables)


def test_layer_depths_and_decay():
    model = nnx.eval_shape(lambda: create_model("swin_test_tiny", **TINY_SWIN))
    depths, top = optim.layer_depths(nnx.state(model, nnx.Param))
    depths = {jax.tree_util.keystr(k): v for k, v in depths.items()}
    by_part = lambda part: {v for k, v in depths.items() if part in k}  # noqa: E731
    assert top == 3  # two blocks
    assert by_part("['patch_embed']") == {0}
    assert by_part("['layers'][0]['blocks'][0]") == {1}
    assert by_part("['layers'][1]['blocks'][0]") == by_part("['layers'][1]['downsample']") == {2}
    assert by_part("['head']") == {3}
    assert {v for k, v in depths.items() if k.startswith("['norm']")} == {3}  # the final norm
    # The scaled update: layer_decay ** (top - depth), so the head moves at the full rate.
    updates = jax.tree.map(lambda x: jnp.ones(x.shape), nnx.state(model, nnx.Param))
    scaled, _ = optim.scale_by_layer_decay(0.5).update(updates, optax.EmptyState())
    for k, v in flat(scaled).items():
        np.testing.assert_allclose(np.asarray(v).ravel()[0], 0.5 ** (top - depths[k]))


def tiny_classifier(**kw):
    return create_model("swin_test_tiny", rngs=nnx.Rngs(0), **{**TINY_SWIN, **kw})


class MLP(nnx.Module):
    """A model that compiles in no time, for the step's mechanics (accumulation, guard, EMA)."""

    def __init__(self, rngs):
        self.fc1 = nnx.Linear(32 * 32, 16, rngs=rngs)
        self.norm = nnx.LayerNorm(16, rngs=rngs)
        self.fc2 = nnx.Linear(16, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(nnx.gelu(self.norm(self.fc1(x.reshape(x.shape[0], -1)))))


def image_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"image": jnp.asarray(rng.normal(size=(n, 32, 32, 1)), jnp.float32),
            "label": jnp.asarray(rng.integers(0, 10, n), jnp.int32)}


def test_grad_accumulation_equals_one_big_batch():
    loss_fn = get_loss_fn("classify")
    tx = optax.adamw(1e-2)
    batch = image_batch()
    runs = {}
    for accum in (1, 4):
        state = init_train_state(MLP(nnx.Rngs(0)), tx)
        step = make_train_step(loss_fn, donate=False, grad_accum_steps=accum)
        losses = []
        for i in range(2):
            state, m = step(state, batch, jax.random.key(i))
            losses.append(float(m["loss"]))
        runs[accum] = (losses, state.params)
    np.testing.assert_allclose(runs[4][0], runs[1][0], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(runs[4][1]), jax.tree.leaves(runs[1][1])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)


def test_bfloat16_compute_keeps_float32_params_and_learns():
    model = tiny_classifier(dtype=jnp.bfloat16)
    state = init_train_state(model, optax.adam(3e-3))
    step = make_train_step(get_loss_fn("classify"), donate=False)
    batch = image_batch()
    losses = []
    for i in range(8):
        state, m = step(state, batch, jax.random.key(i))
        assert m["loss"].dtype == jnp.float32
        losses.append(float(m["loss"]))
    assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(state.opt_state) if x.ndim} == {jnp.dtype(jnp.float32)}
    assert losses[-1] < losses[0] - 0.1, losses


def test_divergence_guard_skips_the_update_and_records_the_step():
    state = init_train_state(MLP(nnx.Rngs(0)), optax.adam(1e-3))
    step = make_train_step(get_loss_fn("classify"), donate=False)
    good = image_batch()
    state, _ = step(state, good, jax.random.key(0))
    before = jax.tree.map(np.asarray, state.params)
    bad = {**good, "image": good["image"].at[0, 0, 0, 0].set(jnp.nan)}
    state, m = step(state, bad, jax.random.key(1))
    assert not np.isfinite(float(m["loss"]))
    assert int(state.bad_step) == 2 and int(state.bad_what) & 1  # the loss
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(before)):
        np.testing.assert_array_equal(np.asarray(a), b)
    state, _ = step(state, bad, jax.random.key(2))
    assert int(state.bad_step) == 2  # the first bad step is kept
    assert int(state.step) == 3


def test_divergence_guard_flags_a_finite_update_that_makes_the_parameters_non_finite():
    # Finite loss and gradients, but the update overflows the parameters: applied (the guard cannot know before),
    # flagged as the parameters going non-finite, and the next step, whose loss is then non-finite, changes nothing.
    tx = optax.chain(optax.trace(decay=0.9), optax.scale(-float("inf")))
    state = init_train_state(MLP(nnx.Rngs(0)), tx)
    step = make_train_step(get_loss_fn("classify"), donate=False)
    state, m = step(state, image_batch(), jax.random.key(0))
    assert np.isfinite(float(m["loss"])) and np.isfinite(float(m["grad_norm"]))
    assert int(state.bad_step) == 1 and int(state.bad_what) == 4  # the parameters only
    assert not all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(state.params))
    after = jax.tree.map(np.asarray, (state.params, state.opt_state))
    state, m = step(state, image_batch(), jax.random.key(1))
    assert not np.isfinite(float(m["loss"]))
    assert int(state.bad_step) == 1 and int(state.bad_what) == 4 and int(state.step) == 2  # the first bad step kept
    for a, b in zip(jax.tree.leaves((state.params, state.opt_state)), jax.tree.leaves(after)):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_divergence_guard_rejects_a_non_finite_gradient_with_a_finite_loss():
    # The loss is finite but one gradient is not (a NaN from a custom backward): params and Adam moments stay.
    @jax.custom_vjp
    def poison(x):
        return x

    poison.defvjp(lambda x: (x, None), lambda _, g: (g * jnp.nan,))

    def loss_fn(model, batch, rng):
        loss, metrics = get_loss_fn("classify")(model, batch, rng)
        return poison(loss), metrics

    state = init_train_state(MLP(nnx.Rngs(0)), optax.adam(1e-3))
    step = make_train_step(loss_fn, donate=False)
    before = jax.tree.map(np.asarray, (state.params, state.opt_state))
    state, m = step(state, image_batch(), jax.random.key(0))
    assert np.isfinite(float(m["loss"])) and not np.isfinite(float(m["grad_norm"]))
    assert int(state.bad_step) == 1 and int(state.bad_what) == 2  # the gradient norm only
    for a, b in zip(jax.tree.leaves((state.params, state.opt_state)), jax.tree.leaves(before)):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_ema_is_the_moving_average_and_is_checkpointed():
    state = init_train_state(MLP(nnx.Rngs(0)), optax.sgd(0.1), ema=True)
    start = jax.tree.map(np.asarray, state.params)
    step = make_train_step(get_loss_fn("classify"), donate=False, ema_decay=0.9)
    state, _ = step(state, image_batch(), jax.random.key(0))
    for e, p0, p1 in zip(jax.tree.leaves(state.ema), jax.tree.leaves(start), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(np.asarray(e), 0.9 * p0 + 0.1 * np.asarray(p1), rtol=1e-5, atol=1e-7)
    arrays = state_arrays(state)
    assert set(arrays) == {"params", "rest", "opt_state", "step", "ema"}
    other = init_train_state(MLP(nnx.Rngs(1)), optax.sgd(0.1), ema=True)
    restored = state_from_arrays(other, arrays)
    for a, b in zip(jax.tree.leaves(restored.ema), jax.tree.leaves(state.ema)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_eval_covers_the_whole_split_with_a_padded_masked_last_batch():
    """13 examples, batch 8: two batches, the second padded with 3 masked rows; the mean is over the 13."""
    from flaxzoo.train.evaluate import evaluate

    values = np.arange(13, dtype=np.float32) * 1.5 + 1.0
    batches = [{"x": values[:8]}, {"x": values[8:]}]

    def eval_fn(batch):
        w = batch["mask"]
        assert batch["x"].shape == (8,)
        return {"mean_x": (batch["x"] * w).sum() / w.sum()}, w.sum()

    got = evaluate(eval_fn, batches, lambda b: b, local_batch=8)
    np.testing.assert_allclose(got["mean_x"], values.mean(), rtol=1e-6)
    capped = evaluate(eval_fn, batches, lambda b: b, local_batch=8, max_batches=1)
    np.testing.assert_allclose(capped["mean_x"], values[:8].mean(), rtol=1e-6)


def test_restore_task_ignores_masked_examples():
    loss_fn = get_loss_fn("restore")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(size=(4, 8, 8, 3)), jnp.float32)
    identity = lambda img: img  # noqa: E731 - a "model" whose output is its input
    full = loss_fn(identity, {"input": x[:2], "target": x[:2] * 0.5}, None)
    padded = loss_fn(identity, {"input": x, "target": x * 0.5, "mask": jnp.asarray([1.0, 1.0, 0.0, 0.0])}, None)
    np.testing.assert_allclose(padded[0], full[0], rtol=1e-6)
    np.testing.assert_allclose(padded[1]["psnr"], full[1]["psnr"], rtol=1e-6)


def test_misspelt_task_kwarg_names_the_close_match():
    with pytest.raises(ValueError, match="freq_weigth.*Did you mean 'freq_weight'"):
        get_loss_fn("restore", freq_weigth=0.1)
    with pytest.raises(ValueError, match="router_los_weight.*Did you mean 'router_loss_weight'"):
        get_loss_fn("lm", router_los_weight=0.1)
    with pytest.raises(ValueError, match="Did you mean 'restore'"):
        get_loss_fn("restor")


def test_batch_not_divisible_by_the_data_axes_is_one_clear_error():
    from flaxzoo.train.config_check import check_config
    from flaxzoo.train.defaults import base_config

    c = base_config()
    c.model.name, c.task.name = "swin_test_tiny", "classify"
    c.batch_size, c.mesh.data, c.mesh.fsdp = 12, 4, 2
    with pytest.raises(ValueError, match=r"batch_size=12 does not split over the 8 devices.*multiple of 8"):
        check_config(c, num_devices=8)
    c.batch_size, c.grad_accum_steps = 16, 4
    with pytest.raises(ValueError, match=r"grad_accum_steps=4.*multiple of 32"):
        check_config(c, num_devices=8)
    c.grad_accum_steps, c.compute_dtype = 1, "float16"
    with pytest.raises(ValueError, match="compute_dtype"):
        check_config(c, num_devices=8)


def test_restore_psnr_ignores_canvas_padding():
    import jax.numpy as jnp

    from flaxzoo.train.tasks.restore import example_psnr

    target = jnp.full((1, 4, 6, 3), 0.5)
    pred = target.at[:, :, 4:].set(1.0)  # wrong only on the padded columns
    mask = jnp.ones((1, 4, 6, 1)).at[:, :, 4:].set(0.0)
    assert float(example_psnr(pred, target, mask)[0]) == 100.0  # exact on the real pixels (the 1e-10 MSE floor)
    pred = pred.at[:, 0, 0].set(0.6)  # one real pixel off by 0.1 in all channels: MSE = 0.01 / 16
    expected = 10 * np.log10(16 / 0.01)
    np.testing.assert_allclose(float(example_psnr(pred, target, mask)[0]), expected, rtol=1e-5)
