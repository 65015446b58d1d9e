"""Training the calibrated encoder: every calibration module trains two steps with the calibrated-tiny preset and
writes a model file that rebuilds it; the perceptual losses (Eq. 16) step the encoder and the WGAN-GP critic and
round-trip through checkpoints; the evaluation predictor enrolls each subject from its anchor segments."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from egoface.capture.recording import SubjectInfo
from egoface.data import DatasetStore, HeadsetDataset, collate
from egoface.eval.calibrated import CalibratedPredictor
from egoface.eval.evaluate import EnrollingPredictor, NeutralPredictor
from egoface.models import CALIBRATION_MODULES, CalibratedEncoder, load_model, normalize_images, save_model
from egoface.train import PRESETS, GeometryLoss, TrainConfig, apply_overrides, read_metrics
from egoface.train.calibrated import (
    AnchorBank,
    CalibratedTrainer,
    FrontalSubject,
    PhotometricLoss,
    _anchor_datasets,
    build_calibrated_model,
    train_calibrated,
)
from egoface.train.checkpoint import is_checkpoint
from egoface.train.trainer import model_from_checkpoint
from test_data_helpers import make_recording
from toy_face import toy_face

# The helper recordings' anchor segments (the capture script's anchors need a generated store).
HELPER = ["calibration.anchors=neutral,jaw_open_max", "calibration.loss=code", "input_size=32,32"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("calibrated_store")
    store = DatasetStore(root)
    store.write_recording(make_recording(subject="s000", frames=40, seed=0))
    store.write_recording(make_recording(subject="s001", frames=40, seed=1))
    store.write_recording(make_recording(subject="v000", frames=40, seed=2, split="val"))
    return root


@pytest.mark.parametrize("module", CALIBRATION_MODULES)
def test_each_calibration_module_trains_two_steps_on_the_tiny_preset(
    module: str, store_root: Path, tmp_path: Path
) -> None:
    config = apply_overrides(PRESETS["calibrated-tiny"], [*HELPER, f"calibration.module={module}"])
    result = train_calibrated(config, store_root, tmp_path / "run", tensorboard=False)
    assert result.completed and result.step == 2 and np.isfinite(result.loss)
    assert TrainConfig.from_json((tmp_path / "run" / "config.json").read_text()) == config
    lines = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [line["step"] for line in lines if line["kind"] == "val"] == [1, 2]
    model = load_model(tmp_path / "run")
    assert isinstance(model, CalibratedEncoder) and model.config.calibration == module
    assert model.config.anchors == (() if module == "none" else ("neutral", "jaw_open_max"))


def test_linear_fusion_trains_and_its_model_file_and_checkpoints_keep_it(store_root: Path, tmp_path: Path) -> None:
    config = apply_overrides(PRESETS["calibrated-tiny"], [*HELPER, "calibration.linear_fusion=true"])
    result = train_calibrated(config, store_root, tmp_path / "run", tensorboard=False)
    assert result.completed and np.isfinite(result.loss)
    model = load_model(tmp_path / "run")
    assert isinstance(model, CalibratedEncoder) and model.config.linear_fusion
    last = tmp_path / "run" / "checkpoints" / "last.pt"  # the final step: the model file's weights
    assert is_checkpoint(last) and not is_checkpoint(tmp_path / "run" / "model.pt")
    rebuilt = model_from_checkpoint(last)
    assert rebuilt.config == model.config and not rebuilt.training
    assert all(torch.equal(rebuilt.state_dict()[key], value) for key, value in model.state_dict().items())


def test_train_subjects_trains_on_the_first_subjects_only(store_root: Path) -> None:
    config = apply_overrides(PRESETS["calibrated-tiny"], [*HELPER, "calibration.train_subjects=1"])
    model = build_calibrated_model(config)
    train_set, val_set, bank = _anchor_datasets(config, store_root, model)
    assert {ref.subject for ref in train_set.recordings} == {"s000"}
    assert val_set is not None and {ref.subject for ref in val_set.recordings} == {"v000"}
    assert bank is not None
    too_many = apply_overrides(config, ["calibration.train_subjects=3"])
    with pytest.raises(ValueError, match="train_subjects=3, but the training split has 2 subjects"):
        _anchor_datasets(too_many, store_root, model)


def _toy_trainer(store_root: Path, augment: str = "augment=none") -> tuple[CalibratedTrainer, HeadsetDataset]:
    config = apply_overrides(PRESETS["calibrated-tiny"], [*HELPER[:1], "input_size=32,32", augment])
    rig = toy_face().rig()
    vertices = rig().vertices.shape[1]
    albedo, specular = np.full(vertices, 0.5), np.zeros(vertices)
    subject = FrontalSubject(rig, albedo, specular, size=24)
    geometry = GeometryLoss(lambda _name: rig, config.loss.geometry_eye_weight, config.loss.geometry_mouth_weight)
    dataset = HeadsetDataset(store_root, resolution=(32, 32), anchors=("neutral", "jaw_open_max"))
    model = build_calibrated_model(config)
    photometric = PhotometricLoss(lambda _: subject)
    return CalibratedTrainer(config, model, geometry, photometric, AnchorBank(dataset)), dataset


def test_perceptual_losses_step_encoder_and_critic_and_round_trip_through_checkpoints(store_root: Path) -> None:
    trainer, dataset = _toy_trainer(store_root)
    batch = collate([dataset[i] for i in (0, 15, 45, 60)])  # both training subjects
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]
    encoder_before = [p.detach().clone() for p in trainer.model.parameters()]
    for _ in range(2):
        terms = trainer.train_step(batch)
        assert torch.isfinite(terms.total) and terms.geometry is not None and float(terms.geometry) > 0
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, trainer.critic.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, trainer.model.parameters(), strict=True))
    checkpoint = trainer.checkpoint(best_val_loss=1.0)
    other, _ = _toy_trainer(store_root)
    other.restore(checkpoint)
    for a, b in zip(trainer.critic.parameters(), other.critic.parameters(), strict=True):
        assert torch.equal(a, b)
    assert other.step == 2 and other.critic_optimizer.state_dict()["state"]


def test_photometric_loss_is_zero_for_the_truth_and_grows_with_the_error(store_root: Path) -> None:
    trainer, _ = _toy_trainer(store_root)
    assert trainer.photometric is not None
    true = torch.zeros(2, 53)
    gaze = torch.zeros(2, 2, 2)
    mask = torch.tensor([True, True])
    assert float(trainer.photometric(true, gaze, true, gaze, ["a", "a"], mask)) == 0.0
    predicted = true.clone()
    predicted[:, 0] = 1.0
    predicted.requires_grad_(True)
    loss = trainer.photometric(predicted, gaze, true, gaze, ["a", "a"], mask)
    assert float(loss.detach()) > 0
    loss.backward()
    assert predicted.grad is not None and predicted.grad.abs().sum() > 0


def test_predictor_enrolls_each_subject_from_its_anchor_segments(store_root: Path, tmp_path: Path) -> None:
    config = apply_overrides(PRESETS["calibrated-tiny"], HELPER)
    train_calibrated(config, store_root, tmp_path / "run", tensorboard=False)
    model = load_model(tmp_path / "run")
    assert isinstance(model, CalibratedEncoder)
    predictor = CalibratedPredictor(model, "run")
    assert isinstance(predictor, EnrollingPredictor)
    info: SubjectInfo = DatasetStore(store_root).subject_info("s001")
    predictor.enroll_subject(str(store_root), info)
    sample = HeadsetDataset(store_root, subjects=["s001"], resolution=(32, 32), anchors=model.config.anchors)[0]
    images = torch.stack([sample.anchor_images[name] for name in model.config.anchors])
    expected = model.enroll(normalize_images(images, model.config))
    assert model.enrolled_anchors is not None
    for role, maps in expected.features.items():
        torch.testing.assert_close(model.enrolled_anchors.features[role], maps)


def test_demo_enrollment_step_enrolls_every_subject_and_draws_the_first_ones_anchors(
    store_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from egoface.cli.demo import _enroll

    config = apply_overrides(PRESETS["calibrated-tiny"], HELPER)
    train_calibrated(config, store_root, tmp_path / "run", tensorboard=False)
    predictor = CalibratedPredictor(load_model(tmp_path / "run"), "run")
    enrolled = _enroll(predictor, store_root, ["s001", "s000"], tmp_path / "enrollment.png")
    assert list(enrolled) == ["s001", "s000"]
    assert all(e["anchors"] == ["neutral", "jaw_open_max"] and e["enroll_ms"] > 0 for e in enrolled.values())
    assert "enrolled s000: 2 anchor expressions (neutral, jaw_open_max)" in capsys.readouterr().err
    with Image.open(tmp_path / "enrollment.png") as sheet:  # 2 anchors x 4 cameras of 32 px, labelled rows
        assert sheet.width == 4 * 32 and sheet.height > 2 * 32
    neutral = NeutralPredictor(predictor.cameras)  # no anchors: no enrollment step
    assert _enroll(neutral, store_root, ["s001"], tmp_path / "none.png") == {}
    assert not (tmp_path / "none.png").exists()


def test_anchor_bank_reads_each_subjects_anchor_segments(store_root: Path) -> None:
    dataset = HeadsetDataset(store_root, resolution=(32, 32), anchors=("neutral", "jaw_open_max"))
    bank = AnchorBank(dataset)
    images = bank(["s001", "s000", "s001"])
    assert images.shape == (3, 2, 4, 1, 32, 32) and torch.equal(images[0], images[2])
    sample = dataset[45]  # a frame of s001 (s000 holds frames 0-39)
    assert sample.subject == "s001"
    torch.testing.assert_close(images[0, 1], sample.anchor_images["jaw_open_max"])
    with pytest.raises(KeyError, match="not in the anchor bank"):
        bank(["nobody"])


def test_training_anchors_get_the_sensor_jitter_one_draw_per_subject_and_camera(store_root: Path) -> None:
    trainer, _ = _toy_trainer(store_root, augment="augment.black_level=0.1")
    anchors = torch.full((2, 3, 4, 1, 8, 8), 0.5)  # 2 subjects x 3 anchors x 4 cameras
    jittered = trainer._jitter_anchors(anchors)
    offsets = jittered.mean(dim=(3, 4, 5)) - 0.5  # (S, M, C)
    assert torch.allclose(offsets, offsets[:, :1].expand_as(offsets))  # a camera's anchors share one sensor
    assert float(offsets.min()) >= 0 and float(offsets.max()) <= 0.1 and len(torch.unique(offsets[:, 0])) == 8
    assert torch.equal(trainer._jitter_anchors(anchors), jittered)  # seeded by (seed, step)
    clean, _ = _toy_trainer(store_root)  # no augmentation: the anchors stay as read
    assert torch.equal(clean._jitter_anchors(anchors), anchors)


def test_init_starts_from_a_model_file_of_the_same_architecture(tmp_path: Path) -> None:
    config = apply_overrides(PRESETS["calibrated-tiny"], HELPER)
    trained = build_calibrated_model(dataclasses.replace(config, seed=5))
    save_model(trained, tmp_path / "model.pt", step=1)
    started = build_calibrated_model(dataclasses.replace(config, init=str(tmp_path)))
    for name, value in trained.state_dict().items():
        assert torch.equal(value, started.state_dict()[name])
    pooling = apply_overrides(config, ["calibration.module=pooling", f"init={tmp_path}"])
    with pytest.raises(ValueError, match="different architecture"):
        build_calibrated_model(pooling)


def test_bench_train_times_a_calibrated_preset_against_the_other_precision(store_root: Path, capsys) -> None:
    """`egoface bench train` on a calibrated preset needs --data (anchors of real subjects) and, with
    --compare-precision, times the config in bfloat16 and float32 in the same run."""
    from egoface.cli.main import main

    argv = ["bench", "train", "--preset", "calibrated-tiny", "--windows", "2", "--window-steps", "1",
            "--warmup-steps", "1", "--json", "--set", "precision=bfloat16"]  # fmt: skip
    for item in HELPER:
        argv += ["--set", item]
    assert main(argv) == 2 and "--data DIR" in capsys.readouterr().err.replace("\n", "")
    assert main([*argv, "--data", str(store_root), "--compare-precision"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["precision"] == "bfloat16" and result["reference"]["precision"] == "float32"
    assert result["samples_per_second"] > 0 and len(result["reference"]["windows"]) == 2
    speedup = result["samples_per_second"] / result["reference"]["samples_per_second"]
    assert result["speedup_vs_reference"] == pytest.approx(speedup)
    assert result["source"] == f"dataset {store_root}" and result["preset"] == "calibrated-tiny"
