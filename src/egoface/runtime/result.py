"""The typed per-frame result of `Tracker.track` (style.md item 9), shared by every output sink.

Units: expressions in [0, 1] in `egoface.face.names.EXPRESSION_NAMES` order; gaze in degrees, (yaw, pitch) per eye
with +yaw toward the subject's left and +pitch up (docs/headset.md "Conventions"); head pose in the headset frame
(rotation matrix, translation in mm); latency in milliseconds; timestamp in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from egoface.face.mappings import STANDARDS, convert
from egoface.face.names import EXPRESSION_NAMES

__all__ = ["REGIONS", "TrackResult"]

#: Confidence regions, each in [0, 1] (1: every camera that sees the region is healthy and in distribution).
REGIONS = ("eyes", "upper_face", "lower_face")


@dataclass(frozen=True)
class TrackResult:
    """One tracked frame.

    expression: (53,) float32 in [0, 1], after calibration and filtering. gaze: (2, 2) float32 degrees, rows
    (left eye, right eye), columns (yaw, pitch). head_rotation (3, 3) / head_translation (3,) mm, or None when the
    model has no head pose. confidence: region name -> [0, 1] for each of `REGIONS`. failures: camera name (or
    `"headset"`, `"ood"`) -> list of failure names (`black`, `saturated`, `frozen`, `blurred`, `covered`,
    `off_face`, `out_of_distribution`); empty when all is well. held: True when the output holds or eases from the
    last good value instead of the current frame's prediction. latency_ms: time inside `track` for this frame.
    """

    timestamp: float
    frame_index: int
    expression: np.ndarray
    gaze: np.ndarray
    confidence: dict[str, float]
    failures: dict[str, list[str]] = field(default_factory=dict)
    held: bool = False
    latency_ms: float = 0.0
    head_rotation: np.ndarray | None = None
    head_translation: np.ndarray | None = None

    def expressions(self, standard: str = "egoface") -> dict[str, float]:
        """The expressions by name: `egoface` (our 53 names), or `arkit`, `unified`, `movement`, `mediapipe`."""
        if standard == "egoface":
            return dict(zip(EXPRESSION_NAMES, self.expression.tolist(), strict=True))
        values = convert(self.expression, standard)  # raises naming the known standards
        return dict(zip(STANDARDS[standard].names, np.asarray(values).tolist(), strict=True))
