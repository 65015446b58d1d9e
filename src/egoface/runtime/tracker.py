"""The Tracker (style.md item 9): `TrackerOptions` -> `Tracker.create` -> `tracker.track(frames, timestamp)` ->
`TrackResult`. Runs an exported `.onnx` file with onnxruntime and numpy.

    with Tracker.create(TrackerOptions("model.onnx", profile="alice")) as tracker:
        result = tracker.track({"eye_left": image, ...}, timestamp=0.0)   # uint8 (H, W) per camera, any size
        result.expressions("arkit")["jawOpen"]

Per frame: check the input -> the model's input transform (`InputSpec`) -> the ONNX session -> failure checks and
per-region confidence -> calibration (neutral re-centre, range of motion) -> hold and ease on failure -> One Euro
filters -> the result.

An anchor-calibrated encoder (its file's metadata has `egoface.anchor_memory`) needs a profile enrolled with that
model (`egoface enroll --profile NAME`): its `AnchorMemory` is fed as the graph's second input with every frame.
`AnchorEnroller` runs the model's enrollment graph (`<stem>.enroll.onnx` beside it) on captured anchor frames.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import onnxruntime as ort

from egoface.runtime.calibration import AnchorMemory, Calibrator, Profile, ProfileStore, RomOptions
from egoface.runtime.failure import FailureDetector, FailureOptions, HoldAndEase
from egoface.runtime.filters import OneEuroFilter, Smoothing
from egoface.runtime.ood import OodDetector
from egoface.runtime.preprocess import InputSpec
from egoface.runtime.result import TrackResult

__all__ = ["AnchorEnroller", "AnchorInput", "Frames", "Inference", "Tracker", "TrackerOptions", "read_metadata"]

#: Per-camera uint8 (H, W) images: a mapping by camera name or a sequence in the model's camera order; None marks a
#: camera that delivered no frame (flagged `disconnected`).
Frames = Mapping[str, np.ndarray | None] | Sequence[np.ndarray | None]
_MIN_SIDE = 8


@dataclass(frozen=True)
class AnchorInput:
    """A calibrated encoder's anchor inputs, from its file's `egoface.anchor_memory` metadata: the anchor memory of
    `size` float32 values (a profile's), cut into the per-frame graph's `inputs` (name, (k, ...) shape of a role's
    part; fed with a batch axis of 1) in order, the
    calibration `module`, the `anchors` in order, and its enrollment graph (`enroll_graph`, a file beside the
    model) with input `enroll_input` of shape `enroll_input_shape` (M, C, 1, H, W)."""

    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    size: int
    module: str
    anchors: tuple[str, ...]
    enroll_graph: str
    enroll_input: str
    enroll_input_shape: tuple[int, ...]
    model_id: str

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> AnchorInput | None:
        """None for a model without anchors."""
        text = metadata.get("egoface.anchor_memory")
        if text is None:
            return None
        layout = json.loads(text)
        if any("input" not in role for role in layout["roles"]):
            raise ValueError(
                f"this calibrated model was exported by an older egoface (format {metadata.get('egoface.format')}, "
                "one flat anchor input); export it again with `egoface export`"
            )
        return cls(
            inputs=tuple((role["input"], tuple(int(v) for v in role["shape"])) for role in layout["roles"]),
            size=int(layout["size"]),
            module=layout["module"],
            anchors=tuple(layout["anchors"]),
            enroll_graph=layout["enroll_graph"],
            enroll_input=layout["enroll_input"],
            enroll_input_shape=tuple(int(v) for v in layout["enroll_input_shape"]),
            model_id=metadata["egoface.model_id"],
        )

    def feeds(self, memory: np.ndarray) -> dict[str, np.ndarray]:
        """A profile's anchor memory (size,) -> the per-frame graph's inputs {name: (1, k, ...) float32}."""
        out, start = {}, 0
        for name, shape in self.inputs:
            count = math.prod(shape)
            out[name] = np.ascontiguousarray(memory[start : start + count], dtype=np.float32).reshape(1, *shape)
            start += count
        return out


@dataclass(frozen=True)
class TrackerOptions:
    """model_path: an exported `.onnx` file (`egoface export`); threads: onnxruntime intra-op threads; smoothing:
    One Euro parameters for eyes and face; profile: a profile name in `profile_dir` (created empty if missing, its
    range-of-motion statistics saved back on `close`), a `Profile`, or None (no calibration; an anchor-calibrated
    model needs a profile enrolled with it, `egoface enroll --profile NAME`); rom: range-of-motion
    calibration options; failure: failure-detection thresholds; ood: use the model's feature statistics for
    out-of-distribution detection when the file has them; spin: with threads > 1, onnxruntime's worker threads
    spin between frames (lowest latency for a bare tracking loop; turn it off when other threads of the process,
    e.g. live sources and servers, or other trackers share the cores: the spinning threads take the cores from
    them)."""

    model_path: str | os.PathLike[str]
    threads: int = 1
    smoothing: Smoothing = field(default_factory=Smoothing)
    profile: str | Profile | None = None
    profile_dir: str | os.PathLike[str] | None = None
    rom: RomOptions = field(default_factory=RomOptions)
    failure: FailureOptions = field(default_factory=FailureOptions)
    ood: bool = True
    spin: bool = True


@dataclass(frozen=True)
class Inference:
    """One forward pass, before calibration and filtering. expression (53,), free_expression (45,), gaze (2, 2)
    deg, features (F,); views (C, H, W) in [0, 1] (None where a camera gave no frame)."""

    expression: np.ndarray
    free_expression: np.ndarray
    gaze: np.ndarray
    features: np.ndarray
    views: list[np.ndarray | None]


class Tracker:
    """A running tracker: one onnxruntime session, the failure detector, calibration, filters. Not thread-safe;
    use one per stream. Create with `Tracker.create(options)`."""

    def __init__(self, options: TrackerOptions, session: ort.InferenceSession, metadata: Mapping[str, str]) -> None:
        self.options = options
        self.session = session
        self.metadata = dict(metadata)
        self.spec = InputSpec.from_metadata(metadata)
        self.cameras = self.spec.cameras
        self.model_name = metadata.get("egoface.model_name", "")
        self.expression_names: tuple[str, ...] = tuple(json.loads(metadata["egoface.expression_names"]))
        stats_text = metadata.get("egoface.feature_statistics")
        self.ood = OodDetector.from_json(stats_text) if stats_text and options.ood else None
        #: Why out-of-distribution detection is off, or None when it is on.
        self.ood_note = None if self.ood is not None else _ood_note(options.ood)
        self._store: ProfileStore | None = None
        if isinstance(options.profile, str):
            self._store = ProfileStore(options.profile_dir)
            self.profile: Profile | None = self._store.load_or_new(options.profile)
        else:
            self.profile = options.profile
        #: The calibrated encoder's anchor input, None for other models.
        self.anchor_input = AnchorInput.from_metadata(metadata)
        self._feeds: dict[str, np.ndarray] = {}  # inputs besides the images, the same every frame
        if self.anchor_input is not None:
            self._feeds.update(self.anchor_input.feeds(self._anchor_memory(self.anchor_input)))
        self.calibrator = Calibrator(self.profile, options.rom)
        self.detector = FailureDetector(self.cameras, options.failure, self.ood)
        self.hold = HoldAndEase(self.expression_names, options.failure)
        self.filter = _make_filter(self.expression_names, options.smoothing)
        self.frame_index = -1
        self.last_timestamp = -math.inf
        self.closed = False
        self._recentre: list[np.ndarray] | None = None  # raw expressions collected for a quick neutral re-centre
        self._recentre_seconds = 0.0
        self._recentre_start: float | None = None

    @classmethod
    def create(cls, options: TrackerOptions) -> Tracker:
        """Open the model file, read its metadata, build the session with `options.threads` threads; for a
        calibrated model, take its anchor memory from the profile."""
        session, metadata = _open_model(options.model_path, options.threads, spin=options.spin)
        return cls(options, session, metadata)

    def _anchor_memory(self, anchor_input: AnchorInput) -> np.ndarray:
        if self.profile is None:
            raise ValueError(
                f"{self.model_name or self.options.model_path} is an anchor-calibrated model ({anchor_input.module}, "
                f"anchors {', '.join(anchor_input.anchors)}): it needs a profile enrolled with it; run `egoface "
                "enroll --profile NAME --source SOURCE` with this model, then track with that profile"
            )
        return self.profile.anchor_memory(anchor_input.model_id, self.model_name, anchor_input.size)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Save the profile's updated calibration (when it came from the profile store) and free the session."""
        if self.closed:
            return
        self.closed = True
        if self._store is not None and self.profile is not None:
            self._store.save(self.profile)
        del self.session

    def recenter(self, seconds: float = 1.0) -> None:
        """Quick neutral re-centre: the mean raw expression of the confident frames of the next `seconds` becomes
        the profile's neutral (a session-only profile is made when there is none). The user should hold a relaxed
        face meanwhile."""
        self._recentre, self._recentre_seconds, self._recentre_start = [], seconds, None

    def infer(self, frames: Frames) -> Inference:
        """Run the model on one set of camera images; no state changes (enrollment and tests use this)."""
        return self._infer(self._check_frames(frames))

    def _infer(self, images: list[np.ndarray | None]) -> Inference:
        if self.closed:
            raise RuntimeError("the tracker is closed")
        height, width = self.spec.input_size
        views = [
            None if image is None else self.spec.view(image, camera)
            for image, camera in zip(images, self.cameras, strict=True)
        ]
        stacked = np.stack([np.zeros((height, width), np.float32) if v is None else v for v in views])  # (C, H, W)
        feeds = {"images": self.spec.normalize(stacked), **self._feeds}
        expression, free, gaze, features = self.session.run(None, feeds)
        return Inference(expression[0], free[0], gaze[0], features[0], views)

    def track(self, frames: Frames, timestamp: float) -> TrackResult:
        """One frame: images per camera and their capture time in seconds (strictly increasing)."""
        begin = time.perf_counter()
        if not math.isfinite(timestamp) or timestamp <= self.last_timestamp:
            raise ValueError(
                f"timestamps must be finite and strictly increasing: got {timestamp} s after {self.last_timestamp} s"
            )
        images = self._check_frames(frames)
        inference = self._infer(images)
        self.last_timestamp = timestamp
        self.frame_index += 1
        failures, confidence = self.detector.check(inference.views, images, inference.features)
        if not failures:
            self.calibrator.update(inference.expression)
            self._collect_neutral(inference.expression, timestamp)
        expression, gaze, held = self.hold(self.calibrator(inference.expression), inference.gaze, confidence, timestamp)
        smoothed = self.filter(np.concatenate([expression, gaze.ravel()]), timestamp)
        return TrackResult(
            timestamp=timestamp,
            frame_index=self.frame_index,
            expression=np.clip(smoothed[: len(expression)], 0.0, 1.0),
            gaze=smoothed[len(expression) :].reshape(2, 2),
            confidence=confidence,
            failures=failures,
            held=held,
            latency_ms=(time.perf_counter() - begin) * 1000.0,
        )

    def _collect_neutral(self, expression: np.ndarray, timestamp: float) -> None:
        if self._recentre is None:
            return
        if self._recentre_start is None:
            self._recentre_start = timestamp
        self._recentre.append(expression)
        if timestamp - self._recentre_start >= self._recentre_seconds:
            if self.profile is None:
                self.profile = Profile("session", model=self.model_name)
                self.calibrator.profile = self.profile
            self.profile.neutral = np.mean(self._recentre, axis=0).astype(np.float32)
            self._recentre = None

    def _check_frames(self, frames: Frames) -> list[np.ndarray | None]:
        return _check_frames(frames, self.cameras)


def _check_frames(frames: Frames, cameras: tuple[str, ...]) -> list[np.ndarray | None]:
    """Per camera in model order; raises naming the camera and what was expected."""
    expected = f"{len(cameras)} uint8 (H, W) images for cameras {list(cameras)}"
    if isinstance(frames, Mapping):
        unknown = sorted(set(frames) - set(cameras))
        missing = [c for c in cameras if c not in frames]
        if unknown or missing:
            raise ValueError(f"expected {expected}; unknown cameras {unknown}, missing {missing}")
        images = [frames[c] for c in cameras]
    elif isinstance(frames, Sequence | np.ndarray) and not isinstance(frames, str | bytes):
        images = list(frames)
        if len(images) != len(cameras):
            raise ValueError(f"expected {expected}, got {len(images)} images")
    else:
        raise TypeError(f"expected {expected} as a mapping or sequence, got {type(frames).__name__}")
    for camera, image in zip(cameras, images, strict=True):
        if image is None:
            continue
        if not isinstance(image, np.ndarray):
            raise TypeError(f"camera {camera!r}: expected a uint8 (H, W) numpy image, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise TypeError(f"camera {camera!r}: expected a uint8 (H, W) image, got dtype {image.dtype}")
        if image.ndim != 2 or min(image.shape) < _MIN_SIDE:
            raise ValueError(
                f"camera {camera!r}: expected a uint8 (H, W) image at least {_MIN_SIDE} px a side, "
                f"got shape {image.shape}"
            )
    return images


def _session(file: Path, threads: int, optimized: bool = True, spin: bool = True) -> ort.InferenceSession:
    """An onnxruntime session on the CPU with `threads` intra-op threads, spinning between runs or not (graph
    optimizations off when only the file's metadata is wanted)."""
    settings = ort.SessionOptions()
    settings.intra_op_num_threads = threads
    settings.inter_op_num_threads = 1
    settings.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    settings.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    settings.graph_optimization_level = level.ORT_ENABLE_ALL if optimized else level.ORT_DISABLE_ALL
    return ort.InferenceSession(str(file), settings, providers=["CPUExecutionProvider"])


def _open_model(
    path: str | os.PathLike[str], threads: int, optimized: bool = True, spin: bool = True
) -> tuple[ort.InferenceSession, dict[str, str]]:
    """An onnxruntime session on the CPU with `threads` intra-op threads, and the file's egoface metadata."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no model file at {file}; export one with `egoface export --out {file.name}`")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    session = _session(file, threads, optimized, spin)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    required = ("egoface.cameras", "egoface.input_size", "egoface.normalization", "egoface.expression_names")
    missing = [key for key in required if key not in metadata]
    if missing:
        raise ValueError(f"{file} has no egoface metadata ({', '.join(missing)}); export it with `egoface export`")
    return session, metadata


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """An exported model file's egoface metadata (`egoface.runtime.export.METADATA_KEYS`)."""
    return _open_model(path, 1, optimized=False)[1]


class AnchorEnroller:
    """A calibrated model's enrollment graph (`<stem>.enroll.onnx`, named by its metadata): the captured frames of
    each anchor -> the user's `AnchorMemory`. Each anchor's frames go through the model's input transform and their
    per-pixel median is the anchor image (robust to a blink or a glance away during the hold)."""

    def __init__(self, model_path: str | os.PathLike[str], threads: int = 1) -> None:
        metadata = read_metadata(model_path)
        anchor_input = AnchorInput.from_metadata(metadata)
        if anchor_input is None:
            raise ValueError(f"{model_path} is not an anchor-calibrated model: it has no enrollment graph")
        path = Path(model_path).with_name(anchor_input.enroll_graph)
        if not path.is_file():
            raise FileNotFoundError(
                f"the calibrated model {model_path} needs its enrollment graph {path} beside it (`egoface export` "
                "writes both files; copy them together)"
            )
        self.session, enroll_metadata = _open_enroll_graph(path, threads)
        if enroll_metadata.get("egoface.model_id") != anchor_input.model_id:
            raise ValueError(
                f"{path} belongs to model {enroll_metadata.get('egoface.model_id')}, not to {model_path} "
                f"({anchor_input.model_id}): export the model again to write a matching pair"
            )
        self.anchor_input = anchor_input
        self.model_name = metadata.get("egoface.model_name", "")
        self.spec = InputSpec.from_metadata(metadata)

    def anchor_image(self, frames: Sequence[Frames]) -> np.ndarray:
        """Complete frames (every camera present) of one anchor -> its normalized image (C, 1, H, W) float32."""
        if not frames:
            raise ValueError("an anchor needs at least one captured frame")
        views = []
        for frame in frames:
            images = _check_frames(frame, self.spec.cameras)
            complete = [image for image in images if image is not None]
            if len(complete) != len(images):
                raise ValueError("enrollment needs every camera's image in every captured frame")
            views.append([self.spec.view(image, c) for image, c in zip(complete, self.spec.cameras, strict=True)])
        median = np.median(np.asarray(views, np.float32), axis=0)  # (C, H, W) in [0, 1]
        return self.spec.normalize(median)[0]

    def enroll(self, captured: Mapping[str, Sequence[Frames]]) -> AnchorMemory:
        """captured: anchor name -> its frames, for every anchor of the model -> the memory the Tracker feeds."""
        missing = [name for name in self.anchor_input.anchors if not captured.get(name)]
        if missing:
            raise ValueError(f"no frames captured for anchors {missing}; the model needs {self.anchor_input.anchors}")
        images = np.stack([self.anchor_image(captured[name]) for name in self.anchor_input.anchors])  # (M, C, 1, H, W)
        (memory,) = self.session.run(None, {self.anchor_input.enroll_input: images})
        return AnchorMemory(
            self.anchor_input.model_id,
            self.model_name,
            self.anchor_input.module,
            self.anchor_input.anchors,
            memory.astype(np.float32),
            min(len(captured[name]) for name in self.anchor_input.anchors),
        )


def _open_enroll_graph(path: Path, threads: int) -> tuple[ort.InferenceSession, dict[str, str]]:
    session = _session(path, threads)
    return session, dict(session.get_modelmeta().custom_metadata_map)


def _ood_note(enabled: bool) -> str:
    if not enabled:
        return "out-of-distribution detection is off (TrackerOptions.ood=False)"
    return "out-of-distribution detection is off: the model file has no feature statistics (export with --data)"


def _make_filter(names: tuple[str, ...], smoothing: Smoothing) -> OneEuroFilter:
    """One filter over [expression (53), gaze (4)]: the eye parameters for `eye*` shapes and gaze, the face
    parameters for the rest; a disabled group gets an infinite cutoff (alpha = 1: values pass through)."""
    eyes = np.array([n.startswith("eye") for n in names] + [True] * 4)
    gaze = np.array([False] * len(names) + [True] * 4)

    def column(attribute: str) -> np.ndarray:
        value_eyes = getattr(smoothing.eyes, attribute) if smoothing.eyes.enabled else math.inf
        value_face = getattr(smoothing.face, attribute) if smoothing.face.enabled else math.inf
        return np.where(eyes, value_eyes, value_face)

    beta = column("beta")
    beta = np.where(gaze & np.isfinite(beta), beta * smoothing.gaze_beta_scale, beta)
    return OneEuroFilter(column("min_cutoff"), np.where(np.isfinite(beta), beta, 0.0), column("d_cutoff"))
