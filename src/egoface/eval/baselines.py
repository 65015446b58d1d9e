"""The non-image baselines of Universal Table 1 as evaluation predictors (`LabelInputPredictor`).

Their inputs are built for the evaluated frames as in training (`egoface.train.baselines.FeatureBuilder`):

- `KeypointPredictor`, `flnet (perfect keypoints)`: perfect 2D landmarks of every camera (the projected face-model
  landmarks the labels store, i.e. a perfect keypoint detector), as displacements from the subject's neutral anchor
  frame. On the real domain these come from the evaluation-only labels: optimistic by construction.
- `DetectedKeypointPredictor`, `flnet (detected keypoints)`, the paper's FLNet: the same displacements from the
  landmarks the run's keypoint detector (`RUN/detector.pt`) finds in the evaluated frames' images and in the neutral
  frame's. No label is read to build them (the recording reaches the builder without labels), so it is not
  optimistic on the real domain; its latency includes the detector on the frame's images.
- `MeshPredictor`, `gt mesh (upper bound)`: the subject's own rig (the real domain's idiosyncratic one) posed with
  the true expression and gaze, as vertex displacements from its neutral face.

    predictor = load_predictor("RUN")          # a run of `egoface train --model flnet|flnet_detected|gt_mesh`
    evaluation = evaluate(predictor, "DATA")   # egoface.eval.evaluate
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from egoface.data import RecordingData
from egoface.eval.evaluate import EvaluationTruth
from egoface.face.names import EXPRESSION_NAMES
from egoface.models import KeypointDetector, TrackerModel, load_detector
from egoface.models.files import load_model
from egoface.train.baselines import BASELINE_FILE, BaselineSpec, FeatureBuilder, neutral_frame, read_spec

__all__ = ["DetectedKeypointPredictor", "KeypointPredictor", "MeshPredictor", "is_baseline_run", "load_predictor"]


class _BaselinePredictor:
    """A trained baseline model and the spec of its input. `predict_frames` builds the input of the requested frames
    (the subject's reference is built once) and runs the model on it."""

    needs: str

    def __init__(
        self, model: TrackerModel, spec: BaselineSpec, name: str, detector: KeypointDetector | None = None
    ) -> None:
        if spec.input != self.needs:
            raise ValueError(f"{type(self).__name__} needs a {self.needs} baseline spec, got {spec.input!r}")
        if model.config.arch != "flnet":
            raise ValueError(f"the baselines run the flnet MLP, got a {model.config.arch!r} model")
        self.model, self.spec, self.name, self.detector = model.eval(), spec, name, detector
        self._canonical = torch.tensor([model.config.expression_names.index(n) for n in EXPRESSION_NAMES])
        self._builder: tuple[EvaluationTruth, FeatureBuilder] | None = None

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
        if self._builder is None or self._builder[0] is not truth:
            neutral_of = lambda name: neutral_frame(truth.store, name, self.spec.anchor)  # noqa: E731
            builder = FeatureBuilder(self.spec, self._reader(truth), neutral_of, self.detector)
            self._builder = (truth, builder)
        data = self._recording(truth, subject, recording)
        return self.predict_inputs(self._builder[1](data, np.asarray(frames, dtype=np.int64)))

    def _recording(self, truth: EvaluationTruth, subject: str, recording: str) -> RecordingData:
        """The evaluated recording as the input builder sees it: with its true labels."""
        return truth.recording(subject, recording)

    def _reader(self, truth: EvaluationTruth) -> Callable[[str, str], RecordingData]:
        """How the input builder reads the subject's neutral recording: with its true labels."""
        return truth.recording


class KeypointPredictor(_BaselinePredictor):
    """FLNet-style oracle: perfect keypoint displacements from the neutral frame -> expression and gaze."""

    needs = "keypoints"


class DetectedKeypointPredictor(_BaselinePredictor):
    """FLNet as in the paper: detected keypoint displacements from the neutral frame -> expression and gaze. The
    recordings reach the input builder without labels: the evaluated one stripped of them, the neutral one read
    from the training tree (which holds no real-domain labels)."""

    needs = "detected_keypoints"

    def _recording(self, truth: EvaluationTruth, subject: str, recording: str) -> RecordingData:
        return replace(truth.recording(subject, recording), labels=None)

    def _reader(self, truth: EvaluationTruth) -> Callable[[str, str], RecordingData]:
        return truth.store.read_recording


class MeshPredictor(_BaselinePredictor):
    """Ground-truth-mesh upper bound: the subject's true posed mesh (vertex subset) -> expression and gaze."""

    needs = "mesh"


def is_baseline_run(run: str | os.PathLike[str]) -> bool:
    """True for a run directory of a non-image baseline (it holds `baseline.json`)."""
    return (Path(run) / BASELINE_FILE).is_file()


def load_predictor(run: str | os.PathLike[str]) -> KeypointPredictor | DetectedKeypointPredictor | MeshPredictor:
    """The predictor of a finished baseline run (`egoface train --model flnet|flnet_detected|gt_mesh`), named after
    its model; a `flnet_detected` run's detector is loaded from the run directory."""
    spec = read_spec(run)
    if spec is None:
        raise ValueError(f"{run} is not a baseline run (no {BASELINE_FILE}); image models load with load_model")
    model = load_model(run)
    if spec.input == "keypoints":
        return KeypointPredictor(model, spec, "flnet (perfect keypoints)")
    if spec.input == "detected_keypoints":
        detector = load_detector(Path(run) / spec.detector)
        return DetectedKeypointPredictor(model, spec, "flnet (detected keypoints)", detector)
    return MeshPredictor(model, spec, "gt mesh (upper bound)")
