"""The differentiable path for fitting: images with gradients w.r.t. vertex positions and per-vertex albedo.

Visibility is discrete: the fast rasterizer decides which triangle covers each pixel (no gradient). Everything
after that is torch: barycentrics are recomputed from the projected vertices at the fixed pixel centres, so that
moving a vertex moves the surface point, its normal and its shading at every pixel its triangles cover. Gradients
of silhouettes (pixels changing triangle) are not modelled; fitting losses should rely on interior shading.

`shade_torch` is the same shading model as `egoface.render.shading.shade` (see that module), batched.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from egoface.render.cameras import Camera
from egoface.render.raster import Fragments, check_triangles, rasterize
from egoface.render.shading import DEFAULT_SHININESS, PointLight, pack_lights, vertex_normals

__all__ = [
    "barycentrics_from_triangle_ids",
    "interpolate_vertex_attributes",
    "render_differentiable",
    "shade_torch",
]


def _batched_ids(triangle_id: object, batch: int) -> torch.Tensor:
    ids = torch.as_tensor(np.asarray(triangle_id) if isinstance(triangle_id, np.ndarray) else triangle_id)
    if ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise TypeError(f"triangle_id must be an integer array, got {ids.dtype}")
    if ids.ndim == 2:
        ids = ids.expand(batch, *ids.shape)
    if ids.ndim != 3 or ids.shape[0] != batch:
        raise ValueError(f"triangle_id must have shape (H, W) or ({batch}, H, W), got {tuple(ids.shape)}")
    return ids.long()


def _corner_ids(ids: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """ids (B, H, W) -> vertex ids (B, H, W, 3) of each pixel's triangle (triangle 0 on background)."""
    if ids.numel() and int(ids.max()) >= triangles.shape[0]:
        raise ValueError(f"triangle_id refers to triangle {int(ids.max())} but only {triangles.shape[0]} exist")
    if ids.numel() and int(ids.min()) < -1:
        raise ValueError(f"triangle_id must be >= -1 (background), got {int(ids.min())}")
    return triangles[ids.clamp(min=0)]


