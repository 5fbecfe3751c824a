"""The UoE authors' state dicts (YujiaoYang-work/UoE @ 5f2306b) -> flaxzoo UoE modules.

Expert tensors in the reference are stacked and used as `x @ W[e]` (no transpose):
  UoME  linear1.weight.0 (E, d, F/E), linear1.bias.0 (E, 1, F/E), linear2.weight.0 (E, F/E, d),
        linear2.bias (E, d) (one output bias per expert)
  SMHA  LRA: W_qkv.weight.0 (E, d, 3dh) per head [q|k|v]; LM: W_q.weight.0 (E, d, dh) and
        W_kv.weight.0 (E, d, 2dh) per head [k|v]; ff.weight.0 (E, dh, d), ff.bias (E, d)
  gate  switch_gate[.w_gate].weight (E, d), torch Linear layout -> our (d, E) kernel.
Parameters the reference builds but never uses (linear3, s_gate, kv_norm, the LRA SMHA's
layer_norm) are accepted and ignored; anything else unknown is an error.
"""
from __future__ import annotations

import numpy as np
from flax import nnx

from flaxzoo.models.convert.common import assign_params

# Built but never used by the reference forward: present in every official state_dict.
_DEAD = ("linear3.", "s_gate.", "kv_norm.", "mha.layer_norm.", "r_emb")


def _gate(sd: dict, prefix: str, used: set) -> dict:
    for name in (f"{prefix}switch_gate.w_gate.", f"{prefix}switch_gate."):
        if name + "weight" in sd:
            used.update({name + "weight", name + "bias"})
            return {"router.gate.kernel": np.asarray(sd[name + "weight"]).T, "router.gate.bias": sd[name + "bias"]}
    raise ValueError(f"No router weights at {prefix!r}switch_gate[.w_gate].weight in the checkpoint.")


def uome_params(sd: dict, prefix: str = "", used: set | None = None) -> dict:
    """flaxzoo UoME parameter names -> arrays, from the reference U_MLP keys under `prefix`."""
    used = set() if used is None else used
    keys = {k: prefix + k for k in ("linear1.weight.0", "linear1.bias.0", "linear2.weight.0", "linear2.bias")}
    used.update(keys.values())
    b1 = np.asarray(sd[keys["linear1.bias.0"]])
    return {**_gate(sd, prefix, used), "w1": sd[keys["linear1.weight.0"]], "b1": b1.reshape(b1.shape[0], -1),
            "w2": sd[keys["linear2.weight.0"]], "b2": sd[keys["linear2.bias"]]}


def smha_params(sd: dict, prefix: str = "", used: set | None = None) -> dict:
    """flaxzoo SMHA parameter names -> arrays, from the LRA (W_qkv) or LM (W_q + W_kv) reference keys."""
    used = set() if used is None else used
    if prefix + "W_qkv.weight.0" in sd:
        w, b = sd[prefix + "W_qkv.weight.0"], np.asarray(sd[prefix + "W_qkv.bias.0"])
        used.update({prefix + "W_qkv.weight.0", prefix + "W_qkv.bias.0"})
    else:  # LM: [q] and [k|v] per head -> [q|k|v]
        names = [prefix + n for n in ("W_q.weight.0", "W_kv.weight.0", "W_q.bias.0", "W_kv.bias.0")]
        used.update(names)
        w = np.concatenate([sd[names[0]], sd[names[1]]], axis=-1)
        b = np.concatenate([sd[names[2]], sd[names[3]]], axis=-1)
    used.update({prefix + "ff.weight.0", prefix + "ff.bias"})
    return {**_gate(sd, prefix, used), "qkv": w, "qkv_bias": b.reshape(b.shape[0], -1),
            "out": sd[prefix + "ff.weight.0"], "out_bias": sd[prefix + "ff.bias"]}


