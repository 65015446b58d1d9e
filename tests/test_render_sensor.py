"""The IR sensor stage: levels, clipping at both ends, noise statistics, vignetting, auto-exposure, OOD events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import laplace

from egoface.render.sensor import (
    REAL_SENSOR,
    SYNTHETIC_SENSOR,
    AutoExposure,
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
