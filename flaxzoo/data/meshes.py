"""Shapes for neural fields: mesh files, bundled meshes, analytic shapes, point clouds, and their exact SDF.

`load_shape(spec)` takes
  builtin:torus | builtin:sphere | builtin:rounded_box | builtin:union   analytic (numpy SDFs, exact colours)
  builtin:ant | builtin:nut          two small watertight meshes bundled in flaxzoo/data/shapes/ (from
                                     pyvista's examples, MIT; see shapes/NOTICE), so no VTK is needed
  FILE.ply | .obj | .off | .stl      a watertight triangle mesh, read by trimesh (data parsers only: nothing
                                     in a file is executed), with optional vertex or face colours
  points:FILE                        the vertices and normals of any of those files as a point cloud (for
                                     meshes that are not watertight; the sign comes from the normals)
Every shape is centred and scaled into [-0.9, 0.9]^3 (its longest side 1.8), so sample boxes, marching
cubes and metric thresholds are the same for all.

Ground truth is exact and offline (numpy, no rtree): the distance is the brute-force closest point over
the triangles a KD-tree bound leaves (scipy); the sign is the generalised winding number's (inside where it
is above 1/2), which is right for closed meshes even where they touch or cross themselves (the bundled `ant`
does: the normal at the nearest point gets 3 in 20k box points wrong there). The winding number costs
O(points x faces): about 6 s for 20k points on `ant` on a loaded 2-core machine. trimesh's own
`signed_distance` needs rtree and took 5.8 s for 20k points on `ant` here.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

from flaxzoo.validate import InputError

MESH_EXTENSIONS = (".ply", ".obj", ".off", ".stl")
BUNDLED = {"ant": "ant.ply", "nut": "nut.ply"}
ANALYTIC = ("sphere", "torus", "rounded_box", "union")
HALF_EXTENT = 0.9  # shapes are scaled so their longest side spans [-0.9, 0.9]
_CHUNK = 2_000_000  # point-triangle pairs per numpy chunk (~100 MB of temporaries)


@dataclasses.dataclass
class Shape:
    """A normalised shape: a triangle mesh (always, for sampling and metrics) plus how to get its SDF.

    `analytic` (numpy (N, 3) -> (N,)) is the exact SDF of analytic shapes; otherwise the SDF is that of the
    mesh. `colors` (V, 3) in [0, 1] are vertex colours (None: a smooth colour field of the position, so
    colour fitting is measurable on uncoloured meshes). `points`/`normals` are set in point-cloud mode.
    """
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray | None = None
    analytic: Callable[[np.ndarray], np.ndarray] | None = None
    points: np.ndarray | None = None
    normals: np.ndarray | None = None

    @property
    def is_point_cloud(self) -> bool:
        return self.points is not None


def procedural_colour(x: np.ndarray) -> np.ndarray:
    """A smooth colour field over the box (the colour of shapes that carry none), in [0.1, 0.9]."""
    x = np.asarray(x, np.float64)
    return (0.5 + 0.4 * np.sin(np.stack([3.0 * x[:, 0] + 0.5, 3.0 * x[:, 1] + 2.0, 3.0 * x[:, 2] + 4.0], -1))
            ).astype(np.float32)


# ---------------------------------------------------------------------------------------------- analytic

def _sphere(x):
    return np.linalg.norm(x, axis=-1) - 0.8


def _torus(x, major=0.6, minor=0.25, centre=(0.0, 0.0, 0.0)):
    x = x - np.asarray(centre)
    ring = np.linalg.norm(x[:, :2], axis=-1) - major
    return np.sqrt(ring ** 2 + x[:, 2] ** 2) - minor


def _rounded_box(x, half=(0.75, 0.5, 0.4), radius=0.12, centre=(0.0, 0.0, 0.0)):
    q = np.abs(x - np.asarray(centre)) - (np.asarray(half) - radius)
    return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0) - radius


def _union(x):  # a torus through a rounded box; min() is exact outside and on the surface, a bound inside
    return np.minimum(_rounded_box(x, half=(0.4, 0.4, 0.4), radius=0.1, centre=(-0.3, 0.0, 0.0)),
                      _torus(x, major=0.45, minor=0.15, centre=(0.35, 0.0, 0.0)))


_ANALYTIC_SDF = {"sphere": _sphere, "torus": _torus, "rounded_box": _rounded_box, "union": _union}


def sdf_gradient(fn, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference gradient of a numpy SDF."""
    grads = [(fn(x + h * e) - fn(x - h * e)) / (2 * h) for e in np.eye(3)]
    return np.stack(grads, -1)