def layer_norm_params(sd: dict, prefix: str, used: set, scale_only: bool = False) -> dict:
    used.add(prefix + "weight")
    out = {"scale": sd[prefix + "weight"]}
    if not scale_only:
        used.add(prefix + "bias")
        out["bias"] = sd[prefix + "bias"]
    return out


def _nest(prefix: str, params: dict) -> dict:
    return {f"{prefix}{k}": v for k, v in params.items()}


def lra_classifier_params(sd: dict, depth: int) -> tuple[dict, set]:
    """ModelForSC keys (model.*, seq_classifer.*) -> UoELRAClassifier names."""
    used: set = set()
    out = {"word_embeddings.embedding": sd["model.embeddings.word_embeddings.weight"],
           "position_embeddings.embedding": sd["model.embeddings.position_embeddings.weight"]}
    used.update({"model.embeddings.word_embeddings.weight", "model.embeddings.position_embeddings.weight"})
    for i in range(depth):
        ref = f"model.transformer_{i}."
        out.update(_nest(f"blocks.{i}.norm1.", layer_norm_params(sd, ref + "norm1.", used, scale_only=True)))
        out.update(_nest(f"blocks.{i}.attn.", smha_params(sd, ref + "mha.", used)))
        out.update(_nest(f"blocks.{i}.norm2.", layer_norm_params(sd, ref + "norm2.", used, scale_only=True)))
        out.update(_nest(f"blocks.{i}.mlp.", uome_params(sd, ref + "mlpblock.", used)))
    out.update(_nest("norm.", layer_norm_params(sd, "model.norm.", used)))
    for ours, ref in (("fc1", "seq_classifer.mlpblock.0."), ("fc2", "seq_classifer.mlpblock.2.")):
        used.update({ref + "weight", ref + "bias"})
        out[f"{ours}.kernel"] = np.asarray(sd[ref + "weight"]).T
        out[f"{ours}.bias"] = sd[ref + "bias"]
    return out, used


def _check_leftovers(sd: dict, used: set, what: str) -> None:
    extra = sorted(k for k in sd if k not in used and not any(d in k for d in _DEAD))
    if extra:
        shown = ", ".join(extra[:10]) + (f" ... and {len(extra) - 10} more" if len(extra) > 10 else "")
        raise ValueError(f"The checkpoint has keys that the {what} does not use: {shown}. "
                         f"Is it a checkpoint of this model (check the model name and depth)?")


def convert(model: nnx.Module, state_dict: dict, **_) -> nnx.Module:
    """Load an official UoE state dict into a flaxzoo UoE model or layer (in place)."""
    sd = dict(state_dict)
    try:
        params, used, what = _map(model, sd)
    except KeyError as e:
        raise ValueError(f"The checkpoint lacks {e.args[0]!r}, which a {type(model).__name__} needs: is it an official "
                         f"UoE state dict of this model (same depth and prefixes)?") from None
    _check_leftovers(sd, used, what)
    return assign_params(model, params, source="UoE reference checkpoint")


def _map(model, sd):
    from flaxzoo.layers.experts import UoME
    from flaxzoo.layers.smha import SMHA
    from flaxzoo.models.uoe import UoELRAClassifier

    if isinstance(model, UoELRAClassifier):
        params, used = lra_classifier_params(sd, len(model.blocks))
        what = "UoE LRA classifier"
    elif isinstance(model, (UoME, SMHA)):
        used = set()
        params = (uome_params if isinstance(model, UoME) else smha_params)(sd, "", used)
        what = type(model).__name__
        used.update(k for k in sd if k.startswith("layer_norm."))  # LM post-norm lives in the block, not the layer
    else:
        raise ValueError(f"No converter from the authors' checkpoints for {type(model).__name__}: the released "
                         f"code has LRA classifiers and an adaptive-softmax Transformer-XL LM only. Load "
                         f"single UoME/SMHA layers or the LRA classifier, or use flaxzoo-native weights.")
    return params, used, what
