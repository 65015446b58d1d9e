"""Failure detection (REFA Sec. 1, contribution 4): per-camera image checks, headset off the face, out-of-distribution
features; per-region confidence; holding the last good output and easing to neutral.

Per camera, on the model's view of it (`(H, W)` in [0, 1], every other pixel in each direction) and the raw frame:

- `black`: mean below `black_level` and almost no texture (the sensor or LEDs are off);
- `saturated`: more than `saturated_fraction` of the pixels at or above `saturated_level`;
- `frozen`: the raw frame identical to the previous one for `frozen_frames` frames in a row;
- `blurred`: Laplacian variance below `blur_ratio` times the camera's running level;
- `covered`: mean below `covered_brightness_ratio` of the running level and texture below `covered_texture_ratio`
  of it (a finger or a cloth on the lens: dark and flat, relative to what this camera normally sees);
- `disconnected`: the source had no frame for the camera.

Running levels are exponential averages over the camera's healthy frames and start after `warmup_frames` of them,
so `blurred` and `covered` are relative to this user and this headset. `off_face` (under the key `"headset"`): every
camera is black, saturated, covered or disconnected. `out_of_distribution`: the features' distance to the training
distribution (`egoface.runtime.ood.OodDetector`) is above its threshold, under the camera's name when the model
file has per-camera statistics, else under the key `"ood"`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoface.runtime.ood import ALL_FEATURES, OodDetector
from egoface.runtime.result import REGIONS

__all__ = [
    "FAILURES",
    "CameraMonitor",
    "FailureDetector",
    "FailureOptions",
    "HoldAndEase",
    "camera_regions",
    "laplacian_variance",
    "shape_regions",
]

FAILURES = (
    "black",
    "saturated",
    "frozen",
    "blurred",
    "covered",
    "disconnected",
    "off_face",
    "out_of_distribution",
)
#: Failures after which a camera's image says nothing about the face (health 0); the others halve it.
_BLIND = frozenset({"black", "saturated", "frozen", "covered", "disconnected"})
_OFF_FACE = frozenset({"black", "saturated", "covered", "disconnected"})


@dataclass(frozen=True)
class FailureOptions:
    """Thresholds of the checks (image levels in [0, 1]) and of the output's hold and ease.

    ood_confidence: the confidence factor of every region while the features are out of distribution;
    confidence_threshold: a region below it holds its last good output for `hold_s` seconds, then eases to
    neutral over `ease_s` seconds.
    """

    black_level: float = 0.04
    black_texture: float = 1e-4
    saturated_level: float = 0.98
    saturated_fraction: float = 0.5
    frozen_frames: int = 5
    blur_ratio: float = 0.2
    covered_brightness_ratio: float = 0.4
    covered_texture_ratio: float = 0.3
    warmup_frames: int = 10
    running_rate: float = 0.05
    ood_confidence: float = 0.25
    confidence_threshold: float = 0.5
    hold_s: float = 0.3
    ease_s: float = 1.0


def laplacian_variance(view: np.ndarray) -> float:
    """view: (H, W) float -> variance of its 4-neighbour Laplacian over the interior (a sharpness measure)."""
    centre = view[1:-1, 1:-1]
    laplacian = view[:-2, 1:-1] + view[2:, 1:-1] + view[1:-1, :-2] + view[1:-1, 2:] - 4.0 * centre
    return float(laplacian.var())


class CameraMonitor:
    """One camera's checks and running levels (brightness and Laplacian variance of its healthy frames)."""

    def __init__(self, options: FailureOptions) -> None:
        self.options = options
        self.previous: np.ndarray | None = None
        self.identical = 0
        self.healthy_frames = 0
        self.brightness = 0.0
        self.texture = 0.0

    def check(self, view: np.ndarray | None, frame: np.ndarray | None) -> list[str]:
        """view: (H, W) in [0, 1] and frame: the raw uint8 image, or both None when the camera gave none."""
        if view is None or frame is None:
            return ["disconnected"]
        o = self.options
        failures = []
        small = view[::2, ::2]  # every other pixel: a quarter of the work, the same verdicts
        mean, texture = float(small.mean()), laplacian_variance(small)
        if mean < o.black_level and texture < o.black_texture:
            failures.append("black")
        if float((small >= o.saturated_level).mean()) > o.saturated_fraction:
            failures.append("saturated")
        same = self.previous is not None and self.previous.shape == frame.shape and np.array_equal(self.previous, frame)
        self.identical = self.identical + 1 if same else 0
        self.previous = frame.copy()
        if self.identical >= o.frozen_frames:
            failures.append("frozen")
        if self.healthy_frames >= o.warmup_frames and not failures:
            if mean < o.covered_brightness_ratio * self.brightness and texture < o.covered_texture_ratio * self.texture:
                failures.append("covered")
            elif texture < o.blur_ratio * self.texture:
                failures.append("blurred")
        if not failures:
            rate = max(o.running_rate, 1.0 / (self.healthy_frames + 1))  # a plain mean during warm-up
            self.brightness += rate * (mean - self.brightness)
            self.texture += rate * (texture - self.texture)
            self.healthy_frames += 1
        return failures


