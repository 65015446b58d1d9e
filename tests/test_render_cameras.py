"""Cameras: known projections of the pinhole and fisheye lenses, validity, look-at frames, torch gradients, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from egoface.render.cameras import Camera, FisheyeLens, PinholeLens, fisheye_for_fov, pinhole_for_fov


def _identity_camera(lens: PinholeLens | FisheyeLens) -> Camera:
    return Camera(lens, 100, 80)


def _direction(theta_deg: float, phi_deg: float) -> np.ndarray:
    """Unit vector at angle theta off the optical axis (+Z), azimuth phi in the image plane."""
    theta, phi = math.radians(theta_deg), math.radians(phi_deg)
    return np.array([math.sin(theta) * math.cos(phi), math.sin(theta) * math.sin(phi), math.cos(theta)])


def test_pinhole_principal_point_and_known_pixels() -> None:
    camera = _identity_camera(PinholeLens(fx=50.0, fy=60.0, cx=49.5, cy=39.5))
    points = np.array([[0.0, 0.0, 100.0], [10.0, -20.0, 200.0]])
    projection = camera.project(points)
    np.testing.assert_allclose(projection.pixels[0], [49.5, 39.5])
    np.testing.assert_allclose(projection.pixels[1], [50.0 * 10 / 200 + 49.5, 60.0 * -20 / 200 + 39.5])
    np.testing.assert_allclose(projection.depth, [100.0, math.sqrt(10**2 + 20**2 + 200**2)])
    assert projection.valid.all()


@pytest.mark.parametrize("theta_deg", [0.0, 10.0, 45.0, 80.0])
@pytest.mark.parametrize("phi_deg", [0.0, 30.0, 200.0])
def test_fisheye_equidistant_radius_is_f_theta(theta_deg: float, phi_deg: float) -> None:
    lens = FisheyeLens(fx=70.0, fy=70.0, cx=49.5, cy=39.5)
    pixels = _identity_camera(lens).project(30.0 * _direction(theta_deg, phi_deg)[None]).pixels[0]
    offset = pixels - [49.5, 39.5]
    assert np.linalg.norm(offset) == pytest.approx(70.0 * math.radians(theta_deg), abs=1e-9)
    if theta_deg > 0:  # the image direction is the azimuth of the ray
        assert math.degrees(math.atan2(offset[1], offset[0])) % 360 == pytest.approx(phi_deg, abs=1e-6)


def test_kannala_brandt_reduces_to_equidistant_and_applies_its_polynomial() -> None:
    points = np.stack([25.0 * _direction(theta, 40.0) for theta in (0.0, 20.0, 50.0, 85.0)])
    equidistant = _identity_camera(FisheyeLens(70.0, 70.0, 49.5, 39.5)).project(points).pixels
    kb_zero = _identity_camera(FisheyeLens(70.0, 70.0, 49.5, 39.5, model="kannala_brandt")).project(points).pixels
    np.testing.assert_allclose(kb_zero, equidistant, atol=1e-12)
    k = (0.1, -0.02, 0.003, -0.0004)
    kb = _identity_camera(FisheyeLens(70.0, 70.0, 49.5, 39.5, distortion=k, model="kannala_brandt"))
    theta = math.radians(50.0)
    expected = 70.0 * (theta + k[0] * theta**3 + k[1] * theta**5 + k[2] * theta**7 + k[3] * theta**9)
    assert np.linalg.norm(kb.project(points).pixels[2] - [49.5, 39.5]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("lens", [PinholeLens(50.0, 50.0, 49.5, 39.5), FisheyeLens(50.0, 50.0, 49.5, 39.5)])
def test_points_behind_or_outside_the_field_of_view_are_invalid(lens: PinholeLens | FisheyeLens) -> None:
    points = np.array([[0.0, 0.0, 10.0], [1.0, 2.0, -10.0], [0.0, 0.0, -5.0], [50.0, 0.0, 0.0]])
    np.testing.assert_array_equal(_identity_camera(lens).project(points).valid, [True, False, False, False])
    narrow = _identity_camera(FisheyeLens(50.0, 50.0, 49.5, 39.5, max_angle_deg=60.0))
    np.testing.assert_array_equal(narrow.project(np.stack([_direction(59, 0), _direction(61, 0)])).valid, [1, 0])


def test_fov_helpers_put_the_half_fov_ray_on_the_image_edge() -> None:
    fisheye = Camera(fisheye_for_fov(192, 192, 150.0), 192, 192)
    edge = fisheye.project(_direction(75.0, 0.0)[None]).pixels[0]
    np.testing.assert_allclose(edge, [95.5 + 96.0, 95.5], atol=1e-9)
    pinhole = Camera(pinhole_for_fov(64, 48, 90.0), 64, 48)
    np.testing.assert_allclose(pinhole.project(np.array([[1.0, 0.0, 1.0]])).pixels[0], [31.5 + 32.0, 23.5])


def test_look_at_frame_centre_axis_and_image_up() -> None:
    position, target = np.array([10.0, -80.0, 40.0]), np.array([0.0, -60.0, 5.0])
    camera = Camera.look_at(position, target, lens=PinholeLens(60.0, 60.0, 31.5, 31.5), width=64, height=64)
    np.testing.assert_allclose(camera.center, position, atol=1e-9)
    np.testing.assert_allclose(camera.optical_axis, (target - position) / np.linalg.norm(target - position))
    projection = camera.project(np.stack([target, target + [0.0, 5.0, 0.0], target + [5.0, 0.0, 0.0]]))
    np.testing.assert_allclose(projection.pixels[0], [31.5, 31.5], atol=1e-9)
    assert projection.pixels[1, 1] < 31.5  # world up is image up
    # A camera facing the subject (looking toward -Z) sees the subject's left (+X) on the image right.
    frontal = Camera.look_at([0, 0, 100], [0, 0, 0], lens=PinholeLens(60.0, 60.0, 31.5, 31.5), width=64, height=64)
    assert frontal.project(np.array([[5.0, 0.0, 0.0]])).pixels[0, 0] > 31.5


def test_torch_projection_matches_numpy_batches_and_has_finite_gradients_on_axis() -> None:
    camera = Camera.look_at([0, -40, 40], [0, 0, 0], lens=fisheye_for_fov(64, 64, 150.0), width=64, height=64)
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 10.0, (2, 7, 3))
    points[0, 0] = [0.0, 0.0, 0.0]  # exactly on the optical axis
    reference = camera.project(points)
    tensor = torch.tensor(points, requires_grad=True)
    projection = camera.project(tensor)
    np.testing.assert_allclose(projection.pixels.detach().numpy(), reference.pixels, atol=1e-9)
    np.testing.assert_allclose(projection.depth.detach().numpy(), reference.depth, atol=1e-9)
    np.testing.assert_array_equal(projection.valid.numpy(), reference.valid)
    (projection.pixels.sum() + projection.depth.sum()).backward()
    assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_camera_input_errors_are_clear() -> None:
    camera = Camera(PinholeLens(50.0, 50.0, 31.5, 31.5), 64, 64)
    with pytest.raises(ValueError, match="NaN"):
        camera.project(np.array([[0.0, np.nan, 10.0]]))
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 3\)"):
        camera.project(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        Camera(PinholeLens(50.0, 50.0, 31.5, 31.5), 0, 64)
    with pytest.raises(ValueError, match="positive integer"):
        fisheye_for_fov(-5, 64, 120.0)
    with pytest.raises(ValueError, match="rotation"):
        Camera(PinholeLens(50.0, 50.0, 31.5, 31.5), 64, 64, rotation=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="focal"):
        PinholeLens(0.0, 50.0, 31.5, 31.5)
    with pytest.raises(ValueError, match="kannala_brandt"):
        FisheyeLens(50.0, 50.0, 31.5, 31.5, distortion=(0.1, 0.0, 0.0, 0.0))
