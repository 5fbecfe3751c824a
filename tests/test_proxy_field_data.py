"""Shapes, exact SDF ground truth, bad mesh inputs, shape metrics, renders and the fit_shape CLI's refusals."""
import json

import jax.numpy as jnp
import numpy as np
import pytest
import trimesh
from flax import nnx

from flaxzoo.data import meshes
from flaxzoo.data.field_samples import FieldSamples
from flaxzoo.eval import render, shape_metrics
from flaxzoo.scripts import fit_shape


def brute_force_sdf(shape, points):
    """Every point against every triangle, sign by the generalised winding number: an independent reference."""
    tri = shape.vertices[shape.faces]
    q, _ = meshes.closest_on_triangles(points[:, None], tri[None, :, 0], tri[None, :, 1], tri[None, :, 2])
    dist = np.sqrt(((q - points[:, None]) ** 2).sum(-1).min(1))
    a, b, c = (tri[None, :, i] - points[:, None] for i in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=-1) for v in (a, b, c))
    det = (a * np.cross(b, c)).sum(-1)
    dot = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
    winding = 2 * np.arctan2(det, dot).sum(-1) / (4 * np.pi)
    return np.where(winding > 0.5, -dist, dist)


@pytest.mark.parametrize("name", ["ant", "nut"])
def test_bundled_meshes_are_watertight_and_their_sdf_is_exact(name):
    shape = meshes.load_shape(f"builtin:{name}")
    assert trimesh.Trimesh(shape.vertices, shape.faces).is_watertight
    assert np.isclose(np.ptp(shape.vertices, 0).max(), 2 * meshes.HALF_EXTENT)
    rng = np.random.default_rng(0)
    surface, _, _ = meshes.sample_surface(shape, 100, rng)
    points = np.concatenate([rng.uniform(-1, 1, (200, 3)), surface + rng.normal(0, 0.02, surface.shape)])
    np.testing.assert_allclose(meshes.signed_distance(shape, points), brute_force_sdf(shape, points), atol=1e-9)
    assert np.abs(meshes.signed_distance(shape, surface)).max() < 1e-9


def test_analytic_shapes_and_field_samples():
    shape = meshes.load_shape("builtin:torus")
    rng = np.random.default_rng(0)
    points, normals, colours = meshes.sample_surface(shape, 500, rng)
    np.testing.assert_allclose(shape.analytic(points), 0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1, atol=1e-6)
    outward = points + 0.05 * normals
    np.testing.assert_allclose(shape.analytic(outward), 0.05, atol=1e-3)
    assert colours.min() >= 0 and colours.max() <= 1
    for name in meshes.ANALYTIC:
        s = meshes.load_shape(f"builtin:{name}")
        assert trimesh.Trimesh(s.vertices, s.faces).volume > 0  # outward-oriented
    source = FieldSamples("train", shape="builtin:torus", num_points=2048, chunk=256)
    example = source[3]
    assert len(source) == 8 and example["points"].shape == (256, 3) and example["sdf"].dtype == np.float32
    on = example["surface"] == 1
    assert 0 < on.sum() < 256 and np.abs(example["sdf"][on]).max() < 1e-6
    test = FieldSamples("test", shape="builtin:torus", num_points=2048, chunk=256)
    assert not np.allclose(test[0]["points"], source[0]["points"])


