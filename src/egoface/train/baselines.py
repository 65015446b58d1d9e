"""The non-image baselines of Universal Table 1: their inputs, and their training.

All three are the small `flnet` MLP (`egoface.models.FLNet`) on inputs derived from each frame, trained with the
image trainer's optimizer, schedule, losses, checkpoints, resume and metrics (`Trainer`, `supervised_losses`):

- `flnet` (input `keypoints`, FLNet style, an oracle): every camera's projected face landmarks as stored in the
  labels, i.e. a perfect keypoint detector, resampled to `TrainConfig.input_size` (pixels normalized by image size,
  so the stored resolution does not matter), minus the same landmarks at the subject's `neutral` anchor frame (the
  middle of that segment's hold). A landmark invisible in either frame gives (0, 0): the model has no visibility
  channel. `(N, C, L, 2)` px, cameras in the model's order, left cameras not flipped.
- `flnet_detected` (input `detected_keypoints`, the paper's FLNet): the same displacements from the landmarks a
  `KeypointDetector` finds in the camera images (`detect_keypoints`; invisible where its visibility logit is < 0),
  so no label is read to build them. The detector is trained first, on the training split's images and landmark
  labels (`train_detector`, `DetectorTraining`), and saved as `RUN/detector.pt`; a resumed run whose
  `detector.pt` exists reuses it, an interrupted detector stage starts over.
- `gt_mesh` (input `mesh`, "mesh tracking with ground-truth mesh", a contrived upper bound): the subject's own rig
  posed with the true expression and gaze, at a fixed vertex subset (the face model's landmarks, `face` vertices
  and each eye's iris/pupil vertices, so gaze is visible), minus the same vertices of the subject's neutral face; head
  frame, mm. FLNet reads it as two orthographic virtual cameras at 1 px = 1 mm: `mesh_front` sees (x, y) and
  `mesh_side` (z, y). `(N, 2, K, 2)` mm.

Inputs are computed once per recording and kept in memory; the MLP sees no augmentation (`TrainConfig.augment`/
`cutmix` do not apply; the detector has its own, `DetectorTraining.augment`). A run directory holds the image
trainer's files plus `baseline.json` (`BaselineSpec`: which input the model needs and how to build it), which
`egoface.eval.baselines.load_predictor` reads. At evaluation the same builders run on the evaluated frames: the
label-input ones on the evaluation-only labels of the real domain (optimistic inputs), the detector on the images.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from egoface.data import DatasetStore, HeadsetDataset, RecordingData
from egoface.data.augment import AugmentConfig, augment_views
from egoface.data.dataset import prepare_keypoints, prepare_views
from egoface.data.schema import anchor_frames
from egoface.face import FaceRig, FaceTopology
from egoface.face.gaze import gaze_vector
from egoface.models import (
    KeypointDetector,
    KeypointDetectorConfig,
    ModelConfig,
    TrackerModel,
    create_model,
    get_backbone_config,
    get_model_config,
    load_detector,
    register_model,
    save_detector,
)
from egoface.train.config import TrainConfig
from egoface.train.losses import GeometryLoss, LossTerms, supervised_losses
from egoface.train.trainer import (
    _ORDER,
    Progress,
    Trainer,
    TrainResult,
    _generator,
    _loader,
    _resume_or_start,
    _torch_threads,
    run_loop,
)

__all__ = [
    "BASELINE_FILE",
    "BASELINE_MODELS",
    "DETECTOR_FILE",
    "DETECTOR_TRAINING",
    "MESH_VIEWS",
    "BaselineSpec",
    "DetectorTraining",
    "FeatureBuilder",
    "FeatureSet",
    "FeatureTrainer",
    "build_features",
    "detect_keypoints",
    "detector_losses",
    "label_keypoints",
    "mesh_features",
    "mesh_vertex_ids",
    "neutral_frame",
    "read_spec",
    "train_baseline",
    "train_detector",
]

BASELINE_FILE = "baseline.json"
#: The keypoint detector of a `detected_keypoints` baseline, in its run directory.
DETECTOR_FILE = "detector.pt"
#: Registered baseline model name -> the input it needs.
BASELINE_MODELS: dict[str, str] = {"flnet": "keypoints", "flnet_detected": "detected_keypoints", "gt_mesh": "mesh"}
#: The virtual orthographic cameras through which FLNet sees mesh displacements: (x, y) and (z, y), mm.
MESH_VIEWS: tuple[str, ...] = ("mesh_front", "mesh_side")
_INPUTS = ("keypoints", "detected_keypoints", "mesh")
_NEUTRAL = "neutral"
_MESH_CHUNK = 128  # frames posed at once (a full procedural mesh is about 0.2 MB per frame)
_DETECT_CHUNK = 64  # frames (of every camera) through the detector at once
_DETECTOR_ORDER, _DETECTOR_AUGMENT = 11, 12  # seed streams of the detector's data order and augmentation

# The detected-keypoint baseline: the flnet MLP as it is; num_keypoints is set from the data when training.
register_model("flnet_detected", get_model_config("flnet"))
# The ground-truth-mesh baseline: FLNet on 2 virtual views; num_keypoints (vertices) is set from the face model when
# training. 5 mm is a typical expression displacement (a blink moves the lid ~10 mm, gaze the pupil ~5 mm).
register_model(
    "gt_mesh",
    ModelConfig(arch="flnet", cameras=MESH_VIEWS, flipped_cameras=(), num_keypoints=384, keypoint_scale_px=5.0),
)


@dataclass(frozen=True)
class BaselineSpec:
    """How a baseline's input is built (`RUN/baseline.json`).

    input: `keypoints`, `detected_keypoints` or `mesh`. cameras / input_size (keypoint inputs): camera order and the
    (H, W) px frame the landmarks are resampled to. detector (detected keypoints): the detector's file in the run
    directory. face_model / vertex_ids (mesh): the face model spec (`SubjectInfo.face_model`) whose vertex ids these
    are; subjects of another face model are refused. anchor: the anchor segment of the reference.
    """

    input: str
    cameras: tuple[str, ...] = ()
    input_size: tuple[int, int] = (96, 96)
    face_model: str = ""
    vertex_ids: tuple[int, ...] = ()
    anchor: str = _NEUTRAL
    detector: str = ""

    def __post_init__(self) -> None:
        if self.input not in _INPUTS:
            raise ValueError(f"BaselineSpec.input must be one of {_INPUTS}, got {self.input!r}")
        if self.input != "mesh" and not self.cameras:
            raise ValueError(f"a {self.input} baseline needs BaselineSpec.cameras")
        if self.input == "detected_keypoints" and not self.detector:
            raise ValueError("a detected_keypoints baseline needs BaselineSpec.detector (its file in the run)")
        if self.input == "mesh" and (not self.face_model or not self.vertex_ids):
            raise ValueError("a mesh baseline needs BaselineSpec.face_model and vertex_ids")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> BaselineSpec:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()}
        return cls(**values)


@dataclass(frozen=True)
class DetectorTraining:
    """How `flnet_detected` trains its keypoint detector, before the MLP.

    backbone: a registered backbone name (`egoface.models.list_backbones()`); input_size: (H, W) px the camera
    images are resized to. steps: AdamW steps, each on batch_size frames (every camera image of a frame,
    unmirrored), at lr with a cosine decay to 0, with weight_decay. Loss: L1 in px on the landmarks visible in the
    labels plus visibility_weight x the binary cross-entropy of the visibility logits. augment: per-view rotation,
    scale, sensor jitter, brightness and gamma (`augment_views`: the landmarks move with the image, those pushed out
    of it turn invisible), drawn by (seed, step); None = off. The default (1500 steps of 32 frames of 4 cameras,
    resnet_tiny at 96x96) took 0.3 s a step, 7.5 min, on one thread of 2 cores shared with another training (on
    two such threads, `TrainConfig.threads=2`, 1.6 s a step).
    """

    backbone: str = "resnet_tiny"
    input_size: tuple[int, int] = (96, 96)
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    visibility_weight: float = 1.0
    augment: AugmentConfig | None = field(
        default_factory=lambda: AugmentConfig(blur_sigma_px=1.0, noise_std=0.02, black_level=0.04)
    )

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"DetectorTraining needs steps, batch_size, lr > 0 and weight_decay >= 0; got {self}")
        if len(self.input_size) != 2 or min(self.input_size) < 16 or self.visibility_weight < 0:
            raise ValueError(f"DetectorTraining needs input_size (H, W) >= 16 and visibility_weight >= 0; got {self}")


#: The detector training of `egoface train --model flnet_detected`.
DETECTOR_TRAINING = DetectorTraining()


# ---------------------------------------------------------------------------------------------------- inputs


def neutral_frame(store: DatasetStore, subject: str, anchor: str = _NEUTRAL) -> tuple[str, int]:
    """(recording, frame) of the subject's `anchor` segment (`anchor_frames`: its hold's middle or the clean frame
    nearest it) in the first of its recordings (sorted) that has one, as `HeadsetDataset` picks anchors. Segment
    tables are in the training tree of every labelled domain."""
    for ref in store.recordings():
        if ref.subject != subject:
            continue
        segments = store.read_recording(subject, ref.recording, slice(0, 1)).segments or []
        found = anchor_frames(segments, store.read_ood(subject, ref.recording))
        if anchor in found:
            return ref.recording, found[anchor]
    raise ValueError(f"subject {subject!r} has no {anchor!r} anchor segment; the baselines need its reference frame")


def label_keypoints(
    data: RecordingData, cameras: Sequence[str], input_size: tuple[int, int], rows: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The perfect keypoint detector: the true landmarks of `rows` (R,) of `data` (all frames when None) ->
    points (R, C, L, 2) px at `input_size` (unflipped), visibility (R, C, L) bool."""
    if data.labels is None:
        raise ValueError(f"{data.subject.subject}/{data.recording}: perfect keypoints need true labels")
    rows = np.arange(data.frames) if rows is None else rows
    sizes = [(int(data.images[c].shape[1]), int(data.images[c].shape[2])) for c in cameras]
    points = _resample([data.labels.keypoints[c][rows] for c in cameras], cameras, sizes, input_size)
    visible = torch.from_numpy(np.stack([data.labels.keypoint_visibility[c][rows] for c in cameras], axis=1))
    return points, visible


