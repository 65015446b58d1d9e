"""Typed training configs and the named presets, all in one place.

A run is fully described by one frozen `TrainConfig`; presets are `PRESETS[name]`, and every change is a
`dataclasses.replace` — from code, or from the command line as dotted `key=value` strings:

    config = apply_overrides(PRESETS["default"], ["steps=500", "optim.lr=3e-4", "input_size=128,128"])
    config.to_json()                           # written as RUN/config.json
    TrainConfig.from_json(text) == config      # round-trips exactly

Value syntax for `--set`: numbers and strings as written; booleans `true/false`; tuples comma-separated
(`input_size=128,128`, `data.domains=synthetic`); `none` for optional fields (`augment=none` turns the per-sample
augmentations off). Unknown keys and values of the wrong type or out of range raise a ValueError that names the key.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from egoface.data import DOMAINS, SPLITS, AugmentConfig
from egoface.models.calibrated import CALIBRATION_MODULES, DEFAULT_ANCHORS, FUSION_CONV_MODULES

__all__ = [
    "FINETUNE_PRESETS",
    "PRECISIONS",
    "PRESETS",
    "CalibrationConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "config_keys",
]


@dataclass(frozen=True)
class DataConfig:
    """Which frames train and validate. Samples come from `domains` and the subjects of `train_splits`; the
    validation loss uses the subjects of `val_splits` (skipped when the store has none), at most `val_samples`
    frames evenly spaced over them. `num_workers`: DataLoader worker processes (0 = load in the training process).
    `subjects_per_batch`: 0 = a batch is any frames; n = each batch is n runs of batch_size / n frames of one
    subject (the calibrated encoder then encodes the anchors of n subjects per step, not of ~batch_size).
    `cache_images`: read every training and validation image into memory once, in bulk, before training, flipped
    and resized to the input size as 8-bit pixels (at 192x192 ~5.6 GB for `many-192`'s training and validation
    subjects, at 160x160 ~3.9 GB; loader workers share it) instead of reading and resizing each frame each time it
    is sampled (`HeadsetDataset`)."""

    domains: tuple[str, ...] = ("synthetic",)
    train_splits: tuple[str, ...] = ("train",)
    val_splits: tuple[str, ...] = ("val",)
    val_samples: int = 256
    num_workers: int = 0
    subjects_per_batch: int = 0
    cache_images: bool = False

    def __post_init__(self) -> None:
        for name, values, allowed in (
            ("data.domains", self.domains, DOMAINS),
            ("data.train_splits", self.train_splits, SPLITS),
            ("data.val_splits", self.val_splits, SPLITS),
        ):
            unknown = [v for v in values if v not in allowed]
            if unknown or (not values and name != "data.val_splits"):
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values}")
        overlap = sorted(set(self.train_splits) & set(self.val_splits))
        if overlap:
            raise ValueError(f"data.train_splits and data.val_splits share {overlap}; validation needs unseen subjects")
        if self.subjects_per_batch < 0:
            raise ValueError(f"data.subjects_per_batch must be >= 0 (0 = any frames), got {self.subjects_per_batch}")
        if self.val_samples < 1 or self.num_workers < 0:
            raise ValueError(
                f"need data.val_samples >= 1 and data.num_workers >= 0, got {self.val_samples}, {self.num_workers}"
            )


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay from `lr` to `lr * min_lr_ratio` at the last step (`schedule`
    "cosine"), or a constant rate after warm-up ("constant"). `grad_clip`: max global gradient norm (0 = off)."""

    lr: float = 1e-3
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 0.0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(
                f"need optim.lr > 0, optim.weight_decay >= 0, 0 <= optim.betas < 1; got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, betas={self.betas}"
            )
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"optim.schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1 or self.grad_clip < 0:
            raise ValueError(
                "need optim.warmup_steps >= 0, 0 <= optim.min_lr_ratio <= 1, optim.grad_clip >= 0; got "
                f"{self.warmup_steps}, {self.min_lr_ratio}, {self.grad_clip}"
            )


