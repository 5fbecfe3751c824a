"""Fidelity of a fitted field against its shape: marching-cubes mesh, Chamfer-L1, normal consistency,
F-score, volumetric IoU, colour PSNR; and the coloured .ply export.

Any field model works (`model(points) -> (sdf, rgb)`: ProxyField and the baselines). Conventions, all in
the normalised box of `flaxzoo.data.meshes` (the shape's longest side is 1.8):
- Chamfer-L1: (mean distance from predicted surface samples to the true surface + the reverse) / 2, with
  `num_samples` area-weighted samples on each (Occupancy Networks' definition, Euclidean, not squared), each
  distance exact to the other surface (not to its samples, which would add a bias of about half the
  sample spacing).
- normal consistency: the mean |cos| between each sample's normal and the other surface's normal at the
  nearest point, both ways, averaged.
- F-score at tau = 1% of the true bounding-box diagonal: harmonic mean of precision (predicted samples
  within tau of the truth) and recall (true samples within tau of the prediction).
- IoU: of the inside sets (exact SDF < 0 vs field < 0) on `iou_points` uniform points of the shape's
  bounding box enlarged by 5%.
- colour PSNR: predicted RGB at true surface samples against the true colour there, on [0, 1].
"""
from __future__ import annotations

import numpy as np

from flaxzoo.data import meshes
from flaxzoo.files import write_atomic
from flaxzoo.models.proxy_field import evaluate
from flaxzoo.validate import InputError


class NoSurfaceError(InputError):
    """The field has no zero crossing in the box, so there is no surface to extract."""


def extract_mesh(model, resolution: int = 64, *, chunk: int = 32768):
    """Marching cubes of the field's zero level on [-1, 1]^3: vertices (V, 3), faces (F, 3), colours (V, 3)."""
    from skimage.measure import marching_cubes

    if resolution < 8:
        raise InputError(f"Marching-cubes resolution must be at least 8; got {resolution}.")
    axis = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    sdf, _ = evaluate(model, grid, chunk=chunk)
    volume = sdf.reshape((resolution,) * 3)
    if not (volume.min() < 0 < volume.max()):
        raise NoSurfaceError(f"The fitted field has no surface in the box (SDF from {volume.min():.3g} to "
                             f"{volume.max():.3g}): the fit failed or is too short; train longer.")
    verts, faces, _, _ = marching_cubes(volume, 0.0, spacing=(float(axis[1] - axis[0]),) * 3)
    verts = verts - 1.0
    tri = verts[faces]
    if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:  # orient outward
        faces = faces[:, ::-1]
    _, colours = evaluate(model, verts, chunk=chunk)
    return verts.astype(np.float64), np.ascontiguousarray(faces, dtype=np.int64), np.clip(colours, 0, 1)


def _to_surface(points, target: meshes.Shape):
    """Distance from points to the surface of `target` and the surface normal there (exact: closest point on
    the mesh, or the analytic SDF and its gradient)."""
    if target.analytic is not None:
        grad = meshes.sdf_gradient(target.analytic, points)
        return np.abs(target.analytic(points)), grad / np.maximum(np.linalg.norm(grad, axis=-1, keepdims=True), 1e-12)
    nearest, face, _ = meshes.closest_surface_point(target, points)
    tri = target.vertices[target.faces[face]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return np.linalg.norm(points - nearest, axis=-1), normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-20)


def surface_metrics(vertices, faces, shape: meshes.Shape, *, num_samples: int = 20000, seed: int = 0) -> dict:
    """Chamfer-L1, normal consistency and F-score@1% of a predicted mesh against `shape`. Distances are from
    each surface's samples to the other surface itself (not to its samples), so they carry no sampling bias."""
    if shape.is_point_cloud:
        raise ValueError("Surface metrics need the true surface; a point cloud has none (use its mesh).")
    rng = np.random.default_rng(seed)
    prediction = meshes.Shape("prediction", np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
    pred, pred_n, _ = meshes.sample_surface(prediction, num_samples, rng)
    true, true_n, _ = meshes.sample_surface(shape, num_samples, rng)
    d_pred, n_at_true = _to_surface(pred, shape)  # predicted -> true
    d_true, n_at_pred = _to_surface(true, prediction)  # true -> predicted
    lo, hi = shape.vertices.min(0), shape.vertices.max(0)
    tau = 0.01 * float(np.linalg.norm(hi - lo))
    precision, recall = float((d_pred < tau).mean()), float((d_true < tau).mean())
    consistency = 0.5 * (np.abs((pred_n * n_at_true).sum(-1)).mean() + np.abs((true_n * n_at_pred).sum(-1)).mean())
    return {"chamfer_l1": float(0.5 * (d_pred.mean() + d_true.mean())), "normal_consistency": float(consistency),
            "fscore_1pct": 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall),
            "precision_1pct": precision, "recall_1pct": recall, "tau": tau}


def volume_iou(model, shape: meshes.Shape, *, num_points: int = 20000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    lo, hi = shape.vertices.min(0), shape.vertices.max(0)
    pad = 0.05 * (hi - lo)
    points = rng.uniform(lo - pad, hi + pad, (num_points, 3))
    truth = meshes.signed_distance(shape, points) < 0
    pred = evaluate(model, points)[0] < 0
    union = (truth | pred).sum()
    return float((truth & pred).sum() / union) if union else 1.0


def colour_psnr(model, shape: meshes.Shape, *, num_points: int = 20000, seed: int = 0) -> float:
    points, _, colours = meshes.sample_surface(shape, num_points, np.random.default_rng(seed))
    mse = float(np.mean((np.clip(evaluate(model, points)[1], 0, 1) - colours) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def shape_metrics(model, shape: meshes.Shape, *, resolution: int = 64, num_samples: int = 20000, seed: int = 0):
    """All metrics of a fitted field, and its extracted mesh (vertices, faces, colours)."""
    mesh = extract_mesh(model, resolution)
    out = surface_metrics(mesh[0], mesh[1], shape, num_samples=num_samples, seed=seed)
    out["iou"] = volume_iou(model, shape, num_points=num_samples, seed=seed)
    out["colour_psnr"] = colour_psnr(model, shape, num_points=num_samples, seed=seed)
    out.update(resolution=resolution, vertices=int(len(mesh[0])), faces=int(len(mesh[1])))
    return out, mesh


def write_ply(path, vertices, faces, colours=None, *, overwrite: bool = False) -> None:
    """A binary .ply with optional per-vertex RGB (uint8), written atomically; refuses to overwrite."""
    import os

    import trimesh

    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass overwrite.")
    rgb = None if colours is None else np.round(np.clip(colours, 0, 1) * 255).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=rgb, process=False)
    write_atomic(path, mesh.export(file_type="ply"))
