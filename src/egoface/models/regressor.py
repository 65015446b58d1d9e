"""Trackers: REFA's multi-branch regressor (REFA Sec. 7.1, Fig. 7) and two baselines of Universal Table 1.

All share one interface: `forward_features(x) -> (B, num_features)`, `forward_head(features) -> TrackerOutput`,
`forward(x) = forward_head(forward_features(x))`, `forward_tensors(x)` (the same as a plain tuple, for export),
`.config` (`ModelConfig`) and `input_shape` (the input's shape without the batch dimension).

Images are `(B, C, 1, H, W)` normalized floats in `config.cameras` order, at `config.input_size`, with the cameras
of `config.flipped_cameras` already mirrored horizontally by the data pipeline.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from egoface.models.backbones import Backbone
from egoface.models.config import SIDES, ModelConfig, camera_role, camera_side
from egoface.models.heads import FreeGazeHead, PerEyeHead, TrackerOutput, mlp
from egoface.models.registry import (
    backbone_from_config,
    get_backbone_config,
    register_model,
    register_model_class,
)

__all__ = ["FLNet", "NeckNet", "RefaRegressor", "TrackerModel"]


class TrackerModel(nn.Module):
    """The common tracker interface; subclasses define `forward_features`, `forward_head` and `input_shape`."""

    config: ModelConfig
    num_features: int
    input_shape: tuple[int, ...]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> TrackerOutput:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> TrackerOutput:
        return self.forward_head(self.forward_features(x))

    def forward_tensors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(expression (B, 53), free_expression (B, 45), gaze (B, 2, 2)): `forward` as a plain tuple."""
        out = self.forward(x)
        return out.expression, out.free_expression, out.gaze

    def _check_input(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            expected = f"a float tensor of shape (B, {_dims(self.input_shape)})"
            raise TypeError(f"{name} must be {expected}, got {_describe(x)}")
        if x.ndim != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{name} must have shape (B, {_dims(self.input_shape)}) for cameras {self.config.cameras}, "
                f"got {tuple(x.shape)}"
            )


@register_model_class("refa")
class RefaRegressor(TrackerModel):
    """REFA's on-device model: per-role image encoders shared between left and right cameras, a shared per-eye MLP
    and a whole-face MLP.

    - One backbone per camera role (`eye`, `mouth`, `glabella`, ...; `config.backbone` with `in_chans` set to 1):
      `eye_left` and `eye_right` run through the same module, which works because the cameras of exactly one side
      of each role are flipped, so they look like the other side's.
    - `PerEyeHead`: a per-eye MLP shared by both eyes (that eye's shapes and gaze, so a wink is not forced to be
      symmetric) and a whole-face MLP.

    forward_features: images (B, C, 1, H, W) -> (B, C * F), camera-major: `reshape(B, C, F)` gives per-image features.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        _check_shared_encoders(config)
        self.config = config
        self.input_shape = (len(config.cameras), 1, *config.input_size)
        self.roles = tuple(dict.fromkeys(camera_role(c) for c in config.cameras))
        self._role_cameras = [
            [i for i, c in enumerate(config.cameras) if camera_role(c) == role] for role in self.roles
        ]
        self.encoders = nn.ModuleDict({role: _backbone(config, in_chans=1) for role in self.roles})
        self.feature_dim = self._encoder("eye").num_features
        self.num_features = len(config.cameras) * self.feature_dim
        self.head = PerEyeHead(config, config.cameras, self.feature_dim)
        role_major = [i for cameras in self._role_cameras for i in cameras]
        #: camera index of each camera-major position in the role-major feature layout (None: the layouts agree)
        self._camera_major = (
            None if role_major == sorted(role_major) else [role_major.index(i) for i in range(len(role_major))]
        )
        self._register_load_state_dict_pre_hook(_head_prefix)

    def _encoder(self, role: str) -> Backbone:
        encoder = self.encoders[role]
        assert isinstance(encoder, Backbone)
        return encoder

    def encoder_for(self, camera: str) -> Backbone:
        """The backbone that encodes `camera`'s images (the same module for both sides of a role)."""
        if camera not in self.config.cameras:
            raise KeyError(f"unknown camera {camera!r}; cameras are {self.config.cameras}")
        return self._encoder(camera_role(camera))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: images (B, C, 1, H, W) -> (B, C * F)."""
        self._check_input(x, "images")
        image_shape = self.input_shape[1:]  # reshapes by constant shapes: an exported graph computes none
        per_role = []
        for role, cameras in zip(self.roles, self._role_cameras, strict=True):
            batch = x[:, cameras].reshape(-1, *image_shape)  # (B k, 1, H, W)
            per_role.append(self._encoder(role).forward_features(batch).reshape(-1, len(cameras) * self.feature_dim))
        features = torch.cat(per_role, dim=1)  # (B, C F), role-major
        if self._camera_major is None:
            return features
        per_camera = features.reshape(-1, len(self.config.cameras), self.feature_dim)
        return per_camera[:, self._camera_major].reshape(-1, self.num_features)

    def forward_head(self, features: torch.Tensor) -> TrackerOutput:
        """features: (B, C * F) -> TrackerOutput."""
        return self.head(features)


def _head_prefix(state_dict: dict[str, torch.Tensor], prefix: str, *_: object) -> None:
    """Model files written before the per-eye heads became `PerEyeHead` (2026-11-21) name its MLPs `eye_mlp.*` and
    `face_mlp.*`; they are read as `head.eye_mlp.*`, `head.face_mlp.*`."""
    for key in [k for k in state_dict if k.startswith((f"{prefix}eye_mlp.", f"{prefix}face_mlp."))]:
        state_dict[f"{prefix}head.{key[len(prefix) :]}"] = state_dict.pop(key)


@register_model_class("necknet")
class NeckNet(TrackerModel):
    """Raw-image baseline without the multi-branch design (NeckNet / Movement-SDK style): all cameras stacked as
    channels of one backbone (its `in_chans` is set to C), one MLP for every output.
    forward_features: (B, C, 1, H, W) -> (B, F)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.input_shape = (len(config.cameras), 1, *config.input_size)
        self.backbone = _backbone(config, in_chans=len(config.cameras))
        self.num_features = self.backbone.num_features
        self.head = FreeGazeHead(config, self.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, "images")
        return self.backbone.forward_features(x.flatten(1, 2))

    def forward_head(self, features: torch.Tensor) -> TrackerOutput:
        return self.head(features)