@dataclass(frozen=True)
class LossConfig:
    """Weights of the supervised terms (`egoface.train.losses`). `expression`: L1 on the 45 free coefficients
    (REFA Sec. 7.2); `expression_l2`: mean squared error on them (in the total `loss` only; L1 alone learns just
    the median -- zero -- of our sparse coefficients for thousands of steps, the squared term lets the rare active
    frames pull); `gaze`: squared azimuth/elevation error in radians, summed over both eyes (Universal Eq. 14);
    `geometry`: L1 in mm between the subject-rig meshes of predicted and true expressions (0 = off, the rigs are not
    even built), with `geometry_eye_weight` / `geometry_mouth_weight` on the eye and lip vertices (others 1)."""

    expression: float = 1.0
    expression_l2: float = 0.0
    gaze: float = 1.0
    geometry: float = 0.0
    geometry_eye_weight: float = 4.0
    geometry_mouth_weight: float = 4.0

    def __post_init__(self) -> None:
        values = dataclasses.asdict(self)
        negative = sorted(k for k, v in values.items() if v < 0)
        if negative:
            raise ValueError(f"loss weights must be >= 0, got negative {', '.join(f'loss.{k}' for k in negative)}")
        if self.expression + self.expression_l2 + self.gaze + self.geometry == 0:
            raise ValueError(
                "at least one of loss.expression, loss.expression_l2, loss.gaze, loss.geometry must be positive"
            )


@dataclass(frozen=True)
class CalibrationConfig:
    """The anchor-calibrated encoder (`egoface.train.calibrated`, Universal Sec. 4.3): its calibration `module`
    (`egoface.models.CALIBRATION_MODULES`) and ordered `anchors` (anchor segments every subject has). `loss`:
    "perceptual", Eq. 16: `photometric` x masked L1 of frontal renders (Eq. 12) + `geometry` x the rig-mesh L1 with
    `loss.geometry_eye_weight` / `loss.geometry_mouth_weight` (Eq. 13) + `gaze` x Eq. 14 + `adversarial` x the
    WGAN-GP critic's score (Eq. 15, penalty `gradient_penalty`; the critic learns at `critic_lr`); or "code", the
    plain L1 on the coefficients of `loss` (Table 2). `photometric_size`: frontal render size, px;
    `photometric_samples`: L_photo averages over the first n labelled samples of each batch (rendering is the
    costliest term: about 0.15 CPU-s per sample at 48 px, so the full batch would triple a step's cost).
    `train_subjects`: train on the first n training subjects (sorted names; 0 = all), for the identity curve.
    `linear_fusion`: `late_fusion` / `pooling` without the ReLU after the fusion conv, which exported graphs fold
    into the tail's first block (`egoface.models.CalibratedModelConfig`)."""

    module: str = "late_fusion"
    anchors: tuple[str, ...] = DEFAULT_ANCHORS
    loss: str = "perceptual"
    photometric: float = 1.0
    geometry: float = 1.0
    gaze: float = 20.0
    adversarial: float = 0.1
    gradient_penalty: float = 10.0
    critic_lr: float = 1e-4
    photometric_size: int = 48
    photometric_samples: int = 8
    train_subjects: int = 0
    linear_fusion: bool = False

    def __post_init__(self) -> None:
        if self.module not in CALIBRATION_MODULES:
            raise ValueError(f"calibration.module must be one of {CALIBRATION_MODULES}, got {self.module!r}")
        if self.linear_fusion and self.module not in FUSION_CONV_MODULES:
            raise ValueError(f"calibration.linear_fusion applies to {' and '.join(FUSION_CONV_MODULES)}, "
                             f"not {self.module!r}")  # fmt: skip
        if self.loss not in ("perceptual", "code"):
            raise ValueError(f"calibration.loss must be 'perceptual' or 'code', got {self.loss!r}")
        if len(set(self.anchors)) != len(self.anchors) or (not self.anchors and self.module != "none"):
            raise ValueError(f"calibration.anchors must be distinct and non-empty (module {self.module}), "
                             f"got {self.anchors}")  # fmt: skip
        weights = (self.photometric, self.geometry, self.gaze, self.adversarial, self.gradient_penalty)
        if (min(weights) < 0 or self.critic_lr <= 0 or self.photometric_size < 8 or self.photometric_samples < 1
                or self.train_subjects < 0):  # fmt: skip
            raise ValueError("calibration weights must be >= 0, critic_lr > 0, photometric_size >= 8, "
                             f"photometric_samples >= 1 and train_subjects >= 0; got {self}")  # fmt: skip


