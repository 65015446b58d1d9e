"""Supervised losses of a tracker's output against true labels; only labelled samples count.

- Expression (REFA Sec. 7.2): L1 between the 45 free coefficients and their labels, mean over shapes and samples.
- Gaze (Universal Eq. 14): `|d(g_l) - d(^g_l)|^2 + |d(g_r) - d(^g_r)|^2`, where `d` turns a unit gaze direction into
  (azimuth, elevation). In egoface's convention (`egoface.face.gaze.gaze_vector`) the direction of (yaw, pitch) is
  `(sin yaw cos pitch, sin pitch, cos yaw cos pitch)`, whose azimuth `atan2(x, z)` is the yaw and elevation
  `asin(y)` the pitch (for |yaw| < 90 deg, which every label and prediction satisfies): so the loss is the squared
  (yaw, pitch) error, taken in radians, summed over the two eyes and averaged over samples.
- Geometry (Universal Eq. 13 with the rig as decoder): both expressions (with their gaze) drive the subject's own
  rig; L1 over the face and eyeball vertices in mm, weighted up on the eyes and lips, normalized by the weights.

`label_mask: (B,)` selects the samples with labels; a batch without any gives zero losses that still backpropagate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from egoface.face import FaceRig
from egoface.face.names import EXPRESSION_NAMES
from egoface.models import ModelConfig, TrackerOutput
from egoface.train.config import LossConfig

__all__ = [
    "GeometryLoss",
    "LossTerms",
    "expression_l1",
    "gaze_angle_loss",
    "labelled_rows_by_subject",
    "supervised_losses",
]


class LossTerms(NamedTuple):
    """total: the weighted sum that is minimized; the terms unweighted (geometry is None when off)."""

    total: torch.Tensor
    expression: torch.Tensor
    gaze: torch.Tensor
    geometry: torch.Tensor | None


def labelled_rows_by_subject(subjects: Sequence[str], label_mask: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
    """(subject, rows (b,) int64) for each subject of a batch with labelled samples, in name order: the per-subject
    losses run each subject's rig once on its rows."""
    for subject in sorted(set(subjects)):
        rows = torch.tensor([i for i, s in enumerate(subjects) if s == subject and bool(label_mask[i])])
        if rows.numel() > 0:
            yield subject, rows


