"""Parity with the UoE authors' code (tests/golden/uoe/, one test per case).

Routing is injected from the recorded `expert_tokens` (torch's tie-break among zero-score
fillers cannot be reproduced); a separate test checks that our router, fed the recorded
gate input, gives the same scores, top-k experts and chosen token sets.
"""
import json
import re

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import golden_cases
from flax import nnx

from flaxzoo.layers import LayerNorm
from flaxzoo.layers.experts import RoutePlan, UoME, reference_capacity
from flaxzoo.layers.smha import SMHA
from flaxzoo.models.convert.uoe import convert
from flaxzoo.models.uoe import UoELRAClassifier

ROUTED_KINDS = ("uome_lra", "smha_lra", "uome_lm", "smha_lm", "lra_classifier")


def load(path):
    meta = json.loads(path.read_text())
    stem = str(path)[: -len(".json")]
    with np.load(stem + ".params.npz", allow_pickle=False) as f:
        params = {k: f[k] for k in f.files}
    with np.load(stem + ".io.npz", allow_pickle=False) as f:
        io = {k: f[k] for k in f.files}
    return meta, params, io


def lra_cfg(kw):
    return dict(eps=kw["epsilon"], cap=kw["capacity"])


def build_layer(kind, kw, params):
    """The flaxzoo module for a layer case, loaded through the converter."""
    if kind in ("uome_lra", "dense_uome_lra"):
        layer = UoME(kw["transformer_dim"], kw["transformer_hidden_dim"], kw["n_experts"], kw["topk"], capacity=0.5,
                     route_norm="group", route_eps=kw["epsilon"], route_scale=kw["capacity"], rngs=nnx.Rngs(0))
    elif kind == "uome_lm":
        c = kw["config"]
        layer = UoME(kw["d_model"], kw["d_inner"], c["n_experts"], c["topk"], capacity=0.5, route_norm="group",
                     route_eps=c["epsilon"], route_scale=c["capacity"], rngs=nnx.Rngs(0))
    elif kind in ("smha_lra", "dense_smha_lra"):
        layer = SMHA(kw["transformer_dim"], kw["attn_n_experts"], kw["attn_topk"], pre_rotation=True,
                     route_norm="experts", route_eps=kw["epsilon"], route_scale=kw["capacity"], rngs=nnx.Rngs(0))
    elif kind == "smha_lm":
        c = kw["config"]
        layer = SMHA(kw["d_model"], kw["n_head"], kw["n_head"] // 2, causal=True, rope="slot", route_norm="group",
                     route_eps=c["epsilon"], route_scale=c["capacity"], rope_theta=kw["rope_theta"], rngs=nnx.Rngs(0))
    else:
        raise AssertionError(f"unknown layer kind {kind}")
    return convert(layer, params)


def post_norm(params, x, y):
    """The LM modules end with LayerNorm(x + y), eps 1e-5 (torch's)."""
    ln = LayerNorm(x.shape[-1], eps=1e-5, rngs=nnx.Rngs(0))
    ln.scale.set_value(jnp.asarray(params["layer_norm.weight"]))
    ln.bias.set_value(jnp.asarray(params["layer_norm.bias"]))
    return ln(x + y)


def build_lra(kw, params):
    model = UoELRAClassifier(kw["vocab_size"], kw["max_seq_len"], kw["transformer_dim"], kw["transformer_hidden_dim"],
                             kw["num_layers"], kw["num_classes"], attn_experts=kw["attn_n_experts"],
                             attn_top_k=kw["attn_topk"], num_experts=kw["n_experts"], top_k=kw["topk"],
                             epsilon=kw["epsilon"], capacity=kw["capacity"],
                             head_hidden_dim=params["seq_classifer.mlpblock.0.weight"].shape[0], rngs=nnx.Rngs(0))
    return convert(model, params)


def tolerance(meta, name):
    tol = meta["suggested_tolerance"]
    if name in tol:
        return tol[name]
    generic = re.sub(r"layer\d+_", "layer{i}_", name)
    return tol.get(generic)


@nnx.jit
def lra_forward(model, ids, mask, plans):
    trace = {}
    return model(ids, mask, plans=plans, trace=trace), trace


@nnx.jit
def layer_forward(layer, x, mask, plan):
    """(union output, per-expert rows) of a routed layer, routing given."""
    if isinstance(layer, SMHA):
        return layer(x, mask=mask, plan=plan), layer.expert_outputs(x, plan, mask)
    return layer(x, plan=plan), layer.expert_outputs(x, plan)


@nnx.jit
def router_scores(router, gate_input):
    return router.scores(gate_input)


@nnx.jit(static_argnums=2)
def router_plan(router, gate_input, capacity):
    return router(gate_input, capacity)


