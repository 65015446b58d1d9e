"""Evaluating a tracker on held-out identities, the way both papers measure.

For every recording of the chosen split and domains: the predictor runs on every frame; true labels come from the
training tree (synthetic) or the evaluation-only reader (real); the Universal metrics (mesh, lower face, mouth shape,
gaze, photometric) and REFA's (semantic accuracy, neutralness, smoothness, eye and mouth closure) are computed, then
aggregated recording -> subject -> dataset per domain, with per-expression and per-segment breakdowns and, when
asked, the error attribution (`egoface.eval.breakdown.error_attribution`, aggregated the same way). Per-frame
latency is the predictor's wall time on single frames (batch 1), median and 99th percentile.

Predictors whose input is not images (the keypoint and ground-truth-mesh baselines, `egoface.eval.baselines`)
declare `needs` and implement `predict_frames`: they receive the frame numbers and an `EvaluationTruth`, which reads a
recording with its true labels (the real domain's from the evaluation-only tree), and derive their input from those.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader

from egoface.data import SPLITS, DatasetStore, HeadsetDataset, OracleReader, RecordingData, SubjectInfo, collate
from egoface.eval.breakdown import aggregate, error_attribution, per_expression_errors, per_segment_errors
from egoface.eval.metrics import FaceTrack, frame_errors, photometric_l1
from egoface.eval.refa_metrics import refa_metrics
from egoface.eval.subjects import subject_rig
from egoface.eval.visualize import FrontalFace
from egoface.face.names import NUM_EXPRESSIONS
from egoface.models import TrackerModel, normalize_images

__all__ = [
    "METRIC_KEYS",
    "DomainEvaluation",
    "EnrollingPredictor",
    "Evaluation",
    "EvaluationTruth",
    "LabelInputPredictor",
    "ModelPredictor",
    "NeutralPredictor",
    "Predictor",
    "RecordingEvaluation",
    "evaluate",
]

#: The keys of every domain's entry in `metrics.json`.
METRIC_KEYS: tuple[str, ...] = (
    "mesh_l2_mm", "lower_face_mesh_l2_mm", "mouth_shape_l2_mm", "gaze_error_deg", "photometric_l1",
    "semantic_accuracy", "neutralness", "smoothness", "eye_closure", "mouth_closure", "latency_ms_p50",
)  # fmt: skip
_LATENCY_FRAMES = 64
_PHOTOMETRIC_SIZE = 128


class Predictor(Protocol):
    """A tracker as evaluation sees it: images (B, C, 1, H, W) float in [0, 1], cameras in `cameras` order, left
    cameras flipped, resized to `resolution` (H, W) -> expression (B, 53) and gaze (B, 2, 2) deg."""

    name: str
    cameras: tuple[str, ...]
    resolution: tuple[int, int]

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


class EvaluationTruth:
    """Recordings of the store at `root` with their true labels, for predictors whose input is derived from them:
    synthetic labels from the training tree, real ones from the evaluation-only tree. Caches the last recording."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.store = DatasetStore(root)
        self._last: tuple[tuple[str, str], RecordingData] | None = None

    def recording(self, subject: str, recording: str) -> RecordingData:
        """The whole recording (images, segments, subject) with `labels` set to its true labels."""
        if self._last is None or self._last[0] != (subject, recording):
            data = self.store.read_recording(subject, recording)
            if data.labels is None and data.subject.domain == "real":
                data = replace(data, labels=OracleReader(self.root).labels(subject, recording))
            if data.labels is None:
                raise ValueError(f"{subject}/{recording} ({data.subject.domain}) has no true labels")
            self._last = ((subject, recording), data)
        return self._last[1]