@register_model_class("flnet")
class FLNet(TrackerModel):
    """Keypoint-displacement baseline (FLNet style): an MLP from 2D keypoints to the outputs.

    forward_features: keypoints (B, C, L, 2) px, each camera's image keypoints minus the subject's neutral ones
    (unflipped) -> (B, hidden_features).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.num_keypoints < 1:
            raise ValueError(f"flnet needs ModelConfig.num_keypoints >= 1, got {config.num_keypoints}")
        self.config = config
        self.input_shape = (len(config.cameras), config.num_keypoints, 2)
        self.num_features = config.hidden_features
        self.trunk = nn.Sequential(
            mlp(len(config.cameras) * config.num_keypoints * 2, config.hidden_features, config.hidden_features),
            nn.ReLU(inplace=True),
        )
        self.head = FreeGazeHead(config, self.num_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x, "keypoints")
        return self.trunk(x.flatten(1) / self.config.keypoint_scale_px)

    def forward_head(self, features: torch.Tensor) -> TrackerOutput:
        return self.head(features)


def _backbone(config: ModelConfig, in_chans: int) -> Backbone:
    if config.backbone is None:
        raise ValueError(f"the {config.arch} model needs ModelConfig.backbone")
    backbone = backbone_from_config(replace(config.backbone, in_chans=in_chans))
    assert isinstance(backbone, Backbone)
    return backbone


def _check_shared_encoders(config: ModelConfig) -> None:
    """Both sides of a role share one encoder, so the cameras of exactly one side must arrive flipped."""
    for role in dict.fromkeys(camera_role(c) for c in config.cameras):
        in_role = [c for c in config.cameras if camera_role(c) == role]
        sides = {side: [c for c in in_role if camera_side(c) == side] for side in SIDES}
        if not all(sides.values()):
            continue  # one side only: nothing to align
        flipped = {side: [c in config.flipped for c in cameras] for side, cameras in sides.items()}
        if sorted((all(f), any(f)) for f in flipped.values()) != [(False, False), (True, True)]:
            raise ValueError(
                f"{role} cameras {sides['left'] + sides['right']} share one encoder, so exactly one side of them "
                f"must be in flipped_cameras; got flipped_cameras={config.flipped}"
            )


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def _describe(x: object) -> str:
    return f"{type(x).__name__} of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__


_FIVE_CAMERAS = ("eye_left", "eye_right", "mouth_left", "mouth_right", "glabella")  # REFA Fig. 1

register_model("refa_nano", ModelConfig(arch="refa", backbone=get_backbone_config("resnet_nano"), hidden_features=64))
register_model("refa_tiny", ModelConfig(arch="refa", backbone=get_backbone_config("resnet_tiny"), hidden_features=128))
register_model("refa_lite", ModelConfig(arch="refa", backbone=get_backbone_config("resnet_lite"), hidden_features=128))
register_model(
    "refa_lite_192",
    ModelConfig(
        arch="refa", backbone=get_backbone_config("resnet_lite_192"), hidden_features=128, input_size=(192, 192)
    ),
)
register_model(
    "refa_mobilenetv3_tiny",
    ModelConfig(arch="refa", backbone=get_backbone_config("mobilenetv3_tiny"), hidden_features=128),
)
register_model("refa_mobilenetv3_small", ModelConfig(arch="refa", backbone=get_backbone_config("mobilenetv3_small")))
# REFA Sec. 7.1 as published: ResNet-18-like encoders, 224x224 inputs, five cameras (with the glabella).
register_model(
    "refa_resnet18",
    ModelConfig(
        arch="refa", backbone=get_backbone_config("resnet18_like"), cameras=_FIVE_CAMERAS, input_size=(224, 224)
    ),
)
# Baselines (one network for all cameras, so no mirroring); flnet takes 20 keypoints per camera. necknet is the
# shipped encoder's backbone (`resnet_lite_192`) at twice the width, so one pass over the 4 stacked cameras costs
# what the shipped model's 4 encoder passes do (101 against 99 MMACs at 160x160): against it, necknet measures the
# multi-branch design (an encoder per camera role, the per-eye head), not a smaller network. At both widths and in
# both recipes tried it tracked no better than the neutral face (docs/metrics.md, "The raw-image baseline").
register_model(
    "necknet",
    ModelConfig(
        arch="necknet",
        backbone=replace(get_backbone_config("resnet_lite_192"), width_mult=2.0),
        flipped_cameras=(),
        hidden_features=128,
    ),
)
register_model("flnet", ModelConfig(arch="flnet", flipped_cameras=(), num_keypoints=20))