def camera_regions(cameras: tuple[str, ...]) -> dict[str, list[int]]:
    """Region -> indices of the cameras that see it: `eyes` the eye cameras; `upper_face` the eye and glabella
    cameras (REFA's eye cameras see the brows); `lower_face` every other camera (mouth, jaw, cheek)."""
    roles = [camera.split("_", 1)[0] for camera in cameras]
    return {
        "eyes": [i for i, role in enumerate(roles) if role == "eye"],
        "upper_face": [i for i, role in enumerate(roles) if role in ("eye", "glabella", "brow")],
        "lower_face": [i for i, role in enumerate(roles) if role not in ("eye", "glabella", "brow")],
    }


def shape_regions(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Region -> boolean mask over expression `names`: `eyes` the `eye*` shapes, `upper_face` the `brow*` shapes,
    `lower_face` the rest (jaw, mouth, cheeks, nose)."""
    eyes = np.array([n.startswith("eye") for n in names])
    upper = np.array([n.startswith("brow") for n in names])
    return {"eyes": eyes, "upper_face": upper, "lower_face": ~(eyes | upper)}


class FailureDetector:
    """All checks of one tracker: per camera, the headset, and (with `ood`) out-of-distribution features."""

    def __init__(self, cameras: tuple[str, ...], options: FailureOptions, ood: OodDetector | None) -> None:
        self.cameras = cameras
        self.options = options
        self.ood = ood
        self.monitors = [CameraMonitor(options) for _ in cameras]
        self.regions = camera_regions(cameras)
        #: The last frame's OOD scores relative to their thresholds (above 1: out of distribution), by block.
        self.ood_scores: dict[str, float] = {}

    def check(
        self, views: list[np.ndarray | None], frames: list[np.ndarray | None], features: np.ndarray | None
    ) -> tuple[dict[str, list[str]], dict[str, float]]:
        """views/frames: per camera in `cameras` order (None: no frame); features: (F,) or None when the model did
        not run. Returns (failures by camera / "headset" / "ood", confidence by region)."""
        failures: dict[str, list[str]] = {}
        health = np.ones(len(self.cameras))
        for i, (monitor, view, frame) in enumerate(zip(self.monitors, views, frames, strict=True)):
            found = monitor.check(view, frame)
            if found:
                failures[self.cameras[i]] = found
                health[i] = 0.0 if _BLIND.intersection(found) else 0.5
        factor = 1.0
        if all(_OFF_FACE.intersection(failures.get(camera, ())) for camera in self.cameras):
            failures["headset"] = ["off_face"]
            factor = 0.0
        if self.ood is not None and features is not None:
            self.ood_scores = self.ood.relative_scores(features)
            for name, score in self.ood_scores.items():
                if score <= 1.0:
                    continue
                if name == ALL_FEATURES:
                    failures["ood"] = ["out_of_distribution"]
                    factor *= self.options.ood_confidence
                else:
                    failures.setdefault(name, []).append("out_of_distribution")
                    health[self.cameras.index(name)] *= self.options.ood_confidence
        confidence = {
            region: float(health[self.regions[region]].mean()) * factor if self.regions[region] else 0.0
            for region in REGIONS
        }
        return failures, confidence


class HoldAndEase:
    """Per region: while its confidence is below the threshold, output the last good values for `hold_s` seconds,
    then ease them (smoothstep) to neutral (zero) over `ease_s` seconds. Gaze belongs to `eyes`."""

    def __init__(self, names: tuple[str, ...], options: FailureOptions) -> None:
        self.options = options
        self.masks = shape_regions(names)
        self.last_expression = np.zeros(len(names), np.float32)
        self.last_gaze = np.zeros((2, 2), np.float32)
        self.bad_since: dict[str, float | None] = dict.fromkeys(REGIONS)

    def __call__(
        self, expression: np.ndarray, gaze: np.ndarray, confidence: dict[str, float], timestamp: float
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """expression (53,), gaze (2, 2) of this frame -> (expression, gaze, held) to output."""
        out_expression, out_gaze = expression.copy(), gaze.copy()
        held = False
        for region in REGIONS:
            mask = self.masks[region]
            if confidence[region] >= self.options.confidence_threshold:
                self.bad_since[region] = None
                self.last_expression[mask] = expression[mask]
                if region == "eyes":
                    self.last_gaze[:] = gaze
                continue
            held = True
            since = self.bad_since[region]
            if since is None:
                since = self.bad_since[region] = timestamp
            keep = np.float32(1.0 - _smoothstep((timestamp - since - self.options.hold_s) / self.options.ease_s))
            out_expression[mask] = keep * self.last_expression[mask]
            if region == "eyes":
                out_gaze = keep * self.last_gaze
        return out_expression, out_gaze, held


def _smoothstep(x: float) -> float:
    t = min(max(x, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)
