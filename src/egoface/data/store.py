"""The on-disk dataset store (zarr v3): atomic, resumable, concurrent writes; reading; info; integrity check.

Layout (docs/datasheet.md has the full tree)::

    root/zarr.json                                 group, attrs {"egoface": {"store": "dataset", "format": 1}}
    root/<domain>/<subject>/zarr.json              subject group: SubjectInfo attrs
    root/<domain>/<subject>/<recording>/           recording group: images/, timestamps, labels/, _complete.json
    root/oracle/real/<subject>/<recording>/labels/ true labels of the real domain (evaluation only)
    root/.tmp/                                     recordings being written, and their lock files

A recording is written into `root/.tmp/<key>/` and renamed into place only when complete, with its completion
marker (per-file SHA-256) already inside, so an interrupted writer never leaves a visible half recording; the
next `DatasetStore(root)` removes temporaries whose writer has died (their lock is free). Writers of different
recordings (threads or processes, same or different subjects) are safe: each recording is guarded by its own
`flock`, group metadata is created with no-clobber links, and the index is rebuilt by scanning directories.
Locks use POSIX `fcntl.flock` and need a local file system (or one with working flock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from egoface.data._tree import (
    FORMAT,
    MARKER,
    RecordingRef,
    array_paths,
    open_array,
    read_array,
    read_attrs,
    read_labels,
    read_marker,
    read_ood,
    require_role,
    scan_recordings,
)
from egoface.data.oracle import ORACLE_DIR, ORACLE_DOMAIN, ORACLE_ROLE
from egoface.data.schema import (
    DOMAINS,
    RECORDING_ARRAYS,
    SPLITS,
    TRUE_LABEL_ARRAYS,
    RecordingData,
    SubjectInfo,
    check_name,
    spec_for,
    validate_recording,
)

__all__ = ["IMAGE_SHARD_FRAMES", "LABEL_CHUNK_FRAMES", "DatasetStore", "check_dataset", "dataset_info"]

#: Frames per image shard file; inside a shard every frame is its own compressed chunk (cheap random access).
IMAGE_SHARD_FRAMES = 64
#: Frames per chunk of the small per-frame arrays (timestamps, labels).
LABEL_CHUNK_FRAMES = 256
TMP_DIR = ".tmp"
DATASET_ROLE = "dataset"
_COMPRESSORS = (ZstdCodec(level=1), Crc32cCodec())

Progress = Callable[[int, int], None]


class DatasetStore:
    """A dataset store rooted at `root` (created if missing). Writing and reading of whole recordings."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        _ensure_group(self.root, {"egoface": {"store": DATASET_ROLE, "format": FORMAT}})
        _ensure_group(self.root / ORACLE_DIR, {"egoface": {"store": ORACLE_ROLE, "format": FORMAT}})
        (self.root / TMP_DIR).mkdir(exist_ok=True)
        self.clean_temporaries()

    # ------------------------------------------------------------------ writing

    def has_recording(self, subject: str, recording: str) -> bool:
        """True when the recording is complete in the store (resume: skip it)."""
        return self._find(subject, recording) is not None

    def write_recording(self, data: RecordingData) -> bool:
        """Store one recording atomically; returns False (and writes nothing) if it is already complete.

        Real-domain true labels go to `oracle/real/<subject>/<recording>/`, never next to the images.
        """
        validate_recording(data)
        info = data.subject
        for other in DOMAINS:
            if other != info.domain and (self.root / other / info.subject).exists():
                raise ValueError(f"subject {info.subject!r} already exists in domain {other!r}, not {info.domain!r}")
        key = f"{info.domain}~{info.subject}~{data.recording}"
        tmp = self.root / TMP_DIR / key
        with _locked(tmp.with_name(key + ".lock"), blocking=True):
            if self.has_recording(info.subject, data.recording):
                return False
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                oracle_part = self._write_parts(data, tmp)
                self._publish(data, tmp, oracle_part)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return True

    def clean_temporaries(self) -> list[Path]:
        """Remove temporaries of writers that are gone (their lock is free); returns what was removed."""
        removed = []
        for entry in sorted((self.root / TMP_DIR).iterdir()):
            if not entry.is_dir():
                continue
            with contextlib.suppress(BlockingIOError), _locked(entry.with_name(entry.name + ".lock"), blocking=False):
                shutil.rmtree(entry)
                removed.append(entry)
        return removed

    def _write_parts(self, data: RecordingData, tmp: Path) -> bool:
        """Write the training part (and the real domain's withheld labels) under `tmp`; True if the latter."""
        info = data.subject
        arrays = data.arrays()
        hide = info.domain == ORACLE_DOMAIN
        withheld = {p: a for p, a in arrays.items() if hide and spec_for(p).true_label}
        base = {"domain": info.domain, "subject": info.subject}
        train = zarr.open_group(tmp / "train", mode="w", attributes={**base, **data.recording_attrs()})
        for path, array in arrays.items():
            if path not in withheld:
                _write_array(train, path, array)
        label_attrs = {"keypoint_names": list(data.labels.keypoint_names)} if data.labels is not None else {}
        if label_attrs and not withheld:
            train["labels"].attrs.update(label_attrs)
        _seal(tmp / "train", data.frames)
        if not withheld:
            return False
        oracle = zarr.open_group(tmp / "oracle", mode="w", attributes={**base, "recording": data.recording})
        for path, array in withheld.items():
            _write_array(oracle, path, array)
        oracle["labels"].attrs.update(label_attrs)
        _seal(tmp / "oracle", data.frames)
        return True

    def _publish(self, data: RecordingData, tmp: Path, oracle_part: bool) -> None:
        info = data.subject
        subject_attrs = info.to_attrs()
        if oracle_part:
            oracle_subject = self.root / ORACLE_DIR / info.domain / info.subject
            _ensure_group(oracle_subject.parent, {})
            _ensure_group(oracle_subject, {"subject": info.subject, "domain": info.domain})
            final = oracle_subject / data.recording
            shutil.rmtree(final, ignore_errors=True)  # left by a writer interrupted between the two renames
            os.rename(tmp / "oracle", final)
        subject_dir = self.root / info.domain / info.subject
        _ensure_group(subject_dir.parent, {})
        _ensure_group(subject_dir, subject_attrs)
        os.rename(tmp / "train", subject_dir / data.recording)

    # ------------------------------------------------------------------ reading

    def recordings(self, domains: tuple[str, ...] = DOMAINS) -> list[RecordingRef]:
        """Every complete recording (index rebuilt by scanning)."""
        return scan_recordings(self.root, domains)

    def subjects(self, domains: tuple[str, ...], splits: tuple[str, ...]) -> list[str]:
        """The sorted names of the subjects of `splits` with a complete recording of `domains`."""
        names = {ref.subject for ref in self.recordings(domains)}
        return sorted(name for name in names if self.subject_info(name).split in splits)

    def subject_info(self, subject: str) -> SubjectInfo:
        for domain in DOMAINS:
            path = self.root / domain / check_name("subject", subject)
            if (path / "zarr.json").exists():
                return SubjectInfo.from_attrs(read_attrs(path))
        raise KeyError(f"no subject {subject!r} in {self.root}")

    def read_recording(self, subject: str, recording: str, frames: slice | None = None) -> RecordingData:
        """A recording as stored in the training tree (eagerly, `frames` of it); real-domain labels are None."""
        ref = self._find(subject, recording)
        if ref is None:
            raise KeyError(f"no complete recording {subject}/{recording} in {self.root}")
        info = self.subject_info(subject)
        group = zarr.open_group(ref.path, mode="r")
        select = frames if frames is not None else slice(None)
        attrs = read_attrs(ref.path)
        paths = array_paths(group)
        return RecordingData(
            subject=info,
            recording=recording,
            images={c: read_array(group, f"images/{c}", select) for c in info.cameras},
            timestamps=read_array(group, "timestamps", select),
            labels=read_labels(ref.path, info.cameras, select) if "labels/expression" in paths else None,
            ood=read_array(group, "labels/ood", select) if "labels/ood" in paths else None,
            segments=attrs.get("segments"),
            attrs=attrs.get("attrs", {}),
        )

    def read_ood(self, subject: str, recording: str) -> np.ndarray | None:
        """The recording's `labels/ood` flags (N,) bool (None when it has none), without reading its images."""
        ref = self._find(subject, recording)
        if ref is None:
            raise KeyError(f"no complete recording {subject}/{recording} in {self.root}")
        return read_ood(ref.path)

    def _find(self, subject: str, recording: str) -> RecordingRef | None:
        for domain in DOMAINS:
            path = self.root / domain / check_name("subject", subject) / check_name("recording", recording)
            marker = read_marker(path)
            if marker is not None:
                return RecordingRef(domain, subject, recording, path, int(marker["frames"]))
        return None