#: `TrainConfig.precision` values: the dtype of the training forward pass (see `egoface.train.trainer.autocast`).
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class TrainConfig:
    """One supervised training run.

    model: a registered model name (`egoface.models.list_models()`); init: a model file or run directory whose
    weights the model starts from (a fine-tuning stage; same architecture), or None for `seed`'s random weights;
    input_size: (H, W) px, replaces the model's;
    the dataset resizes every camera image to it. batch_size: samples per step (the last incomplete batch of an
    epoch is dropped); steps: optimizer steps in total. augment: the per-sample augmentations of the dataset
    (rotation, scale, brightness, gamma; None = off); cutmix: batch CutMix with `augment.cutmix_patches` patches
    (needs augment). seed: fixes the initial weights, the data order and every augmentation.
    log_every / val_every / checkpoint_every: steps between metric lines, validation losses and saves of last.pt
    (one is always saved at the end). threads: torch threads of the training process (0 = torch's default). One
    thread for the model and `data.num_workers` loader processes use a 2-core machine best, and on cores shared
    with other jobs, 2-thread kernels run up to 5x slower than 1-thread ones; bit-identical resumes need the same
    thread count, so it is part of the config. calibration: set for the anchor-calibrated encoder (whose `model`
    is a registered `calibrated_*` model), None for every other tracker. precision: `float32`, or `bfloat16` for
    the training steps' forward passes under CPU autocast (convolutions and matrix products in bfloat16, losses,
    weights and optimizer in float32; validation stays float32): 1.55-1.65x faster steps on a CPU with AVX512-BF16
    or AMX (the 192x192 calibrated encoder here, `egoface bench train --compare-precision`), slower on one without.
    """

    model: str = "refa_tiny"
    init: str | None = None
    input_size: tuple[int, int] = (96, 96)
    batch_size: int = 32
    steps: int = 3000
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    cutmix: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    log_every: int = 10
    val_every: int = 250
    checkpoint_every: int = 250
    threads: int = 1
    calibration: CalibrationConfig | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise ValueError(f"input_size must be (H, W) with both >= 16 px, got {self.input_size}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (CutMix mixes samples of a batch), got {self.batch_size}")
        if self.steps < 1 or min(self.log_every, self.val_every, self.checkpoint_every) < 1:
            raise ValueError(
                f"steps, log_every, val_every and checkpoint_every must be >= 1, got {self.steps}, "
                f"{self.log_every}, {self.val_every}, {self.checkpoint_every}"
            )
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = torch's default), got {self.threads}")
        if self.data.subjects_per_batch and self.batch_size % self.data.subjects_per_batch:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of data.subjects_per_batch "
                             f"({self.data.subjects_per_batch})")  # fmt: skip
        if self.cutmix and (self.augment is None or self.augment.cutmix_patches < 1):
            raise ValueError("cutmix=true needs augment with augment.cutmix_patches >= 1; set cutmix=false")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return typing.cast(dict[str, Any], json.loads(json.dumps(dataclasses.asdict(self))))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys and values of the wrong type raise a ValueError naming the key."""
        return typing.cast(TrainConfig, _convert(data, TrainConfig, ""))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))


_DEFAULT = TrainConfig(
    model="refa_lite_192",
    input_size=(192, 192),
    batch_size=32,
    steps=3000,
    cutmix=False,
    threads=2,
    data=DataConfig(num_workers=2),
    optim=OptimConfig(lr=1e-3, weight_decay=1e-5, warmup_steps=100, grad_clip=5.0),
    loss=LossConfig(expression=1.0, expression_l2=1.0, geometry=1.0),
)
#: The anchor-calibrated encoder: the default preset's recipe on `calibrated_lite_192` (late fusion of the six
#: enrollment anchors, the tracker's code loss + rig-mesh L1), in batches of 4 subjects x 8 frames so that a step
#: encodes 4 subjects' anchors, not 32, from images cached in memory (the same batches as read from disk, a quarter
#: less time), without the paper's rotation and scaling: a sideways jaw or mouth moves the lower face across the
#: mouth cameras as a rotation of a few degrees does, so the encoder trained with them never predicted `jawLeft`
#: (0.003 at the jaw_left peaks, truth 0.65) and mesh L2 was 0.442 mm against 0.369 without them (96x96 ablation,
#: docs/calibration.md). Slip and donning are in the data itself. Forward passes in bfloat16 (CPU autocast): 1.55-1.65x
#: faster steps on this machine's AVX512-BF16 CPU (slower on a CPU without bfloat16 instructions: `--set
#: precision=float32` there). At 160x160 for 4000 steps rather than 192x192 for 3000: 30 % fewer FLOPs a step, 18 %
#: less time (`bench train`), so 10 % more time in all. AdamW's weight decay 0.05 instead of the papers' 1e-5: with
#: it mesh L2 on the test identities read 0.294 against 0.319 mm (the same seed; docs/calibration.md, session 17).
_CALIBRATED_LITE = dataclasses.replace(
    _DEFAULT,
    model="calibrated_lite_192",
    input_size=(160, 160),
    steps=4000,
    data=DataConfig(num_workers=2, subjects_per_batch=4, cache_images=True),
    augment=AugmentConfig(max_rotation_deg=0.0, max_scale=1.0),
    optim=dataclasses.replace(_DEFAULT.optim, weight_decay=0.05),
    calibration=CalibrationConfig(loss="code"),
    precision="bfloat16",
)
#: Presets that fine-tune a trained run: they need `init`.
FINETUNE_PRESETS = ("default-finetune", "calibrated-lite-finetune")


def _jitter_stage(config: TrainConfig) -> TrainConfig:
    """The second stage of a shipped model's training: 500 steps at lr 3e-4 (the first stage's weight decay) from
    `init` with sensor jitter added to the first stage's augmentations."""
    assert config.augment is not None
    return dataclasses.replace(
        config,
        steps=500,
        optim=OptimConfig(lr=3e-4, weight_decay=config.optim.weight_decay, warmup_steps=20, grad_clip=5.0),
        augment=dataclasses.replace(config.augment, blur_sigma_px=1.0, noise_std=0.02, black_level=0.04),
    )


