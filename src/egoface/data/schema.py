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
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
]

DOMAINS: tuple[str, ...] = ("synthetic", "real", "unlabeled")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Domains whose true labels exist; in `real` they are withheld from the training tree.
LABEL_DOMAINS: tuple[str, ...] = ("synthetic", "real")
#: Keys every segment-table entry carries (frames, stop exclusive); more are allowed: the rows of
#: `egoface.capture.CaptureScript.segment_table()` (`phases`, `peak_start_frame`/`peak_stop_frame`, `art_prior`,
#: `anchor`, `eyes_closed`, `mouth_closed`, ...).
SEGMENT_KEYS: tuple[str, ...] = ("name", "kind", "start_frame", "stop_frame")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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


def check_name(kind: str, name: object) -> str:
    """A subject, recording or camera name must be a safe single path component (letters, digits, `_.-`)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} must match {_NAME.pattern} (a single path component), got {name!r}")
    return name


def is_left_camera(camera: str) -> bool:
    """Cameras named `*_left` see the subject's left side; the Dataset flips them horizontally."""
    return camera.endswith("_left")


def to_json_value(value: Any, where: str) -> Any:
    """`value` as plain JSON types (numpy scalars/arrays become numbers/lists); raises naming `where` otherwise."""
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist(), where)
    if isinstance(value, np.generic):
        return to_json_value(value.item(), where)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}; only finite numbers can be stored")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"{where} must be JSON-serializable (dict, list, number, str, bool, None), got {type(value)}")


