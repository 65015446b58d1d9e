"""Training configs: presets are valid, overrides go through dataclasses.replace, errors name the key, JSON
round-trips exactly."""

from __future__ import annotations

import dataclasses
import json

import pytest

from egoface.data import AugmentConfig
from egoface.train import PRESETS, TrainConfig, apply_overrides, config_keys


def test_presets_have_the_documented_settings() -> None:
    paper = PRESETS["paper"]
    assert paper.input_size == (192, 192) and paper.batch_size == 16 and paper.steps == 150_000
    assert paper.optim.lr == 1e-3 and paper.optim.weight_decay == 1e-5 and paper.optim.schedule == "cosine"
    assert PRESETS["tiny"].steps <= 5 and max(PRESETS["tiny"].input_size) <= 64
    default, finetune = PRESETS["default"], PRESETS["default-finetune"]
    assert default.optim.schedule == "cosine" and default.model == "refa_lite_192" and default.input_size == (192, 192)
    assert default.augment == AugmentConfig() and default.threads == 2 and PRESETS["paper"].threads == 0
    # the shipped model's second stage: the same run settings, fewer steps, a lower rate and sensor jitter
    assert finetune.model == default.model and finetune.steps == 500 and finetune.optim.lr == 3e-4
    assert finetune.augment is not None and finetune.augment.noise_std > 0 and finetune.augment.blur_sigma_px > 0


def test_the_train_command_offers_every_preset() -> None:
    from egoface.cli.train import TRAIN_PRESETS

    assert set(TRAIN_PRESETS) == set(PRESETS)


def test_the_calibrated_lite_stages_are_the_default_recipe_on_the_calibrated_encoder() -> None:
    lite, finetune = PRESETS["calibrated-lite"], PRESETS["calibrated-lite-finetune"]
    assert lite.model == "calibrated_lite_192" and lite.input_size == (160, 160) and lite.calibration is not None
    assert lite.calibration.loss == "code" and lite.loss == PRESETS["default"].loss and lite.steps == 4000
    assert lite.optim == dataclasses.replace(PRESETS["default"].optim, weight_decay=0.05)  # session 17's decay
    assert lite.data.subjects_per_batch == 4 and lite.data.cache_images and finetune.calibration == lite.calibration
    assert lite.precision == finetune.precision == "bfloat16" and PRESETS["default"].precision == "float32"
    assert lite.calibration.module == "late_fusion" and not lite.calibration.linear_fusion  # the shipped model's
    # no rotation or scaling (they hid the sideways jaw), the rest of the augmentations as the default preset's
    assert lite.augment == AugmentConfig(max_rotation_deg=0.0, max_scale=1.0)
    default_finetune = PRESETS["default-finetune"]
    assert (finetune.model, finetune.steps, finetune.input_size) == (lite.model, 500, lite.input_size)
    assert finetune.optim == dataclasses.replace(default_finetune.optim, weight_decay=lite.optim.weight_decay)
    assert finetune.augment is not None and default_finetune.augment is not None
    assert finetune.augment == dataclasses.replace(default_finetune.augment, max_rotation_deg=0.0, max_scale=1.0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_resolved_config_round_trips_through_json(name: str) -> None:
    config = apply_overrides(PRESETS[name], ["input_size=64,80", "data.domains=synthetic,real", "loss.geometry=0.5"])
    text = config.to_json()
    assert TrainConfig.from_json(text) == config
    assert json.loads(text)["input_size"] == [64, 80]
    without_augment = apply_overrides(config, ["cutmix=false", "augment=none"])
    assert without_augment.augment is None
    assert TrainConfig.from_json(without_augment.to_json()) == without_augment


def test_overrides_replace_nested_fields_and_leave_the_preset_alone() -> None:
    base = PRESETS["default"]
    assert base.augment is not None
    config = apply_overrides(
        base, ["optim.lr=3e-4", "steps=10", "cutmix=no", "augment.max_rotation_deg=5", "optim.betas=0.8,0.9"]
    )
    assert config.optim.lr == 3e-4 and config.steps == 10 and config.cutmix is False
    assert config.augment is not None and config.augment.max_rotation_deg == 5.0
    assert config.optim.betas == (0.8, 0.9)
    assert config == dataclasses.replace(
        base,
        steps=10,
        cutmix=False,
        optim=dataclasses.replace(base.optim, lr=3e-4, betas=(0.8, 0.9)),
        augment=dataclasses.replace(base.augment, max_rotation_deg=5.0),
    )
    assert PRESETS["default"].optim.lr == 1e-3  # presets are frozen values
    assert {"optim.lr", "augment.gamma", "data.num_workers", "loss.geometry"} <= set(config_keys())


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'; valid keys here: optim.lr"),
        ("learning_rate=1", "unknown config key 'learning_rate'"),
        ("optim.lr=fast", "bad value for optim.lr: expected float, got 'fast'"),
        ("optim.lr=-1", "optim.lr > 0"),
        ("steps=1.5", "bad value for steps: expected int"),
        ("cutmix=maybe", "bad value for cutmix: expected true or false"),
        ("input_size=32", "bad value for input_size: expected 2 values"),
        ("input_size=8,8", "both >= 16"),
        ("batch_size=1", "batch_size must be >= 2"),
        ("data.domains=moon", "data.domains must be a non-empty subset"),
        ("data.val_splits=train", "share ['train']"),
        ("optim.schedule=linear", "optim.schedule must be 'cosine' or 'constant'"),
        ("loss.gaze=-1", "loss.gaze"),
        ("optim=3", "config key 'optim' is a group"),
        ("steps", "must look like key=value"),
        ("augment=none", "cutmix=true needs augment"),
        ("threads=-1", "threads must be >= 0"),
        ("precision=float16", "precision must be one of ('float32', 'bfloat16')"),
    ],
)
def test_bad_overrides_fail_with_a_message_naming_the_key(override: str, expected: str) -> None:
    with pytest.raises(ValueError) as error:
        apply_overrides(PRESETS["tiny"], [override])
    assert expected in str(error.value)


def test_config_files_with_unknown_keys_or_wrong_types_are_refused() -> None:
    data = PRESETS["tiny"].to_dict()
    data["optim"]["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['optim.momentum'\]"):
        TrainConfig.from_dict(data)
    data = PRESETS["tiny"].to_dict()
    data["batch_size"] = "four"
    with pytest.raises(ValueError, match="bad value for batch_size: expected int, got 'four'"):
        TrainConfig.from_dict(data)
