"""Scenes: a renderable `Mesh`, the two end-to-end render paths, simple cameras, LEDs and synthetic meshes.

`render_view` is the fast path (project -> numba rasterize -> numba vertex normals -> numba shade);
`render_view_reference` is the slow one (project -> reference rasterizer -> torch normals -> `shade_torch`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from egoface.render.cameras import Camera, Projection, pinhole_for_fov
from egoface.render.differentiable import shade_torch
from egoface.render.raster import Fragments, _rasterize_fast, check_triangles, rasterize_reference
from egoface.render.shading import (
    DEFAULT_SHININESS,
    Beam,
    PointLight,
    _shade_fast,
    _vertex_normals_kernel,
    pack_lights,
    vertex_normals,
)

__all__ = [
    "Mesh",
    "RenderedView",
    "default_face_lights",
    "frontal_camera",
    "plane_grid",
    "render_scene",
    "render_scenes",
    "render_view",
    "render_view_reference",
    "render_view_with_lenses",
    "uv_sphere",
]


@dataclass(frozen=True)
class Mesh:
    """A renderable triangle mesh. vertices: (V, 3) float32 mm world; triangles: (T, 3) int32, counter-clockwise
    seen from outside; albedo: (V,) float32 in [0, 1]; specular: (V,) float32 >= 0 (Blinn-Phong strength).
    Scalars for albedo or specular are broadcast to every vertex."""

    vertices: np.ndarray
    triangles: np.ndarray
    albedo: np.ndarray
    specular: np.ndarray

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
        if not np.isfinite(vertices).all():
            raise ValueError("vertices contain NaN or infinite coordinates")
        num_vertices = vertices.shape[0]
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "triangles", check_triangles(self.triangles, num_vertices))
        for name in ("albedo", "specular"):
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.ndim > 1 or (value.ndim == 1 and value.shape != (num_vertices,)):
                raise ValueError(f"{name} must be a scalar or have shape ({num_vertices},), got {value.shape}")
            if not (np.isfinite(value).all() and (value >= 0).all()):
                raise ValueError(f"{name} must be finite and >= 0")
            object.__setattr__(self, name, np.broadcast_to(value, (num_vertices,)).copy())

    @classmethod
    def uniform(cls, vertices: object, triangles: object, albedo: float = 0.5, specular: float = 0.0) -> Mesh:
        """A mesh of one material (the same albedo and specular strength at every vertex)."""
        vertices_a = np.asarray(vertices)
        count = len(vertices_a)
        return cls(
            vertices_a, np.asarray(triangles), np.full(count, albedo, np.float32), np.full(count, specular, np.float32)
        )

    def with_vertices(self, vertices: np.ndarray) -> Mesh:
        """This mesh with its vertices moved to `vertices` (V, 3) mm, e.g. one frame of an animation: triangles and
        materials are shared, not copied or checked again; only the new positions are checked."""
        moved = np.ascontiguousarray(vertices, dtype=np.float32)
        if moved.shape != self.vertices.shape:
            raise ValueError(f"vertices must have shape {self.vertices.shape}, got {moved.shape}")
        if not np.isfinite(moved).all():
            raise ValueError("vertices contain NaN or infinite coordinates")
        mesh = copy.copy(self)
        object.__setattr__(mesh, "vertices", moved)
        return mesh

    def flat(self) -> Mesh:
        """The same surface with no vertex shared between triangles, so that vertex normals are face normals (flat
        shading; also keeps the two windings of a double-sided sheet from cancelling each other's normals)."""
        return Mesh(
            self.vertices[self.triangles].reshape(-1, 3),
            np.arange(3 * len(self.triangles), dtype=np.int32).reshape(-1, 3),
            self.albedo[self.triangles].reshape(-1),
            self.specular[self.triangles].reshape(-1),
        )

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @staticmethod
    def concatenate(meshes: Sequence[Mesh]) -> Mesh:
        """One mesh holding all of `meshes` (triangle ids offset accordingly)."""
        if not meshes:
            raise ValueError("concatenate needs at least one mesh")
        offsets = np.cumsum([0] + [mesh.num_vertices for mesh in meshes[:-1]])
        return Mesh(
            vertices=np.concatenate([mesh.vertices for mesh in meshes]),
            triangles=np.concatenate([mesh.triangles + offset for mesh, offset in zip(meshes, offsets, strict=True)]),
            albedo=np.concatenate([mesh.albedo for mesh in meshes]),
            specular=np.concatenate([mesh.specular for mesh in meshes]),
        )


def render_view(
    mesh: Mesh,
    camera: Camera,
    lights: Sequence[PointLight],
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
    timings: dict[str, float] | None = None,
) -> np.ndarray:
    """Render `mesh` seen by `camera` under `lights` with the fast path -> (H, W) float32 radiance.

    timings: if given, the seconds spent in each stage are added to it under `project`, `rasterize`, `normals`,
    `shade`.
    """
    clock = time.perf_counter()
    normals = _normals(mesh)
    if timings is not None:
        timings["normals"] = timings.get("normals", 0.0) + time.perf_counter() - clock
    return _render_fast(mesh, normals, camera, pack_lights(lights), ambient, shininess, timings)[0]


@dataclass(frozen=True)
class RenderedView:
    """One rendered view. radiance: (H, W) float32; fragments: the opaque surface's (triangle ids, barycentrics,
    depth in mm from the camera centre), e.g. to test whether a projected point is hidden; projection: the opaque
    mesh's vertices projected by the camera (numpy), e.g. to place keypoints that are mesh vertices."""

    radiance: np.ndarray
    fragments: Fragments
    projection: Projection[np.ndarray]


def render_scene(
    mesh: Mesh,
    camera: Camera,
    lights: Sequence[PointLight],
    lenses: Mesh | None = None,
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
    transmission: float = 0.9,
) -> RenderedView:
    """Opaque `mesh` seen through optional transparent `lenses` (glasses) with the fast path.

    Where a lens is in front of the opaque surface the pixel is `transmission` * what is behind plus the lens's own
    shading (flat-shaded, both sides; with albedo ~0 this is the LED glints on the glass).
    """
    return render_scenes(mesh, [camera], lights, lenses, ambient, shininess, transmission)[0]


def render_scenes(
    mesh: Mesh,
    cameras: Sequence[Camera],
    lights: Sequence[PointLight],
    lenses: Mesh | None = None,
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
    transmission: float = 0.9,
) -> list[RenderedView]:
    """`render_scene` for every camera of a rig at one instant, in the order of `cameras`: the vertex normals, the
    lenses' flat mesh and the lights are prepared once and shared by all cameras."""
    if not 0.0 <= transmission <= 1.0:
        raise ValueError(f"transmission must be in [0, 1], got {transmission}")
    packed_lights = pack_lights(lights)
    normals = _normals(mesh)
    glass = None if lenses is None else lenses.flat()
    glass_normals = None if glass is None else _normals(glass)
    views = []
    for camera in cameras:
        image, fragments, projection = _render_fast(mesh, normals, camera, packed_lights, ambient, shininess)
        if glass is not None and glass_normals is not None:
            glass_image, glass_fragments, _ = _render_fast(
                glass, glass_normals, camera, packed_lights, ambient, shininess, cull_backfaces=False
            )
            in_front = glass_fragments.depth < fragments.depth
            image = np.where(in_front, transmission * image + glass_image, image).astype(np.float32)
        views.append(RenderedView(radiance=image, fragments=fragments, projection=projection))
    return views


def render_view_with_lenses(
    mesh: Mesh,
    lenses: Mesh,
    camera: Camera,
    lights: Sequence[PointLight],
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
    transmission: float = 0.9,
) -> np.ndarray:
    """`render_scene(...).radiance`: opaque `mesh` seen through transparent `lenses` -> (H, W) float32."""
    return render_scene(mesh, camera, lights, lenses, ambient, shininess, transmission).radiance


def _normals(mesh: Mesh) -> np.ndarray:
    """(V, 3) float32 unit vertex normals of a (checked) mesh."""
    normals = np.empty_like(mesh.vertices)
    _vertex_normals_kernel(mesh.vertices, mesh.triangles, normals)
    return normals


def _render_fast(
    mesh: Mesh,
    normals: np.ndarray,
    camera: Camera,
    packed_lights: tuple[np.ndarray, np.ndarray],
    ambient: float,
    shininess: float,
    timings: dict[str, float] | None = None,
    cull_backfaces: bool = True,
) -> tuple[np.ndarray, Fragments, Projection[np.ndarray]]:
    """One view of `mesh` with its `normals` (`_normals`) under `pack_lights` arrays -> (radiance, fragments,
    projection of the vertices)."""
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        clock.append(time.perf_counter())
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + clock[-1] - clock[-2]

    projection = Projection(*(tensor.numpy() for tensor in camera.project_unchecked(torch.from_numpy(mesh.vertices))))
    lap("project")  # (a Mesh is checked already)
    fragments = _rasterize_fast(
        projection.pixels, projection.depth, projection.valid, mesh.triangles, camera.width, camera.height,
        cull_backfaces,
    )  # fmt: skip
    lap("rasterize")
    image = _shade_fast(
        fragments, mesh.vertices, mesh.triangles, normals, mesh.albedo, mesh.specular, packed_lights, camera.center,
        ambient, shininess,
    )  # fmt: skip
    lap("shade")
    return image, fragments, projection


def render_view_reference(
    mesh: Mesh,
    camera: Camera,
    lights: Sequence[PointLight],
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
) -> np.ndarray:
    """The slow path of `render_view`: reference rasterizer, torch normals and `shade_torch` (float64)."""
    projection = camera.project(mesh.vertices)
    fragments = rasterize_reference(
        projection.pixels, projection.depth, projection.valid, mesh.triangles, camera.width, camera.height
    )
    vertices = torch.from_numpy(mesh.vertices.astype(np.float64))[None]
    image = shade_torch(
        fragments.triangle_id, torch.from_numpy(fragments.barycentrics)[None], vertices, mesh.triangles,
        vertex_normals(vertices, mesh.triangles), mesh.albedo, mesh.specular, lights, camera.center, ambient,
        shininess,
    )  # fmt: skip
    return image[0].numpy().astype(np.float32)


def frontal_camera(width: int, height: int, distance_mm: float = 350.0, fov_deg: float = 40.0) -> Camera:
    """A pinhole camera on the head's +Z axis `distance_mm` in front of the face, looking at its centre (30 mm
    below the eyes) with the head upright; `fov_deg` horizontal."""
    if not distance_mm > 0:
        raise ValueError(f"distance_mm must be positive, got {distance_mm}")
    target = np.array([0.0, -30.0, 0.0])
    return Camera.look_at(
        target + [0.0, 0.0, distance_mm],
        target,
        lens=pinhole_for_fov(width, height, fov_deg),
        width=width,
        height=height,
    )


def default_face_lights(
    camera: Camera, spacing_mm: float = 12.0, intensity: float = 1600.0, half_angle_deg: float = 60.0
) -> list[PointLight]:
    """Two IR LEDs beside `camera`, `spacing_mm` apart along its image x axis, aimed along its optical axis.

    intensity: on-axis irradiance at 1 mm (the default gives 1.0 on a surface facing the LEDs 40 mm away).
    """
    right = camera.rotation[0]
    beam = Beam(camera.optical_axis, half_angle_deg)
    return [PointLight(camera.center + side * spacing_mm / 2.0 * right, intensity, beam) for side in (-1.0, 1.0)]


def uv_sphere(
    radius: float | Sequence[float],
    rings: int = 16,
    segments: int = 32,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    albedo: float = 0.5,
    specular: float = 0.0,
) -> Mesh:
    """A UV sphere (or ellipsoid for 3 radii, mm) with poles on +-Y: `rings` latitude bands, `segments` longitudes;
    (rings - 1) * segments + 2 vertices, 2 * segments * (rings - 1) triangles, counter-clockwise from outside."""
    if rings < 2 or segments < 3:
        raise ValueError(f"need rings >= 2 and segments >= 3, got {rings}, {segments}")
    polar = np.pi * np.arange(1, rings) / rings  # (rings - 1,) from the north pole down
    azimuth = 2 * np.pi * np.arange(segments) / segments  # 0 = +Z, increasing toward +X
    sin_polar = np.sin(polar)[:, None]
    unit = np.stack(
        (sin_polar * np.sin(azimuth), np.cos(polar)[:, None] * np.ones(segments), sin_polar * np.cos(azimuth)), -1
    ).reshape(-1, 3)
    unit = np.concatenate(([[0.0, 1.0, 0.0]], unit, [[0.0, -1.0, 0.0]]))
    north, south = 0, unit.shape[0] - 1

    def ring(i: int) -> np.ndarray:  # vertex ids of latitude ring i (0-based), in azimuth order
        return 1 + i * segments + np.arange(segments)

    triangles = []
    first, last = ring(0), ring(rings - 2)
    triangles.append(np.stack((np.full(segments, north), first, np.roll(first, -1)), -1))
    for i in range(rings - 2):
        top, bottom = ring(i), ring(i + 1)
        top_next, bottom_next = np.roll(top, -1), np.roll(bottom, -1)
        triangles.append(np.stack((top, bottom, bottom_next), -1))
        triangles.append(np.stack((top, bottom_next, top_next), -1))
    triangles.append(np.stack((last, np.full(segments, south), np.roll(last, -1)), -1))
    vertices = unit * np.asarray(radius, dtype=np.float64) + np.asarray(center, dtype=np.float64)
    return Mesh.uniform(vertices, np.concatenate(triangles), albedo, specular)


def plane_grid(
    width_mm: float,
    height_mm: float,
    columns: int,
    rows: int,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    albedo: float = 0.5,
    specular: float = 0.0,
) -> Mesh:
    """A flat rectangle in the XY plane facing +Z, split into `columns` x `rows` cells of two triangles each."""
    if columns < 1 or rows < 1:
        raise ValueError(f"need columns >= 1 and rows >= 1, got {columns}, {rows}")
    x = np.linspace(-width_mm / 2, width_mm / 2, columns + 1)
    y = np.linspace(height_mm / 2, -height_mm / 2, rows + 1)  # top row first
    grid_x, grid_y = np.meshgrid(x, y)
    vertices = np.stack((grid_x, grid_y, np.zeros_like(grid_x)), -1).reshape(-1, 3) + np.asarray(center, np.float64)
    ids = np.arange((rows + 1) * (columns + 1)).reshape(rows + 1, columns + 1)
    top_left, top_right = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel()
    bottom_left, bottom_right = ids[1:, :-1].ravel(), ids[1:, 1:].ravel()
    triangles = np.concatenate(
        (np.stack((top_left, bottom_left, bottom_right), -1), np.stack((top_left, bottom_right, top_right), -1))
    )
    return Mesh.uniform(vertices, triangles, albedo, specular)
