"""Shading: Fragments + per-vertex surface properties + near-field lights -> a float radiance image.

The IR shading model (one definition, implemented twice: the numba `shade` here and `shade_torch` in
`egoface.render.differentiable`, tested to agree):

    radiance = ambient * albedo
             + sum over lights of  E * (albedo * max(n.l, 0) + [n.l > 0] * specular * max(n.h, 0) ** shininess)
    E = intensity * beam(l) / d**2

with p the surface point, n its interpolated unit normal, l the unit vector from p to the light at distance d, v the
unit vector from p to the camera and h = normalize(l + v) (Blinn-Phong). `intensity` is the irradiance the light
gives on-axis at 1 mm, so a surface facing a light 40 mm away receives intensity / 1600. `beam(l)` is 1 for an
isotropic light or cos(angle off the LED axis) ** m for a `Beam` (m from its half-intensity angle). A high
`specular` on the cornea makes the glints of the headset's IR LEDs. Background pixels are 0.

The numba kernel is the exact model, not an approximation of it: it interpolates in float64 and evaluates the
per-light terms in float32 SIMD loops (relative error ~1e-7 typical, ~1e-4 on the sharpest glints); the agreement
with the float64 torch path is tested at 1e-5.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from numba import njit, prange

from egoface.render.raster import Fragments, check_triangles

__all__ = ["DEFAULT_SHININESS", "Beam", "PointLight", "shade", "vertex_normals"]

_ZERO32, _ONE32, _TINY32 = np.float32(0.0), np.float32(1.0), np.float32(1e-24)

#: Blinn-Phong exponent used when none is given: a fairly sharp highlight, as on the wet cornea.
DEFAULT_SHININESS = 64.0

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _unit_vector(name: str, value: object) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float64)
    if vector.shape != (3,) or not np.isfinite(vector).all() or np.linalg.norm(vector) == 0:
        raise ValueError(f"{name} must be a finite non-zero (3,) vector, got {value!r}")
    return vector / np.linalg.norm(vector)


@dataclass(frozen=True)
class Beam:
    """An LED's radiation pattern: intensity falls as cos(angle off `direction`) ** exponent, halving at
    `half_angle_deg` off-axis (60 deg = a Lambertian emitter)."""

    direction: np.ndarray
    half_angle_deg: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", _unit_vector("beam direction", self.direction))
        if not 0.0 < self.half_angle_deg < 90.0:
            raise ValueError(f"half_angle_deg must be in (0, 90), got {self.half_angle_deg}")

    @functools.cached_property
    def exponent(self) -> float:
        exponent = math.log(0.5) / math.log(math.cos(math.radians(self.half_angle_deg)))
        # Snap to whole numbers (60 deg gives 1.0000000000000002): the shader raises whole powers much faster.
        return float(round(exponent)) if abs(exponent - round(exponent)) < 1e-9 else exponent


@dataclass(frozen=True)
class PointLight:
    """A near-field point light (an IR LED) at `position` (3,) mm; `intensity` = on-axis irradiance at 1 mm
    (falls off with the inverse square of the distance); `beam` = its radiation pattern, None = isotropic."""

    position: np.ndarray
    intensity: float
    beam: Beam | None = None

    def __post_init__(self) -> None:
        position = np.asarray(self.position, dtype=np.float64)
        if position.shape != (3,) or not np.isfinite(position).all():
            raise ValueError(f"light position must be a finite (3,) vector in mm, got {self.position!r}")
        if not (math.isfinite(self.intensity) and self.intensity >= 0):
            raise ValueError(f"light intensity must be finite and >= 0, got {self.intensity}")
        if self.beam is not None and not isinstance(self.beam, Beam):
            raise TypeError(f"beam must be a Beam or None, got {type(self.beam).__name__}")
        object.__setattr__(self, "position", position)


def pack_lights(lights: Sequence[PointLight]) -> tuple[np.ndarray, np.ndarray]:
    """lights -> positions (L, 3) and (L, 5) [intensity, beam direction xyz, beam exponent (0 = isotropic)]."""
    if isinstance(lights, PointLight) or not all(isinstance(light, PointLight) for light in lights):
        raise TypeError("lights must be a sequence of PointLight")
    positions = np.zeros((len(lights), 3))
    params = np.zeros((len(lights), 5))
    for i, light in enumerate(lights):
        positions[i] = light.position
        params[i, 0] = light.intensity
        if light.beam is not None:
            params[i, 1:4] = light.beam.direction
            params[i, 4] = light.beam.exponent
    return positions, params


# ---------------------------------------------------------------------------------------------------------------
# Vertex normals
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _vertex_normals_kernel(vertices, triangles, normals):  # pragma: no cover - compiled
    normals[:] = 0.0
    for t in range(triangles.shape[0]):
        i0, i1, i2 = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        e1x = vertices[i1, 0] - vertices[i0, 0]
        e1y = vertices[i1, 1] - vertices[i0, 1]
        e1z = vertices[i1, 2] - vertices[i0, 2]
        e2x = vertices[i2, 0] - vertices[i0, 0]
        e2y = vertices[i2, 1] - vertices[i0, 1]
        e2z = vertices[i2, 2] - vertices[i0, 2]
        # The cross product's length is twice the triangle's area: area weighting comes for free.
        nx = e1y * e2z - e1z * e2y
        ny = e1z * e2x - e1x * e2z
        nz = e1x * e2y - e1y * e2x
        for i in (i0, i1, i2):
            normals[i, 0] += nx
            normals[i, 1] += ny
            normals[i, 2] += nz
    for v in range(normals.shape[0]):
        length = math.sqrt(normals[v, 0] ** 2 + normals[v, 1] ** 2 + normals[v, 2] ** 2)
        if length > 0.0:
            normals[v, 0] /= length
            normals[v, 1] /= length
            normals[v, 2] /= length


def _vertex_normals_torch(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    corners = vertices[..., triangles, :]  # (..., T, 3 corners, 3 xyz)
    face_normals = torch.linalg.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])
    summed = torch.zeros_like(vertices)
    for corner in range(3):
        summed = summed.index_add(-2, triangles[:, corner], face_normals)
    return torch.nn.functional.normalize(summed, dim=-1, eps=1e-12)


def vertex_normals(vertices: ArrayT, triangles: np.ndarray) -> ArrayT:
    """Area-weighted unit vertex normals (pointing out for counter-clockwise triangles); unused vertices get 0.

    vertices: numpy (V, 3) mm (numba) or torch (..., V, 3) (differentiable); triangles: (T, 3) int.
    Returns the same kind and shape as `vertices` (numpy: float32 when the input is float32, else float64).
    """
    if isinstance(vertices, torch.Tensor):
        if vertices.ndim < 2 or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must have shape (..., V, 3), got {tuple(vertices.shape)}")
        triangles_t = torch.from_numpy(check_triangles(triangles, vertices.shape[-2]).astype(np.int64))
        return _vertex_normals_torch(vertices, triangles_t.to(vertices.device))
    vertices_a = np.asarray(vertices)
    if vertices_a.ndim != 2 or vertices_a.shape[1] != 3 or not np.issubdtype(vertices_a.dtype, np.floating):
        raise ValueError(f"vertices must be a float array of shape (V, 3), got {vertices_a.dtype} {vertices_a.shape}")
    if not np.isfinite(vertices_a).all():
        raise ValueError("vertices contain NaN or infinite coordinates")
    triangles_a = check_triangles(triangles, vertices_a.shape[0])
    normals = np.empty(vertices_a.shape, np.float32 if vertices_a.dtype == np.float32 else np.float64)
    _vertex_normals_kernel(np.ascontiguousarray(vertices_a), triangles_a, normals)
    return normals


# ---------------------------------------------------------------------------------------------------------------
# Shading (numba)
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def _power_in_place(values, exponent, squares):  # pragma: no cover - compiled
    """values (N,) **= exponent for values >= 0; squares: scratch of at least N. A whole exponent (the usual
    shininess, the LED beams) is done by repeated squaring, one bit per pass over the array, so that every pass is a
    loop the compiler vectorizes: several times faster than the general `pow` that used to dominate the shading."""
    count = values.shape[0]
    whole = int(exponent)
    if whole != exponent or whole > 1024:
        for i in range(count):
            values[i] = values[i] ** exponent
        return
    if whole == 1:
        return
    for i in range(count):
        squares[i] = values[i]
        values[i] = 1.0
    while whole:
        if whole & 1:
            for i in range(count):
                values[i] *= squares[i]
        whole >>= 1
        if whole:
            for i in range(count):
                squares[i] *= squares[i]


#: Blocks of image rows shaded as parallel tasks, each with its own scratch arrays (allocated once per block).
_SHADE_BLOCKS = 16


@njit(cache=True, parallel=True, error_model="numpy")
def _shade_kernel(
    triangle_id, barycentrics, vertices, triangles, normals, albedo, specular,
    light_positions, light_params, camera_center, ambient, shininess, image,
):  # fmt: skip  # pragma: no cover - compiled
    """Blocks of rows in parallel, one row at a time. A row's covered pixels are gathered into contiguous arrays
    first (surface point, unit normal, unit vector to the camera, albedo, specular; float64), then the per-light
    terms of all of them are computed with branch-free loops over the pixels, which the compiler turns into SIMD
    code, in float32 (twice the lanes; relative error ~1e-7 typical, ~1e-4 on the sharpest glints, far below an
    8-bit level) and summed in float64."""
    height, width = triangle_id.shape
    num_lights = light_positions.shape[0]
    # Blinn-Phong via the squared cosine: (n.h)**shininess = ((n.h')**2 / |h'|**2) ** (shininess / 2) for
    # h' = l + v unnormalized (n.h' > 0), which spares a square root per pixel and light.
    half_shininess = 0.5 * shininess
    light32 = light_positions.astype(np.float32)
    params32 = light_params.astype(np.float32)
    blocks = min(height, _SHADE_BLOCKS)
    for block in prange(blocks):
        columns = np.empty(width, np.int64)
        # surface: rows 0-2 point, 3-5 unit normal, 6-8 unit vector to the camera, 9 albedo, 10 specular
        surface = np.empty((11, width))
        points = np.empty((11, width), np.float32)
        # per light k and pixel i at [k * count + i]: n.l where lit (else 0), irradiance without the beam, cos off
        # the beam axis, then its power, (n.h)**2, then its power
        n_dot_l = np.empty(num_lights * width, np.float32)
        irradiance = np.empty(num_lights * width, np.float32)
        beam = np.empty(num_lights * width, np.float32)
        highlight = np.empty(num_lights * width, np.float32)
        squares = np.empty(num_lights * width, np.float32)
        radiance = np.empty(width)
        for y in range(block * height // blocks, (block + 1) * height // blocks):
            count = 0
            for x in range(width):
                if triangle_id[y, x] >= 0:
                    columns[count] = x
                    count += 1
                else:
                    image[y, x] = 0.0
            for i in range(count):  # interpolation (gathers from the mesh)
                x = columns[i]
                t = triangle_id[y, x]
                w0, w1, w2 = (
                    np.float64(barycentrics[y, x, 0]),
                    np.float64(barycentrics[y, x, 1]),
                    np.float64(barycentrics[y, x, 2]),
                )
                i0, i1, i2 = triangles[t, 0], triangles[t, 1], triangles[t, 2]
                for axis in range(3):
                    surface[axis, i] = w0 * vertices[i0, axis] + w1 * vertices[i1, axis] + w2 * vertices[i2, axis]
                    surface[3 + axis, i] = w0 * normals[i0, axis] + w1 * normals[i1, axis] + w2 * normals[i2, axis]
                surface[9, i] = w0 * albedo[i0] + w1 * albedo[i1] + w2 * albedo[i2]
                surface[10, i] = w0 * specular[i0] + w1 * specular[i1] + w2 * specular[i2]
            for i in range(count):  # normalization (vectorized)
                nx, ny, nz = surface[3, i], surface[4, i], surface[5, i]
                inv = 1.0 / max(math.sqrt(nx * nx + ny * ny + nz * nz), 1e-12)
                surface[3, i], surface[4, i], surface[5, i] = nx * inv, ny * inv, nz * inv
                vx, vy, vz = (
                    camera_center[0] - surface[0, i],
                    camera_center[1] - surface[1, i],
                    camera_center[2] - surface[2, i],
                )
                inv = 1.0 / max(math.sqrt(vx * vx + vy * vy + vz * vz), 1e-12)
                surface[6, i], surface[7, i], surface[8, i] = vx * inv, vy * inv, vz * inv
            for row in range(11):
                for i in range(count):
                    points[row, i] = surface[row, i]
            for k in range(num_lights):
                light_x, light_y, light_z = light32[k, 0], light32[k, 1], light32[k, 2]
                intensity, beam_x, beam_y, beam_z = params32[k, 0], params32[k, 1], params32[k, 2], params32[k, 3]
                offset = k * count
                for i in range(count):
                    lx = light_x - points[0, i]
                    ly = light_y - points[1, i]
                    lz = light_z - points[2, i]
                    distance2 = max(lx * lx + ly * ly + lz * lz, _TINY32)
                    distance = np.sqrt(distance2)
                    # h = (l + v) * distance: the half vector's direction without normalizing l first
                    hx = lx + distance * points[6, i]
                    hy = ly + distance * points[7, i]
                    hz = lz + distance * points[8, i]
                    length2 = max(hx * hx + hy * hy + hz * hz, _TINY32 * distance2)
                    # one division for 1 / distance2 and 1 / length2
                    inverse = _ONE32 / (distance2 * length2)
                    inv_distance2 = inverse * length2
                    inv_distance = distance * inv_distance2
                    cosine = (points[3, i] * lx + points[4, i] * ly + points[5, i] * lz) * inv_distance
                    n_dot_l[offset + i] = cosine if cosine > _ZERO32 else _ZERO32
                    irradiance[offset + i] = intensity * inv_distance2
                    cos_beam = -(lx * beam_x + ly * beam_y + lz * beam_z) * inv_distance
                    beam[offset + i] = cos_beam if cos_beam > _ZERO32 else _ZERO32
                    n_dot_h = points[3, i] * hx + points[4, i] * hy + points[5, i] * hz
                    highlight[offset + i] = n_dot_h * n_dot_h * (inverse * distance2) if n_dot_h > _ZERO32 else _ZERO32
            _power_in_place(highlight[: num_lights * count], half_shininess, squares)
            for i in range(count):
                radiance[i] = ambient * surface[9, i]
            for k in range(num_lights):
                offset = k * count
                if light_params[k, 4] > 0.0:
                    _power_in_place(beam[offset : offset + count], light_params[k, 4], squares)
                else:
                    beam[offset : offset + count] = 1.0
                for i in range(count):
                    j = offset + i
                    lit = irradiance[j] * beam[j] * (points[9, i] * n_dot_l[j] + points[10, i] * highlight[j])
                    radiance[i] += lit if n_dot_l[j] > 0.0 else 0.0
            for i in range(count):
                image[y, columns[i]] = radiance[i]


def _per_vertex(name: str, value: object, num_vertices: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (num_vertices,) or not np.isfinite(array).all():
        raise ValueError(f"{name} must be a finite array of shape ({num_vertices},), got shape {array.shape}")
    return array


def shade(
    fragments: Fragments,
    vertices: np.ndarray,
    triangles: np.ndarray,
    normals: np.ndarray,
    albedo: np.ndarray,
    specular: np.ndarray,
    lights: Sequence[PointLight],
    camera_center: np.ndarray,
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
) -> np.ndarray:
    """Shade rasterized fragments (numba) with the model in the module docstring.

    vertices: (V, 3) mm world (the ones that were rasterized); triangles: (T, 3); normals: (V, 3) unit;
    albedo: (V,) in [0, 1]; specular: (V,) >= 0; lights: PointLights; camera_center: (3,) mm world.
    Returns (H, W) float32 radiance.
    """
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments must be Fragments, got {type(fragments).__name__}")
    vertices_a = np.asarray(vertices, dtype=np.float64)
    if vertices_a.ndim != 2 or vertices_a.shape[1] != 3 or not np.isfinite(vertices_a).all():
        raise ValueError(f"vertices must be a finite array of shape (V, 3), got shape {vertices_a.shape}")
    num_vertices = vertices_a.shape[0]
    triangles_a = check_triangles(triangles, num_vertices)
    normals_a = np.asarray(normals, dtype=np.float64)
    if normals_a.shape != (num_vertices, 3) or not np.isfinite(normals_a).all():
        raise ValueError(f"normals must be a finite array of shape ({num_vertices}, 3), got shape {normals_a.shape}")
    albedo_a = _per_vertex("albedo", albedo, num_vertices)
    specular_a = _per_vertex("specular", specular, num_vertices)
    if fragments.triangle_id.size and fragments.triangle_id.max() >= triangles_a.shape[0]:
        raise ValueError(f"fragments refer to triangle {fragments.triangle_id.max()} but only {len(triangles_a)} exist")
    center = np.asarray(camera_center, dtype=np.float64)
    if center.shape != (3,) or not np.isfinite(center).all():
        raise ValueError(f"camera_center must be a finite (3,) vector in mm, got {camera_center!r}")
    if not (math.isfinite(ambient) and math.isfinite(shininess) and shininess > 0):
        raise ValueError(f"ambient must be finite and shininess > 0, got {ambient}, {shininess}")
    return _shade_fast(
        fragments, vertices_a, triangles_a, normals_a, albedo_a, specular_a, pack_lights(lights), center, ambient,
        shininess,
    )  # fmt: skip


def _shade_fast(
    fragments: Fragments,
    vertices: np.ndarray,
    triangles: np.ndarray,
    normals: np.ndarray,
    albedo: np.ndarray,
    specular: np.ndarray,
    packed_lights: tuple[np.ndarray, np.ndarray],
    camera_center: np.ndarray,
    ambient: float,
    shininess: float,
) -> np.ndarray:
    """`shade` without input checks (arrays already contiguous with the kernel's dtypes); packed_lights: the
    `pack_lights` arrays."""
    light_positions, light_params = packed_lights
    image = np.empty(fragments.triangle_id.shape, np.float32)
    _shade_kernel(
        fragments.triangle_id, fragments.barycentrics, vertices, triangles, normals, albedo, specular,
        light_positions, light_params, camera_center, float(ambient), float(shininess), image,
    )  # fmt: skip
    return image