def _masked_mean(per_sample: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """per_sample: (B,), label_mask: (B,) bool -> mean over the labelled samples (0 if none, keeping the graph)."""
    mask = label_mask.to(per_sample.dtype)
    return (per_sample * mask).sum() / mask.sum().clamp(min=1.0)


def expression_l1(predicted: torch.Tensor, true: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """predicted, true: (B, K) coefficients in the same order; label_mask: (B,) -> scalar mean |error|."""
    return _masked_mean((predicted - true).abs().mean(dim=1), label_mask)


def gaze_angle_loss(predicted: torch.Tensor, true: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """Universal Eq. 14. predicted, true: (B, 2, 2) (yaw, pitch) deg per eye; label_mask: (B,) -> scalar rad^2."""
    error = torch.deg2rad(predicted - true)  # (B, 2 eyes, (azimuth, elevation))
    return _masked_mean(error.square().sum(dim=(1, 2)), label_mask)


class GeometryLoss(nn.Module):
    """L1 in mm between the meshes of predicted and true expressions through each sample's subject rig.

    `rig_of(subject) -> FaceRig` supplies the rigs (built once per subject and cached here); vertices are the
    `face` and `eyeballs` regions, with `eye_weight` on `eye_L`/`eye_R` and `mouth_weight` on `lips` and
    `mouth_interior` (1 elsewhere). forward: expressions (B, 53) in canonical `EXPRESSION_NAMES` order, gaze
    (B, 2, 2) deg, subjects (B names), label_mask (B,) -> scalar mm.
    """

    def __init__(self, rig_of: Callable[[str], FaceRig], eye_weight: float, mouth_weight: float) -> None:
        super().__init__()
        if not callable(rig_of):
            raise TypeError(f"rig_of must be a callable subject -> FaceRig, got {type(rig_of).__name__}")
        self._rig_of = rig_of
        self.eye_weight, self.mouth_weight = float(eye_weight), float(mouth_weight)
        self._rigs: dict[str, tuple[FaceRig, torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_store(cls, root: str | os.PathLike[str], config: LossConfig) -> GeometryLoss:
        """Rigs rebuilt from the subject records of the dataset store at `root` (`egoface.eval.subjects`)."""
        from egoface.data import DatasetStore
        from egoface.eval.subjects import subject_rig

        store = DatasetStore(root)
        return cls(lambda subject: subject_rig(store.subject_info(subject)), config.geometry_eye_weight,
                   config.geometry_mouth_weight)  # fmt: skip

    def preload(self, subjects: Sequence[str]) -> None:
        """Build the rigs of `subjects` now (about 80 ms each) rather than at their first batch."""
        for subject in subjects:
            self._rig(subject)

    def _rig(self, subject: str) -> tuple[FaceRig, torch.Tensor, torch.Tensor]:
        if subject not in self._rigs:
            rig = self._rig_of(subject)
            regions = rig.topology.regions
            ids = np.union1d(regions["face"], regions["eyeballs"])
            weights = np.ones(len(ids), np.float32)
            weights[np.isin(ids, np.concatenate([regions["eye_L"], regions["eye_R"]]))] = self.eye_weight
            mouth = np.concatenate([regions["lips"], regions.get("mouth_interior", np.zeros(0, np.int64))])
            weights[np.isin(ids, mouth)] = self.mouth_weight
            self._rigs[subject] = (rig, torch.from_numpy(ids), torch.from_numpy(weights / weights.sum()))
        return self._rigs[subject]

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
        for subject, rows in labelled_rows_by_subject(subjects, label_mask):
            rig, ids, weights = self._rig(subject)
            mesh = rig(predicted[rows], predicted_gaze[rows]).vertices[:, ids]  # (b, N, 3) mm
            with torch.no_grad():
                target = rig(true[rows], true_gaze[rows]).vertices[:, ids]  # (b, N, 3) mm
            distance = (mesh - target).abs().sum(dim=-1)  # (b, N) mm, L1 over x, y, z
            per_sample = per_sample.index_copy(0, rows, distance @ weights)
        return _masked_mean(per_sample, label_mask)


def supervised_losses(
    output: TrackerOutput,
    expression: torch.Tensor | None,
    gaze: torch.Tensor | None,
    label_mask: torch.Tensor,
    model_config: ModelConfig,
    weights: LossConfig,
    geometry: GeometryLoss | None = None,
    subjects: Sequence[str] = (),
) -> LossTerms:
    """The weighted supervised loss of one batch.

    output: the model's `TrackerOutput`; expression: (B, 53) true coefficients in canonical `EXPRESSION_NAMES`
    order, gaze: (B, 2, 2) deg (None when no sample of the batch has labels); label_mask: (B,) bool;
    geometry/subjects: the rig loss and each sample's subject, needed when `weights.geometry > 0`.
    """
    if weights.geometry > 0 and geometry is None:
        raise ValueError("loss.geometry > 0 needs a GeometryLoss (the subjects' rigs)")
    zero = output.free_expression.sum() * 0.0  # keeps the graph when nothing is labelled
    if expression is None or gaze is None or not bool(label_mask.any()):
        return LossTerms(zero, zero, zero, zero if weights.geometry > 0 else None)
    free = _columns(model_config.free_expression_names)
    expression_term = expression_l1(output.free_expression, expression[:, free], label_mask)
    gaze_term = gaze_angle_loss(output.gaze, gaze, label_mask)
    total = weights.expression * expression_term + weights.gaze * gaze_term
    if weights.expression_l2 > 0:
        squared = _masked_mean((output.free_expression - expression[:, free]).square().mean(dim=1), label_mask)
        total = total + weights.expression_l2 * squared
    geometry_term = None
    if weights.geometry > 0 and geometry is not None:
        canonical = torch.tensor([model_config.expression_names.index(n) for n in EXPRESSION_NAMES])
        geometry_term = geometry(output.expression[:, canonical], output.gaze, expression, gaze, subjects, label_mask)
        total = total + weights.geometry * geometry_term
    return LossTerms(total, expression_term, gaze_term, geometry_term)


def _columns(names: Sequence[str]) -> torch.Tensor:
    """Indices of `names` in the canonical 53-vector."""
    return torch.tensor([EXPRESSION_NAMES.index(n) for n in names])
