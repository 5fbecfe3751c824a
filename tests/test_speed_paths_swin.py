"""Swin's speed switches: fused attention on the timm goldens, remat policies, no host syncs in the step."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import golden_cases
from flax import nnx

import flaxzoo
from flaxzoo.layers.attention import dot_product_attention
from flaxzoo.models.swin import SwinTransformer
from flaxzoo.train.step import init_train_state, make_train_step
from flaxzoo.train.tasks.classify import make_loss_fn


def _golden_params():  # one case in the default suite, the compile-heavier ones in `make test-all`
    return [c if c.id == "v1_nonsquare" else pytest.param(*c.values, id=c.id, marks=pytest.mark.slow)
            for c in golden_cases("swin")]


@pytest.mark.parametrize("case", _golden_params())
def test_fused_attention_matches_the_timm_goldens(case):
    from test_swin_golden import _build, test_swin_golden

    _, model, _ = _build(case)  # cached and shared with test_swin_golden: switch back afterwards
    attns = [block.attn for stage in model.layers for block in stage.blocks]
    try:
        for attn in attns:
            attn.attn_impl = "fused"
        test_swin_golden(case)
    finally:
        for attn in attns:
            attn.attn_impl = "xla"


def test_fused_attention_equals_xla_with_bias_mask_and_per_head_scale():
    q, k, v = (jax.random.normal(jax.random.key(i), (3, 5, 2, 8)) for i in range(3))
    bias = jax.random.normal(jax.random.key(3), (3, 2, 5, 5))
    mask = jnp.tril(jnp.ones((5, 5), bool))
    scale = jnp.array([0.3, 1.7])[:, None, None]  # Swin V2: one learned temperature per head
    both = jax.jit(lambda *a: [dot_product_attention(*a[:3], scale=a[3], bias=a[4], mask=mask, impl=impl)
                               for impl in ("xla", "fused")])  # one program: cheaper than eager op by op
    want, got = both(q, k, v, scale, bias[:1])  # bias alone is on the goldens above
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="attn_impl must be one of"):
        flaxzoo.create_model("swin_test_tiny", attn_impl="cudnn")
    with pytest.raises(ValueError, match="remat must be one of"):
        flaxzoo.create_model("swin_test_tiny", remat="all")


def _tiny_swin(**kw):
    # a shifted block with its mask, drop path on: remat must replay the same random bits
    arch = dict(depths=(2, 1), num_heads=(1, 2))
    arch.update(kw)
    return SwinTransformer(img_size=16, patch_size=2, embed_dim=8, window_size=4, num_classes=3, drop_path_rate=0.2,
                           rngs=nnx.Rngs(0), **arch)


@pytest.mark.parametrize("variants", [
    [dict(), dict(remat="block")],
    pytest.param([dict(), dict(remat="dots"), dict(attn_impl="fused", remat="dots_no_batch")], marks=pytest.mark.slow,
                 id="dots")])
def test_remat_and_fused_give_the_default_grads(variants):
    """One stage (a plain and a shifted, masked block), drop path on, training mode: same loss, same grads."""
    images = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    models = [_tiny_swin(depths=(2,), num_heads=(2,), **kw) for kw in variants]
    for model in models:
        model.train()

    @nnx.jit
    def loss_and_grads(models, images):
        loss = lambda model, images: jnp.sum(jnp.sin(model(images)))  # noqa: E731
        return [nnx.value_and_grad(loss)(model, images) for model in models]

    (base_loss, base_grads), *others = loss_and_grads(models, images)
    assert float(jnp.abs(optax.tree.norm(base_grads))) > 0
    for kw, (loss, grads) in zip(variants[1:], others):
        np.testing.assert_allclose(float(loss), float(base_loss), rtol=1e-6, err_msg=str(kw))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=1e-5),
                     grads, base_grads)


@pytest.mark.slow
def test_remat_and_fused_train_like_the_default():
    """Three optimizer steps each: every remat policy (and fused attention) gives the default's losses and weights."""
    images = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    batch = {"image": images, "label": jnp.array([0, 2])}

    def run(**kw):
        state = init_train_state(_tiny_swin(**kw), optax.adam(1e-2))
        step = make_train_step(make_loss_fn(), donate=False)
        losses = []
        for i in range(3):
            state, metrics = step(state, batch, jax.random.key(i))
            losses.append(metrics["loss"])
        return np.asarray(losses), state.params

    base_losses, base_params = run()
    assert base_losses[-1] < base_losses[0]
    for kw in (dict(remat="block"), dict(remat="dots"), dict(attn_impl="fused", remat="dots_no_batch")):
        losses, params = run(**kw)
        np.testing.assert_allclose(losses, base_losses, rtol=1e-5, err_msg=str(kw))
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4),
                     params, base_params)


def test_train_step_has_no_host_sync():
    """The jitted step is one device program: no host callback inside it (debug prints, pure/io callbacks)."""
    state = init_train_state(_tiny_swin(depths=(2,), num_heads=(1,), remat="block"), optax.adam(1e-2))
    batch = {"image": jnp.zeros((2, 16, 16, 3)), "label": jnp.array([0, 1])}
    text = make_train_step(make_loss_fn(), donate=False).lower(state, batch, jax.random.key(0)).as_text()
    assert "stablehlo" in text and "callback" not in text


def test_building_a_model_compiles_nothing():
    """Host-sampled init moves each parameter with a plain transfer: a new architecture compiles no XLA program
    (jnp.asarray(x, float32) compiled a convert per new shape: about 1 s of Swin-T's create_model)."""
    import logging

    _tiny_swin()  # the eager RNG ops (key fold-in) compile once per process, not per shape
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles():
            SwinTransformer(img_size=32, embed_dim=12, depths=(1, 1), num_heads=(2, 3), window_size=4,
                            num_classes=7, rngs=nnx.Rngs(1))
    finally:
        logger.removeHandler(handler)
    assert not [m for m in messages if m.startswith("Compiling")], messages[:3]
