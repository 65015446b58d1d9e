"""Shading: vertex normals, Lambert and inverse-square known values, LED beams, specular at the mirror direction,
numba `shade` == torch `shade_torch`, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from egoface.render.cameras import Camera, PinholeLens
from egoface.render.differentiable import shade_torch
from egoface.render.raster import rasterize
from egoface.render.scene import Mesh, plane_grid, uv_sphere
from egoface.render.shading import Beam, PointLight, shade, vertex_normals


def _overhead_camera(size: int = 33, height_mm: float = 100.0) -> Camera:
    """A pinhole camera on +Z looking straight down at the XY plane; the origin is the centre pixel."""
    lens = PinholeLens(40.0, 40.0, (size - 1) / 2, (size - 1) / 2)
    return Camera.look_at([0.0, 0.0, height_mm], [0.0, 0.0, 0.0], lens=lens, width=size, height=size)


def _render_fast(mesh: Mesh, camera: Camera, lights: list[PointLight], ambient: float = 0.0) -> np.ndarray:
    projection = camera.project(mesh.vertices)
    fragments = rasterize(projection.pixels, projection.depth, projection.valid, mesh.triangles, camera.width,
                          camera.height)  # fmt: skip
    normals = vertex_normals(mesh.vertices, mesh.triangles)
    return shade(fragments, mesh.vertices, mesh.triangles, normals, mesh.albedo, mesh.specular, lights, camera.center,
                 ambient)  # fmt: skip


def test_vertex_normals_point_outward_and_torch_matches_numba() -> None:
    sphere = uv_sphere(10.0, rings=12, segments=20, center=(1.0, 2.0, 3.0))
    normals = vertex_normals(sphere.vertices, sphere.triangles)
    radial = sphere.vertices - [1.0, 2.0, 3.0]
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert (np.sum(normals * radial, axis=1) > 0.98).all()
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    torch_normals = vertex_normals(torch.from_numpy(sphere.vertices.astype(np.float64))[None], sphere.triangles)
    np.testing.assert_allclose(torch_normals[0].numpy(), normals, atol=1e-6)
    plane = plane_grid(10.0, 10.0, 3, 3)
    np.testing.assert_allclose(vertex_normals(plane.vertices, plane.triangles), np.tile([0.0, 0.0, 1.0], (16, 1)))


def test_lambert_with_inverse_square_falloff_known_values() -> None:
    plane = plane_grid(60.0, 60.0, 6, 6, albedo=0.8)
    camera = _overhead_camera()
    centre = (16, 16)
    at_d = _render_fast(plane, camera, [PointLight([0.0, 0.0, 20.0], 400.0)])[centre]
    at_2d = _render_fast(plane, camera, [PointLight([0.0, 0.0, 40.0], 400.0)])[centre]
    assert at_d == pytest.approx(0.8 * 400.0 / 20.0**2, rel=1e-5)  # albedo * intensity / d^2, head-on
    assert at_d / at_2d == pytest.approx(4.0, rel=1e-5)
    # Light 60 deg off the normal at the same distance: cos 60 = 1/2.
    slanted = PointLight([20.0 * math.sin(math.radians(60)), 0.0, 20.0 * math.cos(math.radians(60))], 400.0)
    assert _render_fast(plane, camera, [slanted])[centre] == pytest.approx(at_d / 2, rel=1e-5)
    # Ambient adds ambient * albedo; a light below the surface adds nothing.
    below = _render_fast(plane, camera, [PointLight([0.0, 0.0, -20.0], 400.0)], ambient=0.1)
    assert below[centre] == pytest.approx(0.08, rel=1e-6)


def test_led_beam_halves_at_its_half_angle() -> None:
    plane = plane_grid(60.0, 60.0, 6, 6, albedo=1.0)
    camera = _overhead_camera()
    position = [0.0, 0.0, 25.0]
    on_axis = Beam(direction=[0.0, 0.0, -1.0], half_angle_deg=30.0)
    aimed_off = Beam(direction=[math.sin(math.radians(30)), 0.0, -math.cos(math.radians(30))], half_angle_deg=30.0)
    full = _render_fast(plane, camera, [PointLight(position, 100.0, on_axis)])[16, 16]
    half = _render_fast(plane, camera, [PointLight(position, 100.0, aimed_off)])[16, 16]
    assert full == pytest.approx(100.0 / 25.0**2, rel=1e-5)
    assert half == pytest.approx(full / 2, rel=1e-5)


def test_specular_highlight_is_at_the_mirror_direction() -> None:
    """Camera and LED symmetric about the plane normal through (8, -4, 0): the glint is that point's pixel and its
    value is specular * intensity / d^2 (n.h = 1), on top of the diffuse term."""
    plane = plane_grid(120.0, 120.0, 60, 60, albedo=0.0, specular=0.7)
    mirror = np.array([8.0, -4.0, 0.0])
    lens = PinholeLens(40.0, 40.0, 32.0, 32.0)
    camera = Camera.look_at(mirror + [-30.0, 0.0, 50.0], mirror, lens=lens, width=65, height=65)
    light = PointLight(mirror + [30.0, 0.0, 50.0], 300.0)
    image = _render_fast(plane, camera, [light])
    brightest = np.unravel_index(np.argmax(image), image.shape)
    # Within a pixel: the 1/d^2 of the light shifts the maximum of the product slightly toward the light.
    assert abs(int(brightest[0]) - 32) <= 1 and abs(int(brightest[1]) - 32) <= 1
    distance2 = 30.0**2 + 50.0**2
    assert image[32, 32] == pytest.approx(0.7 * 300.0 / distance2, rel=1e-3)
    assert image[32, 20] < 0.5 * image[32, 32]  # the highlight is local


def test_shade_matches_shade_torch() -> None:
    rng = np.random.default_rng(3)
    sphere = uv_sphere(20.0, rings=16, segments=24, center=(0.0, 0.0, -10.0))
    mesh = Mesh(sphere.vertices, sphere.triangles, rng.uniform(0.2, 0.9, sphere.num_vertices),
                rng.uniform(0.0, 1.0, sphere.num_vertices))  # fmt: skip
    camera = Camera.look_at([15.0, -10.0, 60.0], [0.0, 0.0, -10.0], lens=PinholeLens(50.0, 50.0, 31.5, 31.5),
                            width=64, height=64)  # fmt: skip
    lights = [
        PointLight([25.0, 0.0, 40.0], 900.0, Beam([-0.4, 0.0, -1.0], 40.0)),
        PointLight([-20.0, 10.0, 30.0], 500.0),
    ]
    projection = camera.project(mesh.vertices)
    fragments = rasterize(projection.pixels, projection.depth, projection.valid, mesh.triangles, 64, 64)
    normals = vertex_normals(mesh.vertices, mesh.triangles)
    fast = shade(fragments, mesh.vertices, mesh.triangles, normals, mesh.albedo, mesh.specular, lights, camera.center,
                 0.05, shininess=30.0)  # fmt: skip
    reference = shade_torch(
        fragments.triangle_id, torch.from_numpy(fragments.barycentrics)[None].double(),
        torch.from_numpy(mesh.vertices)[None].double(), mesh.triangles, torch.from_numpy(normals)[None].double(),
        mesh.albedo, mesh.specular, lights, camera.center, 0.05, shininess=30.0,
    )[0].numpy()  # fmt: skip
    assert fragments.mask.mean() > 0.1 and fast.max() > 0.5
    np.testing.assert_allclose(fast, reference, atol=1e-5, rtol=1e-5)
    assert (fast[~fragments.mask] == 0).all()


def test_shade_input_errors_are_clear() -> None:
    plane = plane_grid(10.0, 10.0, 2, 2)
    camera = _overhead_camera()
    projection = camera.project(plane.vertices)
    fragments = rasterize(projection.pixels, projection.depth, projection.valid, plane.triangles, 33, 33)
    normals = vertex_normals(plane.vertices, plane.triangles)
    args = (plane.vertices, plane.triangles, normals, plane.albedo, plane.specular, [], camera.center)
    shade(fragments, *args)
    with pytest.raises(ValueError, match="only 2 exist"):
        shade(fragments, plane.vertices, plane.triangles[:2], *args[2:])
    with pytest.raises(ValueError, match=r"albedo must be .* \(9,\)"):
        shade(fragments, *args[:3], plane.albedo[:4], *args[4:])
    with pytest.raises(ValueError, match=r"vertices must be .*\(V, 3\)"):
        shade(fragments, np.full((9, 3), np.nan), *args[1:])
    with pytest.raises(TypeError, match="PointLight"):
        shade(fragments, *args[:5], PointLight([0, 0, 1], 1.0), camera.center)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        vertex_normals(np.full((9, 3), np.nan), plane.triangles)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        vertex_normals(plane.vertices[:4], plane.triangles)
    with pytest.raises(ValueError, match="half_angle_deg"):
        Beam([0.0, 0.0, 1.0], 95.0)