@runtime_checkable
class LabelInputPredictor(Protocol):
    """A predictor that builds its own input from the evaluated recording rather than reading the tracker's camera
    images (`needs`: `keypoints` or `mesh` from true labels, `detected_keypoints` from a keypoint detector on the
    images): `predict_frames(truth, subject, recording, frames (B,) int)` -> expression (B, 53), gaze (B, 2, 2) deg."""

    name: str
    needs: str

    def predict_frames(
        self, truth: EvaluationTruth, subject: str, recording: str, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class EnrollingPredictor(Protocol):
    """An image predictor calibrated per user: `evaluate` calls `enroll_subject(root, info)` before each subject's
    recordings (the calibrated encoder's anchor enrollment, `egoface.eval.calibrated`)."""

    def enroll_subject(self, root: str, info: SubjectInfo) -> None: ...


class ModelPredictor:
    """A trained image tracker: its own config says which cameras, at which size, normalized how."""

    def __init__(self, model: TrackerModel, name: str) -> None:
        self.model = model.eval()
        self.name = name
        self.cameras: tuple[str, ...] = tuple(model.config.cameras)
        height, width = model.config.input_size
        self.resolution: tuple[int, int] = (height, width)

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            output = self.model(normalize_images(images, self.model.config))
        return output.expression.numpy(), output.gaze.numpy()


@dataclass
class NeutralPredictor:
    """The trivial baseline: the neutral face, eyes straight ahead, whatever the images."""

    cameras: tuple[str, ...]
    resolution: tuple[int, int] = (64, 64)
    name: str = "neutral"

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        batch = images.shape[0]
        return np.zeros((batch, NUM_EXPRESSIONS), np.float32), np.zeros((batch, 2, 2), np.float32)


@dataclass
class RecordingEvaluation:
    """One recording: its metrics, breakdowns, and the prediction and truth tracks (for plots). attribution:
    `error_attribution` (group -> mesh L2 mm), when the evaluation asked for it."""

    domain: str
    subject: str
    recording: str
    fps: float
    segments: list[dict[str, Any]]
    prediction: FaceTrack
    truth: FaceTrack
    metrics: dict[str, float]
    per_expression: dict[str, float]
    per_segment: dict[str, dict[str, float]]
    attribution: dict[str, float] | None = None


@dataclass
class DomainEvaluation:
    """One domain: `dataset` metrics (mean over subjects of the mean over their recordings), per subject, per
    expression (mean over recordings), the recordings, and the error attribution aggregated as the metrics (None
    unless asked for)."""

    domain: str
    dataset: dict[str, float]
    per_subject: dict[str, dict[str, float]]
    per_expression: dict[str, float]
    recordings: list[RecordingEvaluation] = field(default_factory=list)
    attribution: dict[str, float] | None = None


@dataclass
class Evaluation:
    """One model evaluated on the store at `root`: per domain results and the per-frame latency (ms)."""

    model: str
    root: str
    split: str
    domains: dict[str, DomainEvaluation]
    latency_ms_p50: float
    latency_ms_p99: float

    def to_json(self) -> dict[str, Any]:
        """`metrics.json`: per domain the `METRIC_KEYS` (NaN -> null), its subjects, the latency, and the error
        attribution (`attribution`: group -> mesh L2 mm) when it was computed."""
        out: dict[str, Any] = {"model": self.model, "data": self.root, "split": self.split}
        for name, domain in self.domains.items():
            entry: dict[str, Any] = {key: _finite_or_none(domain.dataset.get(key)) for key in METRIC_KEYS}
            entry["latency_ms_p50"] = self.latency_ms_p50
            entry["subjects"] = sorted(domain.per_subject)
            entry["recordings"] = len(domain.recordings)
            if domain.attribution is not None:
                entry["attribution"] = domain.attribution
            out[name] = entry
        out["latency_ms_p50"], out["latency_ms_p99"] = self.latency_ms_p50, self.latency_ms_p99
        return out


def evaluate(
    predictor: Predictor | LabelInputPredictor,
    root: str,
    split: str = "test",
    domains: Sequence[str] = ("synthetic", "real"),
    photometric_frames: int = 6,
    on_recording: Callable[[str, str], None] | None = None,
    attribution: bool = False,
) -> Evaluation:
    """Evaluate `predictor` on every recording of `domains` in the store at `root` whose subject is in `split`
    (one split, a comma-separated list such as `val,test`, or `all`); `attribution` adds `error_attribution`."""
    splits = SPLITS if split == "all" else tuple(part.strip() for part in split.split(","))
    unknown = [part for part in splits if part not in SPLITS]
    if unknown:
        raise ValueError(f"split must be one of {SPLITS}, a comma-separated list of them, or 'all'; got {split!r}")
    store = DatasetStore(root)
    truth = EvaluationTruth(root)
    results: dict[str, DomainEvaluation] = {}
    latencies: list[float] = []
    for domain in domains:
        refs = [ref for ref in store.recordings((domain,)) if store.subject_info(ref.subject).split in splits]
        if not refs:
            continue
        evaluations = []
        for ref in refs:
            evaluation = _evaluate_recording(
                predictor, store, truth, root, domain, ref.subject, ref.recording, ref.frames, photometric_frames,
                latencies, attribution,
            )  # fmt: skip
            evaluations.append(evaluation)
            if on_recording is not None:
                on_recording(ref.subject, ref.recording)
        summary = aggregate([(e.subject, e.metrics) for e in evaluations])
        per_expression = {
            name: float(np.mean([e.per_expression[name] for e in evaluations]))
            for name in evaluations[0].per_expression
        }
        attributed = None
        if attribution:
            attributed = aggregate([(e.subject, e.attribution or {}) for e in evaluations]).dataset
        results[domain] = DomainEvaluation(
            domain, summary.dataset, summary.per_subject, per_expression, evaluations, attributed
        )
    if not results:
        raise ValueError(f"no {split} recordings of the domains {list(domains)} in {root}")
    return Evaluation(
        model=predictor.name,
        root=str(root),
        split=split,
        domains=results,
        latency_ms_p50=float(np.percentile(latencies, 50)),
        latency_ms_p99=float(np.percentile(latencies, 99)),
    )


def _evaluate_recording(
    predictor: Predictor | LabelInputPredictor,
    store: DatasetStore,
    truth: EvaluationTruth,
    root: str,
    domain: str,
    subject: str,
    recording: str,
    num_frames: int,
    photometric_frames: int,
    latencies: list[float],
    attribution: bool,
) -> RecordingEvaluation:
    info = store.subject_info(subject)
    head = store.read_recording(subject, recording, frames=slice(0, 1))  # attributes and segments, one frame
    fps = float(head.attrs.get("fps", 30.0))
    if isinstance(predictor, LabelInputPredictor):
        expression, gaze = _predict_from_labels(predictor, truth, subject, recording, num_frames, latencies)
        true_labels = truth.recording(subject, recording).labels
        assert true_labels is not None  # EvaluationTruth guarantees it
        true_expression, true_gaze = true_labels.expression, true_labels.gaze
    else:
        expression, gaze, true_expression, true_gaze = _predict_images(
            predictor, root, domain, info, head, num_frames, latencies
        )
    prediction, truth_track = FaceTrack(expression, gaze), FaceTrack(true_expression, true_gaze)
    rig = subject_rig(info)
    errors = frame_errors(prediction, truth_track, rig)
    segments = [dict(row) for row in head.segments or []]
    metrics = errors.mean() | refa_metrics(expression, segments, fps, rig)
    chosen = np.linspace(0, num_frames - 1, photometric_frames).round().astype(int)
    metrics["photometric_l1"] = photometric_l1(prediction, truth_track, FrontalFace(info, _PHOTOMETRIC_SIZE), chosen)
    return RecordingEvaluation(
        domain=domain,
        subject=subject,
        recording=recording,
        fps=fps,
        segments=segments,
        prediction=prediction,
        truth=truth_track,
        metrics=metrics,
        per_expression=per_expression_errors(expression, true_expression),
        per_segment=per_segment_errors(errors, segments),
        attribution=error_attribution(prediction, truth_track, rig) if attribution else None,
    )


def _predict_images(
    predictor: Predictor,
    root: str,
    domain: str,
    info: SubjectInfo,
    head: RecordingData,
    num_frames: int,
    latencies: list[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run an image predictor over a recording (`head`: its first frame) -> (expression, gaze, true expression,
    true gaze) of all frames."""
    subject, recording = info.subject, head.recording
    if isinstance(predictor, EnrollingPredictor):
        predictor.enroll_subject(root, info)
    dataset = HeadsetDataset(
        root, domains=(domain,), splits=(info.split,), subjects=[subject], cameras=predictor.cameras,
        resolution=predictor.resolution,
    )  # fmt: skip
    expression = np.zeros((num_frames, NUM_EXPRESSIONS), np.float32)
    gaze = np.zeros((num_frames, 2, 2), np.float32)
    true_expression, true_gaze = np.zeros_like(expression), np.zeros_like(gaze)
    for batch in DataLoader(dataset, batch_size=64, collate_fn=collate):
        mine = np.array([name == recording for name in batch.recordings])  # the subject's other recordings wait
        rows = batch.frames.numpy()[mine]
        with torch.no_grad():
            predicted_expression, predicted_gaze = predictor.predict(batch.images[mine])
        expression[rows], gaze[rows] = predicted_expression, predicted_gaze
        if batch.expression is not None:
            true_expression[rows], true_gaze[rows] = batch.expression[mine].numpy(), batch.gaze[mine].numpy()
        if len(latencies) < _LATENCY_FRAMES:
            latencies.extend(_latency_ms(predictor, batch.images[: _LATENCY_FRAMES - len(latencies)]))
    if domain == "real":
        withheld = OracleReader(root).labels(subject, recording)
        true_expression, true_gaze = withheld.expression, withheld.gaze
    elif head.labels is None:
        raise ValueError(f"{subject}/{recording} ({domain}) has no labels to evaluate against")
    return expression, gaze, true_expression, true_gaze


def _predict_from_labels(
    predictor: LabelInputPredictor,
    truth: EvaluationTruth,
    subject: str,
    recording: str,
    num_frames: int,
    latencies: list[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Run a label-input predictor over a recording in chunks of 64 frames -> (expression, gaze); its latency is
    timed on single frames like an image predictor's (the input derivation from labels included)."""
    expression = np.zeros((num_frames, NUM_EXPRESSIONS), np.float32)
    gaze = np.zeros((num_frames, 2, 2), np.float32)
    for start in range(0, num_frames, 64):
        rows = np.arange(start, min(start + 64, num_frames))
        with torch.no_grad():
            expression[rows], gaze[rows] = predictor.predict_frames(truth, subject, recording, rows)
    for frame in range(min(num_frames, _LATENCY_FRAMES - len(latencies))):
        begin = time.perf_counter()
        with torch.no_grad():
            predictor.predict_frames(truth, subject, recording, np.array([frame]))
        latencies.append(1000.0 * (time.perf_counter() - begin))
    return expression, gaze


def _latency_ms(predictor: Predictor, images: torch.Tensor) -> list[float]:
    """Wall time of the predictor on each frame alone (batch 1), ms."""
    out = []
    for frame in images:
        start = time.perf_counter()
        with torch.no_grad():
            predictor.predict(frame[None])
        out.append(1000.0 * (time.perf_counter() - start))
    return out


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