# ---------------------------------------------------------------------- writing helpers


def _write_array(group: zarr.Group, path: str, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    if path.startswith("images/"):
        chunks = (1, *array.shape[1:])
        shards: tuple[int, ...] | None = (IMAGE_SHARD_FRAMES, *array.shape[1:])
    else:
        chunks, shards = (LABEL_CHUNK_FRAMES, *array.shape[1:]), None
    target = group.create_array(
        path, shape=array.shape, dtype=array.dtype, chunks=chunks, shards=shards, compressors=_COMPRESSORS
    )
    target[...] = array


def _seal(directory: Path, frames: int) -> None:
    """Write the completion marker: frame count and the SHA-256 of every file (and of them all)."""
    files = _file_hashes(directory)
    overall = hashlib.sha256("".join(f"{p}:{h}\n" for p, h in files.items()).encode()).hexdigest()
    _ensure_group(directory / MARKER, {"format": FORMAT, "frames": frames, "sha256": overall, "files": files})


def _file_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of every file below `directory` but the marker, by relative POSIX path."""
    out = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and relative.parts[0] != MARKER:
            out[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _ensure_group(directory: Path, attrs: dict[str, Any]) -> None:
    """Create the zarr group `directory` with `attrs` if missing (no-clobber, race-free); else check its attrs."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = directory / "zarr.json"
    if not meta.exists():
        tmp = directory / f".zarr.json.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs}, indent=2))
        try:
            os.link(tmp, meta)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    found = read_attrs(directory)
    if found != attrs:
        differ = sorted(k for k in set(found) | set(attrs) if found.get(k) != attrs.get(k))
        raise ValueError(f"{directory} already exists with different attributes ({', '.join(differ)})")


@contextlib.contextmanager
def _locked(path: Path, blocking: bool) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing); raises BlockingIOError when busy and not blocking."""
    with open(path, "a+b") as file:
        fcntl.flock(file, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


# ---------------------------------------------------------------------- info and check


def dataset_info(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Counts of a store: `subjects`, `frames`, `domains` (per domain: subjects, recordings, frames, `splits`),
    `cameras`, `resolution` ({camera: [H, W]}), `bytes` on disk (everything under root), `oracle_recordings`."""
    root = Path(root)
    require_role(root, DATASET_ROLE)
    domains: dict[str, Any] = {}
    cameras: dict[str, list[int]] = {}
    subjects: set[str] = set()
    for domain in DOMAINS:
        entry = _counts()
        entry["splits"] = {split: _counts() for split in SPLITS}
        for ref in scan_recordings(root, (domain,)):
            split = read_attrs(ref.path.parent)["split"]
            for counts in (entry, entry["splits"][split]):
                counts["_subjects"].add(ref.subject)
                counts["recordings"] += 1
                counts["frames"] += ref.frames
            subjects.add(ref.subject)
            for image in sorted(p for p in (ref.path / "images").iterdir() if p.is_dir()):
                shape = json.loads((image / "zarr.json").read_text())["shape"]
                cameras.setdefault(image.name, shape[1:])
        domains[domain] = _finish_counts(entry)
    return {
        "subjects": len(subjects),
        "frames": sum(d["frames"] for d in domains.values()),
        "domains": domains,
        "cameras": sorted(cameras),
        "resolution": {c: cameras[c] for c in sorted(cameras)},
        "bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
        "oracle_recordings": len(scan_recordings(root / ORACLE_DIR, (ORACLE_DOMAIN,))),
    }


