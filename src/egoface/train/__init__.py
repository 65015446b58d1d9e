"""egoface.train — typed training configs with presets, the supervised trainer, checkpoints and run files.

    config = apply_overrides(PRESETS["default"], ["steps=500"])
    result = train(config, "DATA", "RUN")       # resumes RUN when it holds a checkpoint of the same config
    model = load_run("RUN")                     # the trained TrackerModel (eval mode): egoface.models.load_model

A run directory holds `config.json` (the resolved `TrainConfig`), `metrics.jsonl` (keys in
`egoface.train.logging`), `checkpoints/last.pt` (+ `best.pt` by validation loss when the store has a val split)
and, once finished, `model.pt` (weights + model config).
"""

from egoface.models.files import load_model as load_run
from egoface.models.files import normalize_images, save_model
from egoface.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from egoface.train.config import PRESETS, DataConfig, LossConfig, OptimConfig, TrainConfig, apply_overrides, config_keys
from egoface.train.logging import TRAIN_KEYS, VAL_KEYS, read_metrics
from egoface.train.losses import GeometryLoss, LossTerms, expression_l1, gaze_angle_loss, supervised_losses
from egoface.train.trainer import Trainer, TrainResult, benchmark_training, build_model, train

__all__ = [
    "PRESETS",
    "TRAIN_KEYS",
    "VAL_KEYS",
    "Checkpoint",
    "DataConfig",
    "GeometryLoss",
    "LossConfig",
    "LossTerms",
    "OptimConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "apply_overrides",
    "benchmark_training",
    "build_model",
    "config_keys",
    "expression_l1",
    "gaze_angle_loss",
    "load_checkpoint",
    "load_run",
    "normalize_images",
    "read_metrics",
    "save_checkpoint",
    "save_model",
    "supervised_losses",
    "train",
]
