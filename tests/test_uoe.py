"""UoE layers and models: dense equivalence, routing plans, expert sharding, training, presets."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flaxzoo
from flaxzoo.layers import dot_product_attention, gelu_exact
from flaxzoo.layers.experts import RoutePlan, UoME, router_loss
from flaxzoo.layers.smha import SMHA, rotate_half_rope
from flaxzoo.models.convert.common import model_param_shapes
from flaxzoo.models.uoe import UoELM
from flaxzoo.train.sharding import batch_sharding, make_mesh, shard_model
from flaxzoo.train.step import init_train_state, make_train_step
from flaxzoo.train.tasks.lm import make_loss_fn


def randomise(module, seed=0, scale=0.2):
    """Give every parameter (biases included) non-trivial values so nothing hides behind zeros."""
    params = nnx.state(module, nnx.Param)

    @jax.jit  # one compiled program instead of one per parameter
    def noisy(params):
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.key(seed), len(leaves))
        return jax.tree.unflatten(tree, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])

    nnx.update(module, noisy(params))
    return module


@nnx.jit
def forward(model, *args):
    return model(*args)


@nnx.jit
def routed(layer, x, plan, mask=None):
    return layer(x, plan=plan) if mask is None else layer(x, mask=mask, plan=plan)


def test_uome_all_experts_equal_dense_mlp():
    layer = randomise(UoME(16, 32, 4, 2, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(1), (2, 12, 16))
    y = routed(layer, x, RoutePlan.all_tokens(4, 2, 12))
    w1, b1, w2, b2 = layer.dense_params()
    np.testing.assert_allclose(y, gelu_exact(x @ w1 + b1) @ w2 + b2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_smha_all_heads_equal_dense_mha(causal):
    e, d = 4, 32
    dh = d // e
    layer = randomise(SMHA(d, e, 2, causal=causal, rope="token" if causal else None, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(2), (2, 10, d))
    mask = jnp.ones((2, 10)).at[1, -3:].set(0.0)
    y = routed(layer, x, RoutePlan.all_tokens(e, 2, 10), mask)
    # standard MHA with the heads' blocks concatenated and the per-head output biases summed
    w, b = layer.qkv[...], layer.qkv_bias[...]
    q, k, v = (jnp.einsum("bld,edh->bleh", x, w[..., i * dh:(i + 1) * dh]) + b[:, i * dh:(i + 1) * dh] for i in range(3))
    if causal:
        pos = jnp.arange(10)
        q, k = (rotate_half_rope(t.transpose(0, 2, 1, 3), pos).transpose(0, 2, 1, 3) for t in (q, k))
    bias = (-1e6 * (1 - mask))[:, None, None, :]
    o = dot_product_attention(q, k, v, scale=dh ** -0.5, bias=bias,
                              mask=jnp.tril(jnp.ones((10, 10), bool)) if causal else None)
    dense = jnp.einsum("bleh,ehd->bld", o, layer.out[...]) + layer.out_bias[...].sum(0)
    np.testing.assert_allclose(y, dense, atol=1e-5, rtol=1e-5)


def test_route_plan_is_inspectable_and_consistent():
    layer = randomise(UoME(16, 32, 4, 2, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(3), (3, 20, 16))
    plan = nnx.jit(lambda m, x: m.route(x))(layer, x)
    assert plan.tokens.shape == (4, 3, 10) and plan.capacity == 10  # top-2 of 4: capacity factor 1 = N/2
    tokens, chosen = np.asarray(plan.tokens), np.asarray(plan.chosen)
    assert all(len(set(row)) == 10 for row in tokens.reshape(-1, 10))  # distinct (in score order: see below)
    mask = np.asarray(plan.topk_mask)  # (G, N, E)
    for e in range(4):
        for g in range(3):
            picked = tokens[e, g][chosen[e, g]]
            assert mask[g, picked, e].all()  # chosen slots are tokens that chose the expert
            # kept tokens are the highest-scoring of those that chose e
            scores = np.asarray(plan.route_scores)[g, :, e]
            dropped = np.setdiff1d(np.nonzero(mask[g, :, e])[0], picked)
            if len(dropped):
                assert scores[dropped].max() <= scores[picked].min()
    assert (np.asarray(plan.load()) <= 10).all()
    assert int(plan.coverage(20).sum()) == 4 * 3 * 10
    # the plan is a value: passing it back gives the same output as routing inside
    y = forward(layer, x)
    np.testing.assert_allclose(routed(layer, x, plan), y, atol=1e-6)
    # injecting a different plan changes the result
    assert not np.allclose(routed(layer, x, RoutePlan.all_tokens(4, 3, 20)), y)


@pytest.mark.parametrize("mode,impl", [("faithful", "capacity"), ("trained", "capacity"), ("trained", "grouped")])
def test_uome_rows_in_score_order_give_the_ascending_plans_output_bit_for_bit(mode, impl):
    """UoME routes without reordering the chosen positions (select_tokens(ascending=False)): the same positions as
    the ascending plan SMHA uses, and the same output to the bit, since each row is one token's MLP and the union
    adds a position's rows in expert order whatever the slot order."""
    from flaxzoo.layers.experts import select_tokens
    layer = randomise(UoME(16, 32, 4, 2, mode=mode, expert_impl=impl, capacity=0.4, rngs=nnx.Rngs(0)))
    x = jax.random.normal(jax.random.key(3), (3, 20, 16))
    plan = nnx.jit(lambda m, x: m.route(x))(layer, x)
    scores = np.asarray(jnp.moveaxis(plan.route_scores, -1, 0))
    tokens = np.asarray(plan.tokens)
    assert (np.diff(np.take_along_axis(scores, tokens, -1), axis=-1) <= 0).all()  # descending scores
    ascending, chosen = select_tokens(plan.route_scores, plan.capacity)
    assert (np.sort(tokens, -1) == np.asarray(ascending)).all()
    as_smha = nnx.jit(lambda m, x: m.router(x, plan.capacity, weighted=mode == "trained"))(layer, x)
    np.testing.assert_array_equal(as_smha.tokens, ascending)
    np.testing.assert_array_equal(as_smha.chosen, chosen)
    np.testing.assert_array_equal(routed(layer, x, as_smha), forward(layer, x))


