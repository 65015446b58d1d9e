"""Training the anchor-calibrated universal encoder (Universal Sec. 4.3.3, Eq. 16) with the shared `run_loop`.

Our decoder is each subject's own rig and renderer (the Universal UPM avatar does not exist here), so with
`TrainConfig.calibration.loss = "perceptual"`:

    L = photometric * L_photo + geometry * L_geo + gaze * L_gaze + adversarial * L_disc        (Sec. 5.1: 1, 1, 20, 0.1)

- L_photo (Eq. 12): masked L1 between frontal, studio-lit renders (`photometric_size` px, the differentiable
  renderer) of the subject's rig posed with the predicted and with the true expression and gaze; the mask W_1 is the
  union of the pixels where either render shows the face or the eyeballs (not the scalp, ears or neck); radiance is
  divided by the 99.5th percentile of the subject's neutral render, so the loss reads in fractions of full scale.
- L_geo (Eq. 13): `egoface.train.GeometryLoss` (rig-mesh L1 in mm, eye and lip vertices weighted up).
- L_gaze (Eq. 14): `gaze_angle_loss`, squared azimuth/elevation error in rad, both eyes.
- L_disc (Eq. 15): a WGAN-GP critic h (`ExpressionCritic`) on the 45 free coefficients learns, one step per
  encoder step with its own Adam (betas 0.5, 0.9), `h(e_hat) - h(e) + lambda (|grad h(e~)| - 1)^2` with lambda =
  `gradient_penalty` (10), e the true coefficients of the batch and e~ uniform interpolations; the encoder
  minimizes `-h(e_hat)`, which keeps its predictions on the manifold of real expressions.

With `loss = "code"` the terms are the tracker's coefficient loss (`TrainConfig.loss`: L1, optional L2, gaze, rig
geometry), the "code loss" row of Table 2. The metrics lines hold `loss` (the total above), `loss_expression` (the
coefficient L1, logged in both modes), `loss_gaze` and `loss_geometry`.

Anchors: each subject's anchor frames (the peak of each anchor segment, without augmentation) are read once
(`AnchorBank`); phi_exp runs on them with gradients, as in the paper, once per subject of a batch. The current frame is
augmented as in the tracker's trainer; the anchors get its sensor jitter (blur, black level, noise), one draw per
subject and camera. The critic's weights and optimizer travel in the checkpoints (inside the
`optimizer` entry), so resumed runs continue exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from egoface.data import Batch, DatasetStore, HeadsetDataset
from egoface.data.augment import sensor_jitter_per_camera
from egoface.face import FaceRig
from egoface.face.names import EXPRESSION_NAMES
from egoface.models import (
    CalibratedEncoder,
    ExpressionCritic,
    TrackerOutput,
    create_calibrated_model,
    list_calibrated_models,
)
from egoface.models.files import normalize_images
from egoface.render.cameras import Camera
from egoface.render.differentiable import render_differentiable
from egoface.render.raster import rasterize
from egoface.render.scene import frontal_camera
from egoface.render.shading import PointLight
from egoface.render.sheets import studio_lights
from egoface.train.checkpoint import Checkpoint
from egoface.train.config import CalibrationConfig, TrainConfig
from egoface.train.losses import (
    GeometryLoss,
    LossTerms,
    _masked_mean,
    expression_l1,
    gaze_angle_loss,
    labelled_rows_by_subject,
)
from egoface.train.trainer import (
    _ANCHOR_AUGMENT,
    Progress,
    Trainer,
    TrainResult,
    _datasets,
    _generator,
    _initialize,
    _resume_or_start,
    _torch_threads,
    _train_batches,
    _val_batches,
    check_bench_windows,
    run_loop,
    time_steps,
)

__all__ = [
    "AnchorBank",
    "CalibratedTrainer",
    "FrontalSubject",
    "PhotometricLoss",
    "benchmark_calibrated_training",
    "build_calibrated_model",
    "gradient_penalty",
    "train_calibrated",
]

_FRONTAL_DISTANCE_MM = 380.0  # as the evaluation's frontal renders (`egoface.eval.visualize.FrontalFace`)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017; Universal Eq. 15 without lambda): the mean over samples of
    `(|grad_e h(e~)|_2 - 1)^2` at `e~ = u real + (1 - u) fake`, u ~ U(0, 1) per sample. real, fake: (B, K)."""
    if real.shape != fake.shape or real.ndim != 2:
        raise ValueError(f"real and fake must both be (B, K), got {tuple(real.shape)} and {tuple(fake.shape)}")
    u = torch.rand(real.shape[0], 1, generator=generator, dtype=real.dtype)
    mixed = (u * real.detach() + (1 - u) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.norm(dim=1) - 1).square().mean()


