"""The recording schema as data: which arrays a recording holds, their shapes, dtypes and units, per domain.

`RECORDING_ARRAYS` is the single description of the on-disk arrays; the store writes from it, `check_dataset`
validates against it and `docs/datasheet.md` renders it (`schema_table_markdown`). The capture stage hands one
recording to the store as a `RecordingData` (subject facts in `SubjectInfo`, true labels in `Labels`).

Shape symbols: `N` frames, `H`/`W` image rows/columns of that camera, `L` keypoints (the face model's landmarks),
`{camera}` one array per camera name. Domain policy (design.md, "Domains"):

- `synthetic`: images, timestamps, all labels, OOD flags, the segment table;
- `real`: images, timestamps, OOD flags and the segment table (its art priors may train); the true labels are
  *withheld*: the store writes them to a separate evaluation-only tree, never next to the images;
- `unlabeled`: images, timestamps and optional OOD flags; no labels and no segment table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from egoface.capture.recording import (
    DOMAINS,
    LABEL_DOMAINS,
    SPLITS,
    Labels,
    RecordingData,
    SubjectInfo,
    check_name,
    to_json_value,
)
from egoface.face.names import NUM_EXPRESSIONS

__all__ = [
    "DOMAINS",
    "LABEL_DOMAINS",
    "RECORDING_ARRAYS",
    "SPLITS",
    "TRUE_LABEL_ARRAYS",
    "ArraySpec",
    "Labels",
    "RecordingData",
    "SubjectInfo",
    "anchor_frames",
    "check_name",
    "is_left_camera",
    "schema_table_markdown",
    "to_json_value",
    "validate_recording",
]

#: Keys every segment-table entry carries (frames, stop exclusive); more are allowed: the rows of
#: `egoface.capture.CaptureScript.segment_table()` (`phases`, `peak_start_frame`/`peak_stop_frame`, `art_prior`,
#: `anchor`, `eyes_closed`, `mouth_closed`, ...).
SEGMENT_KEYS: tuple[str, ...] = ("name", "kind", "start_frame", "stop_frame")


@dataclass(frozen=True)
class ArraySpec:
    """One array of a recording: `path` inside the recording group (`{camera}` expands per camera)."""

    path: str
    shape: tuple[int | str, ...]
    dtype: str
    unit: str
    description: str
    #: Domains in whose training tree the array is stored.
    domains: tuple[str, ...]
    #: True for the true labels: exact in `synthetic`, withheld to the evaluation-only tree in `real`.
    true_label: bool = False
    #: False when the capture stage may omit it.
    required: bool = True

    @property
    def per_camera(self) -> bool:
        return "{camera}" in self.path

    def expected_shape(self, frames: int, height: int = 0, width: int = 0, keypoints: int = 0) -> tuple[int, ...]:
        """The concrete shape for a recording of `frames` frames (and this camera's `height`/`width`)."""
        symbols = {"N": frames, "H": height, "W": width, "L": keypoints}
        return tuple(symbols[d] if isinstance(d, str) else d for d in self.shape)


RECORDING_ARRAYS: tuple[ArraySpec, ...] = (
    ArraySpec("images/{camera}", ("N", "H", "W"), "uint8", "digital number (0-255)",
              "infrared image as captured (left cameras are not flipped on disk)", DOMAINS),
    ArraySpec("timestamps", ("N",), "float64", "s", "capture time of each frame from the recording start", DOMAINS),
    ArraySpec("labels/ood", ("N",), "bool", "flag", "out-of-distribution sensing event (hand in view, camera covered)",
              DOMAINS, required=False),
    ArraySpec("labels/expression", ("N", NUM_EXPRESSIONS), "float32", "weight in [0, 1]",
              "the 53 expression coefficients (canonical order, reference/expressions.md)", ("synthetic",), True),
    ArraySpec("labels/gaze", ("N", 2, 2), "float32", "deg",
              "per eye [L, R] (yaw, pitch) in the head frame; yaw + toward the subject's left, pitch + up",
              ("synthetic",), True),
    ArraySpec("labels/head_rotation", ("N", 3, 3), "float32", "rotation matrix",
              "head pose in the headset frame: x_headset = R @ x_head + t", ("synthetic",), True),
    ArraySpec("labels/head_translation", ("N", 3), "float32", "mm", "t of the head pose above", ("synthetic",), True),
    ArraySpec("labels/keypoints/{camera}", ("N", "L", 2), "float32", "px",
              "projected face landmarks (x, y) in the stored (unflipped) image; (0, 0) = centre of top-left pixel",
              ("synthetic",), True),
    ArraySpec("labels/keypoint_visibility/{camera}", ("N", "L"), "bool", "flag",
              "landmark is in the image and not occluded", ("synthetic",), True),
)  # fmt: skip

#: Array paths of the true labels (the ones withheld in the `real` domain).
TRUE_LABEL_ARRAYS: tuple[str, ...] = tuple(spec.path for spec in RECORDING_ARRAYS if spec.true_label)


def is_left_camera(camera: str) -> bool:
    """Cameras named `*_left` see the subject's left side; the Dataset flips them horizontally."""
    return camera.endswith("_left")


def validate_recording(data: RecordingData) -> None:
    """Check every array against `RECORDING_ARRAYS` and the domain policy; raises with what was expected."""
    check_name("recording", data.recording)
    domain = data.subject.domain
    if set(data.images) != set(data.subject.cameras):
        raise ValueError(f"images must hold exactly the subject's cameras {data.subject.cameras}, "
                         f"got {tuple(data.images)}")  # fmt: skip
    n = data.frames
    if n < 1:
        raise ValueError("a recording needs at least one frame")
    for path, array in data.arrays().items():
        _check_array(path, array, n, data.num_keypoints)
    if data.labels is None and domain in LABEL_DOMAINS:
        raise ValueError(f"a {domain} recording needs labels (the store withholds real labels from training)")
    if data.labels is not None and domain not in LABEL_DOMAINS:
        raise ValueError(f"an {domain} recording carries no labels; got labels for {data.recording!r}")
    if data.labels is not None:
        for kind in ("keypoints", "keypoint_visibility"):
            cameras = tuple(getattr(data.labels, kind))
            if set(cameras) != set(data.subject.cameras):
                raise ValueError(f"labels.{kind} must hold every camera {data.subject.cameras}, got {cameras}")
        names = data.labels.keypoint_names
        if names and len(names) != data.num_keypoints:
            raise ValueError(f"{len(names)} keypoint_names for {data.num_keypoints} keypoints")
    if (data.segments is None) != (domain not in LABEL_DOMAINS):
        want = "no segment table" if domain == "unlabeled" else "a segment table"
        raise ValueError(f"a {domain} recording has {want}")
    for i, segment in enumerate(data.segments or ()):
        missing = [k for k in SEGMENT_KEYS if k not in segment]
        if missing:
            raise ValueError(f"segments[{i}] lacks {missing}; every segment needs {SEGMENT_KEYS}")
        start, stop = int(segment["start_frame"]), int(segment["stop_frame"])
        if not 0 <= start <= stop <= n:
            raise ValueError(f"segments[{i}] spans frames [{start}, {stop}) outside [0, {n}]")
    json.dumps(to_json_value(data.recording_attrs(), "recording attrs"))


def spec_for(path: str) -> ArraySpec:
    """The `ArraySpec` describing the array at `path` (`images/eye_left` -> `images/{camera}`)."""
    for spec in RECORDING_ARRAYS:
        pattern = "^" + re.escape(spec.path).replace(re.escape("{camera}"), "[^/]+") + "$"
        if re.match(pattern, path):
            return spec
    raise KeyError(f"{path!r} is not an array of the recording schema")


def _check_array(path: str, array: np.ndarray, frames: int, keypoints: int) -> None:
    spec = spec_for(path)
    array = np.asarray(array)
    height, width = (array.shape[1], array.shape[2]) if spec.path == "images/{camera}" and array.ndim == 3 else (0, 0)
    want = spec.expected_shape(frames, height, width, keypoints)
    if array.shape != want or array.dtype != np.dtype(spec.dtype):
        raise ValueError(f"{path} must be {spec.dtype} with shape {_shape_text(spec)} = {want}, "
                         f"got {array.dtype} {array.shape}")  # fmt: skip
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{path} contains NaN or infinite values")


def _shape_text(spec: ArraySpec) -> str:
    return "(" + ", ".join(str(d) for d in spec.shape) + (",)" if len(spec.shape) == 1 else ")")


def anchor_frames(segments: Sequence[Mapping[str, Any]], ood: np.ndarray | None = None) -> dict[str, int]:
    """The frame of each anchor segment (`segment["anchor"]` names it) a model enrolls from, first occurrence wins.

    That is the middle of the segment's hold (`[peak_start_frame, peak_stop_frame)`) when given, else of the whole
    segment (`[start_frame, stop_frame)`). With the recording's `ood` flags (N,) bool (`labels/ood`: a hand in view,
    a covered camera), the frame of that range nearest its middle that is not flagged (the earlier one of two as
    near), the middle itself when every frame of the range is flagged.
    """
    out: dict[str, int] = {}
    for segment in segments:
        anchor = segment.get("anchor")
        if not anchor or anchor in out:
            continue
        if segment.get("peak_start_frame") is not None and segment.get("peak_stop_frame") is not None:
            start, stop = int(segment["peak_start_frame"]), int(segment["peak_stop_frame"])
        else:
            start, stop = int(segment["start_frame"]), int(segment["stop_frame"])
        middle = (start + stop - 1) // 2
        clean = [f for f in range(start, stop) if ood is None or (f < len(ood) and not ood[f])]
        out[anchor] = min(clean, key=lambda f: (abs(f - middle), f)) if clean else middle
    return out


def schema_table_markdown() -> str:
    """The `RECORDING_ARRAYS` table as markdown (rendered into docs/datasheet.md; a test keeps them in sync)."""
    rows = ["| array | shape | dtype | unit | stored for | description |", "|---|---|---|---|---|---|"]
    for spec in RECORDING_ARRAYS:
        stored = ", ".join(spec.domains)
        if spec.true_label:
            stored += " (real: evaluation-only tree)"
        if not spec.required:
            stored += "; optional"
        rows.append(f"| `{spec.path}` | {_shape_text(spec)} | {spec.dtype} | {spec.unit} | {stored} | "
                    f"{spec.description} |")  # fmt: skip
    return "\n".join(rows)