def _counts() -> dict[str, Any]:
    return {"_subjects": set(), "recordings": 0, "frames": 0}


def _finish_counts(counts: dict[str, Any]) -> dict[str, Any]:
    out = {"subjects": len(counts.pop("_subjects")), **counts}
    if "splits" in out:
        out["splits"] = {split: _finish_counts(c) for split, c in out["splits"].items()}
    return out


def check_dataset(root: str | os.PathLike[str], progress: Progress | None = None) -> dict[str, Any]:
    """Integrity check: reads every chunk of every array and validates everything against the schema.

    Returns `{"ok", "problems": [{"path", "error"}], "recordings", "chunks"}`; a damaged file is named by its path.
    Checked: completion markers and per-file SHA-256, every chunk decodes (zstd + CRC32C), shapes and dtypes against
    `RECORDING_ARRAYS`, one N per recording, keypoint counts, the cameras of the subject, the domain policy (no true
    labels in the training tree of `real`/`unlabeled`), and that every real recording has its withheld labels.
    `progress(done, total)` is called after each chunk.
    """
    root = Path(root)
    problems: list[dict[str, str]] = []
    try:
        require_role(root, DATASET_ROLE)
    except (OSError, ValueError) as error:
        return {"ok": False, "problems": [{"path": str(root), "error": str(error)}], "recordings": 0, "chunks": 0}
    plans: list[tuple[Path, str, zarr.Array]] = []
    recordings = 0
    trees = [(root, DOMAINS, False), (root / ORACLE_DIR, (ORACLE_DOMAIN,), True)]
    for tree, domains, withheld in trees:
        for recording_dir in _recording_dirs(tree, domains):
            recordings += 1
            found = _check_recording(root, recording_dir, withheld, problems)
            plans.extend((recording_dir, path, array) for path, array in found)
    total = sum(_chunk_count(array) for _, _, array in plans)
    done = 0
    for recording_dir, path, array in plans:
        step = (array.shards or array.chunks)[0]
        for index in range(_chunk_count(array)):
            try:
                array[index * step : (index + 1) * step]
            except Exception as error:  # any decode failure is a finding, named by its chunk file
                key = "/".join(["c", str(index)] + ["0"] * (array.ndim - 1))
                problems.append(_problem(recording_dir / path / key, f"chunk unreadable: {error}"))
            done += 1
            if progress is not None:
                progress(done, total)
    return {"ok": not problems, "problems": problems, "recordings": recordings, "chunks": total}