def detect_keypoints(
    detector: KeypointDetector, data: RecordingData, input_size: tuple[int, int], rows: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The detector on the camera images of `rows` (R,) of `data` (all frames when None; no label is read) ->
    points (R, C, L, 2) px at `input_size` (unflipped), visibility (R, C, L) bool (logit > 0)."""
    config = detector.config
    rows = np.arange(data.frames) if rows is None else rows
    points, logits = [], []
    with torch.no_grad():
        for chunk in np.array_split(rows, max(1, math.ceil(len(rows) / _DETECT_CHUNK))):
            images = torch.stack([
                prepare_views([data.images[c][i] for c in config.cameras], config.cameras, config.input_size, False)
                for i in chunk
            ])  # (b, C, 1, H, W) in [0, 1]  # fmt: skip
            out = detector.eval()(config.normalize(images))
            points.append(out.points)
            logits.append(out.visibility_logits)
    detected = torch.cat(points)  # (R, C, L, 2) px at the detector's input size
    sizes = [config.input_size] * len(config.cameras)
    per_camera = [detected[:, i].numpy() for i in range(len(config.cameras))]
    return _resample(per_camera, config.cameras, sizes, input_size), torch.cat(logits) > 0


def _resample(
    points: Sequence[np.ndarray], cameras: Sequence[str], sizes: Sequence[tuple[int, int]], size: tuple[int, int]
) -> torch.Tensor:
    """Per-camera (R, L, 2) px in images of (H_c, W_c) `sizes` -> (R, C, L, 2) px at `size` (`prepare_keypoints`,
    unflipped)."""
    frames, count = points[0].shape[:2]
    flat = prepare_keypoints([p.reshape(-1, 2) for p in points], cameras, sizes, size, False)  # (C, R L, 2)
    return flat.unflatten(1, (frames, count)).transpose(0, 1)


def mesh_vertex_ids(topology: FaceTopology, face: int = 256, per_eye: int = 16, seed: int = 0) -> np.ndarray:
    """The mesh baseline's vertices (sorted ids): every landmark, `face` vertices of the `face` region and `per_eye`
    iris/pupil vertices of each eyeball (all its vertices when the model names no iris or pupil), drawn by `seed`."""
    rng = np.random.default_rng(seed)
    regions = topology.regions
    chosen = [topology.landmarks.vertex_ids, rng.choice(regions["face"], min(face, len(regions["face"])), False)]
    visible_eye = np.union1d(regions.get("iris", np.zeros(0, np.int64)), regions.get("pupil", np.zeros(0, np.int64)))
    for eyeball in topology.eyeball_vertex_ids:
        candidates = np.intersect1d(eyeball, visible_eye) if visible_eye.size else eyeball
        chosen.append(rng.choice(candidates, min(per_eye, len(candidates)), False))
    return np.unique(np.concatenate(chosen).astype(np.int64))


def mesh_features(rig: FaceRig, expression: np.ndarray, gaze: np.ndarray, vertex_ids: np.ndarray) -> torch.Tensor:
    """The rig posed with expression (N, 53) and gaze (N, 2, 2) deg, minus its neutral face, at `vertex_ids` (K,),
    seen by `MESH_VIEWS` -> (N, 2, K, 2) mm: view 0 (x, y), view 1 (z, y), head frame."""
    ids = torch.from_numpy(np.asarray(vertex_ids, np.int64))
    with torch.no_grad():
        reference = rig().vertices[0, ids]  # (K, 3) neutral face, eyes ahead
        posed = torch.cat([
            rig(torch.from_numpy(expression[i : i + _MESH_CHUNK]), torch.from_numpy(gaze[i : i + _MESH_CHUNK]))
            .vertices[:, ids]
            for i in range(0, len(expression), _MESH_CHUNK)
        ])  # (N, K, 3)  # fmt: skip
    d = posed - reference
    return torch.stack([d[..., [0, 1]], d[..., [2, 1]]], dim=1)  # (N, 2, K, 2)


class FeatureBuilder:
    """A baseline's input for whole recordings or some of their frames.

    read(subject, recording) -> RecordingData (training: the store's training tree; evaluation: with the true labels,
    the real domain's from the evaluation-only tree, for the inputs built from labels); neutral_of(subject) ->
    (recording, frame) of the reference; detector: the keypoint detector of a `detected_keypoints` spec (None for
    the others). Keypoint inputs of both kinds share everything but where the points come from. The reference
    (keypoints of the neutral frame) and rigs are cached for the last subject.
    """

    def __init__(
        self,
        spec: BaselineSpec,
        read: Callable[[str, str], RecordingData],
        neutral_of: Callable[[str], tuple[str, int]],
        detector: KeypointDetector | None = None,
    ) -> None:
        if (spec.input == "detected_keypoints") != (detector is not None):
            raise ValueError(f"a {spec.input} baseline {'needs' if detector is None else 'takes no'} keypoint detector")
        if detector is not None and detector.config.cameras != spec.cameras:
            raise ValueError(f"the keypoint detector reads cameras {detector.config.cameras}, this baseline "
                             f"{spec.cameras}")  # fmt: skip
        self.spec, self.detector, self._read, self._neutral_of = spec, detector, read, neutral_of
        self._reference: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._rigs: dict[str, FaceRig] = {}

    def __call__(self, data: RecordingData, rows: np.ndarray | None = None) -> torch.Tensor:
        """`data` (N frames; with labels unless the input is detected) -> (N, C, P, 2) float32 inputs, or those of
        `rows` (R,) only: (R, C, P, 2)."""
        subject = data.subject.subject
        if self.spec.input == "mesh":
            return self._mesh(data, rows)
        missing = [c for c in self.spec.cameras if c not in data.subject.cameras]
        if missing:
            raise ValueError(f"subject {subject!r} has no cameras {missing}; this baseline reads {self.spec.cameras}")
        if subject not in self._reference:
            recording, frame = self._neutral_of(subject)
            neutral = data if recording == data.recording else self._read(subject, recording)
            self._reference = {subject: self._keypoints(neutral, np.array([frame]))}
        reference, reference_visible = self._reference[subject]  # (1, C, L, 2), (1, C, L)
        points, visible = self._keypoints(data, rows)  # (R, C, L, 2), (R, C, L)
        return (points - reference) * (visible & reference_visible)[..., None]

    def _keypoints(self, data: RecordingData, rows: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.detector is not None:
            return detect_keypoints(self.detector, data, self.spec.input_size, rows)
        return label_keypoints(data, self.spec.cameras, self.spec.input_size, rows)

    def _mesh(self, data: RecordingData, rows: np.ndarray | None) -> torch.Tensor:
        subject = data.subject.subject
        if data.labels is None:
            raise ValueError(f"{subject}/{data.recording} has no true labels to build mesh inputs from")
        if data.subject.face_model != self.spec.face_model:
            raise ValueError(f"subject {subject!r} uses face model {data.subject.face_model!r}; this mesh baseline's "
                             f"vertex ids belong to {self.spec.face_model!r}")  # fmt: skip
        if subject not in self._rigs:
            from egoface.eval.subjects import subject_rig  # as GeometryLoss does: a subject's rig from its record

            self._rigs = {subject: subject_rig(data.subject)}
        rows = np.arange(data.frames) if rows is None else rows
        ids = np.asarray(self.spec.vertex_ids)
        return mesh_features(self._rigs[subject], data.labels.expression[rows], data.labels.gaze[rows], ids)


@dataclass(frozen=True)
class FeatureSet:
    """Training samples: inputs (N, C, P, 2), expression (N, 53) canonical order, gaze (N, 2, 2) deg, subjects."""

    inputs: torch.Tensor
    expression: torch.Tensor
    gaze: torch.Tensor
    subjects: list[str]

    def __len__(self) -> int:
        return len(self.subjects)


def build_features(
    store: DatasetStore, builder: FeatureBuilder, domains: Sequence[str], splits: Sequence[str]
) -> FeatureSet | None:
    """The inputs and labels of every labelled recording of `domains` whose subject is in `splits` (None if none).
    Recordings without labels in the training tree (the real domain) are skipped."""
    inputs, expression, gaze, subjects = [], [], [], []
    for ref in store.recordings(tuple(domains)):
        if store.subject_info(ref.subject).split not in splits:
            continue
        data = store.read_recording(ref.subject, ref.recording)
        if data.labels is None:
            continue
        inputs.append(builder(data))
        expression.append(torch.from_numpy(data.labels.expression))
        gaze.append(torch.from_numpy(data.labels.gaze))
        subjects += [ref.subject] * data.frames
    if not subjects:
        return None
    return FeatureSet(torch.cat(inputs), torch.cat(expression), torch.cat(gaze), subjects)


# ---------------------------------------------------------------------------------------------------- training


class FeatureTrainer(Trainer):
    """The image `Trainer` (AdamW, warm-up + cosine schedule, losses, checkpoints) stepping on precomputed inputs."""

    def _losses(
        self, inputs: torch.Tensor, expression: torch.Tensor, gaze: torch.Tensor, subjects: list[str]
    ) -> LossTerms:
        output = self.model(inputs)  # TrackerOutput, (B, 45) / (B, 2, 2)
        mask = torch.ones(len(inputs), dtype=torch.bool)
        return supervised_losses(
            output, expression, gaze, mask, self.model.config, self.config.loss, self.geometry, subjects
        )

    def feature_step(self, data: FeatureSet, rows: torch.Tensor) -> LossTerms:
        """rows (B,) of `data` -> model -> losses -> optimizer step. Returns the losses (before the step, detached)."""
        self.model.train()
        subjects = [data.subjects[i] for i in rows.tolist()]
        losses = self._losses(data.inputs[rows], data.expression[rows], data.gaze[rows], subjects)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        if self.config.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        geometry = None if losses.geometry is None else losses.geometry.detach()
        return LossTerms(losses.total.detach(), losses.expression.detach(), losses.gaze.detach(), geometry)

    @torch.no_grad()
    def evaluate_features(self, data: FeatureSet, rows: torch.Tensor) -> dict[str, float]:
        """Mean losses and angular gaze error (deg) over `rows` of `data`, in batches, in eval mode."""
        self.model.eval()
        sums = {"loss": 0.0, "loss_expression": 0.0, "loss_gaze": 0.0, "loss_geometry": 0.0, "gaze_error_deg": 0.0}
        for chunk in rows.split(self.config.batch_size):
            subjects = [data.subjects[i] for i in chunk.tolist()]
            terms = self._losses(data.inputs[chunk], data.expression[chunk], data.gaze[chunk], subjects)
            for key, value in zip(sums, terms, strict=False):
                sums[key] += 0.0 if value is None else float(value) * len(chunk)
            predicted = self.model(data.inputs[chunk]).gaze
            cosine = (gaze_vector(predicted) * gaze_vector(data.gaze[chunk])).sum(-1).clamp(-1.0, 1.0)  # (b, 2)
            sums["gaze_error_deg"] += float(torch.rad2deg(torch.acos(cosine)).mean(dim=1).sum())
        return {key: value / len(rows) for key, value in sums.items()} | {"samples": float(len(rows))}


def _spec_for(config: TrainConfig, store: DatasetStore) -> BaselineSpec:
    """The input spec of `config.model` for the training subjects of `store`."""
    kind = BASELINE_MODELS[config.model]
    if kind != "mesh":
        detector = DETECTOR_FILE if kind == "detected_keypoints" else ""
        return BaselineSpec(kind, get_model_config(config.model).cameras, config.input_size, detector=detector)
    subjects = sorted({r.subject for r in store.recordings(config.data.domains)})
    models = sorted({store.subject_info(s).face_model for s in subjects})
    if len(models) != 1:
        raise ValueError(f"the mesh baseline needs one face model across its training subjects, got {models}")
    from egoface.eval.subjects import subject_face_model

    topology = subject_face_model(store.subject_info(subjects[0])).topology
    return BaselineSpec("mesh", MESH_VIEWS, face_model=models[0], vertex_ids=tuple(mesh_vertex_ids(topology).tolist()))


def _build_model(config: TrainConfig, points: int) -> TrackerModel:
    torch.manual_seed(config.seed)
    model = create_model(config.model, num_keypoints=points, input_size=tuple(config.input_size))
    assert isinstance(model, TrackerModel)
    return model


def _step_rows(size: int, batch_size: int, seed: tuple[int, int], start: int, stop: int) -> Iterator[torch.Tensor]:
    """The sample rows of steps [start, stop): the image trainer's order (epoch e a permutation seeded by
    (*seed, e), seed = (config seed, stream); the last partial batch of an epoch dropped)."""
    per_epoch = size // batch_size
    for step in range(start, stop):
        epoch, index = divmod(step, per_epoch)
        order = torch.randperm(size, generator=_generator(*seed, epoch))
        yield order[index * batch_size : (index + 1) * batch_size]


def detector_losses(
    detector: KeypointDetector, images: torch.Tensor, keypoints: torch.Tensor, visible: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, C, 1, H, W) in [0, 1] at the detector's input size, true keypoints (B, C, L, 2) px there and
    their visibility (B, C, L) bool -> (L1: mean |error| px per coordinate of the visible landmarks, the binary
    cross-entropy of the visibility logits)."""
    out = detector(detector.config.normalize(images))
    weight = visible.to(out.points.dtype)
    l1 = ((out.points - keypoints).abs().sum(-1) * weight).sum() / (2 * weight.sum().clamp(min=1))
    return l1, F.binary_cross_entropy_with_logits(out.visibility_logits, weight)


def train_detector(
    config: TrainConfig,
    data: str | os.PathLike[str],
    cameras: Sequence[str],
    training: DetectorTraining = DETECTOR_TRAINING,
    progress: Progress | None = None,
) -> KeypointDetector:
    """A keypoint detector for `cameras`, trained as `training` says on the labelled frames of the store at `data`
    (`config.data.domains` and `train_splits`; real-domain labels are withheld from training), its weights, data
    order and augmentations seeded by `config.seed`, its data loaded as the trainers load theirs
    (`config.data.num_workers`, `cache_images`), on `config.threads` threads. Returns it in eval mode."""
    with _torch_threads(config.threads):
        return _train_detector(config, Path(data), tuple(cameras), training, progress)


def _train_detector(
    config: TrainConfig,
    root: Path,
    cameras: tuple[str, ...],
    training: DetectorTraining,
    progress: Progress | None,
) -> KeypointDetector:
    store = DatasetStore(root)
    labelled = sorted({
        ref.subject for ref in store.recordings(config.data.domains)
        if store.subject_info(ref.subject).split in config.data.train_splits
        and store.read_recording(ref.subject, ref.recording, slice(0, 1)).labels is not None
    })  # fmt: skip
    if not labelled:
        raise ValueError(f"no labelled frames in {root} for domains {config.data.domains} and splits "
                         f"{config.data.train_splits} to train the keypoint detector on (real-domain true labels are "
                         "withheld from training)")  # fmt: skip
    dataset = HeadsetDataset(
        root, domains=config.data.domains, splits=config.data.train_splits, subjects=labelled, cameras=cameras,
        resolution=training.input_size, flip_left=False, cache_images=config.data.cache_images,
    )  # fmt: skip
    if len(dataset) < training.batch_size:
        raise ValueError(f"{len(dataset)} labelled frames in {root}, fewer than the detector's batch size "
                         f"{training.batch_size}")  # fmt: skip
    sample = dataset[0].keypoints
    assert sample is not None  # labelled subjects only
    torch.manual_seed(config.seed)
    backbone = get_backbone_config(training.backbone)
    detector = KeypointDetector(KeypointDetectorConfig(backbone, cameras, sample.shape[1], training.input_size))
    optimizer = torch.optim.AdamW(detector.parameters(), lr=training.lr, weight_decay=training.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / training.steps))
    )  # cosine to 0
    order = _step_rows(len(dataset), training.batch_size, (config.seed, _DETECTOR_ORDER), 0, training.steps)
    detector.train()
    for step, batch in enumerate(_loader(dataset, [rows.tolist() for rows in order], config)):
        assert batch.keypoints is not None and batch.keypoint_visibility is not None  # labelled subjects only
        images, points, visible = batch.images, batch.keypoints, batch.keypoint_visibility  # (B, C, 1, H, W) ...
        if training.augment is not None:  # every view its own draw; (B C, 1, H, W), (B C, L, 2), (B C, L)
            generator = _generator(config.seed, _DETECTOR_AUGMENT, step)
            views, moved, seen = augment_views(
                images.flatten(0, 1), training.augment, generator, points.flatten(0, 1), visible.flatten(0, 1)
            )
            assert moved is not None and seen is not None
            images, points, visible = (t.unflatten(0, images.shape[:2]) for t in (views, moved, seen))
        l1, bce = detector_losses(detector, images, points, visible)
        optimizer.zero_grad(set_to_none=True)
        (l1 + training.visibility_weight * bce).backward()
        optimizer.step()
        schedule.step()
        if progress is not None:
            message = f"keypoint detector (L1 {float(l1.detach()):.2f} px, BCE {float(bce.detach()):.3f})"
            progress(step + 1, training.steps, message)
    return detector.eval()