def _gather_corners(values: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """values (B, V, C), corners (B, H, W, 3) -> (B, H, W, 3, C)."""
    batch, height, width, _ = corners.shape
    flat = corners.reshape(batch, -1)  # (B, H*W*3)
    gathered = torch.gather(values, 1, flat[..., None].expand(-1, -1, values.shape[-1]))
    return gathered.reshape(batch, height, width, 3, values.shape[-1])


def _triangles_tensor(triangles: object, num_vertices: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(check_triangles(triangles, num_vertices).astype(np.int64)).to(device)


def barycentrics_from_triangle_ids(triangle_id: object, pixels: torch.Tensor, triangles: object) -> torch.Tensor:
    """Screen-space barycentrics of every pixel centre in its (fixed) triangle, differentiable w.r.t. `pixels`.

    triangle_id: (H, W) or (B, H, W) int, -1 = background; pixels: (B, V, 2) projected vertices;
    triangles: (T, 3) -> (B, H, W, 3), zero on background. Same formulas as the rasterizer's edge functions.
    """
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 3 or pixels.shape[-1] != 2:
        raise ValueError(f"pixels must be a torch tensor of shape (B, V, 2), got {getattr(pixels, 'shape', pixels)}")
    ids = _batched_ids(triangle_id, pixels.shape[0]).to(pixels.device)
    corners = _corner_ids(ids, _triangles_tensor(triangles, pixels.shape[1], pixels.device))
    a, b, c = _gather_corners(pixels, corners).unbind(-2)  # each (B, H, W, 2)
    height, width = ids.shape[1:]
    y, x = torch.meshgrid(
        torch.arange(height, dtype=pixels.dtype, device=pixels.device),
        torch.arange(width, dtype=pixels.dtype, device=pixels.device),
        indexing="ij",
    )
    area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
    covered = ids >= 0
    area = torch.where(covered & (area != 0), area, torch.ones_like(area))
    b0 = ((c[..., 0] - b[..., 0]) * (y - b[..., 1]) - (c[..., 1] - b[..., 1]) * (x - b[..., 0])) / area
    b1 = ((a[..., 0] - c[..., 0]) * (y - c[..., 1]) - (a[..., 1] - c[..., 1]) * (x - c[..., 0])) / area
    b2 = ((b[..., 0] - a[..., 0]) * (y - a[..., 1]) - (b[..., 1] - a[..., 1]) * (x - a[..., 0])) / area
    return torch.stack((b0, b1, b2), dim=-1) * covered[..., None]


def interpolate_vertex_attributes(
    triangle_id: object, barycentrics: torch.Tensor, attributes: torch.Tensor, triangles: object
) -> torch.Tensor:
    """triangle_id: (H, W) or (B, H, W); barycentrics: (B, H, W, 3); attributes: (B, V, C) -> (B, H, W, C),
    zero on background."""
    if attributes.ndim != 3:
        raise ValueError(f"attributes must have shape (B, V, C), got {tuple(attributes.shape)}")
    batch = attributes.shape[0]
    if barycentrics.ndim != 4 or barycentrics.shape[0] != batch or barycentrics.shape[-1] != 3:
        raise ValueError(f"barycentrics must have shape ({batch}, H, W, 3), got {tuple(barycentrics.shape)}")
    ids = _batched_ids(triangle_id, batch).to(attributes.device)
    corners = _corner_ids(ids, _triangles_tensor(triangles, attributes.shape[1], attributes.device))
    values = _gather_corners(attributes, corners)  # (B, H, W, 3, C)
    weights = barycentrics.to(attributes.dtype) * (ids >= 0)[..., None]
    return torch.einsum("bhwk,bhwkc->bhwc", weights, values)


def _per_vertex_batch(name: str, value: object, batch: int, num_vertices: int, like: torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tensor.ndim == 1:
        tensor = tensor.expand(batch, -1)
    if tensor.shape != (batch, num_vertices):
        raise ValueError(
            f"{name} must have shape ({num_vertices},) or ({batch}, {num_vertices}), got {tuple(tensor.shape)}"
        )
    return tensor


def shade_torch(
    triangle_id: object,
    barycentrics: torch.Tensor,
    vertices: torch.Tensor,
    triangles: object,
    normals: torch.Tensor,
    albedo: object,
    specular: object,
    lights: Sequence[PointLight],
    camera_center: object,
    ambient: float = 0.02,
    shininess: float = DEFAULT_SHININESS,
) -> torch.Tensor:
    """The shading model of `egoface.render.shading` in torch, batched and differentiable.

    triangle_id: (H, W) or (B, H, W); barycentrics: (B, H, W, 3); vertices, normals: (B, V, 3) mm world;
    albedo, specular: (V,) or (B, V); camera_center: (3,) mm world -> (B, H, W) radiance.
    """
    if vertices.ndim != 3 or vertices.shape[-1] != 3 or normals.shape != vertices.shape:
        raise ValueError(
            f"vertices and normals must both have shape (B, V, 3), got {tuple(vertices.shape)}, {tuple(normals.shape)}"
        )
    if not bool(torch.isfinite(vertices).all()):
        raise ValueError("vertices contain NaN or infinite coordinates")
    batch, num_vertices, _ = vertices.shape
    albedo_t = _per_vertex_batch("albedo", albedo, batch, num_vertices, vertices)
    specular_t = _per_vertex_batch("specular", specular, batch, num_vertices, vertices)
    attributes = torch.cat((vertices, normals, albedo_t[..., None], specular_t[..., None]), dim=-1)
    surface = interpolate_vertex_attributes(triangle_id, barycentrics, attributes, triangles)
    point, normal, surface_albedo, surface_specular = surface.split((3, 3, 1, 1), dim=-1)
    normal = torch.nn.functional.normalize(normal, dim=-1, eps=1e-12)
    center = torch.as_tensor(np.asarray(camera_center, dtype=np.float64), dtype=vertices.dtype)
    to_camera = torch.nn.functional.normalize(center - point, dim=-1, eps=1e-12)
    positions, params = (torch.as_tensor(array, dtype=vertices.dtype) for array in pack_lights(lights))
    radiance = ambient * surface_albedo[..., 0]
    for position, (intensity, beam_x, beam_y, beam_z, exponent) in zip(positions, params, strict=True):
        to_light = position - point
        distance2 = (to_light * to_light).sum(-1).clamp(min=1e-24)
        to_light = to_light / distance2.sqrt()[..., None]
        irradiance = intensity / distance2
        if exponent > 0:
            cos_beam = -(to_light * torch.stack((beam_x, beam_y, beam_z))).sum(-1)
            irradiance = irradiance * cos_beam.clamp(min=0) ** exponent
        n_dot_l = (normal * to_light).sum(-1)
        n_dot_h = (normal * torch.nn.functional.normalize(to_light + to_camera, dim=-1, eps=1e-12)).sum(-1)
        reflected = surface_albedo[..., 0] * n_dot_l + surface_specular[..., 0] * n_dot_h.clamp(min=0) ** shininess
        radiance = radiance + torch.where(n_dot_l > 0, irradiance * reflected, torch.zeros_like(reflected))
    ids = _batched_ids(triangle_id, batch).to(vertices.device)
    return radiance * (ids >= 0)


def render_differentiable(
    vertices: torch.Tensor,
    triangles: object,
    albedo: object,
    specular: object,
    camera: Camera,
    lights: Sequence[PointLight],
    ambient: float = 0.02,
    fragments: Fragments | Sequence[Fragments] | None = None,
    shininess: float = DEFAULT_SHININESS,
) -> torch.Tensor:
    """vertices: (B, V, 3) mm world; triangles: (T, 3); albedo, specular: (V,) or (B, V) -> (B, H, W) image.

    Visibility comes from `fragments` (one for all, or one per batch item) or, when None, from the fast rasterizer
    on the detached projection; shading is `shade_torch`, differentiable w.r.t. vertices and albedo.
    """
    if not isinstance(vertices, torch.Tensor) or vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be a torch tensor of shape (B, V, 3), got {getattr(vertices, 'shape', None)}")
    batch = vertices.shape[0]
    triangles_a = check_triangles(triangles, vertices.shape[1])
    projection = camera.project(vertices)
    if fragments is None:
        fragments = [
            rasterize(pixels.detach().cpu().numpy(), depth.detach().cpu().numpy(), valid.cpu().numpy(), triangles_a,
                      camera.width, camera.height)
            for pixels, depth, valid in zip(projection.pixels, projection.depth, projection.valid, strict=True)
        ]  # fmt: skip
    if isinstance(fragments, Fragments):
        fragments = [fragments]
    if len(fragments) not in (1, batch):
        raise ValueError(f"fragments must be one Fragments or {batch} (one per batch item), got {len(fragments)}")
    ids = torch.stack([torch.from_numpy(f.triangle_id) for f in fragments]).to(vertices.device)
    if ids.shape[1:] != (camera.height, camera.width):
        raise ValueError(f"fragments are {tuple(ids.shape[1:])} but the camera is ({camera.height}, {camera.width})")
    ids = ids.expand(batch, -1, -1)
    barycentrics = barycentrics_from_triangle_ids(ids, projection.pixels, triangles_a)
    normals = vertex_normals(vertices, triangles_a)
    return shade_torch(
        ids, barycentrics, vertices, triangles_a, normals, albedo, specular, lights, camera.center, ambient, shininess
    )