def _recording_dirs(tree: Path, domains: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for domain in domains:
        if (tree / domain).is_dir():
            out.extend(r for s in sorted((tree / domain).iterdir()) if s.is_dir() for r in sorted(s.iterdir()))
    return [r for r in out if r.is_dir()]


def _chunk_count(array: zarr.Array) -> int:
    return math.ceil(array.shape[0] / (array.shards or array.chunks)[0])


def _problem(path: Path, error: str) -> dict[str, str]:
    return {"path": str(path), "error": error}


def _check_recording(
    root: Path, recording_dir: Path, withheld: bool, problems: list[dict[str, str]]
) -> list[tuple[str, zarr.Array]]:
    """Check one recording's marker, checksums and schema; returns its arrays for the chunk pass."""
    marker = read_marker(recording_dir)
    if marker is None:
        problems.append(_problem(recording_dir, f"recording visible without its completion marker {MARKER}"))
        return []
    files = _file_hashes(recording_dir)
    for name in sorted(set(files) | set(marker["files"])):
        if name not in files:
            problems.append(_problem(recording_dir / name, "file listed in the completion marker is missing"))
        elif name not in marker["files"]:
            problems.append(_problem(recording_dir / name, "file not listed in the completion marker"))
        elif files[name] != marker["files"][name]:
            problems.append(_problem(recording_dir / name, "content checksum mismatch (file damaged or changed)"))
    domain, subject = recording_dir.parent.parent.name, recording_dir.parent.name
    try:
        group = zarr.open_group(recording_dir, mode="r")
        arrays = {path: open_array(group, path) for path in array_paths(group)}
        subject_attrs = read_attrs(root / domain / subject)
        info = SubjectInfo.from_attrs(subject_attrs)
    except Exception as error:  # unreadable metadata is a finding
        problems.append(_problem(recording_dir, f"metadata unreadable: {error}"))
        return []
    if info.domain != domain:
        problems.append(_problem(root / domain / subject, f"subject attrs say domain {info.domain!r}"))
    errors = _schema_errors(arrays, info, int(marker["frames"]), withheld)
    if domain == "unlabeled" and "segments" in group.attrs:
        errors.append(("zarr.json", "unlabeled recordings carry no segment table"))
    if domain == ORACLE_DOMAIN:
        twin = (root / domain if withheld else root / ORACLE_DIR / domain) / subject / recording_dir.name
        if read_marker(twin) is None:
            errors.append(("", f"its counterpart {twin} is missing or incomplete (interrupted write: rerun it)"))
    problems.extend(_problem(recording_dir / path, error) for path, error in errors)
    return list(arrays.items())


def _schema_errors(arrays: dict[str, Any], info: SubjectInfo, frames: int, withheld: bool) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if withheld:
        expected = {p.replace("{camera}", c) for p in TRUE_LABEL_ARRAYS for c in info.cameras}
    else:
        expected = {
            s.path.replace("{camera}", c)
            for s in RECORDING_ARRAYS
            if s.required and info.domain in s.domains
            for c in info.cameras
        }
    allowed = expected | ({"labels/ood"} if not withheld else set())
    errors += [(p, "required array missing") for p in sorted(expected - set(arrays))]
    errors += [(p, f"array not allowed here (domain {info.domain})") for p in sorted(set(arrays) - allowed)]
    keypoints = {a.shape[1] for p, a in arrays.items() if p.startswith("labels/keypoint") and a.ndim >= 2}
    if len(keypoints) > 1:
        errors.append(("labels", f"keypoint counts differ across cameras: {sorted(keypoints)}"))
    for path, array in sorted(arrays.items()):
        try:
            spec = spec_for(path)
        except KeyError as error:
            errors.append((path, str(error)))
            continue
        height, width = array.shape[1:3] if spec.path == "images/{camera}" else (0, 0)
        want = spec.expected_shape(frames, height, width, next(iter(keypoints), 0))
        if tuple(array.shape) != want or array.dtype != np.dtype(spec.dtype):
            errors.append((path, f"expected {spec.dtype} {want}, found {array.dtype} {tuple(array.shape)}"))
    return errors