def train_baseline(
    config: TrainConfig,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    stop_after: int | None = None,
    tensorboard: bool = True,
    detector: DetectorTraining | None = None,
) -> TrainResult:
    """Train the baseline `config.model` (`BASELINE_MODELS`) on the labelled recordings of the store at `data` into
    the run directory `out` (created or resumed), like `egoface.train.train` does for image models: the same run
    files plus `baseline.json`, and for `flnet_detected` first its keypoint detector (`detector`, default
    `DETECTOR_TRAINING`) into `detector.pt`. `stop_after` counts the MLP's steps. Raises ValueError for another
    model or data without labelled training frames."""
    if config.model not in BASELINE_MODELS:
        raise ValueError(f"{config.model!r} is not a non-image baseline; baselines: {sorted(BASELINE_MODELS)}")
    training = DETECTOR_TRAINING if detector is None else detector
    with _torch_threads(config.threads):
        return _train_baseline(config, Path(data), Path(out), progress, stop_after, tensorboard, training)


def _train_baseline(
    config: TrainConfig,
    root: Path,
    run: Path,
    progress: Progress | None,
    stop_after: int | None,
    tensorboard: bool,
    training: DetectorTraining,
) -> TrainResult:
    store = DatasetStore(root)
    spec = _spec_for(config, store)
    run.mkdir(parents=True, exist_ok=True)
    _write_spec(run / BASELINE_FILE, spec)
    detector = None
    if spec.input == "detected_keypoints":
        detector = _detector_stage(config, root, run / spec.detector, spec.cameras, training, progress)
        if progress is not None:
            progress(0, config.steps, "detecting the keypoints of every training frame")
    neutral_of = lambda subject: neutral_frame(store, subject, spec.anchor)  # noqa: E731
    builder = FeatureBuilder(spec, store.read_recording, neutral_of, detector)
    train_set = build_features(store, builder, config.data.domains, config.data.train_splits)
    if train_set is None or len(train_set) < config.batch_size:
        raise ValueError(
            f"{0 if train_set is None else len(train_set)} labelled frames in {root} for domains "
            f"{config.data.domains} and splits {config.data.train_splits}, need at least batch_size="
            f"{config.batch_size} (real-domain true labels are withheld from training)"
        )
    val_set = build_features(store, builder, config.data.domains, config.data.val_splits)
    model = _build_model(config, int(train_set.inputs.shape[2]))
    geometry = GeometryLoss.from_store(root, config.loss) if config.loss.geometry > 0 else None
    trainer = FeatureTrainer(config, model, geometry)
    best_val = _resume_or_start(trainer, run)
    stop = config.steps if stop_after is None else min(config.steps, max(stop_after, trainer.step))
    evaluate = None
    if val_set is not None:
        count = min(len(val_set), config.data.val_samples)
        val_rows = torch.from_numpy(np.unique(np.linspace(0, len(val_set) - 1, count).round().astype(np.int64)))
        evaluate = lambda: trainer.evaluate_features(val_set, val_rows)  # noqa: E731
    order = _step_rows(len(train_set), config.batch_size, (config.seed, _ORDER), trainer.step, stop)
    return run_loop(
        trainer, run, config, order, lambda rows: trainer.feature_step(train_set, rows), evaluate, len(train_set),
        stop, best_val, geometry is not None, progress, tensorboard,
    )  # fmt: skip


def _detector_stage(
    config: TrainConfig,
    root: Path,
    path: Path,
    cameras: Sequence[str],
    training: DetectorTraining,
    progress: Progress | None,
) -> KeypointDetector:
    """The run's keypoint detector: `path` when a previous process finished this stage, else trained now and saved
    atomically (an interrupted stage leaves no file and starts over)."""
    if path.is_file():
        return load_detector(path)
    detector = train_detector(config, root, cameras, training, progress)
    save_detector(detector, path, training.steps)
    return detector


def _write_spec(path: Path, spec: BaselineSpec) -> None:
    """Write `baseline.json`, or check that a resumed run's is the same."""
    if path.exists():
        if BaselineSpec.from_json(path.read_text()) != spec:
            raise ValueError(f"{path} describes another baseline input than this data gives; choose a new --out")
        return
    path.write_text(spec.to_json() + "\n")


def read_spec(run: str | os.PathLike[str]) -> BaselineSpec | None:
    """The `BaselineSpec` of a run directory, or None when it is not a baseline run."""
    path = Path(run) / BASELINE_FILE
    return BaselineSpec.from_json(path.read_text()) if path.is_file() else None
