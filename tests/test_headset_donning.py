"""Donning: head poses (conversions, inverse), per-session offsets and slip within a session."""

from __future__ import annotations

import numpy as np
import pytest

from egoface.face.names import NUM_EXPRESSIONS, expression_index
from egoface.headset import DonningModel, HeadPose, expression_drive

JAW_OPEN = expression_index("jawOpen")


def _expressions(num_frames: int, jaw_open: float = 0.0) -> np.ndarray:
    track = np.zeros((num_frames, NUM_EXPRESSIONS))
    track[:, JAW_OPEN] = jaw_open
    return track


def test_head_pose_conversions_and_inverse() -> None:
    pose = HeadPose.from_axis_angle([0.0, 0.0, 90.0], [1.0, 2.0, 3.0])
    assert np.allclose(pose.apply([1.0, 0.0, 0.0]), [1.0, 3.0, 3.0])  # +X turns to +Y, then shifts
    assert np.allclose(pose.axis_angle_deg, [0.0, 0.0, 90.0]) and pose.angle_deg == pytest.approx(90.0)
    points = np.random.default_rng(0).normal(size=(5, 4, 3))
    assert np.allclose(pose.inverse().apply(pose.apply(points)), points)
    other = HeadPose.from_axis_angle([10.0, -5.0, 2.0], [0.0, -1.0, 0.5])
    assert np.allclose(pose.then(other).apply(points), other.apply(pose.apply(points)))
    assert np.allclose(HeadPose.identity().apply(points), points)


def test_head_pose_tracks_apply_per_frame_and_check_shapes() -> None:
    track = HeadPose.from_axis_angle(np.zeros((3, 3)), [[0, 0, 0], [1, 0, 0], [2, 0, 0]])
    moved = track.apply(np.zeros((3, 2, 3)))
    assert len(track) == 3 and np.allclose(moved[:, :, 0], [[0, 0], [1, 1], [2, 2]])
    assert np.allclose(track[2].translation, [2, 0, 0])
    with pytest.raises(ValueError, match=r"\(3, P, 3\)"):
        track.apply(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="proper rotation"):
        HeadPose(np.diag([1.0, 1.0, -1.0]), np.zeros(3))


def test_session_poses_are_a_few_mm_and_degrees_and_deterministic() -> None:
    model = DonningModel()
    poses = [model.sample_session_pose(seed) for seed in range(200)]
    translations = np.array([pose.translation for pose in poses])
    angles = np.array([pose.angle_deg for pose in poses])
    assert 1.5 < translations.std() < 4.0 and np.abs(translations).max() <= 2.5 * 2.5 + 1e-9
    assert 1.0 < np.median(angles) < 6.0
    again = model.sample_session_pose(7)
    assert np.array_equal(again.rotation, poses[7].rotation) and np.array_equal(again.translation, poses[7].translation)
    assert not np.array_equal(poses[7].translation, poses[8].translation)


def test_slip_is_deterministic_by_seed_and_starts_at_the_session_pose() -> None:
    model = DonningModel()
    session = model.sample_session_pose(3)
    first = model.head_pose_track(session, _expressions(300), fps=30.0, rng=5)
    second = model.head_pose_track(session, _expressions(300), fps=30.0, rng=np.random.default_rng(5))
    other = model.head_pose_track(session, _expressions(300), fps=30.0, rng=6)
    assert np.array_equal(first.translation, second.translation) and np.array_equal(first.rotation, second.rotation)
    assert not np.allclose(first.translation, other.translation)
    assert np.allclose(first[0].translation, session.translation) and np.allclose(first[0].rotation, session.rotation)


def _slip_mm(model: DonningModel, jaw_open: float, seconds: float, seed: int, fps: float = 10.0) -> np.ndarray:
    """(N,) distance of the head from its session pose, mm, along a track of `seconds` at `fps`."""
    session = HeadPose.identity()
    track = model.head_pose_track(session, _expressions(int(seconds * fps), jaw_open), fps=fps, rng=seed)
    return np.linalg.norm(track.translation - session.translation, axis=1)


def test_slip_grows_with_time_like_a_random_walk() -> None:
    """RMS over sessions: after 4 minutes about twice that after 1 minute (sqrt of time), about the configured
    rate per minute, and smooth from frame to frame."""
    model = DonningModel(slip_translation_mm_per_min=1.0)
    slips = np.array([_slip_mm(model, 0.0, 240.0, seed) for seed in range(60)])  # (sessions, frames)
    rms_1min, rms_4min = np.sqrt((slips[:, 600] ** 2).mean()), np.sqrt((slips[:, -1] ** 2).mean())
    assert 1.0 < rms_1min < 2.4  # three axes of 1 mm/min each: sqrt(3) ~ 1.7
    assert 1.5 < rms_4min / rms_1min < 2.6
    assert np.abs(np.diff(slips, axis=1)).max() < 0.1  # no jumps between frames (10 fps)


def test_large_expressions_push_the_headset_and_speed_up_slip() -> None:
    model = DonningModel()
    neutral = _slip_mm(model, 0.0, 60.0, seed=1)
    open_jaw = _slip_mm(model, 1.0, 60.0, seed=1)
    assert open_jaw.mean() > neutral.mean() + 0.5
    steady = model.head_pose_track(HeadPose.identity(), _expressions(50, 1.0), fps=50.0, rng=0)
    no_walk = DonningModel(slip_translation_mm_per_min=0.0, slip_rotation_deg_per_min=0.0)
    pushed = no_walk.head_pose_track(HeadPose.identity(), _expressions(50, 1.0), fps=50.0, rng=0)
    # the headset moves up and back, so the head moves down and forward in the headset frame, by ~1.5 mm
    assert np.allclose(pushed.translation[-1], [0.0, -1.5, 0.75], atol=0.01)
    assert pushed.axis_angle_deg[-1, 0] == pytest.approx(0.5, abs=0.01)
    assert len(steady) == 50


def test_expression_drive_and_input_checks() -> None:
    track = _expressions(3)
    track[1, JAW_OPEN] = 0.4
    track[2, expression_index("mouthStretch_L")] = 1.0
    assert np.allclose(expression_drive(track), [0.0, 0.4, 0.5])
    with pytest.raises(ValueError, match=r"\(N, 53\)"):
        expression_drive(np.zeros((3, 52)))
    with pytest.raises(ValueError, match="fps"):
        DonningModel().head_pose_track(HeadPose.identity(), track, fps=0.0, rng=0)
    with pytest.raises(ValueError, match="session_translation_mm"):
        DonningModel(session_translation_mm=-1.0)