def _write(path, mesh):
    data = mesh.export(file_type=path.suffix[1:])
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def test_bad_mesh_inputs_get_one_clear_error(tmp_path):
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2])
    with pytest.raises(ValueError, match=r"not watertight \(4 edges.*points:"):
        meshes.load_shape(_write(tmp_path / "open.ply", open_box))
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [2, 1, 3], [2, 1, 0], [3, 1, 2]],
                           process=False)
    with pytest.raises(ValueError, match="degenerate|empty"):
        meshes.load_shape(_write(tmp_path / "flat.obj", flat))
    (tmp_path / "empty.off").write_text("")
    with pytest.raises(ValueError, match="empty|could not be read|holds no triangle mesh"):
        meshes.load_shape(str(tmp_path / "empty.off"))
    (tmp_path / "notes.ply").write_text("these are my notes, not a mesh\n")
    with pytest.raises(ValueError, match="could not be read as a .ply mesh"):
        meshes.load_shape(str(tmp_path / "notes.ply"))
    with pytest.raises(ValueError, match="not a mesh file"):
        meshes.load_shape(str(tmp_path / "model.pkl"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        meshes.load_shape(str(tmp_path / "missing.stl"))
    with pytest.raises(ValueError, match="Unknown built-in shape 'builtin:bunny'"):
        meshes.load_shape("builtin:bunny")
    # the mesh that is not watertight can be fitted as a point cloud, as the error offers
    cloud = meshes.load_shape(f"points:{tmp_path / 'open.ply'}")
    assert cloud.is_point_cloud and len(cloud.points) == 8
    assert meshes.signed_distance(cloud, np.array([[0.0, 0.0, 0.0]]))[0] < 0  # the box centre is inside


class ExactTorus(nnx.Module):
    """A 'fitted field' that is the exact analytic torus: metrics and renders must score it as perfect."""

    def __init__(self, rngs=None):
        self.unused = nnx.Param(jnp.zeros(1))

    def __call__(self, x):
        ring = jnp.linalg.norm(x[..., :2], axis=-1) - 0.6
        sdf = jnp.sqrt(ring ** 2 + x[..., 2] ** 2) - 0.25
        rgb = 0.5 + 0.4 * jnp.sin(jnp.stack([3 * x[..., 0] + 0.5, 3 * x[..., 1] + 2.0, 3 * x[..., 2] + 4.0], -1))
        return sdf, rgb


def test_metrics_mesh_export_and_render_of_an_exact_field(tmp_path):
    shape = meshes.load_shape("builtin:torus")
    metrics, (verts, faces, colours) = shape_metrics.shape_metrics(ExactTorus(), shape, resolution=40,
                                                                   num_samples=3000)
    assert metrics["chamfer_l1"] < 0.01 and metrics["fscore_1pct"] > 0.9 and metrics["normal_consistency"] > 0.98
    assert metrics["iou"] > 0.97 and metrics["colour_psnr"] > 35
    shifted = shape_metrics.surface_metrics(verts + [0.1, 0, 0], faces, shape, num_samples=3000)
    assert shifted["chamfer_l1"] > 5 * metrics["chamfer_l1"] and shifted["fscore_1pct"] < 0.5
    path = tmp_path / "torus.ply"
    shape_metrics.write_ply(path, verts, faces, colours)
    back = trimesh.load(path, force="mesh", process=False)
    assert len(back.faces) == len(faces) and back.visual.kind == "vertex"
    with pytest.raises(FileExistsError):
        shape_metrics.write_ply(path, verts, faces, colours)
    image = render.render_png(ExactTorus(), tmp_path / "torus.png", views=((30.0, 30.0),), resolution=48, steps=48)
    assert image.shape == (96, 48, 3)
    hit = (image[:48] < 250).any(-1)
    assert 0.1 < hit.mean() < 0.8 and hit[24, 2] == False  # noqa: E712  (the torus, and background beside it)
    with pytest.raises(shape_metrics.NoSurfaceError, match="no surface"):
        shape_metrics.extract_mesh(_Outside(), 16)


class _Outside(nnx.Module):
    def __init__(self):
        self.unused = nnx.Param(jnp.zeros(1))

    def __call__(self, x):
        return jnp.ones(x.shape[:-1]), jnp.zeros(x.shape)


def test_fit_shape_cli_refuses_bad_shapes_and_existing_outputs(tmp_path, capsys):
    (tmp_path / "notes.ply").write_text("not a mesh")
    assert fit_shape.main(["--shape", str(tmp_path / "notes.ply"), "--out", str(tmp_path / "o")]) == 2
    assert "could not be read" in capsys.readouterr().err
    assert fit_shape.main(["--shape", "builtin:torus", "--out", str(tmp_path / "o"), "--edit", "1-2"]) == 2
    assert "LEVEL:NODE:DX,DY,DZ" in capsys.readouterr().err
    (tmp_path / "o").mkdir(exist_ok=True)
    (tmp_path / "o" / "metrics.json").write_text(json.dumps({"mine": 1}))
    assert fit_shape.main(["--shape", "builtin:torus", "--out", str(tmp_path / "o")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert json.loads((tmp_path / "o" / "metrics.json").read_text()) == {"mine": 1}