def tiny_lm(mode="faithful", vocab=96, seed=0, depth=2):
    return UoELM(vocab, 32, depth, 4, 64, mode=mode, pre_norm=True, rngs=nnx.Rngs(seed))


def test_expert_sharded_equals_single_device():
    assert jax.device_count() >= 8
    model = randomise(tiny_lm("trained", depth=1), scale=0.05)
    ids = jax.random.randint(jax.random.key(0), (4, 16), 0, 96)
    expected = np.asarray(forward(model, ids))
    mesh = make_mesh({"data": 2, "model": 4})
    shard_model(model, mesh)
    w1 = model.blocks[0].mlp.w1[...]
    assert w1.sharding.spec[0] == "model" and len(w1.addressable_shards) == 8
    assert w1.addressable_shards[0].data.shape[0] == 1  # one expert per model shard
    assert model.blocks[0].attn.qkv[...].sharding.spec[0] == "model"
    got = forward(model, jax.device_put(ids, batch_sharding(mesh, 2)))
    print("sharded vs unsharded max abs diff:", float(np.abs(np.asarray(got) - expected).max()))
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5, rtol=1e-5)


def _router_params(params):
    flat = nnx.to_flat_state(params)
    return {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in flat if "router" in p}


def _train(mode, steps):
    from flaxzoo.data.text import CharVocab, lm_batches, pydoc_text

    text = pydoc_text()[:60000]
    vocab = CharVocab(text, max_size=96)
    data = lm_batches(vocab.encode(text), batch_size=8, seq_len=32)
    state = init_train_state(tiny_lm(mode, vocab=len(vocab)), optax.adam(3e-3))
    before = _router_params(state.params)
    step = make_train_step(make_loss_fn(), donate=False)
    losses, metrics = [], None
    for i in range(steps):
        state, metrics = step(state, next(data), jax.random.key(i))
        losses.append(float(metrics["ce"]))
    return before, _router_params(state.params), losses, metrics


def test_trained_mode_learns_and_moves_router():
    before, after, losses, metrics = _train("trained", 40)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses
    assert float(metrics["router_loss"]) > 0
    assert all(np.abs(after[k] - before[k]).max() > 1e-4 for k in before), "every router must move"


def test_faithful_mode_router_gets_no_gradient():
    before, after, losses, metrics = _train("faithful", 4)
    assert float(metrics["router_loss"]) == 0.0
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    assert np.isfinite(losses).all()


def test_router_loss_collects_every_layer():
    model = tiny_lm("trained")
    forward(model, jnp.zeros((2, 8), jnp.int32))
    per_layer = [float(b.attn.router_loss.get_value()) + float(b.mlp.router_loss.get_value()) for b in model.blocks]
    assert min(per_layer) > 0
    np.testing.assert_allclose(float(router_loss(model)), sum(per_layer), rtol=1e-6)


