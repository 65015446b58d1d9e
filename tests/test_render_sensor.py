"""The IR sensor stage: levels, clipping at both ends, noise statistics, vignetting, auto-exposure, OOD events, the
numba blur and exposure meter against their references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, laplace

from egoface.render.sensor import (
    REAL_SENSOR,
    SYNTHETIC_SENSOR,
    AutoExposure,
    _blur,
    _brightest_quarter_mean,
    _gaussian_taps,
    cover_camera,
    hand_in_view,
    sense,
)

NOISELESS = dataclasses.replace(SYNTHETIC_SENSOR, read_noise=0.0, blur_sigma_px=0.0, vignetting=0.0)


def test_dark_scene_reads_black_level_and_bright_scene_saturates() -> None:
    rng = np.random.default_rng(0)
    dark = sense(np.zeros((32, 32)), NOISELESS, exposure=1000.0, rng=rng)
    assert (dark == round(NOISELESS.black_level)).all()
    bright = sense(np.full((32, 32), 100.0), NOISELESS, exposure=1000.0, rng=rng)
    assert (bright == 255).all()


def test_linear_response_without_noise_sources() -> None:
    # 0.5 radiance x 9000 electrons/unit = 4500 e- = half the full well -> ~127.5 DN + black level, plus shot noise
    frame = sense(np.full((64, 64), 0.5), NOISELESS, exposure=9000.0, rng=np.random.default_rng(1))
    assert frame.mean() == pytest.approx(127.5 + NOISELESS.black_level, abs=1.0)


def test_shot_noise_grows_with_the_square_root_of_the_signal() -> None:
    sensor = dataclasses.replace(NOISELESS, gain_dn_per_electron=255.0 / 2000.0, full_well=1e6)
    rng = np.random.default_rng(2)
    low = sense(np.full((128, 128), 0.1), sensor, exposure=1000.0, rng=rng).astype(float)  # 100 e-
    high = sense(np.full((128, 128), 0.4), sensor, exposure=1000.0, rng=rng).astype(float)  # 400 e-
    assert high.std() / low.std() == pytest.approx(2.0, rel=0.15)


def test_vignetting_darkens_the_corners() -> None:
    sensor = dataclasses.replace(NOISELESS, vignetting=0.4)
    frame = sense(np.full((65, 65), 0.5), sensor, exposure=9000.0, rng=np.random.default_rng(3)).astype(float)
    centre, corner = frame[28:37, 28:37].mean(), frame[:4, :4].mean()
    assert corner < 0.7 * centre


def test_auto_exposure_converges_to_its_target() -> None:
    control = AutoExposure(exposure=500.0, target_dn=100.0, rate=0.3)
    rng = np.random.default_rng(4)
    scene = np.zeros((32, 32))
    scene[:, :12] = 0.2  # a lit subject over a third of the frame, a dark background beside it
    for _ in range(60):
        frame = sense(scene, SYNTHETIC_SENSOR, control.exposure, rng)
        control.update(frame)
    assert frame[:, :12].mean() == pytest.approx(100.0, abs=5.0)  # exposed for the subject, not the background


def test_exposure_loop_at_the_sensor_rate_compounds_between_captured_frames() -> None:
    """A capture keeping one frame of 29 (72 Hz camera, 2.5 Hz capture) adapts as much as 29 loop iterations on the
    same (linear, unsaturated) scene."""
    sensor = dataclasses.replace(NOISELESS, black_level=0.0)
    scene, rng = np.full((64, 64), 0.5), np.random.default_rng(11)
    every_frame = AutoExposure(exposure=2000.0, target_dn=100.0)
    for _ in range(29):
        every_frame.update(sense(scene, sensor, every_frame.exposure, rng))
    compounded = AutoExposure(exposure=2000.0, target_dn=100.0)
    compounded.update(sense(scene, sensor, compounded.exposure, rng), sensor_frames=29)
    assert compounded.exposure == pytest.approx(every_frame.exposure, rel=0.02)
    assert every_frame.exposure > 3.0 * 2000.0  # it did have far to go
    with pytest.raises(ValueError, match="sensor_frames"):
        compounded.update(np.zeros((4, 4), np.uint8), sensor_frames=0)


def test_motion_blur_blends_the_previous_frame() -> None:
    current, previous = np.zeros((16, 16)), np.full((16, 16), 0.5)
    frame = sense(current, NOISELESS, 9000.0, np.random.default_rng(5), previous_radiance=previous, motion_blur=0.5)
    assert frame.mean() == pytest.approx(0.25 * 255 + NOISELESS.black_level, abs=2.0)
    with pytest.raises(ValueError, match="motion_blur"):
        sense(current, NOISELESS, 9000.0, np.random.default_rng(5), motion_blur=1.0)


def test_real_sensor_is_noisier_than_the_synthetic_one() -> None:
    scene = np.full((96, 96), 0.3)
    synthetic = sense(scene, SYNTHETIC_SENSOR, 9000.0, np.random.default_rng(6)).astype(float)
    real = sense(scene, REAL_SENSOR, 9000.0, np.random.default_rng(6)).astype(float)
    assert laplace(real[20:76, 20:76]).std() > laplace(synthetic[20:76, 20:76]).std()


def test_hand_and_cover_events_change_the_frame_as_expected() -> None:
    rng = np.random.default_rng(7)
    texture = np.clip(100 + 40 * rng.standard_normal((96, 96)), 0, 255).astype(np.uint8)
    hand = hand_in_view(texture, rng)
    assert (np.abs(hand.astype(int) - texture) > 30).mean() > 0.15 and hand.mean() > texture.mean()
    covered = cover_camera(texture, rng)
    assert laplace(covered.astype(float)).std() < 0.2 * laplace(texture.astype(float)).std()
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        sense(np.zeros((2, 3, 4)), NOISELESS, 1.0, rng)


def test_blur_equals_scipy_gaussian_filter_with_nearest_edges() -> None:
    """The numba blur of `sense` against its reference, scipy.ndimage.gaussian_filter(mode='nearest')."""
    image = np.random.default_rng(8).random((23, 17))
    for sigma in (0.5, 0.9, 2.0):  # the two sensor models' lens blurs and a wider one (taps beyond the image)
        blurred = _blur(image, _gaussian_taps(sigma), np.empty_like(image), np.empty_like(image))
        np.testing.assert_allclose(blurred, gaussian_filter(image, sigma, mode="nearest"), rtol=0, atol=1e-12)


def test_auto_exposure_meter_is_the_mean_of_the_brightest_quarter() -> None:
    rng = np.random.default_rng(9)
    for shape in ((64, 48), (5, 7), (1, 1)):
        frame = rng.integers(0, 256, shape).astype(np.uint8)
        brightest = np.sort(frame, axis=None)[-max(frame.size // 4, 1) :]
        assert _brightest_quarter_mean(frame) == pytest.approx(brightest.mean(), rel=1e-12)
    assert _brightest_quarter_mean(np.full((8, 8), 7, np.uint8)) == 7.0
    with pytest.raises(ValueError, match="uint8"):
        AutoExposure(exposure=100.0).update(np.full((8, 8), 300))


def test_shot_and_read_noise_add_in_quadrature() -> None:
    """1000 electrons: shot noise sqrt(1000) e- and 40 e- read noise -> sqrt(1000 + 40**2) e- RMS, times DN per
    electron and gain, plus the rounding to whole DN; the mean is the signal plus the black level."""
    sensor = dataclasses.replace(NOISELESS, read_noise=40.0, black_level=60.0, full_well=1e6)
    frame = sense(np.full((128, 128), 0.5), sensor, exposure=2000.0, rng=np.random.default_rng(10), gain=2.0)
    dn_per_electron = sensor.gain_dn_per_electron * 2.0
    assert frame.mean() == pytest.approx(60.0 + 1000.0 * dn_per_electron, abs=0.1)
    expected_std = np.sqrt((1000.0 + 40.0**2) * dn_per_electron**2 + 1 / 12)  # ~2.9 DN
    assert frame.std() == pytest.approx(expected_std, rel=0.05)
