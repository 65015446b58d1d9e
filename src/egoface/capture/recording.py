"""The recording types the capture stage produces: one subject's facts, true labels and one recording.

These are plain data; `egoface.data` checks them against its schema (`validate_recording`) and stores them.
Domain policy (design.md, "Domains"): `synthetic` recordings carry labels and a segment table;
`real` ones too, but the store withholds their true labels from the training tree; `unlabeled` ones carry neither.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DOMAINS",
    "LABEL_DOMAINS",
    "SPLITS",
    "Labels",
    "RecordingData",
    "SubjectInfo",
    "check_name",
    "to_json_value",
]

DOMAINS: tuple[str, ...] = ("synthetic", "real", "unlabeled")
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Domains whose true labels exist; in `real` they are withheld from the training tree.
LABEL_DOMAINS: tuple[str, ...] = ("synthetic", "real")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(kind: str, name: object) -> str:
    """A subject, recording or camera name must be a safe single path component (letters, digits, `_.-`)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} must match {_NAME.pattern} (a single path component), got {name!r}")
    return name


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

    @property
    def num_keypoints(self) -> int:
        """L, the keypoints per camera (0 without labels)."""
        if self.labels is None or not self.labels.keypoints:
            return 0
        return int(np.asarray(next(iter(self.labels.keypoints.values()))).shape[1])