def run_case(path, expert_impl="capacity"):
    """Our outputs for every compared array of the case, routing injected: {io name: array}.

    `expert_impl` switches every UoME layer's union (tests/test_speed_paths_uoe.py runs "grouped").
    """
    meta, params, io = load(path)
    kind, kw = meta["kind"], meta["kwargs"]
    x = jnp.asarray(io["input"])
    if kind == "lra_classifier":
        model = build_lra(kw, params)
        for block in model.blocks:
            block.mlp.expert_impl = expert_impl
        depth = kw["num_layers"]
        plans = [(RoutePlan.inject(io[f"layer{i}_smha_expert_tokens"]), RoutePlan.inject(io[f"layer{i}_uome_expert_tokens"]))
                 for i in range(depth)]
        logits, trace = lra_forward(model, x, jnp.asarray(io["mask"]), plans)
        out = {"output": logits, **trace}
        return meta, io, out
    layer = build_layer(kind, kw, params)
    if isinstance(layer, UoME):
        layer.expert_impl = expert_impl
    prefix = meta["routed_layers"][0] + "_"
    plan = RoutePlan.inject(io[prefix + "expert_tokens"])
    mask = jnp.asarray(io["mask"]) if kind in ("smha_lra", "dense_smha_lra") else None
    y, expert_out = layer_forward(layer, x, mask, plan)
    if kind in ("uome_lm", "smha_lm"):
        y = post_norm(params, x, y)
    out = {"output": y}
    if prefix + "expert_out" in io:
        out[prefix + "expert_out"] = expert_out
    return meta, io, out


@pytest.mark.parametrize("case", golden_cases("uoe"))
def test_golden_forward(case, expert_impl="capacity"):
    meta, io, out = run_case(case, expert_impl)
    compared = []
    for name, ours in out.items():
        tol = tolerance(meta, name)
        if meta["kind"].startswith("dense_") and name == "output":
            tol = meta["suggested_tolerance"]["output_vs_output_dense"]
            # the union equals both the reference union and the dense layer
            np.testing.assert_allclose(np.asarray(ours), io["output_dense"], atol=tol["atol"], rtol=tol["rtol"])
        if not isinstance(tol, dict):
            continue
        np.testing.assert_allclose(np.asarray(ours), io[name], atol=tol["atol"], rtol=tol.get("rtol", 0),
                                   err_msg=f"{case.stem}: {name}")
        compared.append(name)
    assert "output" in compared


@pytest.mark.parametrize("case", [c for k in ROUTED_KINDS for c in golden_cases("uoe", kind=k)])
def test_golden_router(case):
    """Our router on the recorded gate input: same scores, same top-k experts, same chosen token sets."""
    meta, params, io = load(case)
    kind, kw = meta["kind"], meta["kwargs"]
    model = build_lra(kw, params) if kind == "lra_classifier" else None
    for routed in meta["routed_layers"]:
        prefix = routed + "_"
        if model is not None:
            i, what = re.fullmatch(r"layer(\d+)_(smha|uome)", routed).groups()
            block = model.blocks[int(i)]
            layer = block.attn if what == "smha" else block.mlp
        else:
            layer = build_layer(kind, kw, params)
        gate_input = jnp.asarray(io[prefix + "gate_input"])
        scores = router_scores(layer.router, gate_input)
        for ours, ref in (("logits", "gate_logits"), ("probs", "scores"), ("route_scores", "route_scores")):
            np.testing.assert_allclose(np.asarray(scores[ours]), io[prefix + ref], atol=1e-5, rtol=1e-5,
                                       err_msg=f"{case.stem}: {prefix}{ref}")
        np.testing.assert_array_equal(np.asarray(scores["topk_mask"]), io[prefix + "topk_mask"])
        assert (np.sort(np.nonzero(np.asarray(scores["topk_mask"]))[-1].reshape(io[prefix + "topk_experts"].shape), -1)
                == np.sort(io[prefix + "topk_experts"], -1)).all()
        capacity = int(io[prefix + "capacity"])
        if routed.endswith("smha"):  # the reference SMHA's K is the largest chosen count
            assert reference_capacity(scores["route_scores"]) == capacity
        plan = router_plan(layer.router, gate_input, capacity)
        tokens, chosen = np.asarray(plan.tokens), np.asarray(plan.chosen)
        ref_tokens, ref_chosen = io[prefix + "expert_tokens"], io[prefix + "expert_tokens_chosen"]
        assert tokens.shape == ref_tokens.shape
        assert (np.diff(tokens, axis=-1) > 0).all(), "positions must be ascending"
        for e in range(tokens.shape[0]):
            for g in range(tokens.shape[1]):
                assert set(tokens[e, g][chosen[e, g]]) == set(ref_tokens[e, g][ref_chosen[e, g]]), (routed, e, g)
        if kind != "lra_classifier":  # single layers: the reference's capacity rule reproduces the recorded K
            x = jnp.asarray(io["input"])
            if isinstance(layer, UoME):
                assert layer.route(x).capacity == capacity
