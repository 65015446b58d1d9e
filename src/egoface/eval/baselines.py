"""The non-image baselines of Universal Table 1 as evaluation predictors (`LabelInputPredictor`).

Their inputs are built from the true labels of the evaluated frames (`egoface.train.baselines`): on the real domain
those are the evaluation-only labels, so both are optimistic by construction.

- `KeypointPredictor` (FLNet style): perfect 2D landmarks of every camera (the projected face-model landmarks the
  labels store, i.e. a perfect keypoint detector), as displacements from the subject's neutral anchor frame.
- `MeshPredictor` ("mesh tracking with ground-truth mesh", an upper bound): the subject's own rig (the real domain's
  idiosyncratic one) posed with the true expression and gaze, as vertex displacements from its neutral face.

    predictor = load_predictor("RUN")          # a run of `egoface train --model flnet|gt_mesh`
    evaluation = evaluate(predictor, "DATA")   # egoface.eval.evaluate
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from egoface.eval.evaluate import EvaluationTruth
from egoface.face.names import EXPRESSION_NAMES
from egoface.models import TrackerModel
from egoface.models.files import load_model
from egoface.train.baselines import BASELINE_FILE, BaselineSpec, FeatureBuilder, neutral_frame, read_spec

__all__ = ["KeypointPredictor", "MeshPredictor", "is_baseline_run", "load_predictor"]


class _BaselinePredictor:
    """A trained baseline model and the spec of its input. Inputs are built for a whole recording at its first
    request and cached (one recording at a time); `predict_frames` then runs the model on the requested rows."""

    needs: str

    def __init__(self, model: TrackerModel, spec: BaselineSpec, name: str) -> None:
        if spec.input != self.needs:
            raise ValueError(f"{type(self).__name__} needs a {self.needs} baseline spec, got {spec.input!r}")
        if model.config.arch != "flnet":
            raise ValueError(f"the baselines run the flnet MLP, got a {model.config.arch!r} model")
        self.model, self.spec, self.name = model.eval(), spec, name
        self._canonical = torch.tensor([model.config.expression_names.index(n) for n in EXPRESSION_NAMES])
        self._cache: tuple[tuple[str, str], torch.Tensor] | None = None

    def predict_inputs(self, inputs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """inputs: (B, C, P, 2) as `egoface.train.baselines` builds them -> expression (B, 53) canonical order,
        gaze (B, 2, 2) deg."""
        with torch.no_grad():
            out = self.model(inputs)
        return out.expression[:, self._canonical].numpy(), out.gaze.numpy()

    def predict_frames(
        self, truth: EvaluationTruth, subject: str, recording: str, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """frames (B,) of `subject`/`recording` -> expression (B, 53), gaze (B, 2, 2) deg."""
        if self._cache is None or self._cache[0] != (subject, recording):
            builder = FeatureBuilder(
                self.spec, truth.recording, lambda name: neutral_frame(truth.store, name, self.spec.anchor)
            )
            self._cache = ((subject, recording), builder(truth.recording(subject, recording)))
        return self.predict_inputs(self._cache[1][torch.as_tensor(frames, dtype=torch.long)])


class KeypointPredictor(_BaselinePredictor):
    """FLNet-style baseline: perfect keypoint displacements from the neutral frame -> expression and gaze."""

    needs = "keypoints"


class MeshPredictor(_BaselinePredictor):
    """Ground-truth-mesh upper bound: the subject's true posed mesh (vertex subset) -> expression and gaze."""

    needs = "mesh"


def is_baseline_run(run: str | os.PathLike[str]) -> bool:
    """True for a run directory of a non-image baseline (it holds `baseline.json`)."""
    return (Path(run) / BASELINE_FILE).is_file()


def load_predictor(run: str | os.PathLike[str]) -> KeypointPredictor | MeshPredictor:
    """The predictor of a finished baseline run (`egoface train --model flnet|gt_mesh`), named after its model."""
    spec = read_spec(run)
    if spec is None:
        raise ValueError(f"{run} is not a baseline run (no {BASELINE_FILE}); image models load with load_model")
    model = load_model(run)
    name = "flnet (perfect keypoints)" if spec.input == "keypoints" else "gt mesh (upper bound)"
    return KeypointPredictor(model, spec, name) if spec.input == "keypoints" else MeshPredictor(model, spec, name)