PRESETS: dict[str, TrainConfig] = {
    # Tests and smoke runs: a couple of steps on a tiny model at a tiny resolution.
    "tiny": TrainConfig(
        model="refa_nano",
        input_size=(32, 32),
        batch_size=4,
        steps=2,
        data=DataConfig(val_samples=8),
        log_every=1,
        val_every=1,
        checkpoint_every=1,
    ),
    # The uncalibrated tracker (shipped until session 9), stage 1: refa_lite_192 at 192x192, 3000 steps x 32
    # samples, L1 + L2 on the coefficients plus the rig-mesh L1 in mm (Universal Eq. 13: it weighs each coefficient
    # by how far it moves the face, as mesh L2 does), no CutMix (a patch of another frame's mouth contradicts the
    # mixed label more than it regularizes at this budget).
    "default": _DEFAULT,
    # Stage 2 (`--set init=STAGE1_RUN`): 500 steps at lr 3e-4 with sensor jitter. At full resolution the network
    # learns the synthetic camera's blur and noise; this stage makes it robust to another camera's (real-domain mesh
    # L2 0.69 -> 0.50 mm) and keeps its synthetic accuracy. Jitter from the first step cost synthetic accuracy
    # (0.44 vs 0.38 mm after 2500 steps).
    "default-finetune": _jitter_stage(_DEFAULT),
    # The anchor-calibrated encoder (Universal Sec. 4.3) in tests and smoke runs: tiny data has these anchors.
    "calibrated-tiny": TrainConfig(
        model="calibrated_nano",
        input_size=(32, 32),
        batch_size=4,
        steps=2,
        cutmix=False,
        data=DataConfig(val_samples=8),
        log_every=1,
        val_every=1,
        checkpoint_every=1,
        calibration=CalibrationConfig(anchors=("neutral", "maximal_jaw_drop", "closed_eyes"), photometric_size=32),
    ),
    # Its real budget: the default preset's schedule on the MobileNetV3-like encoder with the six enrollment anchors
    # (data of the `small` or `paper` capture script, which record them) and the Sec. 5.1 loss weights.
    "calibrated-default": TrainConfig(
        model="calibrated_mobilenetv3_tiny",
        input_size=(96, 96),
        batch_size=32,
        steps=3000,
        cutmix=False,
        data=DataConfig(num_workers=2),
        optim=OptimConfig(lr=1e-3, weight_decay=1e-5, warmup_steps=100, grad_clip=5.0),
        loss=LossConfig(expression=1.0, expression_l2=1.0),
        calibration=CalibrationConfig(),
    ),
    # The shipped tracker: the calibrated encoder at 160x160 for 4000 steps, weight decay 0.05, and its jitter stage
    # (as the default preset's two stages).
    "calibrated-lite": _CALIBRATED_LITE,
    "calibrated-lite-finetune": _jitter_stage(_CALIBRATED_LITE),
    # The papers' settings (Universal Sec. 5.1, REFA Sec. 7): 192x192, AdamW, lr 1e-3 cosine, wd 1e-5, batch 16,
    # 150k steps. Runs on a cluster, not here.
    "paper": TrainConfig(
        model="refa_tiny",
        input_size=(192, 192),
        batch_size=16,
        steps=150_000,
        optim=OptimConfig(lr=1e-3, weight_decay=1e-5),
        log_every=50,
        val_every=2500,
        checkpoint_every=2500,
        threads=0,
    ),
}


