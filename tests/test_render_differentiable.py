"""Differentiable path: recomputed barycentrics and interpolation known values, gradients w.r.t. vertex positions
and albedo against finite differences (float64, pixels away from triangle edges), agreement with the fast path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egoface.render.cameras import Camera, PinholeLens
from egoface.render.differentiable import (
    barycentrics_from_triangle_ids,
    interpolate_vertex_attributes,
    render_differentiable,
)
from egoface.render.raster import rasterize
from egoface.render.scene import plane_grid, render_view
from egoface.render.shading import Beam, PointLight

SIZE = 20


def _bumpy_scene() -> tuple[torch.Tensor, np.ndarray, torch.Tensor, torch.Tensor, Camera, list[PointLight]]:
    """A 4 x 4-cell plane with a bump, slightly tilted camera, two LEDs (one with a beam), some specular."""
    plane = plane_grid(40.0, 40.0, 4, 4)
    vertices = plane.vertices.astype(np.float64)
    vertices[:, 2] += 6.0 * np.exp(-(vertices[:, 0] ** 2 + vertices[:, 1] ** 2) / 200.0)
    rng = np.random.default_rng(1)
    albedo = torch.tensor(rng.uniform(0.3, 0.9, plane.num_vertices))
    specular = torch.tensor(rng.uniform(0.0, 0.5, plane.num_vertices))
    lens = PinholeLens(18.0, 18.0, (SIZE - 1) / 2, (SIZE - 1) / 2)
    camera = Camera.look_at([5.0, -8.0, 45.0], [0.0, 0.0, 0.0], lens=lens, width=SIZE, height=SIZE)
    lights = [
        PointLight([12.0, -6.0, 35.0], 900.0, Beam([-0.3, 0.1, -1.0], 45.0)),
        PointLight([-10.0, 0.0, 30.0], 600.0),
    ]
    return torch.tensor(vertices)[None], plane.triangles, albedo, specular, camera, lights


def _fixed_fragments_and_interior(vertices: torch.Tensor, triangles: np.ndarray, camera: Camera):
    projection = camera.project(vertices[0].numpy())
    fragments = rasterize(projection.pixels, projection.depth, projection.valid, triangles, SIZE, SIZE)
    interior = torch.from_numpy(fragments.mask & (fragments.barycentrics.min(axis=-1) > 0.05))
    return fragments, interior


def test_recomputed_barycentrics_match_the_rasterizer_and_interpolate_pixel_positions() -> None:
    vertices, triangles, _, _, camera, _ = _bumpy_scene()
    fragments, _ = _fixed_fragments_and_interior(vertices, triangles, camera)
    pixels = camera.project(vertices).pixels  # (1, V, 2)
    barycentrics = barycentrics_from_triangle_ids(fragments.triangle_id, pixels, triangles)
    np.testing.assert_allclose(barycentrics[0].numpy(), fragments.barycentrics, atol=1e-5)
    # Interpolating the vertices' own pixel coordinates gives back each covered pixel's centre (known value).
    centres = interpolate_vertex_attributes(fragments.triangle_id, barycentrics, pixels, triangles)[0]
    y, x = np.nonzero(fragments.mask)
    np.testing.assert_allclose(centres[y, x].numpy(), np.stack((x, y), -1), atol=1e-9)
    assert (centres[~torch.from_numpy(fragments.mask)] == 0).all()


def test_image_gradients_match_finite_differences() -> None:
    vertices, triangles, albedo, specular, camera, lights = _bumpy_scene()
    fragments, interior = _fixed_fragments_and_interior(vertices, triangles, camera)
    assert interior.sum() > 100

    def image_of(vertices_: torch.Tensor, albedo_: torch.Tensor) -> torch.Tensor:
        image = render_differentiable(vertices_, triangles, albedo_, specular, camera, lights, 0.03, fragments, 20.0)
        return image[0][interior]

    inputs = (vertices.clone().requires_grad_(True), albedo.clone().requires_grad_(True))
    assert torch.autograd.gradcheck(image_of, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    image_of(*inputs).sum().backward()
    assert inputs[0].grad is not None and inputs[0].grad.abs().sum() > 0  # gradients really reach the vertices
    assert inputs[1].grad is not None and inputs[1].grad.abs().sum() > 0


def test_render_differentiable_matches_the_fast_path_and_batches() -> None:
    from egoface.render.scene import Mesh

    vertices, triangles, albedo, specular, camera, lights = _bumpy_scene()
    mesh = Mesh(vertices[0].numpy(), triangles, albedo.numpy(), specular.numpy())
    fast = render_view(mesh, camera, lights, ambient=0.03, shininess=20.0)
    batch = torch.cat((vertices, vertices + torch.tensor([0.0, 0.0, -5.0], dtype=torch.float64)))
    images = render_differentiable(batch, triangles, albedo, specular, camera, lights, 0.03, shininess=20.0)
    assert images.shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(images[0].numpy(), fast, atol=1e-5)
    assert not torch.equal(images[0], images[1])  # the second face is further away: rasterized on its own


def test_differentiable_input_errors_are_clear() -> None:
    vertices, triangles, albedo, specular, camera, lights = _bumpy_scene()
    with pytest.raises(ValueError, match=r"\(B, V, 3\)"):
        render_differentiable(vertices[0], triangles, albedo, specular, camera, lights)
    with pytest.raises(ValueError, match=r"albedo must have shape \(25,\)"):
        render_differentiable(vertices, triangles, albedo[:3], specular, camera, lights)
    bad_ids = np.full((SIZE, SIZE), 999, np.int32)
    pixels = camera.project(vertices).pixels
    with pytest.raises(ValueError, match="only 32 exist"):
        barycentrics_from_triangle_ids(bad_ids, pixels, triangles)
    nan_vertices = vertices.clone()
    nan_vertices[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        render_differentiable(nan_vertices, triangles, albedo, specular, camera, lights)
