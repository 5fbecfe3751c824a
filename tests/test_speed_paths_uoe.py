"""UoME's grouped-GEMM path (`expert_impl="grouped"`, optionally dropless) against the capacity path."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import flaxzoo
from conftest import golden_cases
from flaxzoo.layers.experts import RoutePlan, UoME
from flaxzoo.models.uoe import UoELM
from flaxzoo.train.step import init_train_state, make_train_step
from flaxzoo.train.tasks.lm import make_loss_fn

X = jax.random.normal(jax.random.key(1), (3, 12, 16))


def uome(impl="capacity", dropless=False, **kw):
    layer = UoME(16, 32, 4, 2, expert_impl=impl, dropless=dropless, rngs=nnx.Rngs(0), **kw)
    # non-zero biases, so a bias applied to the wrong rows shows
    layer.b1.set_value(0.1 * jax.random.normal(jax.random.key(2), layer.b1.shape))
    layer.b2.set_value(0.1 * jax.random.normal(jax.random.key(3), layer.b2.shape))
    return layer


@nnx.jit
def union_and_grads(layer, x):
    def loss(layer, x):
        y = layer(x)
        return jnp.sum(y * jnp.cos(y)) + layer.router_loss[...], y
    (_, y), grads = nnx.value_and_grad(loss, argnums=(0, 1), has_aux=True)(layer, x)
    return y, grads


def assert_trees_close(a, b, atol):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=atol, rtol=1e-5), a, b)


@pytest.mark.parametrize("mode", ["trained", pytest.param("faithful", marks=pytest.mark.slow)])
def test_grouped_from_plan_equals_capacity_path_and_drops_the_same_tokens(mode):
    """Capacity 0.25: K = 3 of 12, so most experts drop tokens; the plan's rows are the same rows.
    (Capacity 1.0 is covered by the dropless and training tests.)"""
    for capacity in (0.25,):
        y_cap, g_cap = union_and_grads(uome(mode=mode, capacity=capacity), X)
        y_grp, g_grp = union_and_grads(uome("grouped", mode=mode, capacity=capacity), X)
        np.testing.assert_allclose(np.asarray(y_grp), np.asarray(y_cap), atol=1e-5, rtol=1e-5)
        assert_trees_close(g_grp, g_cap, atol=1e-5)
    plan = uome(mode=mode, capacity=0.25).route(X)
    choosers = plan.topk_mask.sum(1)  # (G, E) positions choosing each expert, against K = 3 slots
    assert bool((choosers > plan.capacity).any()), "the small capacity must drop chosen tokens for this test"


def test_dropless_equals_capacity_path_at_full_capacity_and_keeps_what_it_drops():
    y_full, g_full = union_and_grads(uome(mode="trained", capacity=1.0), X)
    y_free, g_free = union_and_grads(uome("grouped", True, mode="trained", capacity=0.25), X)
    # capacity is ignored when dropless: it is the capacity path with nothing dropped
    np.testing.assert_allclose(np.asarray(y_free), np.asarray(y_full), atol=1e-5, rtol=1e-5)
    assert_trees_close(g_free, g_full, atol=1e-5)
    y_drop, _ = union_and_grads(uome(mode="trained", capacity=0.25), X)
    assert float(jnp.abs(y_drop - y_free).max()) > 1e-3, "at capacity 0.25 the capacity path drops tokens"


def test_grouped_paths_use_ragged_dot_and_dropless_backward_has_no_scatter():
    def grad_jaxpr(layer):
        graphdef, state = nnx.split(layer)

        def grads(state, x):
            loss = lambda layer, x: jnp.sum(layer(x) ** 2)
            return nnx.grad(loss, argnums=(0, 1))(nnx.merge(graphdef, state), x)
        return str(jax.make_jaxpr(grads)(state, X))

    dropless = grad_jaxpr(uome("grouped", True, mode="trained"))
    assert "ragged_dot" in dropless and "scatter" not in dropless
    assert "ragged_dot" in grad_jaxpr(uome("grouped", mode="trained"))
    assert "ragged_dot" not in grad_jaxpr(uome(mode="trained"))


def test_dropless_refuses_an_injected_plan_and_bad_switches_are_named():
    plan = RoutePlan.all_tokens(4, X.shape[0], X.shape[1])
    with pytest.raises(ValueError, match="injected RoutePlan"):
        uome("grouped", True)(X, plan=plan)
    probed = uome("grouped")
    probed.probe = nnx.Module()  # stands for flaxzoo.layers.probe.Probe: the grouped rows do not feed it
    with pytest.raises(ValueError, match="probe attached"):
        probed(X)
    with pytest.raises(ValueError, match="expert_impl must be one of"):
        flaxzoo.create_model("uoe_lm_tiny", expert_impl="scatter")
    with pytest.raises(ValueError, match="dropless=True needs expert_impl='grouped'"):
        UoME(16, 32, dropless=True, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("dropless", [pytest.param(False, marks=pytest.mark.slow), True])
def test_grouped_lm_trains_like_the_capacity_lm(dropless):
    """A few optimizer steps of a tiny trained-mode LM with nothing dropped: same losses, same weights."""
    def run(impl, dropless):
        model = UoELM(64, 16, 1, 4, 32, mode="trained", capacity=1.0, head_capacity=1.0, pre_norm=True,
                      expert_impl=impl, dropless=dropless, rngs=nnx.Rngs(0))
        assert model.blocks[0].mlp.expert_impl == impl
        state = init_train_state(model, optax.adam(1e-2))
        step = make_train_step(make_loss_fn(), donate=False)
        losses = []
        for i in range(3):
            ids = jax.random.randint(jax.random.key(i), (2, 9), 0, 64)
            state, metrics = step(state, {"tokens": ids}, jax.random.key(i))
            losses.append(float(metrics["loss"]))
        return losses, state.params

    losses_cap, params_cap = run("capacity", False)
    losses_grp, params_grp = run("grouped", dropless)
    np.testing.assert_allclose(losses_grp, losses_cap, rtol=1e-5)
    assert losses_cap[-1] < losses_cap[0]
    assert_trees_close(params_grp, params_cap, atol=1e-5)


def test_create_model_takes_expert_impl():
    model = flaxzoo.create_model("uoe_lm_tiny", expert_impl="grouped", dropless=True)
    assert all(b.mlp.expert_impl == "grouped" and b.mlp.dropless for b in model.blocks)
    vit = flaxzoo.create_model("uoe_vit_test_tiny", expert_impl="grouped")
    swin = flaxzoo.create_model("swin_uoe_test_tiny", expert_impl="grouped")
    assert vit.blocks[0].mlp.expert_impl == "grouped"
    assert swin.layers[0].blocks[0].mlp.uome.expert_impl == "grouped"


UOME_GOLDEN_KINDS = ("dense_uome_lra", "uome_lra", "uome_lm", "lra_classifier")


def _golden_params():  # the smallest case in the default suite, the rest (compile-heavy) in `make test-all`
    cases = [c for k in UOME_GOLDEN_KINDS for c in golden_cases("uoe", kind=k)]
    return [c if c.id == "uome_layer" else pytest.param(*c.values, id=c.id, marks=pytest.mark.slow) for c in cases]


@pytest.mark.parametrize("case", _golden_params())
def test_golden_forward_grouped(case):
    """The reference parity cases (faithful mode, routing injected) through the grouped UoME path."""
    from test_uoe_golden import test_golden_forward

    test_golden_forward(case, expert_impl="grouped")
