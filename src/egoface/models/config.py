"""The small configurations that travel with model weights: plain frozen dataclasses that round-trip through JSON.

A backbone is fully described by a `ResNetConfig` or a `MobileNetV3Config`; a tracker by a `ModelConfig`, which
embeds its backbone's configuration, so `model_from_config(ModelConfig.from_json(text))` rebuilds the exact
architecture that a saved `state_dict` belongs to, whatever the registry holds by then.

Camera names say role and side as in `docs/headset.md`: `<role>`, or `<role>_<side>`, optionally followed by
`_<suffix>` (`eye_left`, `mouth_right`, `glabella`, `eye_left_aug`). The role is the part before the first `_`;
the side (`left` / `right`, the subject's side) is the second part when it is one of those, else there is none.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, FREE_EXPRESSION_NAMES

__all__ = [
    "BackboneConfig",
    "BlockSpec",
    "MobileNetV3Config",
    "ModelConfig",
    "ResNetConfig",
    "backbone_config_from_dict",
    "camera_role",
    "camera_side",
]

SIDES = ("left", "right")


def camera_role(camera: str) -> str:
    """`eye_left` -> `eye`, `glabella` -> `glabella`."""
    return camera.split("_", 1)[0]


def camera_side(camera: str) -> str | None:
    """`eye_left` -> `left`, `mouth_right_aug` -> `right`, `glabella` -> None."""
    parts = camera.split("_")
    return parts[1] if len(parts) > 1 and parts[1] in SIDES else None


@dataclass(frozen=True)
class ResNetConfig:
    """A ResNet-like CNN (REFA Sec. 7.1): conv-BN-ReLU stem (+ optional 3x3/2 max-pool), then one stage of basic
    residual blocks per entry of `channels`/`depths` (the first stage keeps the resolution, each later one halves
    it), then global average pooling to `channels[-1] * width_mult` features. `reduce_channels` > 0 puts a 3x3
    stride-2 conv-BN-ReLU of that width before the stem: a learned 2x reduction for high-resolution input.

    Every channel count is multiplied by `width_mult` and rounded to a multiple of 8. The network accepts any input
    resolution; the output stride is `(2 if reduce_channels) * stem_stride * (2 if stem_pool) * 2 ** (len(channels) -
    1)`.
    """

    family: str = "resnet"
    in_chans: int = 1
    width_mult: float = 1.0
    stem_channels: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    reduce_channels: int = 0
    channels: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (2, 2, 2, 2)

    def __post_init__(self) -> None:
        _check_family(self, "resnet")
        _check_common(self.in_chans, self.width_mult, self.stem_channels, self.stem_stride)
        if not self.channels or len(self.channels) != len(self.depths):
            raise ValueError(
                f"ResNetConfig needs one depth per stage, got channels={self.channels} and depths={self.depths}"
            )
        if min(self.channels) < 1 or min(self.depths) < 1 or self.stem_kernel < 1 or self.reduce_channels < 0:
            raise ValueError(f"ResNetConfig sizes must be positive, got {self}")


class BlockSpec(NamedTuple):
    """One inverted-residual block of a MobileNetV3 (Howard et al. 2019, Table 1/2 rows)."""

    kernel: int
    expanded: int  # channels of the depthwise stage (before the width multiplier)
    out: int  # output channels (before the width multiplier)
    se: bool  # squeeze-and-excite after the depthwise conv
    act: str  # "relu" or "hardswish"
    stride: int


@dataclass(frozen=True)
class MobileNetV3Config:
    """A MobileNetV3-like CNN (Universal Sec. 4.3.1): conv-BN-hardswish stem, inverted-residual `blocks`, a 1x1
    conv-BN-hardswish to `head_channels`, global average pooling to `head_channels * width_mult` features.

    Every channel count is multiplied by `width_mult` and rounded to a multiple of 8. Any input resolution works;
    the output stride is `stem_stride` times the product of the block strides.
    """

    family: str = "mobilenetv3"
    in_chans: int = 1
    width_mult: float = 1.0
    stem_channels: int = 16
    stem_stride: int = 2
    blocks: tuple[BlockSpec, ...] = ()
    head_channels: int = 576

    def __post_init__(self) -> None:
        _check_family(self, "mobilenetv3")
        _check_common(self.in_chans, self.width_mult, self.stem_channels, self.stem_stride)
        if not self.blocks or self.head_channels < 1:
            raise ValueError(f"MobileNetV3Config needs at least one block and head_channels >= 1, got {self}")
        for block in self.blocks:
            if not isinstance(block, BlockSpec):
                raise TypeError(f"MobileNetV3Config.blocks must hold BlockSpec tuples, got {block!r}")
            if block.act not in ("relu", "hardswish") or block.stride not in (1, 2) or block.kernel % 2 == 0:
                raise ValueError(f"invalid block {block}: act relu|hardswish, stride 1|2, odd kernel expected")


BackboneConfig = ResNetConfig | MobileNetV3Config
_BACKBONE_FAMILIES: dict[str, type[ResNetConfig] | type[MobileNetV3Config]] = {
    "resnet": ResNetConfig,
    "mobilenetv3": MobileNetV3Config,
}


def backbone_config_from_dict(data: dict[str, Any]) -> BackboneConfig:
    """Inverse of `dataclasses.asdict` on a backbone config (lists back to tuples, blocks back to `BlockSpec`)."""
    family = data.get("family")
    if family not in _BACKBONE_FAMILIES:
        raise ValueError(f"unknown backbone family {family!r}; expected one of {sorted(_BACKBONE_FAMILIES)}")
    values = _tuples(data, _BACKBONE_FAMILIES[family])
    if "blocks" in values:
        values["blocks"] = tuple(BlockSpec(*block) for block in values["blocks"])
    return _BACKBONE_FAMILIES[family](**values)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a tracker and to feed it: architecture, backbone, input layout, output names.

    arch: the model class (`refa`, `necknet`, `flnet`); backbone: the image encoder (None for keypoint models).
    cameras: the camera order of the input (`images: (B, len(cameras), 1, H, W)`).
    flipped_cameras: cameras whose images the data pipeline mirrors horizontally before the model sees them; None
        (the default) means every camera on the subject's left side, as REFA Sec. 7.1 does.
    input_size: (H, W) px after resizing. Input normalization: `x = (pixel / 255 - pixel_mean) / pixel_std`.
    expression_names / free_expression_names: the order of the 53-vector and of the 45 freely predicted shapes; the
        other 8 are the `eyeLook*` shapes, computed from gaze by `egoface.face.gaze.eye_look_from_gaze`.
    eye_shapes (refa): per-eye shapes predicted by the shared eye MLP, without the `_L`/`_R` suffix. REFA's eye
        cameras see "eye and eyebrow movements", so the default includes the brows.
    hidden_features: width of the MLP heads; gaze_limit_deg: predicted |yaw|, |pitch| are below this (tanh-scaled).
    num_keypoints (flnet): 2D keypoints per camera; keypoint_scale_px (flnet): typical displacement, px.
    """

    arch: str
    backbone: BackboneConfig | None = None
    cameras: tuple[str, ...] = ("eye_left", "eye_right", "mouth_left", "mouth_right")
    flipped_cameras: tuple[str, ...] | None = None
    input_size: tuple[int, int] = (192, 192)
    pixel_mean: float = 0.5
    pixel_std: float = 0.25
    expression_names: tuple[str, ...] = EXPRESSION_NAMES
    free_expression_names: tuple[str, ...] = FREE_EXPRESSION_NAMES
    eye_shapes: tuple[str, ...] = ("eyeBlink", "eyeSquint", "eyeWide", "browDown", "browInnerUp", "browOuterUp")
    hidden_features: int = 256
    gaze_limit_deg: float = 50.0
    num_keypoints: int = 0
    keypoint_scale_px: float = 10.0

    def __post_init__(self) -> None:
        if len(set(self.cameras)) != len(self.cameras) or not self.cameras:
            raise ValueError(f"ModelConfig.cameras must be non-empty and unique, got {self.cameras}")
        for camera in self.cameras:
            if not camera or "" in camera.split("_"):
                raise ValueError(f"camera name {camera!r} must be '<role>[_<side>][_<suffix>]', like 'eye_left'")
        if self.flipped_cameras is None:
            object.__setattr__(self, "flipped_cameras", tuple(c for c in self.cameras if camera_side(c) == "left"))
        unknown = [c for c in self.flipped_cameras or () if c not in self.cameras]
        if unknown:
            raise ValueError(
                f"flipped_cameras {unknown} are not among cameras {self.cameras}; "
                "pass flipped_cameras=None to flip the left-side cameras"
            )
        if len(self.input_size) != 2 or min(self.input_size) < 1 or self.pixel_std <= 0:
            raise ValueError(f"expected input_size (H, W) > 0, pixel_std > 0; got {self.input_size}, {self.pixel_std}")
        if self.gaze_limit_deg <= 0 or self.hidden_features < 1 or self.keypoint_scale_px <= 0:
            raise ValueError("gaze_limit_deg, hidden_features and keypoint_scale_px must be positive")
        eye_look = [n for n in self.expression_names if n not in self.free_expression_names]
        if (
            len(set(self.expression_names)) != len(self.expression_names)
            or len(set(self.free_expression_names)) != len(self.free_expression_names)
            or not set(self.free_expression_names) <= set(self.expression_names)
            or sorted(eye_look) != sorted(EYE_LOOK_NAMES)
        ):
            raise ValueError(
                "expression_names must be unique and consist of free_expression_names plus exactly the eyeLook "
                f"shapes {EYE_LOOK_NAMES}; got {len(self.expression_names)} names, {len(eye_look)} not free"
            )

    @property
    def flipped(self) -> tuple[str, ...]:
        """`flipped_cameras`, resolved (never None after construction)."""
        return self.flipped_cameras or ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        values = _tuples(data, cls)
        if values.get("backbone") is not None:
            values["backbone"] = backbone_config_from_dict(values["backbone"])
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        return cls.from_dict(json.loads(text))


def _tuples(data: dict[str, Any], cls: type) -> dict[str, Any]:
    """Copy `data` with lists turned into tuples, after checking its keys against the fields of `cls`."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid fields are {sorted(names)}")
    return {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}


def _check_family(config: ResNetConfig | MobileNetV3Config, family: str) -> None:
    if config.family != family:
        raise ValueError(f"{type(config).__name__}.family must be {family!r}, got {config.family!r}")


def _check_common(in_chans: int, width_mult: float, stem_channels: int, stem_stride: int) -> None:
    if in_chans < 1 or width_mult <= 0 or stem_channels < 1 or stem_stride < 1:
        raise ValueError(
            "backbone in_chans, width_mult, stem_channels and stem_stride must be positive, got "
            f"{in_chans}, {width_mult}, {stem_channels}, {stem_stride}"
        )