@dataclass(frozen=True)
class SubjectInfo:
    """Facts about one subject, stored as attributes of its group and shared by all its recordings.

    `identity: (K,)` float32 identity coefficients of `face_model` (a `load_face_model` spec such as `procedural`);
    `appearance`/`idiosyncrasies` JSON-serializable dicts (numpy values become lists); `rig_text` the headset rig
    file (YAML or JSON text) named `rig_name`; `cameras` the rig's camera names in image order.
    """

    subject: str
    domain: str
    split: str
    face_model: str
    identity: np.ndarray
    appearance: Mapping[str, Any]
    idiosyncrasies: Mapping[str, Any] | None
    rig_name: str
    rig_text: str
    cameras: tuple[str, ...]

    def __post_init__(self) -> None:
        check_name("subject", self.subject)
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        identity = np.asarray(self.identity)
        if identity.ndim != 1 or not np.issubdtype(identity.dtype, np.floating) or not np.isfinite(identity).all():
            raise ValueError(f"identity must be a finite float vector (K,), got {identity.dtype} {identity.shape}")
        object.__setattr__(self, "identity", identity.astype(np.float32))
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be distinct names, at least one, got {self.cameras}")
        for camera in self.cameras:
            check_name("camera", camera)
        if not isinstance(self.rig_text, str) or not isinstance(self.rig_name, str):
            raise TypeError("rig_name and rig_text must be strings (the rig file's name and its YAML/JSON text)")

    def to_attrs(self) -> dict[str, Any]:
        """The subject group's attributes (plain JSON)."""
        return {
            "subject": self.subject,
            "domain": self.domain,
            "split": self.split,
            "face_model": self.face_model,
            "identity": [float(x) for x in self.identity],
            "appearance": to_json_value(dict(self.appearance), "appearance"),
            "idiosyncrasies": None
            if self.idiosyncrasies is None
            else to_json_value(dict(self.idiosyncrasies), "idiosyncrasies"),
            "rig_name": self.rig_name,
            "rig_text": self.rig_text,
            "cameras": list(self.cameras),
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> SubjectInfo:
        return cls(
            subject=attrs["subject"],
            domain=attrs["domain"],
            split=attrs["split"],
            face_model=attrs["face_model"],
            identity=np.asarray(attrs["identity"], dtype=np.float32),
            appearance=attrs["appearance"],
            idiosyncrasies=attrs["idiosyncrasies"],
            rig_name=attrs["rig_name"],
            rig_text=attrs["rig_text"],
            cameras=tuple(attrs["cameras"]),
        )


@dataclass(frozen=True)
class Labels:
    """True per-frame labels of one recording (shapes and units: `RECORDING_ARRAYS`).

    `expression (N, 53)`, `gaze (N, 2, 2)` deg, `head_rotation (N, 3, 3)`, `head_translation (N, 3)` mm,
    `keypoints[camera] (N, L, 2)` px, `keypoint_visibility[camera] (N, L)` bool, `keypoint_names` (L,).
    """

    expression: np.ndarray
    gaze: np.ndarray
    head_rotation: np.ndarray
    head_translation: np.ndarray
    keypoints: Mapping[str, np.ndarray]
    keypoint_visibility: Mapping[str, np.ndarray]
    keypoint_names: tuple[str, ...] = ()

    def arrays(self) -> dict[str, np.ndarray]:
        """Label arrays by their path in the recording group."""
        out = {
            "labels/expression": self.expression,
            "labels/gaze": self.gaze,
            "labels/head_rotation": self.head_rotation,
            "labels/head_translation": self.head_translation,
        }
        out.update({f"labels/keypoints/{c}": v for c, v in self.keypoints.items()})
        out.update({f"labels/keypoint_visibility/{c}": v for c, v in self.keypoint_visibility.items()})
        return out


@dataclass(frozen=True)
class RecordingData:
    """One recording as the capture stage produces it and `DatasetStore.write_recording` stores it.

    `images[camera] (N, H, W)` uint8 for every camera of `subject.cameras`; `timestamps (N,)` float64 s;
    `labels` required for `synthetic`/`real`, absent for `unlabeled`; `ood (N,)` bool optional in every domain;
    `segments` the segment table (`CaptureScript.segment_table()` rows: at least `name`, `kind`, `start_frame`,
    `stop_frame` (exclusive), plus e.g. `phases`, `peak_start_frame`/`peak_stop_frame`, `art_prior`, `anchor`,
    `eyes_closed`, `mouth_closed`), required for
    `synthetic`/`real` and absent for `unlabeled`; `attrs` free JSON recording attributes (seeds, sensor settings;
    never true labels).
    """

    subject: SubjectInfo
    recording: str
    images: Mapping[str, np.ndarray]
    timestamps: np.ndarray
    labels: Labels | None = None
    ood: np.ndarray | None = None
    segments: Sequence[Mapping[str, Any]] | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(np.asarray(self.timestamps).shape[0])

    def validate(self) -> None:
        """Check every array against `RECORDING_ARRAYS` and the domain policy; raises with what was expected."""
        check_name("recording", self.recording)
        domain = self.subject.domain
        if set(self.images) != set(self.subject.cameras):
            raise ValueError(f"images must hold exactly the subject's cameras {self.subject.cameras}, "
                             f"got {tuple(self.images)}")  # fmt: skip
        n = self.frames
        if n < 1:
            raise ValueError("a recording needs at least one frame")
        for path, array in self.arrays().items():
            _check_array(path, array, n, self._keypoint_count())
        if self.labels is None and domain in LABEL_DOMAINS:
            raise ValueError(f"a {domain} recording needs labels (the store withholds real labels from training)")
        if self.labels is not None and domain not in LABEL_DOMAINS:
            raise ValueError(f"an {domain} recording carries no labels; got labels for {self.recording!r}")
        if self.labels is not None:
            for kind in ("keypoints", "keypoint_visibility"):
                cameras = tuple(getattr(self.labels, kind))
                if set(cameras) != set(self.subject.cameras):
                    raise ValueError(f"labels.{kind} must hold every camera {self.subject.cameras}, got {cameras}")
            names = self.labels.keypoint_names
            if names and len(names) != self._keypoint_count():
                raise ValueError(f"{len(names)} keypoint_names for {self._keypoint_count()} keypoints")
        if (self.segments is None) != (domain not in LABEL_DOMAINS):
            want = "no segment table" if domain == "unlabeled" else "a segment table"
            raise ValueError(f"a {domain} recording has {want}")
        for i, segment in enumerate(self.segments or ()):
            missing = [k for k in SEGMENT_KEYS if k not in segment]
            if missing:
                raise ValueError(f"segments[{i}] lacks {missing}; every segment needs {SEGMENT_KEYS}")
            start, stop = int(segment["start_frame"]), int(segment["stop_frame"])
            if not 0 <= start <= stop <= n:
                raise ValueError(f"segments[{i}] spans frames [{start}, {stop}) outside [0, {n}]")
        json.dumps(to_json_value(self.recording_attrs(), "recording attrs"))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the recording by its path, true labels included (the store routes them per domain)."""
        out: dict[str, np.ndarray] = {f"images/{c}": self.images[c] for c in self.subject.cameras}
        out["timestamps"] = self.timestamps
        if self.ood is not None:
            out["labels/ood"] = self.ood
        if self.labels is not None:
            out.update(self.labels.arrays())
        return out

    def recording_attrs(self) -> dict[str, Any]:
        """The recording group's attributes (the segment table and the free `attrs`)."""
        out: dict[str, Any] = {"recording": self.recording, "attrs": to_json_value(dict(self.attrs), "attrs")}
        if self.segments is not None:
            out["segments"] = to_json_value([dict(s) for s in self.segments], "segments")
        return out

    def _keypoint_count(self) -> int:
        if self.labels is None or not self.labels.keypoints:
            return 0
        return int(np.asarray(next(iter(self.labels.keypoints.values()))).shape[1])


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


def anchor_frames(segments: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The peak frame of each anchor segment (`segment["anchor"]` names it), first occurrence wins.

    The peak frame is the middle of the segment's hold (`[peak_start_frame, peak_stop_frame)`) when given, else
    the middle of the segment (`[start_frame, stop_frame)`).
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
        out[anchor] = (start + stop - 1) // 2
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