def config_keys(config: Any = None, prefix: str = "") -> list[str]:
    """Every dotted key `apply_overrides` accepts, e.g. `optim.lr`, `augment.max_rotation_deg`."""
    config = PRESETS["default"] if config is None else config
    keys = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(config_keys(value, f"{prefix}{f.name}."))
    return keys


def apply_overrides(config: TrainConfig, overrides: typing.Sequence[str]) -> TrainConfig:
    """`config` with each `key=value` applied in order through `dataclasses.replace` (see the module docstring)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like key=value, e.g. optim.lr=3e-4")
        config = typing.cast(TrainConfig, _replace_path(config, key.strip().split("."), text.strip(), ""))
    return config


def _replace_path(obj: Any, path: list[str], text: str, prefix: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    name, key = path[0], prefix + path[0]
    if name not in hints:
        valid = ", ".join(prefix + f.name for f in dataclasses.fields(obj))
        raise ValueError(f"unknown config key {key!r}; valid keys here: {valid}")
    if len(path) == 1:
        return _replace(obj, key, **{name: _convert(_parse(text, hints[name], key), hints[name], key)})
    child = getattr(obj, name)
    if child is None:  # e.g. augment.brightness=0.1 after augment=none: start again from the type's defaults
        child = _dataclass_type(hints[name], key)()
    elif not dataclasses.is_dataclass(child):
        raise ValueError(f"config key {key!r} is a {type(child).__name__}, it has no field {path[1]!r}")
    return _replace(obj, key, **{name: _replace_path(child, path[1:], text, key + ".")})


def _replace(obj: Any, key: str, **changes: Any) -> Any:
    try:
        return dataclasses.replace(obj, **changes)
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad value for {key}: {error}") from None


def _dataclass_type(hint: Any, key: str) -> type:
    for arg in typing.get_args(hint) or (hint,):
        if dataclasses.is_dataclass(arg):
            return typing.cast(type, arg)
    raise ValueError(f"config key {key!r} has no fields")


def _parse(text: str, hint: Any, key: str) -> Any:
    """Command-line text -> a JSON-like value for `_convert` (tuples split on commas, `none` for None)."""
    args, origin = typing.get_args(hint), typing.get_origin(hint)
    if type(None) in args and text.lower() in ("none", "null"):
        return None
    if origin in (types.UnionType, typing.Union):
        hint = next(a for a in args if a is not type(None))
        args, origin = typing.get_args(hint), typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        raise ValueError(f"config key {key!r} is a group; set its fields ({key}.<field>=...) or {key}=none")
    if origin is tuple:
        items = [t.strip() for t in text.split(",") if t.strip()]
        item_hint = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return [_parse(t, item_hint or args[min(i, len(args) - 1)], key) for i, t in enumerate(items)]
    if hint is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"bad value for {key}: expected true or false, got {text!r}")
        return lowered in ("true", "1", "yes")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"bad value for {key}: expected {hint.__name__}, got {text!r}") from None
    return text


def _convert(value: Any, hint: Any, key: str) -> Any:
    """A JSON-like value -> an instance of `hint` (dataclasses, tuples, optionals, scalars); errors name the key."""
    what = key or "config"
    args, origin = typing.get_args(hint), typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        args, origin = typing.get_args(hint), typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f"bad value for {what}: expected a mapping of its fields, got {value!r}")
        hints = typing.get_type_hints(hint)
        unknown = sorted(set(value) - set(hints))
        if unknown:
            raise ValueError(f"unknown config key(s) {[f'{key}.{u}'.lstrip('.') for u in unknown]}; "
                             f"valid keys under {what}: {sorted(hints)}")  # fmt: skip
        fields = {k: _convert(v, hints[k], f"{key}.{k}".lstrip(".")) for k, v in value.items()}
        return _replace(typing.cast(type, hint)(), what, **fields) if fields else typing.cast(type, hint)()
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"bad value for {what}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], what) for v in value)
        if len(value) != len(args):
            raise ValueError(f"bad value for {what}: expected {len(args)} values, got {len(value)}: {value!r}")
        return tuple(_convert(v, a, what) for v, a in zip(value, args, strict=True))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ValueError(f"bad value for {what}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
