"""Render benchmark: shaded 192 x 192 fisheye views per second of the default face, fast path vs reference.

One view = project vertices + rasterize + vertex normals + shade (`render_view`); the reference view is
`render_view_reference` (reference rasterizer + torch normals + `shade_torch`). Numba compiles each kernel once per
process (or loads it from its on-disk cache): `benchmark_render` renders one untimed warm-up view of each path
before timing, so compilation never falls in the timed region. Each view is timed on its own; the figures are the
medians.

The scene is a headset mouth camera: an equidistant fisheye (150 deg across the image) 40 mm from the mouth,
below and in front of it, looking up at the lower face, with two LEDs beside it. The mesh is the procedural
default face when `egoface.face.procedural` is importable, else a stand-in of similar size: an ellipsoidal head
(a 120 x 139 UV sphere: 16,543 vertices, 33,082 triangles) with a nose-like bump.
"""

from __future__ import annotations

import importlib
import statistics
import time
from typing import Any

import numba
import numpy as np

from egoface.render.cameras import Camera, fisheye_for_fov
from egoface.render.scene import Mesh, default_face_lights, render_view, render_view_reference, uv_sphere

__all__ = ["benchmark_render", "default_benchmark_mesh", "mouth_camera"]

#: Albedo and specular strength of the benchmark face: skin, and the eyeballs (cornea glints) when named.
_SKIN_ALBEDO, _SKIN_SPECULAR, _EYE_SPECULAR = 0.6, 0.05, 1.0


def default_benchmark_mesh() -> tuple[Mesh, np.ndarray, str]:
    """-> (mesh, mouth position (3,) mm, description): the procedural default face if importable, else the
    stand-in head documented in the module docstring."""
    try:  # the default face is optional here: render must not require it
        model = importlib.import_module("egoface.face.procedural").ProceduralFaceModel()
    except (ImportError, AttributeError):
        return _stand_in_head()
    vertices = model().vertices[0].detach().cpu().numpy()
    specular = np.full(len(vertices), _SKIN_SPECULAR, np.float32)
    specular[model.topology.regions.get("eyeballs", [])] = _EYE_SPECULAR
    lips = model.topology.lip_pairs
    mouth = (vertices[lips.upper_center] + vertices[lips.lower_center]) / 2.0
    albedo = np.full(len(vertices), _SKIN_ALBEDO, np.float32)
    return Mesh(vertices, model.triangles, albedo, specular), mouth, "procedural default face"


def _stand_in_head() -> tuple[Mesh, np.ndarray, str]:
    head = uv_sphere((75.0, 110.0, 95.0), rings=120, segments=139, center=(0.0, -20.0, -80.0))
    vertices = head.vertices.astype(np.float64)
    # A nose: push the front of the face out around (0, -35) by up to 20 mm.
    nose = np.exp(-((vertices[:, 0] / 12.0) ** 2 + ((vertices[:, 1] + 35.0) / 20.0) ** 2)) * (vertices[:, 2] > 0)
    vertices[:, 2] += 20.0 * nose
    mesh = Mesh.uniform(vertices, head.triangles, _SKIN_ALBEDO, _SKIN_SPECULAR)
    front = vertices[(np.abs(vertices[:, 0]) < 3.0) & (np.abs(vertices[:, 1] + 70.0) < 3.0), 2].max()
    return mesh, np.array([0.0, -70.0, front]), "stand-in ellipsoid head (egoface.face.procedural not importable)"


def mouth_camera(mouth: object, size: int = 192, fov_deg: float = 150.0, distance_mm: float = 40.0) -> Camera:
    """A headset mouth camera: fisheye `size` x `size`, `distance_mm` from `mouth` (3,) mm, 35 deg below the
    horizontal in front of it, looking at it."""
    mouth_v = np.asarray(mouth, dtype=np.float64)
    elevation = np.radians(-35.0)
    position = mouth_v + distance_mm * np.array([0.0, np.sin(elevation), np.cos(elevation)])
    return Camera.look_at(position, mouth_v, lens=fisheye_for_fov(size, size, fov_deg), width=size, height=size)


def benchmark_render(mesh: Mesh | None = None, repeats: int = 50, reference_repeats: int = 3) -> dict[str, Any]:
    """Time the fast and reference render paths on the mouth-camera view (module docstring).

    mesh: None = the default face (or the stand-in); a given mesh is viewed by `mouth_camera` aimed at the centre of
    its lowest-third, most-forward vertices. repeats / reference_repeats: views timed one by one on each path.
    Returns {views_per_second, reference_views_per_second, speedup} (medians) plus `stage_ms` (median ms per
    stage of the fast path), `vertices`, `triangles`, `mesh`, `numba_threads`, `coverage` (fraction of pixels hit).
    """
    if repeats < 1 or reference_repeats < 1:
        raise ValueError(f"repeats and reference_repeats must be >= 1, got {repeats}, {reference_repeats}")
    if mesh is None:
        mesh, mouth, description = default_benchmark_mesh()
    else:
        if not isinstance(mesh, Mesh):
            raise TypeError(f"mesh must be a Mesh or None, got {type(mesh).__name__}")
        mouth, description = _lower_front(mesh.vertices), "given mesh"
    camera = mouth_camera(mouth)
    lights = default_face_lights(camera)

    image = render_view(mesh, camera, lights)  # warm-up: numba compiles or loads its cache here, untimed
    render_view_reference(mesh, camera, lights)

    view_seconds: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(repeats):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        render_view(mesh, camera, lights, timings=timings)
        view_seconds.append(time.perf_counter() - start)
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds)
    reference_seconds = []
    for _ in range(reference_repeats):
        start = time.perf_counter()
        render_view_reference(mesh, camera, lights)
        reference_seconds.append(time.perf_counter() - start)

    fast = 1.0 / statistics.median(view_seconds)
    reference = 1.0 / statistics.median(reference_seconds)
    return {
        "views_per_second": fast,
        "reference_views_per_second": reference,
        "speedup": fast / reference,
        "stage_ms": {stage: 1e3 * statistics.median(values) for stage, values in stages.items()},
        "vertices": mesh.num_vertices,
        "triangles": int(mesh.triangles.shape[0]),
        "mesh": description,
        "numba_threads": numba.get_num_threads(),
        "coverage": float((image > 0).mean()),
    }


def _lower_front(vertices: np.ndarray) -> np.ndarray:
    """A mouth-like aim point for an arbitrary mesh: the centre of its lowest-third, most-forward vertices."""
    low = vertices[:, 1] <= np.quantile(vertices[:, 1], 1 / 3)
    front = low & (vertices[:, 2] >= np.quantile(vertices[low, 2], 0.9))
    return vertices[front].mean(axis=0).astype(np.float64)
