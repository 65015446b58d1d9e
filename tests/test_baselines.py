"""The non-image baselines (FLNet-style perfect and detected keypoints, ground-truth-mesh upper bound): their inputs
are exact on constructed cases, the keypoint detector has the right shapes and gradients and overfits a few frames,
detected inputs are built from images alone, each baseline trains into a run that `load_predictor` rebuilds (a
resumed detected-keypoint run keeps its detector), the mesh baseline overfits its training frames, and `evaluate`
runs them on the synthetic and the real domain (real truth from the evaluation-only labels), while image predictors
go through the unchanged image path."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import egoface.train.baselines as baselines
from egoface.data import DatasetStore, HeadsetDataset, OracleReader, RecordingData, collate
from egoface.eval.baselines import (
    DetectedKeypointPredictor,
    KeypointPredictor,
    MeshPredictor,
    is_baseline_run,
    load_predictor,
)
from egoface.eval.evaluate import EvaluationTruth, NeutralPredictor, evaluate
from egoface.eval.metrics import FaceTrack, frame_errors
from egoface.eval.subjects import subject_face_model, subject_rig
from egoface.face import Appearance
from egoface.models import (
    KeypointDetector,
    KeypointDetectorConfig,
    get_backbone_config,
    load_detector,
    save_detector,
)
from egoface.train import PRESETS, TrainConfig, apply_overrides, read_metrics
from egoface.train.baselines import (
    BASELINE_FILE,
    BASELINE_MODELS,
    DETECTOR_FILE,
    BaselineSpec,
    DetectorTraining,
    FeatureBuilder,
    detector_losses,
    mesh_features,
    mesh_vertex_ids,
    neutral_frame,
    train_baseline,
    train_detector,
)
from test_data_helpers import CAMERAS, make_recording

IDIOSYNCRASIES = {"amplitude": [1.1] * 53, "asymmetry": [0.05] * 53, "perturbation": 0.2, "seed": 3}
#: A detector stage of a few steps on tiny images (with the default augmentations).
TINY_DETECTOR = DetectorTraining(backbone="resnet_nano", input_size=(32, 32), steps=3, batch_size=4)


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
    """A two-step run of each baseline (`flnet_detected` after a 3-step detector stage)."""
    out = {}
    for model in BASELINE_MODELS:
        out[model] = tmp_path_factory.mktemp(model) / "run"
        config = _config(model, "steps=2", "val_every=2")
        result = train_baseline(config, store_root, out[model], tensorboard=False, detector=TINY_DETECTOR)
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


@pytest.mark.parametrize(
    ("model", "kind"),
    [("flnet", KeypointPredictor), ("flnet_detected", DetectedKeypointPredictor), ("gt_mesh", MeshPredictor)],
)
def test_each_baseline_writes_a_run_that_load_predictor_rebuilds(
    model: str, kind: type, runs: dict[str, Path], store_root: Path
) -> None:
    run = runs[model]
    assert is_baseline_run(run) and TrainConfig.from_json((run / "config.json").read_text()).model == model
    assert (run / "model.pt").is_file() and (run / DETECTOR_FILE).is_file() == (model == "flnet_detected")
    spec = json.loads((run / BASELINE_FILE).read_text())
    assert spec["input"] == BASELINE_MODELS[model]
    assert [line["step"] for line in read_metrics(run / "metrics.jsonl") if line["kind"] == "val"] == [2]
    predictor = load_predictor(run)
    assert isinstance(predictor, kind) and predictor.needs == spec["input"]
    assert predictor.name == {"flnet": "flnet (perfect keypoints)", "flnet_detected": "flnet (detected keypoints)",
                              "gt_mesh": "gt mesh (upper bound)"}[model]  # fmt: skip
    for subject in ("t000", "r000"):  # synthetic and real
        expression, gaze = predictor.predict_frames(EvaluationTruth(str(store_root)), subject, "script", np.arange(32))
        assert expression.shape == (32, 53) and gaze.shape == (32, 2, 2)
        assert np.isfinite(expression).all() and np.isfinite(gaze).all()
        assert expression.min() >= 0 and expression.max() <= 1 and np.abs(gaze).max() < 50.0


def test_keypoint_detector_shapes_gradients_and_file(tmp_path: Path) -> None:
    """Points (B, C, L, 2) px start near the image centre; every parameter gets a gradient; the file round-trips."""
    config = KeypointDetectorConfig(get_backbone_config("resnet_nano"), ("eye_left", "mouth_right"), 5, (32, 48))
    assert KeypointDetectorConfig.from_json(config.to_json()) == config
    torch.manual_seed(0)
    detector = KeypointDetector(config)
    images = config.normalize(torch.rand(3, 2, 1, 32, 48))
    out = detector(images)
    assert out.points.shape == (3, 2, 5, 2) and out.visibility_logits.shape == (3, 2, 5)
    assert torch.isfinite(out.points).all() and torch.isfinite(out.visibility_logits).all()
    assert (out.points - torch.tensor([23.5, 15.5])).abs().max() < 2.0  # ((W - 1) / 2, (H - 1) / 2) px
    weights = torch.randn(3, 2, 5, 3)
    ((out.points * weights[..., :2]).sum() + (out.visibility_logits * weights[..., 2]).sum()).backward()
    without = [name for name, p in detector.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not without
    with pytest.raises(ValueError, match=r"expects images \(B, 2, 1, 32, 48\)"):
        detector(images[:, :1])
    save_detector(detector, tmp_path / "detector.pt", steps=1)
    loaded = load_detector(tmp_path / "detector.pt")
    assert loaded.config == config and not loaded.training
    torch.testing.assert_close(loaded(images).points, detector.eval()(images).points)


def test_the_detector_overfits_a_few_frames(tmp_path: Path) -> None:
    """On 8 frames it is trained on, the detector's keypoint L1 ends below half the untrained detector's."""
    data = make_recording("s000", frames=8, seed=5)
    assert data.segments is not None
    DatasetStore(tmp_path).write_recording(dataclasses.replace(data, segments=[dict(data.segments[0], stop_frame=8)]))
    config, size = _config("flnet_detected"), (32, 32)
    training = DetectorTraining(backbone="resnet_nano", input_size=size, steps=60, batch_size=8, augment=None)
    trained = train_detector(config, tmp_path, CAMERAS, training)
    torch.manual_seed(config.seed)  # as train_detector starts
    untrained = KeypointDetector(trained.config).eval()
    frames = HeadsetDataset(tmp_path, cameras=CAMERAS, resolution=size, flip_left=False)
    batch = collate([frames[i] for i in range(len(frames))])
    assert batch.keypoints is not None and batch.keypoint_visibility is not None
    with torch.no_grad():
        before = float(detector_losses(untrained, batch.images, batch.keypoints, batch.keypoint_visibility)[0])
        after = float(detector_losses(trained, batch.images, batch.keypoints, batch.keypoint_visibility)[0])
    assert after < 0.5 * before, (before, after)


def test_detected_inputs_come_from_the_images_alone(runs: dict[str, Path], store_root: Path) -> None:
    """No labels needed: displacements vanish at the neutral frame and where the detector sees no landmark."""
    store = DatasetStore(store_root)
    spec = BaselineSpec.from_json((runs["flnet_detected"] / BASELINE_FILE).read_text())
    detector = load_detector(runs["flnet_detected"] / DETECTOR_FILE)
    builder = FeatureBuilder(spec, store.read_recording, lambda s: neutral_frame(store, s), detector)
    data = dataclasses.replace(store.read_recording("s000", "script"), labels=None)
    inputs = builder(data)  # (N, C, L, 2) px at the run's input size
    assert inputs.shape == (40, 4, 5, 2) and torch.isfinite(inputs).all()
    assert inputs[5].abs().max() < 1e-3
    torch.testing.assert_close(builder(data, np.array([7, 2])), inputs[[7, 2]], atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="needs keypoint detector"):
        FeatureBuilder(spec, store.read_recording, lambda s: neutral_frame(store, s))


def test_a_resumed_detected_run_keeps_its_detector(
    runs: dict[str, Path], store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["flnet_detected"], run)
    saved = (run / DETECTOR_FILE).read_bytes()

    def retrain(*args: object, **kwargs: object) -> None:
        raise AssertionError("the detector was trained again")

    monkeypatch.setattr(baselines, "train_detector", retrain)
    config = _config("flnet_detected", "steps=2", "val_every=2")
    result = train_baseline(config, store_root, run, tensorboard=False, detector=TINY_DETECTOR)
    assert result.completed and result.step == 2 and (run / DETECTOR_FILE).read_bytes() == saved


def test_load_predictor_refuses_an_image_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a baseline run"):
        load_predictor(tmp_path)


def test_training_refuses_data_without_labels(store_root: Path, tmp_path: Path) -> None:
    """The real domain's labels are withheld from training: selecting it alone leaves nothing to train on."""
    with pytest.raises(ValueError, match="labelled frames"):
        train_baseline(_config("gt_mesh", "data.domains=real"), store_root, tmp_path / "run")


def test_evaluate_runs_the_baselines_on_both_domains_with_the_oracle(runs: dict[str, Path], store_root: Path) -> None:
    for model in BASELINE_MODELS:
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
