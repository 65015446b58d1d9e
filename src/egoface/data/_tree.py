"""Paths of a store tree and the index rebuilt by scanning it (no shared index file that writers could corrupt).

A tree is `<root>/<domain>/<subject>/<recording>/`; a recording is visible only once its directory holds the
completion marker (`MARKER`), which the writer puts in before the directory is renamed into place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from egoface.data.schema import DOMAINS, Labels

__all__ = [
    "FORMAT",
    "MARKER",
    "RecordingRef",
    "array_paths",
    "open_array",
    "read_array",
    "read_attrs",
    "read_labels",
    "read_marker",
    "require_role",
    "scan_recordings",
]

FORMAT = 1
#: Completion marker of a recording, a zarr group whose attributes hold the frame count, the SHA-256 of every file
#: of the recording and the overall content checksum.
MARKER = "_complete"


@dataclass(frozen=True)
class RecordingRef:
    """A complete recording found by scanning: `path` is its group directory, `frames` its N."""

    domain: str
    subject: str
    recording: str
    path: Path
    frames: int


def read_attrs(group_dir: Path) -> dict[str, Any]:
    """The attributes of the zarr v3 group stored in `group_dir` (its `zarr.json`)."""
    with open(group_dir / "zarr.json", encoding="utf-8") as file:
        return dict(json.load(file).get("attributes", {}))


def read_marker(recording_dir: Path) -> dict[str, Any] | None:
    """The completion marker's attributes of a recording directory, or None when it is absent (not complete)."""
    try:
        return read_attrs(recording_dir / MARKER)
    except FileNotFoundError:
        return None


def require_role(root: Path, role: str) -> None:
    """Raise unless `root` is an egoface store tree of the given role (`dataset` or the evaluation-only one)."""
    try:
        found = read_attrs(root).get("egoface", {}).get("store")
    except FileNotFoundError:
        raise FileNotFoundError(f"{root} is not an egoface dataset store (no zarr.json); generate one first") from None
    if found != role:
        raise ValueError(f"{root} is an egoface store of role {found!r}, expected {role!r}")


def scan_recordings(root: Path, domains: tuple[str, ...] = DOMAINS) -> list[RecordingRef]:
    """Every complete recording of the given domains under `root`, sorted by (domain, subject, recording)."""
    refs = []
    for domain in domains:
        domain_dir = root / domain
        if not domain_dir.is_dir():
            continue
        for subject_dir in sorted(p for p in domain_dir.iterdir() if p.is_dir()):
            for recording_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
                marker = read_marker(recording_dir)
                if marker is not None:
                    refs.append(
                        RecordingRef(domain, subject_dir.name, recording_dir.name, recording_dir, int(marker["frames"]))
                    )
    return refs


def array_paths(group: zarr.Group) -> list[str]:
    """Paths of every array below `group` (`images/eye_left`, `labels/gaze`, ...)."""
    return sorted(path for path, node in group.members(max_depth=None) if isinstance(node, zarr.Array))


def open_array(group: zarr.Group, path: str) -> zarr.Array:
    """The array at `path` below `group` (lazy handle; raises if `path` is a group)."""
    node = group[path]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{path} is a group, expected an array")
    return node


def read_array(group: zarr.Group, path: str, select: slice | int = slice(None)) -> np.ndarray:
    """The frames `select` of the array at `path` below `group`, as numpy."""
    return np.asarray(open_array(group, path)[select])


def read_ood(recording_dir: Path) -> np.ndarray | None:
    """The recording's per-frame `labels/ood` flags (N,) bool, None when it has none."""
    group = zarr.open_group(recording_dir, mode="r")
    return read_array(group, "labels/ood") if "labels/ood" in array_paths(group) else None


def read_labels(recording_dir: Path, cameras: tuple[str, ...], select: slice) -> Labels:
    """True labels stored under `recording_dir/labels/` (frames `select`)."""
    group = zarr.open_group(recording_dir, mode="r")

    def read(path: str) -> np.ndarray:
        return read_array(group, path, select)

    return Labels(
        expression=read("labels/expression"),
        gaze=read("labels/gaze"),
        head_rotation=read("labels/head_rotation"),
        head_translation=read("labels/head_translation"),
        keypoints={c: read(f"labels/keypoints/{c}") for c in cameras},
        keypoint_visibility={c: read(f"labels/keypoint_visibility/{c}") for c in cameras},
        keypoint_names=tuple(read_attrs(recording_dir / "labels").get("keypoint_names", ())),
    )