def test_vision_classifier_forward():
    model = flaxzoo.create_model("uoe_vit_test_tiny")
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
    y = forward(model, x)
    assert y.shape == (2, 10) and np.isfinite(np.asarray(y)).all()
    # per-token score normalisation: an image's output does not depend on the rest of the batch
    np.testing.assert_allclose(forward(model, x[:1]), y[:1], atol=1e-5)


def test_swin_uoe_forward():
    model = flaxzoo.create_model("swin_uoe_test_tiny")
    y = forward(model, jax.random.uniform(jax.random.key(0), (2, 64, 64, 3)))
    assert y.shape == (2, 10) and np.isfinite(np.asarray(y)).all()
    assert "layers.0.blocks.0.mlp.uome.w1" in model_param_shapes(model)


def count(name, **kw):
    model = nnx.eval_shape(lambda: flaxzoo.create_model(name, **kw))
    return model_param_shapes(model)


def test_preset_parameter_counts():
    # WikiText-103 setting: the paper's 39.94 M non-embedding parameters include 16 unused linear3 (400x400+400).
    shapes = count("uoe_lm_wt103")
    non_embedding = sum(int(np.prod(s)) for k, s in shapes.items() if not k.startswith("embed."))
    assert round((non_embedding + 16 * (400 * 400 + 400)) / 1e6, 2) == 39.94
    assert shapes["blocks.0.mlp.w1"] == (4, 400, 525) and shapes["blocks.0.attn.qkv"] == (10, 400, 120)
    # ViT-Ti/S sized: the dense ViT's parameters plus per-expert output biases and routers.
    for name, d, heads in (("uoe_vit_tiny_patch16_224", 192, 4), ("uoe_vit_small_patch16_224", 384, 6)):
        total = sum(int(np.prod(s)) for s in count(name).values())
        vit = 3 * 16 * 16 * d + d + 196 * d + 12 * (12 * d * d + 13 * d) + 2 * d + d * 1000 + 1000
        extra = 12 * ((heads - 1) * d + (4 - 1) * d + (d + 1) * heads + (d + 1) * 4)
        assert total == vit + extra, (name, total, vit + extra)
    assert "swin_uoe_tiny_patch4_window7_224" in flaxzoo.list_models("swin_uoe*")
    # the released ListOps checkpoint has 381,334 parameters, of which these are never used by its forward:
    # per layer kv_norm (32), mha.layer_norm (2x64), s_gate Linear(2048, 32), linear3 Linear(64, 64)
    dead = 2 * (32 + 128 + (2048 * 32 + 32) + (64 * 64 + 64))
    assert sum(int(np.prod(s)) for s in count("uoe_lra_listops").values()) + dead == 381_334


def test_converter_reports_bad_checkpoints():
    from flaxzoo.models.convert.uoe import convert

    layer = UoME(8, 16, 4, 2, rngs=nnx.Rngs(0))
    good = {"switch_gate.w_gate.weight": np.zeros((4, 8)), "switch_gate.w_gate.bias": np.zeros(4),
            "linear1.weight.0": np.zeros((4, 8, 4)), "linear1.bias.0": np.zeros((4, 1, 4)),
            "linear2.weight.0": np.zeros((4, 4, 8)), "linear2.bias": np.zeros((4, 8)), "linear3.weight": np.zeros((8, 8))}
    convert(layer, good)
    with pytest.raises(ValueError, match="does not use: surprise"):
        convert(layer, {**good, "surprise": np.zeros(1)})
    with pytest.raises(ValueError, match="Shape mismatch"):
        convert(layer, {**good, "linear1.weight.0": np.zeros((4, 8, 5))})
    with pytest.raises(ValueError, match="linear2.bias"):
        convert(layer, {k: v for k, v in good.items() if k != "linear2.bias"})


def test_reference_style_lm_preset_forward():
    """uoe_lm_tiny as the reference builds it: post-norm blocks, UoME routing over the batch axis."""
    model = flaxzoo.create_model("uoe_lm_tiny", uome_route_over="batch")
    ids = jax.random.randint(jax.random.key(0), (4, 12), 0, 128)
    logits = forward(model, ids)
    assert logits.shape == (4, 12, 128) and np.isfinite(np.asarray(logits)).all()
    # batch routing: each UoME expert keeps int(0.5 * B) = 2 of the 4 sequences at every position
    plan = nnx.jit(lambda m, x: m.route(x))(model.blocks[0].mlp, jnp.zeros((12, 4, 64)))
    assert plan.tokens.shape == (4, 12, 2)
    with pytest.raises(ValueError, match="uome_route_over"):
        flaxzoo.create_model("uoe_lm_tiny", uome_route_over="sequence")
