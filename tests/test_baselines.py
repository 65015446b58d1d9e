"""The non-image baselines (FLNet-style keypoints, ground-truth-mesh upper bound): their inputs are exact on
constructed cases, each trains into a run that `load_predictor` rebuilds, the mesh baseline overfits its training
frames, and `evaluate` runs them on the synthetic and the real domain (real inputs and truth from the evaluation-only
labels), while image predictors go through the unchanged image path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egoface.data import DatasetStore, OracleReader, RecordingData
from egoface.eval.baselines import KeypointPredictor, MeshPredictor, is_baseline_run, load_predictor
from egoface.eval.evaluate import EvaluationTruth, NeutralPredictor, evaluate
from egoface.eval.metrics import FaceTrack, frame_errors
from egoface.eval.subjects import subject_face_model, subject_rig
from egoface.face import Appearance
from egoface.train import PRESETS, TrainConfig, apply_overrides, read_metrics
from egoface.train.baselines import (
    BASELINE_FILE,
    BaselineSpec,
    FeatureBuilder,
    mesh_features,
    mesh_vertex_ids,
    neutral_frame,
    train_baseline,
)
from test_data_helpers import make_recording

IDIOSYNCRASIES = {"amplitude": [1.1] * 53, "asymmetry": [0.05] * 53, "perturbation": 0.2, "seed": 3}


def _recording(subject: str, split: str, seed: int, domain: str = "synthetic", frames: int = 40) -> RecordingData:
    """A helper recording whose subject is a valid procedural identity (real subjects with idiosyncrasies); the
    expression labels are kept small (below 0.5) like natural motion, the neutral hold (frames 4-6) at zero."""
    data = make_recording(subject=subject, split=split, seed=seed, domain=domain, frames=frames)
    subject_info = dataclasses.replace(
        data.subject,
        identity=np.zeros(36, np.float32),
        appearance=dataclasses.asdict(Appearance()),
        idiosyncrasies=IDIOSYNCRASIES if domain == "real" else None,
    )
    assert data.labels is not None
    expression = data.labels.expression * 0.5
    expression[4:7] = 0.0
    gaze = data.labels.gaze.copy()
    gaze[4:7] = 0.0
    labels = dataclasses.replace(data.labels, expression=expression, gaze=gaze)
    return dataclasses.replace(data, subject=subject_info, labels=labels)


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic training subjects, one synthetic validation and one test subject, one real test subject."""
    root = tmp_path_factory.mktemp("baseline_store")
    store = DatasetStore(root)
    for subject, split, seed in (("s000", "train", 0), ("s001", "train", 1), ("v000", "val", 2), ("t000", "test", 3)):
        store.write_recording(_recording(subject, split, seed, frames=32 if split != "train" else 40))
    store.write_recording(_recording("r000", "test", 4, domain="real", frames=32))
    return root


def _config(model: str, *overrides: str) -> TrainConfig:
    return apply_overrides(PRESETS["tiny"], [f"model={model}", "input_size=32,32", *overrides])


