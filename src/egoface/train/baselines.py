"""The two non-image baselines of Universal Table 1: their inputs, and their training.

Both are the small `flnet` MLP (`egoface.models.FLNet`) on inputs derived from the *true labels* of each frame, not
from images, trained with the image trainer's optimizer, schedule, losses, checkpoints, resume and metrics
(`Trainer`, `supervised_losses`):

- `flnet` (input `keypoints`, FLNet style): every camera's projected face landmarks as stored in the labels, i.e. a
  perfect keypoint detector, resampled to `TrainConfig.input_size` (pixels normalized by image size, so the stored
  resolution does not matter), minus the same landmarks at the subject's `neutral` anchor frame (the middle of that
  segment's hold). A landmark invisible in either frame gives (0, 0): the model has no visibility channel.
  `(N, C, L, 2)` px, cameras in the model's order, left cameras not flipped.
- `gt_mesh` (input `mesh`, "mesh tracking with ground-truth mesh", a contrived upper bound): the subject's own rig
  posed with the true expression and gaze, at a fixed vertex subset (the face model's landmarks, `face` vertices
  and each eye's iris/pupil vertices, so gaze is visible), minus the same vertices of the subject's neutral face; head
  frame, mm. FLNet reads it as two orthographic virtual cameras at 1 px = 1 mm: `mesh_front` sees (x, y) and
  `mesh_side` (z, y). `(N, 2, K, 2)` mm.

Inputs are computed once per recording and kept in memory; there is no augmentation (the inputs are exact labels,
`TrainConfig.augment`/`cutmix` do not apply). A run directory holds the image trainer's files plus `baseline.json`
(`BaselineSpec`: which input the model needs and how to build it), which `egoface.eval.baselines.load_predictor`
reads. At evaluation the same builders run on the evaluation-only labels of the real domain (optimistic inputs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoface.data import DatasetStore, RecordingData
from egoface.data.dataset import prepare_keypoints
from egoface.data.schema import anchor_frames
from egoface.face import FaceRig, FaceTopology
from egoface.face.gaze import gaze_vector
from egoface.models import ModelConfig, TrackerModel, create_model, get_model_config, register_model
from egoface.train.config import TrainConfig
from egoface.train.losses import GeometryLoss, LossTerms, supervised_losses
from egoface.train.trainer import (
    _ORDER,
    Progress,
    Trainer,
    TrainResult,
    _generator,
    _resume_or_start,
    _torch_threads,
    run_loop,
)

__all__ = [
    "BASELINE_FILE",
    "BASELINE_MODELS",
    "MESH_VIEWS",
    "BaselineSpec",
    "FeatureBuilder",
    "FeatureSet",
    "FeatureTrainer",
    "build_features",
    "keypoint_features",
    "mesh_features",
    "mesh_vertex_ids",
    "neutral_frame",
    "read_spec",
    "train_baseline",
]

BASELINE_FILE = "baseline.json"
#: Registered baseline model name -> the input it needs.
BASELINE_MODELS: dict[str, str] = {"flnet": "keypoints", "gt_mesh": "mesh"}
#: The virtual orthographic cameras through which FLNet sees mesh displacements: (x, y) and (z, y), mm.
MESH_VIEWS: tuple[str, ...] = ("mesh_front", "mesh_side")
_NEUTRAL = "neutral"
_MESH_CHUNK = 128  # frames posed at once (a full procedural mesh is about 0.2 MB per frame)

# The ground-truth-mesh baseline: FLNet on 2 virtual views; num_keypoints (vertices) is set from the face model when
# training. 5 mm is a typical expression displacement (a blink moves the lid ~10 mm, gaze the pupil ~5 mm).
register_model(
    "gt_mesh",
    ModelConfig(arch="flnet", cameras=MESH_VIEWS, flipped_cameras=(), num_keypoints=384, keypoint_scale_px=5.0),
)


@dataclass(frozen=True)
class BaselineSpec:
    """How a baseline's input is built (`RUN/baseline.json`).

    input: `keypoints` or `mesh`. cameras / input_size (keypoints): camera order and the (H, W) px frame the
    landmarks are resampled to. face_model / vertex_ids (mesh): the face model spec (`SubjectInfo.face_model`) whose
    vertex ids these are; subjects of another face model are refused. anchor: the anchor segment of the reference.
    """

    input: str
    cameras: tuple[str, ...] = ()
    input_size: tuple[int, int] = (96, 96)
    face_model: str = ""
    vertex_ids: tuple[int, ...] = ()
    anchor: str = _NEUTRAL

    def __post_init__(self) -> None:
        if self.input not in ("keypoints", "mesh"):
            raise ValueError(f"BaselineSpec.input must be 'keypoints' or 'mesh', got {self.input!r}")
        if self.input == "keypoints" and not self.cameras:
            raise ValueError("a keypoint baseline needs BaselineSpec.cameras")
        if self.input == "mesh" and (not self.face_model or not self.vertex_ids):
            raise ValueError("a mesh baseline needs BaselineSpec.face_model and vertex_ids")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> BaselineSpec:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()}
        return cls(**values)


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


def keypoint_features(
    data: RecordingData, neutral: RecordingData, frame: int, cameras: Sequence[str], input_size: tuple[int, int]
) -> torch.Tensor:
    """Keypoint displacements from the neutral frame: `data` (N frames, with labels) and `neutral` (the recording
    holding the neutral `frame`) -> (N, C, L, 2) px at `input_size`, zero where a landmark is invisible in either."""
    if data.labels is None or neutral.labels is None:
        raise ValueError(f"{data.subject.subject}/{data.recording}: keypoint features need true labels")
    sizes = [tuple(data.images[c].shape[1:3]) for c in cameras]
    points = torch.stack([
        prepare_keypoints([data.labels.keypoints[c][i] for c in cameras], cameras, sizes, input_size, False)
        for i in range(data.frames)
    ])  # (N, C, L, 2)  # fmt: skip
    reference = prepare_keypoints(
        [neutral.labels.keypoints[c][frame] for c in cameras], cameras, sizes, input_size, False
    )  # (C, L, 2)
    visible = torch.from_numpy(np.stack([data.labels.keypoint_visibility[c] for c in cameras], axis=1))  # (N, C, L)
    visible &= torch.from_numpy(np.stack([neutral.labels.keypoint_visibility[c][frame] for c in cameras]))
    return (points - reference) * visible[..., None]


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
    """A baseline's input for whole recordings.

    read(subject, recording) -> RecordingData with true labels (training: the store's training tree; evaluation:
    the real domain's labels come from the evaluation-only tree); neutral_of(subject) -> (recording, frame) of the
    reference. Rigs and neutral recordings are cached per subject.
    """

    def __init__(
        self,
        spec: BaselineSpec,
        read: Callable[[str, str], RecordingData],
        neutral_of: Callable[[str], tuple[str, int]],
    ) -> None:
        self.spec, self._read, self._neutral_of = spec, read, neutral_of
        self._neutral: dict[str, tuple[RecordingData, int]] = {}
        self._rigs: dict[str, FaceRig] = {}

    def __call__(self, data: RecordingData) -> torch.Tensor:
        """`data` (N frames, with labels) -> (N, C, P, 2) float32 inputs."""
        subject = data.subject.subject
        if data.labels is None:
            raise ValueError(f"{subject}/{data.recording} has no true labels to build {self.spec.input} inputs from")
        if self.spec.input == "keypoints":
            missing = [c for c in self.spec.cameras if c not in data.subject.cameras]
            if missing:
                raise ValueError(
                    f"subject {subject!r} has no cameras {missing}; this baseline reads {self.spec.cameras}"
                )
            if subject not in self._neutral:
                recording, frame = self._neutral_of(subject)
                same = recording == data.recording
                self._neutral = {subject: (data if same else self._read(subject, recording), frame)}
            neutral, frame = self._neutral[subject]
            return keypoint_features(data, neutral, frame, self.spec.cameras, self.spec.input_size)
        if data.subject.face_model != self.spec.face_model:
            raise ValueError(f"subject {subject!r} uses face model {data.subject.face_model!r}; this mesh baseline's "
                             f"vertex ids belong to {self.spec.face_model!r}")  # fmt: skip
        if subject not in self._rigs:
            from egoface.eval.subjects import subject_rig  # as GeometryLoss does: a subject's rig from its record

            self._rigs = {subject: subject_rig(data.subject)}
        ids = np.asarray(self.spec.vertex_ids)
        return mesh_features(self._rigs[subject], data.labels.expression, data.labels.gaze, ids)


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
    if kind == "keypoints":
        return BaselineSpec("keypoints", get_model_config(config.model).cameras, config.input_size)
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


def _step_rows(size: int, config: TrainConfig, start: int, stop: int) -> Iterator[torch.Tensor]:
    """The sample rows of steps [start, stop): the image trainer's order (epoch e a permutation seeded by (seed, e),
    the last partial batch of an epoch dropped)."""
    per_epoch = size // config.batch_size
    for step in range(start, stop):
        epoch, index = divmod(step, per_epoch)
        order = torch.randperm(size, generator=_generator(config.seed, _ORDER, epoch))
        yield order[index * config.batch_size : (index + 1) * config.batch_size]


def train_baseline(
    config: TrainConfig,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    stop_after: int | None = None,
    tensorboard: bool = True,
) -> TrainResult:
    """Train the baseline `config.model` (`BASELINE_MODELS`) on the labelled recordings of the store at `data` into
    the run directory `out` (created or resumed), like `egoface.train.train` does for image models: the same run
    files plus `baseline.json`. Raises ValueError for another model or data without labelled training frames."""
    if config.model not in BASELINE_MODELS:
        raise ValueError(f"{config.model!r} is not a non-image baseline; baselines: {sorted(BASELINE_MODELS)}")
    with _torch_threads(config.threads):
        return _train_baseline(config, Path(data), Path(out), progress, stop_after, tensorboard)


def _train_baseline(
    config: TrainConfig, root: Path, run: Path, progress: Progress | None, stop_after: int | None, tensorboard: bool
) -> TrainResult:
    store = DatasetStore(root)
    spec = _spec_for(config, store)
    builder = FeatureBuilder(spec, store.read_recording, lambda subject: neutral_frame(store, subject, spec.anchor))
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
    run.mkdir(parents=True, exist_ok=True)
    best_val = _resume_or_start(trainer, run)
    _write_spec(run / BASELINE_FILE, spec)
    stop = config.steps if stop_after is None else min(config.steps, max(stop_after, trainer.step))
    evaluate = None
    if val_set is not None:
        count = min(len(val_set), config.data.val_samples)
        val_rows = torch.from_numpy(np.unique(np.linspace(0, len(val_set) - 1, count).round().astype(np.int64)))
        evaluate = lambda: trainer.evaluate_features(val_set, val_rows)  # noqa: E731
    return run_loop(
        trainer, run, config, _step_rows(len(train_set), config, trainer.step, stop),
        lambda rows: trainer.feature_step(train_set, rows), evaluate, len(train_set), stop, best_val,
        geometry is not None, progress, tensorboard,
    )  # fmt: skip


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