def project_to_surface(fn, x: np.ndarray, steps: int = 3) -> np.ndarray:
    """Newton steps x <- x - f(x) grad f / |grad f|^2 onto the zero set of an analytic SDF."""
    for _ in range(steps):
        g = sdf_gradient(fn, x)
        x = x - (fn(x) / np.maximum((g * g).sum(-1), 1e-12))[:, None] * g
    return x


def _analytic_shape(name: str, resolution: int = 64) -> Shape:
    from skimage.measure import marching_cubes

    fn = _ANALYTIC_SDF[name]  # its mesh is only for sampling and metrics: points are projected onto the surface
    axis = np.linspace(-1.0, 1.0, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    verts, faces, _, _ = marching_cubes(fn(grid).reshape((resolution,) * 3), 0.0, spacing=(axis[1] - axis[0],) * 3)
    verts = project_to_surface(fn, verts - 1.0)
    tri = verts[faces]
    if np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:  # signed volume: orient outward
        faces = faces[:, ::-1]
    return Shape(f"builtin:{name}", verts.astype(np.float64), faces.astype(np.int64), analytic=fn)


# ------------------------------------------------------------------------------------------------- files

def _read_trimesh(path: str):
    ext = os.path.splitext(path)[1].lower()
    if ext not in MESH_EXTENSIONS:
        raise InputError(f"{path} is not a mesh file flaxzoo reads (extension {ext or 'none'!r}); give a "
                         f"{', '.join(MESH_EXTENSIONS)} file, or builtin:NAME ({', '.join(ANALYTIC + tuple(BUNDLED))}).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Mesh file {path} does not exist.")
    try:
        import trimesh
    except ImportError as e:
        raise ImportError("Reading mesh files needs trimesh: pip install 'flaxzoo[3d]' (or pip install trimesh).") from e
    try:
        mesh = trimesh.load(path, file_type=ext[1:], force="mesh", process=True)
    except Exception as e:  # trimesh raises many kinds on a broken file; the user needs one message
        raise InputError(f"{path} could not be read as a {ext} mesh ({type(e).__name__}: {e}). Is it a mesh file?") from e
    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(f"{path} holds no triangle mesh (trimesh read a {type(mesh).__name__}); give a file "
                         f"with faces, or use points:{path} for a point cloud with normals.")
    return mesh


def _colours_of(mesh) -> np.ndarray | None:
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        return np.asarray(visual.vertex_colors[:, :3], np.float32) / 255.0
    if kind == "face":  # spread face colours to vertices (mean over the faces around each vertex)
        colours = np.zeros((len(mesh.vertices), 3))
        np.add.at(colours, mesh.faces.reshape(-1), np.repeat(visual.face_colors[:, :3] / 255.0, 3, axis=0))
        counts = np.bincount(mesh.faces.reshape(-1), minlength=len(mesh.vertices))[:, None]
        return (colours / np.maximum(counts, 1)).astype(np.float32)
    return None


def _normalise(vertices: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray, float]:
    lo, hi = vertices.min(0), vertices.max(0)
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 1e-12:
        raise InputError(f"{where} is degenerate: all its vertices lie at one point; give a mesh with volume.")
    centre = (lo + hi) / 2
    return (vertices - centre) * (2 * HALF_EXTENT / extent), centre, extent


def _check_mesh(mesh, where: str) -> None:
    if len(mesh.faces) == 0 or len(mesh.vertices) < 4:
        raise InputError(f"{where} is empty ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces); give a closed "
                         f"triangle mesh.")
    extent = np.ptp(np.asarray(mesh.vertices), 0)
    if extent.min() <= 1e-9 * max(float(extent.max()), 1e-300):
        raise InputError(f"{where} is degenerate: all its vertices lie in one plane or line, so it encloses no "
                         f"volume; give a closed mesh with volume.")
    if not mesh.is_watertight:
        import trimesh

        open_edges = len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1))
        what = (f"{open_edges} edges belong to one face only" if open_edges else
                "some edges are shared by more than two faces")
        raise InputError(f"{where} is not watertight ({what}), so inside and outside, and the signed distance, are "
                         f"undefined. Close its holes, or fit it as a point cloud with normals: points:{where} (sign "
                         f"from the normals, approximate).")
    if abs(float(mesh.volume)) < 1e-9 * float(np.ptp(mesh.vertices, 0).max()) ** 3:
        raise InputError(f"{where} is degenerate: it is closed but encloses no volume (flat or zero-area faces).")


def mesh_shape(mesh, name: str) -> Shape:
    """A watertight trimesh.Trimesh -> a normalised Shape (faces oriented outward)."""
    _check_mesh(mesh, name)
    vertices, _, _ = _normalise(np.asarray(mesh.vertices, np.float64), name)
    faces = np.asarray(mesh.faces, np.int64)
    if mesh.volume < 0:  # inward-facing triangles: flip, so normals and the winding number point outward
        faces = faces[:, ::-1]
    return Shape(name, vertices, faces, colors=_colours_of(mesh))