class FrontalSubject:
    """What the photometric loss renders of one subject: rig, per-vertex albedo/specular, the frontal camera and
    studio lights, which triangles are face or eyeball (W_1), and the radiance scale of the neutral render."""

    def __init__(self, rig: FaceRig, albedo: np.ndarray, specular: np.ndarray, size: int) -> None:
        self.rig, self.albedo, self.specular = rig, albedo, specular
        self.camera: Camera = frontal_camera(size, size, distance_mm=_FRONTAL_DISTANCE_MM)
        self.lights: list[PointLight] = studio_lights(self.camera)
        self.triangles = np.asarray(rig.triangles)
        regions = rig.topology.regions
        shown = np.union1d(regions["face"], regions["eyeballs"])
        self.face_triangle = torch.from_numpy(np.isin(self.triangles, shown).all(axis=1))  # (T,) bool
        with torch.no_grad():
            neutral, _ = self.render(rig().vertices)
        self.scale = 1.0 / float(np.percentile(neutral[neutral > 0].numpy(), 99.5))

    def render(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """vertices (b, V, 3) mm head frame -> radiance (b, H, W) (differentiable) and the W_1 mask (b, H, W)."""
        projection = self.camera.project(vertices)
        fragments = [
            rasterize(pixels.detach().numpy(), depth.detach().numpy(), valid.numpy(), self.triangles,
                      self.camera.width, self.camera.height)
            for pixels, depth, valid in zip(projection.pixels, projection.depth, projection.valid, strict=True)
        ]  # fmt: skip
        ids = torch.stack([torch.from_numpy(f.triangle_id).long() for f in fragments])  # (b, H, W), -1 background
        image = render_differentiable(
            vertices, self.triangles, self.albedo, self.specular, self.camera, self.lights, fragments=fragments
        )
        return image, (ids >= 0) & self.face_triangle[ids.clamp(min=0)]


class PhotometricLoss(nn.Module):
    """Universal Eq. 12 with the subject's rig as decoder. `subject_of(name) -> FrontalSubject` (cached here).
    forward: expressions (B, 53) canonical order, gaze (B, 2, 2) deg (predicted, then true), subjects (B names),
    label_mask (B,) -> scalar: mean over labelled samples of the mean |I_pred - I_true| * scale inside W_1."""

    def __init__(self, subject_of: Callable[[str], FrontalSubject]) -> None:
        super().__init__()
        self._subject_of = subject_of
        self._subjects: dict[str, FrontalSubject] = {}

    @classmethod
    def from_store(cls, root: str | os.PathLike[str], size: int) -> PhotometricLoss:
        """Subjects rebuilt from the records of the dataset store at `root`, rendered at `size` px."""
        from egoface.eval.subjects import subject_appearance, subject_face_model, subject_rig
        from egoface.face.appearance import surface_reflectance

        store = DatasetStore(root)

        def subject_of(name: str) -> FrontalSubject:
            info = store.subject_info(name)
            reflectance = surface_reflectance(subject_face_model(info), subject_appearance(info))
            return FrontalSubject(subject_rig(info), reflectance.albedo, reflectance.specular, size)

        return cls(subject_of)

    def forward(
        self,
        predicted: torch.Tensor,
        predicted_gaze: torch.Tensor,
        true: torch.Tensor,
        true_gaze: torch.Tensor,
        subjects: Sequence[str],
        label_mask: torch.Tensor,
    ) -> torch.Tensor:
        per_sample = predicted.new_zeros(len(subjects))
        for name, rows in labelled_rows_by_subject(subjects, label_mask):
            if name not in self._subjects:
                self._subjects[name] = self._subject_of(name)
            subject = self._subjects[name]
            image, mask = subject.render(subject.rig(predicted[rows], predicted_gaze[rows]).vertices)
            with torch.no_grad():
                target, target_mask = subject.render(subject.rig(true[rows], true_gaze[rows]).vertices)
            union = (mask | target_mask).to(image.dtype)  # (b, H, W)
            error = ((image - target).abs() * union).sum(dim=(1, 2)) / union.sum(dim=(1, 2)).clamp(min=1.0)
            per_sample = per_sample.index_copy(0, rows, error * subject.scale)
        return _masked_mean(per_sample, label_mask)


def build_calibrated_model(config: TrainConfig) -> CalibratedEncoder:
    """The registered calibrated model `config.model` with `config.calibration`'s module and anchors, at
    `config.input_size`, initialized from `config.seed` or with the weights of the model file `config.init`."""
    calibration = _calibration(config)
    if config.model not in list_calibrated_models():
        raise ValueError(f"model {config.model!r} is not a calibrated encoder; registered: "
                         f"{', '.join(list_calibrated_models())}")  # fmt: skip
    torch.manual_seed(config.seed)
    model = create_calibrated_model(
        config.model, input_size=tuple(config.input_size), calibration=calibration.module,
        anchors=calibration.anchors, linear_fusion=calibration.linear_fusion,
    )  # fmt: skip
    _initialize(model, config)
    return model


class AnchorBank:
    """Each subject's anchor images, read once: `bank(subjects)` -> (S, M, C, 1, H, W) in [0, 1] (input transform,
    no augmentation), anchors in `dataset.anchors` order. `dataset` is a `HeadsetDataset` built with `anchors`; the
    training batches then need not carry them (reading M anchor frames per sample would multiply the loading work by
    1 + M for frames that are the same for every sample of a subject)."""

    def __init__(self, dataset: HeadsetDataset) -> None:
        self.dataset = dataset
        self._first: dict[str, int] = {}  # subject -> index of its first frame in `dataset`
        start = 0
        for ref in dataset.recordings:
            self._first.setdefault(ref.subject, start)
            start += ref.frames
        self._images: dict[str, torch.Tensor] = {}

    def __call__(self, subjects: Sequence[str]) -> torch.Tensor:
        for subject in subjects:
            if subject not in self._images:
                if subject not in self._first:
                    raise KeyError(f"subject {subject!r} is not in the anchor bank's dataset")
                sample = self.dataset[self._first[subject]]
                self._images[subject] = torch.stack([sample.anchor_images[name] for name in self.dataset.anchors])
        return torch.stack([self._images[subject] for subject in subjects])


class CalibratedTrainer(Trainer):
    """The tracker's `Trainer` (AdamW, schedule, augmentation of the current frame, clipping, checkpoints) with
    the anchors fed to the encoder, the Eq. 16 losses and the critic's step after each encoder step. `anchors`
    supplies each subject's anchor images (None only for the `none` module)."""

    model: CalibratedEncoder

    def __init__(
        self,
        config: TrainConfig,
        model: CalibratedEncoder,
        geometry: GeometryLoss | None,
        photometric: PhotometricLoss | None,
        anchors: AnchorBank | None,
    ) -> None:
        super().__init__(config, model, geometry)
        if model.config.anchors and (anchors is None or anchors.dataset.anchors != model.config.anchors):
            raise ValueError(f"the model reads anchors {model.config.anchors}; pass an AnchorBank of exactly those")
        self.anchors = anchors
        self.calibration = _calibration(config)
        perceptual = self.calibration.loss == "perceptual"
        if perceptual and (geometry is None or (photometric is None and self.calibration.photometric > 0)):
            raise ValueError("the perceptual loss needs a GeometryLoss and (photometric > 0) a PhotometricLoss")
        self.photometric = photometric
        self.critic = ExpressionCritic(len(model.config.free_expression_names))
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=self.calibration.critic_lr,
                                                 betas=(0.5, 0.9))  # fmt: skip
        self._free = torch.tensor([EXPRESSION_NAMES.index(n) for n in model.config.free_expression_names])
        self._canonical = torch.tensor([model.config.expression_names.index(n) for n in EXPRESSION_NAMES])
        self._codes: tuple[torch.Tensor, torch.Tensor] | None = None  # (real, predicted) free codes of the step

    def _forward(self, images: torch.Tensor, batch: Batch) -> TrackerOutput:
        x = normalize_images(images, self.model.config)
        if self.anchors is None:
            return self.model(x)
        # A subject's anchors are the same frames for all its samples: phi_exp runs once per subject of the batch.
        subjects = sorted(set(batch.subjects))
        anchors = self.anchors(subjects)  # (S, M, C, 1, H, W)
        if self.model.training:
            anchors = self._jitter_anchors(anchors)
        maps = self.model.encode_anchors(normalize_images(anchors, self.model.config))  # per role (S, k, M, ...)
        rows = torch.tensor([subjects.index(subject) for subject in batch.subjects])
        output = self.model.forward_head(
            self.model.features_with_anchors(x, {role: m.index_select(0, rows) for role, m in maps.items()})
        )
        return output

    def _jitter_anchors(self, anchors: torch.Tensor) -> torch.Tensor:
        """The sensor jitter of the current frames' augmentation on `anchors: (S, M, C, 1, H, W)`, one draw per
        subject and camera shared by its M anchors (enrollment is one session of one headset), seeded by (seed,
        step); unchanged without sensor jitter. A real user's anchors come through the same sensor as the frames:
        clean anchors beside jittered frames would never teach the anchor path the sensor differences the jitter
        stage is for."""
        augment = self.config.augment
        if augment is None or not augment.jitters_sensor:
            return anchors
        return sensor_jitter_per_camera(anchors, augment, _generator(self.config.seed, _ANCHOR_AUGMENT, self.step))

    def _supervised(self, output: TrackerOutput, batch: Batch) -> LossTerms:
        if self.calibration.loss == "code":
            return super()._supervised(output, batch)
        mask = batch.label_mask
        zero = output.free_expression.sum() * 0.0
        if batch.expression is None or batch.gaze is None or not bool(mask.any()):
            return LossTerms(zero, zero, zero, zero)
        assert self.geometry is not None
        weights = self.calibration
        expression = output.expression[:, self._canonical]  # (B, 53) canonical order
        true_free = batch.expression[:, self._free]  # (B, 45)
        geometry = self.geometry(expression, output.gaze, batch.expression, batch.gaze, batch.subjects, mask)
        gaze = gaze_angle_loss(output.gaze, batch.gaze, mask)
        total = weights.geometry * geometry + weights.gaze * gaze
        if weights.photometric > 0 and self.photometric is not None:
            rendered = mask & (torch.cumsum(mask.long(), 0) <= weights.photometric_samples)  # the first n labelled
            photo = self.photometric(expression, output.gaze, batch.expression, batch.gaze, batch.subjects, rendered)
            total = total + weights.photometric * photo
        if weights.adversarial > 0:
            total = total - weights.adversarial * self.critic(output.free_expression[mask]).mean()
        if self.model.training:
            self._codes = (true_free[mask], output.free_expression[mask].detach())
        return LossTerms(total, expression_l1(output.free_expression, true_free, mask), gaze, geometry)

    def train_step(self, batch: Batch) -> LossTerms:
        """The encoder's step (batch -> model -> losses -> step), then one critic step on its codes."""
        self._codes = None
        terms = super().train_step(batch)
        if self._codes is not None and self.calibration.adversarial > 0:
            real, fake = self._codes
            penalty = gradient_penalty(self.critic, real, fake)
            critic_loss = self.critic(fake).mean() - self.critic(real).mean()
            self.critic_optimizer.zero_grad(set_to_none=True)
            (critic_loss + self.calibration.gradient_penalty * penalty).backward()
            self.critic_optimizer.step()
        return terms

    def checkpoint(self, best_val_loss: float) -> Checkpoint:
        checkpoint = super().checkpoint(best_val_loss)
        checkpoint.optimizer = {
            "encoder": checkpoint.optimizer,
            "critic": self.critic.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
        }
        return checkpoint

    def restore(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.optimizer
        self.critic.load_state_dict(state["critic"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        checkpoint.optimizer = state["encoder"]
        super().restore(checkpoint)


def _calibration(config: TrainConfig) -> CalibrationConfig:
    if config.calibration is None:
        raise ValueError("this config has no `calibration`; use a calibrated-* preset")
    return config.calibration


def _anchor_datasets(
    config: TrainConfig, root: Path, model: CalibratedEncoder, progress: Progress | None = None
) -> tuple[HeadsetDataset, HeadsetDataset | None, AnchorBank | None]:
    """The tracker trainer's datasets (same checks; the training set of the first `calibration.train_subjects`
    subjects when set) and the anchor bank of their subjects (None without anchors; it checks that every subject
    has every anchor segment)."""
    count = _calibration(config).train_subjects
    subjects = None
    if count:
        available = DatasetStore(root).subjects(config.data.domains, config.data.train_splits)
        if count > len(available):
            raise ValueError(f"calibration.train_subjects={count}, but the training split has {len(available)} "
                             "subjects")  # fmt: skip
        subjects = available[:count]
    train_set, val_set = _datasets(config, root, model.config, progress, subjects)
    if not model.config.anchors:
        return train_set, val_set, None
    splits = config.data.train_splits + (config.data.val_splits if val_set is not None else ())
    bank = HeadsetDataset(
        root, domains=config.data.domains, splits=splits, cameras=train_set.cameras, resolution=train_set.resolution,
        flip_left=train_set.flip_left, anchors=model.config.anchors,
    )  # fmt: skip
    return train_set, val_set, AnchorBank(bank)


def _calibrated_trainer(
    config: TrainConfig, root: Path, progress: Progress | None = None
) -> tuple[CalibratedTrainer, HeadsetDataset, HeadsetDataset | None]:
    """A fresh trainer of `config` on the store at `root`, with its training and validation datasets."""
    model = build_calibrated_model(config)
    train_set, val_set, anchors = _anchor_datasets(config, root, model, progress)
    calibration = _calibration(config)
    perceptual = calibration.loss == "perceptual"
    geometry = GeometryLoss.from_store(root, config.loss) if perceptual or config.loss.geometry > 0 else None
    photometric = None
    if perceptual and calibration.photometric > 0:
        photometric = PhotometricLoss.from_store(root, calibration.photometric_size)
    return CalibratedTrainer(config, model, geometry, photometric, anchors), train_set, val_set


def benchmark_calibrated_training(
    config: TrainConfig,
    data: str | os.PathLike[str],
    *,
    windows: int = 5,
    window_steps: int = 5,
    warmup_steps: int = 3,
) -> dict[str, Any]:
    """`egoface.train.benchmark_training` for a calibrated preset, on the store at `data` (the anchors are real
    subjects' frames): the median samples/s of `windows` windows of `window_steps` steps through the training data
    path, after `warmup_steps`. Every training subject's anchor images and rig are loaded before the first step, as
    a training run has loaded them all after its first epoch, so the figure is the run's steady pace."""
    check_bench_windows(windows, window_steps, warmup_steps)
    with _torch_threads(config.threads):
        trainer, train_set, _ = _calibrated_trainer(config, Path(data))
        subjects = sorted({ref.subject for ref in train_set.recordings})
        if trainer.anchors is not None:
            trainer.anchors(subjects)
        if trainer.geometry is not None:
            trainer.geometry.preload(subjects)
        batches = _train_batches(train_set, config, 0, warmup_steps + windows * window_steps)
        return time_steps(trainer, batches, windows, window_steps, warmup_steps, f"dataset {data}")


def train_calibrated(
    config: TrainConfig,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    stop_after: int | None = None,
    tensorboard: bool = True,
) -> TrainResult:
    """Train the calibrated encoder of `config` (`config.calibration` set) on the store at `data` into the run
    directory `out`, created or resumed like `egoface.train.train`; `out/model.pt` is read by `load_model`."""
    with _torch_threads(config.threads):
        root, run = Path(data), Path(out)
        trainer, train_set, val_set = _calibrated_trainer(config, root, progress)
        run.mkdir(parents=True, exist_ok=True)
        best_val = _resume_or_start(trainer, run)
        stop = config.steps if stop_after is None else min(config.steps, max(stop_after, trainer.step))
        evaluate: Callable[[], dict[str, Any] | None] | None = None
        if val_set is not None:
            evaluate = lambda: trainer.evaluate(_val_batches(val_set, config))  # noqa: E731
        return run_loop(
            trainer, run, config, _train_batches(train_set, config, trainer.step, stop), trainer.train_step,
            evaluate, len(train_set), stop, best_val, trainer.geometry is not None, progress, tensorboard,
        )  # fmt: skip
