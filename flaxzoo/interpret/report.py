"""features.json, report.html and one PNG grid per feature (images) for a fitted SNMF.

Each feature: its neurons and weights (the WTA support of z), its top inputs by coefficient
(text in a +-15 token window; images as patch grids), the labels of those inputs and their purity,
its top promoted / suppressed outputs, and for UoME layers its "expert locality" (the share of
||z||^2 inside the largest expert's block of columns).
"""
from __future__ import annotations

import html
import json
import os

import numpy as np

from flaxzoo.files import atomic_path, write_atomic
from flaxzoo.interpret import features as F
from flaxzoo.layers.experts import UoME


def _output_names(inputs, count: int) -> list[str]:
    """Names of the model's outputs: tokens for an LM (ids past the vocabulary as <id>), classes, or indices."""
    names = inputs.vocab if inputs.vocab is not None else inputs.label_names
    names = [repr(t) for t in names] if inputs.vocab is not None else names
    return [names[i] if names is not None and i < len(names) else f"<{i}>" for i in range(count)]


def expert_locality(layer, z: np.ndarray) -> float | None:
    if not isinstance(layer, UoME):
        return None
    e = layer.w1[...].shape[0]
    mass = np.square(z.reshape(e, -1)).sum(1)
    return float(mass.max() / max(mass.sum(), 1e-30))


def describe(model, layer, acts, Z: np.ndarray, Y: np.ndarray, inputs, *, top: int = 25,
             output_effect: np.ndarray | None = None, output_method: str = "none") -> list[dict]:
    """One dict per feature (see the module docstring)."""
    names = _output_names(inputs, output_effect.shape[1]) if output_effect is not None else None
    out = []
    for i in range(Z.shape[1]):
        tokens = F.top_tokens(Y, i, top)
        entry = {"feature": i, "neurons": F.top_neurons(Z[:, i], 20),
                 "num_neurons": int((Z[:, i] != 0).sum()), "norm": float(np.linalg.norm(Z[:, i])),
                 "mean_coefficient": float(np.mean(Y[i])), "top_inputs": []}
        for j in tokens:
            ex, pos = int(acts.meta["example"][j]), int(acts.meta["position"][j])
            item = {"example": ex, "position": pos, "coefficient": float(Y[i, j])}
            if inputs.labels is not None:
                item["label"] = inputs.label_names[inputs.labels[ex]] if inputs.label_names else int(inputs.labels[ex])
            if inputs.kind == "text" and inputs.decode is not None:
                item["context"] = F.text_context(inputs.x, ex, pos, inputs.decode)
            if "box" in acts.meta:
                item["box"] = [int(v) for v in acts.meta["box"][j]]
            entry["top_inputs"].append(item)
        if inputs.labels is not None and len(tokens):
            labels = [t["label"] for t in entry["top_inputs"]]
            majority = max(set(labels), key=labels.count)
            entry["majority_label"], entry["purity"] = majority, labels.count(majority) / len(labels)
        if output_effect is not None:
            promoted, suppressed = F.top_outputs(output_effect[i], 10)
            entry["outputs"] = {"method": output_method,
                                "promoted": [[names[p], float(output_effect[i, p])] for p in promoted],
                                "suppressed": [[names[s], float(output_effect[i, s])] for s in suppressed]}
        locality = expert_locality(layer, Z[:, i])
        if locality is not None:
            entry["expert_locality"] = locality
        out.append(entry)
    return out


def write_grids(out_dir: str, described: list[dict], inputs, acts) -> None:
    images = inputs.display_images()
    for entry in described:
        if not entry["top_inputs"] or "box" not in entry["top_inputs"][0]:
            continue
        boxes = np.array([t["box"] for t in entry["top_inputs"]])
        examples = np.array([t["example"] for t in entry["top_inputs"]])
        with atomic_path(os.path.join(out_dir, f"feature_{entry['feature']:03d}.png")) as tmp:
            F.patch_grid(images, boxes, examples).save(tmp, format="PNG")
        entry["grid"] = f"feature_{entry['feature']:03d}.png"


def _html_feature(entry: dict) -> str:
    e = html.escape
    parts = [f"<section><h2>Feature {entry['feature']}</h2>",
             f"<p>{entry['num_neurons']} neurons, ||z|| = {entry['norm']:.3g}"]
    if "purity" in entry:
        parts.append(f"; top inputs: {entry['purity']:.0%} {e(str(entry['majority_label']))}")
    if "expert_locality" in entry:
        parts.append(f"; expert locality {entry['expert_locality']:.2f}")
    parts.append("</p>")
    if "grid" in entry:
        parts.append(f"<img src='{e(entry['grid'])}' alt='top patches of feature {entry['feature']}'>")
    texts = [t for t in entry["top_inputs"] if "context" in t][:10]
    if texts:
        parts.append("<ol>" + "".join(
            f"<li><code>{e(t['context']['left'])}<b style='background:#fd4'>{e(t['context']['token'])}</b>"
            f"{e(t['context']['right'])}</code> ({t['coefficient']:.3g})</li>" for t in texts) + "</ol>")
    if "outputs" in entry:
        fmt = lambda pairs: ", ".join(f"{e(str(n))} ({v:+.3g})" for n, v in pairs)  # noqa: E731
        parts.append(f"<p>Promotes: {fmt(entry['outputs']['promoted'])}<br>"
                     f"Suppresses: {fmt(entry['outputs']['suppressed'])} <i>({e(entry['outputs']['method'])})</i></p>")
    parts.append("<p>Neurons: " + ", ".join(f"{n}: {w:+.3g}" for n, w in entry["neurons"][:12]) + "</p></section>")
    return "".join(parts)


def write(out_dir: str, summary: dict, described: list[dict], tree: dict | None = None) -> None:
    """features.json (summary + features [+ tree]) and report.html into out_dir (which must exist)."""
    doc = dict(summary, features=described)
    if tree is not None:
        doc["tree"] = tree
    write_atomic(os.path.join(out_dir, "features.json"), json.dumps(doc, indent=1))
    e = html.escape
    head = (f"<h1>SNMF features of {e(summary['model'])} at {e(summary['layer'])}</h1>"
            f"<p>k = {summary['k']}, sparsity {summary['sparsity']}, {summary['tokens']} tokens, relative error "
            f"{summary['relative_error']:.3f}. A ~= Z Y with Y &ge; 0 (coefficients) and Z mixed sign (features).</p>")
    if tree is not None:
        head += "<h2>Hierarchy</h2><pre>" + e(json.dumps(tree)) + "</pre>"
    body = "".join(_html_feature(entry) for entry in described)
    write_atomic(os.path.join(out_dir, "report.html"),
                 f"<!doctype html><html><head><meta charset='utf-8'><title>SNMF report</title></head>"
                 f"<body>{head}{body}</body></html>")