@pytest.fixture(scope="module")
def runs(store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A two-step run of each baseline."""
    out = {}
    for model in ("flnet", "gt_mesh"):
        out[model] = tmp_path_factory.mktemp(model) / "run"
        result = train_baseline(_config(model, "steps=2", "val_every=2"), store_root, out[model], tensorboard=False)
        assert result.completed and result.step == 2 and np.isfinite(result.loss)
    return out


def test_keypoint_inputs_are_zero_at_the_neutral_frame_and_zero_where_invisible(store_root: Path) -> None:
    store = DatasetStore(store_root)
    assert neutral_frame(store, "s000") == ("script", 5)  # the middle of the neutral hold [4, 7)
    spec = BaselineSpec("keypoints", ("eye_left", "mouth_right"), (48, 64))
    builder = FeatureBuilder(spec, store.read_recording, lambda s: neutral_frame(store, s))
    data = store.read_recording("s000", "script")
    inputs = builder(data)  # (N, C, L, 2)
    assert inputs.shape == (40, 2, 5, 2)
    assert torch.equal(inputs[5], torch.zeros(2, 5, 2))
    assert data.labels is not None
    visible = np.stack([data.labels.keypoint_visibility[c] for c in spec.cameras], 1)  # (N, C, L)
    visible &= visible[5]
    assert (inputs[torch.from_numpy(~visible)] == 0).all() and (inputs[torch.from_numpy(visible)] != 0).any()
    # a visible landmark's displacement, rescaled from the stored 32 px width to 64 px: twice the stored one
    frame, _, point = (int(i[0]) for i in np.nonzero(visible[:, 1:2, :]))
    stored = data.labels.keypoints["mouth_right"][:, point, 0]
    assert float(inputs[frame, 1, point, 0]) == pytest.approx(2 * (stored[frame] - stored[5]), rel=1e-5)


def test_mesh_inputs_see_landmarks_and_pupils_and_vanish_at_neutral(store_root: Path) -> None:
    info = DatasetStore(store_root).subject_info("s000")
    topology = subject_face_model(info).topology
    ids = mesh_vertex_ids(topology)
    assert set(topology.landmarks.vertex_ids.tolist()) <= set(ids.tolist())
    iris_pupil = np.union1d(topology.regions["iris"], topology.regions["pupil"])
    for eye in topology.eyeball_vertex_ids:
        assert np.isin(ids, np.intersect1d(eye, iris_pupil)).sum() >= 16  # at least the 16 drawn per eye
    rig = subject_rig(info)
    gaze = np.zeros((3, 2, 2), np.float32)
    gaze[2, :, 0] = 20.0  # both eyes 20 deg to the subject's left
    expression = np.zeros((3, 53), np.float32)
    expression[1, 0] = 1.0
    inputs = mesh_features(rig, expression, gaze, ids)  # (3, 2 views, K, 2)
    assert inputs.shape == (3, 2, len(ids), 2)
    assert inputs[0].abs().max() == 0
    assert inputs[1].abs().max() > 1.0 and inputs[2].abs().max() > 1.0  # mm
    assert torch.equal(inputs[:, 0, :, 1], inputs[:, 1, :, 1])  # both views see y


@pytest.mark.parametrize(("model", "kind"), [("flnet", KeypointPredictor), ("gt_mesh", MeshPredictor)])
def test_each_baseline_writes_a_run_that_load_predictor_rebuilds(
    model: str, kind: type, runs: dict[str, Path], store_root: Path
) -> None:
    run = runs[model]
    assert is_baseline_run(run) and TrainConfig.from_json((run / "config.json").read_text()).model == model
    spec = json.loads((run / BASELINE_FILE).read_text())
    assert spec["input"] == ("keypoints" if model == "flnet" else "mesh")
    assert [line["step"] for line in read_metrics(run / "metrics.jsonl") if line["kind"] == "val"] == [2]
    predictor = load_predictor(run)
    assert isinstance(predictor, kind) and predictor.needs == spec["input"]
    expression, gaze = predictor.predict_frames(EvaluationTruth(str(store_root)), "t000", "script", np.arange(32))
    assert expression.shape == (32, 53) and gaze.shape == (32, 2, 2)
    assert expression.min() >= 0 and expression.max() <= 1 and np.abs(gaze).max() < 50.0


def test_load_predictor_refuses_an_image_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a baseline run"):
        load_predictor(tmp_path)


def test_training_refuses_data_without_labels(store_root: Path, tmp_path: Path) -> None:
    """The real domain's labels are withheld from training: selecting it alone leaves nothing to train on."""
    with pytest.raises(ValueError, match="labelled frames"):
        train_baseline(_config("gt_mesh", "data.domains=real"), store_root, tmp_path / "run")


def test_evaluate_runs_both_baselines_on_both_domains_with_the_oracle(runs: dict[str, Path], store_root: Path) -> None:
    for model in ("flnet", "gt_mesh"):
        evaluation = evaluate(load_predictor(runs[model]), str(store_root), split="test", photometric_frames=1)
        assert set(evaluation.domains) == {"synthetic", "real"} and evaluation.latency_ms_p50 > 0
        real = evaluation.domains["real"].recordings[0]
        withheld = OracleReader(store_root).labels("r000", "script")
        np.testing.assert_array_equal(real.truth.expression, withheld.expression)
        assert np.isfinite(evaluation.domains["real"].dataset["mesh_l2_mm"])
    assert torch.is_grad_enabled()  # evaluation leaves autograd on for whatever trains next in the process


def test_mesh_upper_bound_overfits_its_training_frames(store_root: Path, tmp_path: Path) -> None:
    """On the training subjects' own frames the mesh baseline ends far below the neutral predictor, which also
    checks that the image path of evaluate still works: its numbers are the metric functions' on zero predictions."""
    config = _config(
        "gt_mesh", "steps=400", "batch_size=16", "optim.lr=3e-3", "optim.schedule=constant", "log_every=100",
        "val_every=400", "checkpoint_every=400",
    )  # fmt: skip
    train_baseline(config, store_root, tmp_path / "run", tensorboard=False)
    options = {"split": "train", "domains": ("synthetic",), "photometric_frames": 1}
    mesh = evaluate(load_predictor(tmp_path / "run"), str(store_root), **options).domains["synthetic"]
    neutral = evaluate(NeutralPredictor(("eye_left", "mouth_left"), (16, 16)), str(store_root), **options)
    neutral_domain = neutral.domains["synthetic"]
    recording = neutral_domain.recordings[0]
    info = DatasetStore(store_root).subject_info(recording.subject)
    by_hand = frame_errors(FaceTrack(np.zeros((40, 53)), np.zeros((40, 2, 2))), recording.truth, subject_rig(info))
    assert recording.metrics["mesh_l2_mm"] == pytest.approx(float(np.mean(by_hand.mesh_l2_mm)), rel=1e-5)
    assert mesh.dataset["mesh_l2_mm"] < 0.25 * neutral_domain.dataset["mesh_l2_mm"]
    assert mesh.dataset["gaze_error_deg"] < 0.25 * neutral_domain.dataset["gaze_error_deg"]