def _bundled_path(name: str) -> str:
    return os.path.join(os.path.dirname(__file__), "shapes", BUNDLED[name])


def _point_cloud(path: str) -> Shape:
    mesh = _read_trimesh(path) if not path.lower().endswith(".ply") else None
    if mesh is None:  # a .ply may be a bare point cloud (with nx, ny, nz) or a mesh
        import trimesh

        try:
            loaded = trimesh.load(path, file_type="ply", process=False)
        except Exception as e:
            raise InputError(f"{path} could not be read as a .ply file ({type(e).__name__}: {e}).") from e
        if isinstance(loaded, trimesh.Trimesh):
            mesh = loaded
        else:
            raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
            if raw is None or not {"nx", "ny", "nz"} <= set(raw.dtype.names or ()):
                raise InputError(f"{path} is a point cloud without normals (nx, ny, nz): points mode needs them to "
                                 f"tell inside from outside.")
            points = np.asarray(loaded.vertices, np.float64)
            normals = np.stack([raw["nx"], raw["ny"], raw["nz"]], -1).astype(np.float64).reshape(-1, 3)
            return _cloud_shape(path, points, normals)
    if len(mesh.vertices) < 4:
        raise InputError(f"{path} has {len(mesh.vertices)} points; points mode needs at least 4.")
    return _cloud_shape(path, np.asarray(mesh.vertices, np.float64), np.asarray(mesh.vertex_normals, np.float64))


def _cloud_shape(path: str, points: np.ndarray, normals: np.ndarray) -> Shape:
    points, _, _ = _normalise(points, path)
    normals = normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    empty = np.zeros((0, 3), np.int64)
    return Shape(f"points:{path}", points, empty, points=points, normals=normals)


def load_shape(spec: str) -> Shape:
    """A shape from `builtin:NAME`, a mesh file, or `points:FILE` (see the module docstring)."""
    if not isinstance(spec, str) or not spec:
        raise InputError(f"A shape is 'builtin:NAME' or a mesh file path; got {spec!r}.")
    if spec.startswith("builtin:"):
        name = spec.partition(":")[2]
        if name in ANALYTIC:
            return _analytic_shape(name)
        if name in BUNDLED:
            return mesh_shape(_read_trimesh(_bundled_path(name)), spec)
        raise InputError(f"Unknown built-in shape {spec!r}; choose from "
                         f"{', '.join('builtin:' + n for n in ANALYTIC + tuple(BUNDLED))}.")
    if spec.startswith("points:"):
        return _point_cloud(spec.partition(":")[2])
    return mesh_shape(_read_trimesh(spec), spec)


# ------------------------------------------------------------------------------------- exact ground truth

def closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest point of triangle (a, b, c) to point p, and its barycentric weights; all arrays (..., 3),
    broadcast together. Ericson's region tests (Real-Time Collision Detection, 5.1.5)."""
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        denom = 1.0 / (va + vb + vc)
    v_in, w_in = vb * denom, vc * denom
    one, zero = np.ones_like(d1), np.zeros_like(d1)
    conditions = [(d1 <= 0) & (d2 <= 0), (d3 >= 0) & (d4 <= d3), (vc <= 0) & (d1 >= 0) & (d3 <= 0),
                  (d6 >= 0) & (d5 <= d6), (vb <= 0) & (d2 >= 0) & (d6 <= 0),
                  (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)]
    v = np.nan_to_num(np.select(conditions, [zero, one, t_ab, zero, zero, 1 - t_bc], v_in))
    w = np.nan_to_num(np.select(conditions, [zero, zero, zero, one, t_ac, t_bc], w_in))
    q = a + v[..., None] * ab + w[..., None] * ac
    return q, np.stack([1 - v - w, v, w], -1)


