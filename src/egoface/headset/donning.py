"""Donning: where the headset sits on the head, per session and frame by frame.

Each session the headset is put on a little differently: `sample_session_pose` draws a head pose offset of a few mm
and degrees (truncated Gaussian per axis). Within a session the headset slips: a smooth random walk (RMS mm and
degrees per axis after one minute, growing as the square root of time) that runs faster while the face makes large
expressions, plus a direct push: opening the jaw or stretching the mouth lifts the headset and moves it toward the
back of the head by about a millimetre and pitches its front up a little, following the expression with a short lag.
Slip is expressed in the headset frame: pose_t = session pose, then the slip offset of frame t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from egoface.face.names import NUM_EXPRESSIONS, expression_index
from egoface.headset.pose import HeadPose

__all__ = ["DonningModel", "expression_drive"]

_JAW_OPEN = expression_index("jawOpen")
_STRETCH = [expression_index("mouthStretch_L"), expression_index("mouthStretch_R")]


def expression_drive(expression: object) -> np.ndarray:
    """expression: (N, 53) in [0, 1] -> (N,) how hard the face pushes on the headset, in [0, 1]:
    jawOpen + the mean mouthStretch, clipped."""
    track = np.asarray(expression, dtype=np.float64)
    if track.ndim != 2 or track.shape[1] != NUM_EXPRESSIONS or not np.isfinite(track).all():
        raise ValueError(f"expression must be a finite (N, {NUM_EXPRESSIONS}) array, got shape {track.shape}")
    return np.clip(track[:, _JAW_OPEN] + track[:, _STRETCH].mean(axis=1), 0.0, 1.0)


def _generator(rng: np.random.Generator | int) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or an integer seed, got {type(rng).__name__}")


@dataclass(frozen=True)
class DonningModel:
    """Donning variation. Units: mm, degrees, seconds; rotations are axis-angle components in degrees.

    session_translation_mm, session_rotation_deg: standard deviation per axis of the per-session offset, truncated
    at `truncate_sigma`. slip_translation_mm_per_min, slip_rotation_deg_per_min: RMS drift per axis after one minute
    of a neutral face. slip_expression_gain: the drift runs (1 + gain * drive) times faster at expression drive
    `drive` (see `expression_drive`). expression_push_mm: the headset's displacement relative to the head at full
    drive (+Y up, -Z toward the back of the head); expression_tilt_deg: its pitch, front up, at full drive;
    push_lag_s: time constant of the push. slip_smoothing_s: the walk is smoothed over about this time.
    """

    session_translation_mm: float = 2.5
    session_rotation_deg: float = 2.0
    truncate_sigma: float = 2.5
    slip_translation_mm_per_min: float = 0.8
    slip_rotation_deg_per_min: float = 0.3
    slip_expression_gain: float = 2.0
    expression_push_mm: tuple[float, float, float] = (0.0, 1.5, -0.75)
    expression_tilt_deg: float = 0.5
    push_lag_s: float = 0.15
    slip_smoothing_s: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "session_translation_mm", "session_rotation_deg", "slip_translation_mm_per_min",
            "slip_rotation_deg_per_min", "slip_expression_gain", "push_lag_s", "slip_smoothing_s",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.truncate_sigma) and self.truncate_sigma > 0):
            raise ValueError(f"truncate_sigma must be > 0, got {self.truncate_sigma!r}")
        push = np.asarray(self.expression_push_mm, dtype=np.float64)
        if push.shape != (3,) or not np.isfinite(push).all() or not math.isfinite(self.expression_tilt_deg):
            raise ValueError(
                f"expression_push_mm must be 3 finite numbers and expression_tilt_deg finite, got "
                f"{self.expression_push_mm!r}, {self.expression_tilt_deg!r}"
            )

    def _truncated_normal(self, rng: np.random.Generator, sigma: float) -> np.ndarray:
        return np.clip(rng.normal(size=3), -self.truncate_sigma, self.truncate_sigma) * sigma

    def sample_session_pose(self, rng: np.random.Generator | int, nominal: HeadPose | None = None) -> HeadPose:
        """The head pose of one session: a random offset applied after `nominal` (default: the identity)."""
        rng = _generator(rng)
        rotation_deg = self._truncated_normal(rng, self.session_rotation_deg)
        translation_mm = self._truncated_normal(rng, self.session_translation_mm)
        offset = HeadPose.from_axis_angle(rotation_deg, translation_mm)
        return offset if nominal is None else nominal.then(offset)

    def head_pose_track(
        self, session_pose: HeadPose, expression_track: object, fps: float, rng: np.random.Generator | int
    ) -> HeadPose:
        """Per-frame head poses of one session. session_pose: one pose; expression_track: (N, 53); fps: frames per
        second -> a HeadPose track of N poses (rotation (N, 3, 3), translation (N, 3) mm). Deterministic given the
        seed or the state of `rng`; slip is zero at frame 0 for a neutral face."""
        if not isinstance(session_pose, HeadPose) or session_pose.rotation.ndim != 2:
            raise TypeError("session_pose must be a single HeadPose (rotation (3, 3))")
        if isinstance(fps, bool) or not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
        drive = expression_drive(expression_track)  # (N,)
        rng = _generator(rng)
        num_frames = len(drive)
        step_scale = math.sqrt(1.0 / fps / 60.0) * (1.0 + self.slip_expression_gain * drive)  # (N,) per-minute -> step
        walks = []
        for rate in (self.slip_rotation_deg_per_min, self.slip_translation_mm_per_min):
            steps = rng.normal(size=(num_frames, 3)) * (rate * step_scale)[:, None]  # (N, 3)
            steps[0] = 0.0
            walk = gaussian_filter1d(
                np.cumsum(steps, axis=0), sigma=self.slip_smoothing_s * fps, axis=0, mode="nearest"
            )
            walks.append(walk - walk[0])
        rotation_walk, translation_walk = walks
        lag = math.exp(-1.0 / (fps * self.push_lag_s)) if self.push_lag_s > 0 else 0.0
        push = np.empty(num_frames)  # (N,) drive through a one-pole low-pass, starting settled on drive[0]
        state = drive[0] if num_frames else 0.0
        for n in range(num_frames):
            state = (1.0 - lag) * drive[n] + lag * state
            push[n] = state
        rotation_deg = rotation_walk + push[:, None] * np.array([self.expression_tilt_deg, 0.0, 0.0])
        translation_mm = translation_walk - push[:, None] * np.asarray(self.expression_push_mm)
        slip = HeadPose.from_axis_angle(rotation_deg.reshape(-1, 3), translation_mm.reshape(-1, 3))
        session = HeadPose(
            np.broadcast_to(session_pose.rotation, (num_frames, 3, 3)),
            np.broadcast_to(session_pose.translation, (num_frames, 3)),
        )
        return session.then(slip)
