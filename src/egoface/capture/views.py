"""What each camera of a rig sees: peak frames of a few subjects, through the whole capture pipeline (render,
donning, sensor), for rig builders and for comparing the look of a domain with real frames."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from egoface.capture.record import CaptureSettings, SubjectPlan, record_subject
from egoface.headset import HeadsetRig

__all__ = ["VIEW_SEGMENTS", "camera_views"]

#: The tiny script's segments shown, at their peak frame.
VIEW_SEGMENTS: tuple[str, ...] = ("neutral", "jaw_open_max", "smile_wide", "eyes_closed")


def camera_views(
    rig: HeadsetRig, domain: str = "synthetic", subjects: int = 2, resolution: int = 128, seed: int = 0
) -> Iterator[tuple[str, np.ndarray]]:
    """(label, uint8 image) for every subject x segment of `VIEW_SEGMENTS` x camera of `rig`."""
    settings = CaptureSettings(script="tiny", resolution=(resolution, resolution), fps=30.0, ood_rate=0.0)
    for number in range(subjects):
        plan = SubjectPlan(f"{domain}-{number:04d}", number, domain, "train", seed)
        recording = record_subject(plan, rig, settings)
        peaks = {
            row["name"]: (int(row["peak_start_frame"]) + int(row["peak_stop_frame"]) - 1) // 2
            for row in recording.segments or []
            if row.get("peak_start_frame") is not None
        }
        for segment in VIEW_SEGMENTS:
            for camera, images in recording.images.items():
                yield f"{number} {segment} {camera}", images[peaks[segment]]