def closest_surface_point(shape: Shape, points: np.ndarray):
    """Nearest point on the mesh (P, 3), its face (P,) and barycentric weights (P, 3). Exact: the nearest
    vertex bounds the distance from above, so only triangles whose bounding sphere lies within that bound
    (found with a KD-tree over the triangle centres) can hold the nearest point; all of those are tested."""
    from scipy.spatial import cKDTree

    tri = shape.vertices[shape.faces]
    centres = tri.mean(1)
    reach = float(np.linalg.norm(tri - centres[:, None], axis=-1).max())
    bound, _ = cKDTree(shape.vertices).query(points)
    candidates = cKDTree(centres).query_ball_point(points, bound + reach + 1e-9)
    counts = np.fromiter((len(c) for c in candidates), np.int64, len(points))
    point_of = np.repeat(np.arange(len(points)), counts)
    face_of = np.fromiter((f for c in candidates for f in c), np.int64, int(counts.sum()))
    # the tighter per-triangle test: its bounding sphere must come within the bound
    radius = np.linalg.norm(tri - centres[:, None], axis=-1).max(-1)
    keep = np.linalg.norm(points[point_of] - centres[face_of], axis=-1) - radius[face_of] <= bound[point_of] + 1e-9
    point_of, face_of = point_of[keep], face_of[keep]
    best_d2 = np.full(len(points), np.inf)
    nearest, face, bary = np.empty_like(points), np.zeros(len(points), np.int64), np.empty_like(points)
    for s in range(0, len(point_of), _CHUNK):
        pi, fi = point_of[s:s + _CHUNK], face_of[s:s + _CHUNK]
        q, w = closest_on_triangles(points[pi], tri[fi, 0], tri[fi, 1], tri[fi, 2])
        d2 = ((q - points[pi]) ** 2).sum(-1)
        order = np.lexsort((d2, pi))  # per point, its nearest candidate first
        first = order[np.r_[True, pi[order][1:] != pi[order][:-1]]]
        better = d2[first] < best_d2[pi[first]]
        take, where = first[better], pi[first[better]]
        best_d2[where], nearest[where], face[where], bary[where] = d2[take], q[take], fi[take], w[take]
    return nearest, face, bary


def winding_number(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Generalised winding number (Jacobson et al. 2013) of an outward-oriented mesh at each point: 1 inside,
    0 outside, for a closed mesh even where it touches or intersects itself (float32: only its side of 1/2
    is used)."""
    tri = vertices[faces].astype(np.float32)
    out = np.empty(len(points))
    step = max(1, _CHUNK // max(len(faces), 1))
    for start in range(0, len(points), step):
        p = points[start:start + step, None, :].astype(np.float32)
        a, b, c = tri[None, :, 0] - p, tri[None, :, 1] - p, tri[None, :, 2] - p
        la, lb, lc = (np.sqrt((v * v).sum(-1)) for v in (a, b, c))
        det = (a * np.cross(b, c)).sum(-1)
        dot = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out[start:start + step] = np.arctan2(det, dot).sum(-1) / (2 * np.pi)
    return out


def surface_colour(shape: Shape, points: np.ndarray, face=None, bary=None) -> np.ndarray:
    """The colour at surface points: interpolated vertex colours, or the procedural field."""
    if shape.colors is None or face is None:
        return procedural_colour(points)
    return (shape.colors[shape.faces[face]] * bary[..., None]).sum(1).astype(np.float32)


def signed_distance(shape: Shape, points: np.ndarray) -> np.ndarray:
    """Exact SDF (negative inside) at points (P, 3)."""
    sdf, _ = signed_distance_and_colour(shape, points)
    return sdf


def signed_distance_and_colour(shape: Shape, points: np.ndarray):
    """Exact SDF and the colour of the nearest surface point, at points (P, 3)."""
    points = np.asarray(points, np.float64)
    if shape.analytic is not None:
        sdf = shape.analytic(points)
        return sdf, procedural_colour(project_to_surface(shape.analytic, points))
    if shape.is_point_cloud:  # distance to the nearest point, sign from its normal: approximate
        from scipy.spatial import cKDTree

        dist, idx = cKDTree(shape.points).query(points)
        side = np.sign(((points - shape.points[idx]) * shape.normals[idx]).sum(-1))
        return dist * np.where(side == 0, 1.0, side), procedural_colour(shape.points[idx])
    nearest, face, bary = closest_surface_point(shape, points)
    dist = np.linalg.norm(points - nearest, axis=-1)
    inside = winding_number(points, shape.vertices, shape.faces) > 0.5
    return np.where(inside, -dist, dist), surface_colour(shape, nearest, face, bary)


def sample_surface(shape: Shape, count: int, rng: np.random.Generator):
    """Points on the surface (count, 3), their outward normals and colours (area-weighted for meshes)."""
    if shape.is_point_cloud:
        idx = rng.integers(0, len(shape.points), count)
        return shape.points[idx], shape.normals[idx], procedural_colour(shape.points[idx])
    tri = shape.vertices[shape.faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(normals, axis=-1)
    face = rng.choice(len(tri), size=count, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    bary = np.stack([1 - r1, r1 * (1 - r2), r1 * r2], -1)
    points = (tri[face] * bary[..., None]).sum(1)
    if shape.analytic is not None:  # exactly on the analytic surface, with its exact normal
        points = project_to_surface(shape.analytic, points)
        grad = sdf_gradient(shape.analytic, points)
        return points, grad / np.linalg.norm(grad, axis=-1, keepdims=True), procedural_colour(points)
    return points, normals[face] / np.maximum(area[face, None], 1e-20), surface_colour(shape, points, face, bary)
