"""Image backbones written from scratch: a ResNet-like CNN (REFA Sec. 7.1) and a MobileNetV3-like CNN (Universal
Sec. 4.3.1), with registered configurations from paper-like to tiny (CPU real time).

Interface: `forward_feature_map(x: (B, in_chans, H, W)) -> (B, num_features, h, w)`,
`forward_features(x) -> (B, num_features)` (global average pool), `forward_head(features)` (identity: a backbone has
no head), `forward(x) = forward_head(forward_features(x))`; `.config` is the backbone's config dataclass.
Inputs are normalized grayscale floats (see `ModelConfig`); any resolution works.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from egoface.models.config import BlockSpec, MobileNetV3Config, ResNetConfig
from egoface.models.layers import BasicBlock, ConvBnAct, InvertedResidual, make_divisible
from egoface.models.registry import get_backbone_config, register_backbone, register_backbone_class

__all__ = ["Backbone", "MobileNetV3", "ResNet"]


class Backbone(nn.Module):
    """Common interface; subclasses build `self.stem`, `self.body` and set `num_features`."""

    num_features: int
    stem: nn.Module
    body: nn.Module

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_chans, H, W) -> (B, num_features, H / stride, W / stride)."""
        return self.body(self.stem(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_chans, H, W) -> (B, num_features), the average-pooled feature map."""
        return self.forward_feature_map(x).mean((2, 3))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # He init on the true fan-out: a depthwise filter feeds k*k outputs, not out_channels * k*k
                kernel = module.kernel_size[0] * module.kernel_size[1]
                fan_out = module.out_channels // module.groups * kernel
                nn.init.normal_(module.weight, std=(2.0 / fan_out) ** 0.5)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


@register_backbone_class("resnet")
class ResNet(Backbone):
    """ResNet-like CNN of basic blocks; see `ResNetConfig`."""

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        width = [make_divisible(c * config.width_mult) for c in config.channels]
        stem_width = make_divisible(config.stem_channels * config.width_mult)
        stem: list[nn.Module] = []
        stem_in = config.in_chans
        if config.reduce_channels:
            stem_in = make_divisible(config.reduce_channels * config.width_mult)
            stem.append(ConvBnAct(config.in_chans, stem_in, 3, 2))
        stem.append(ConvBnAct(stem_in, stem_width, config.stem_kernel, config.stem_stride))
        if config.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, padding=1))
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        in_chans = stem_width
        for stage, (out_chans, depth) in enumerate(zip(width, config.depths, strict=True)):
            for i in range(depth):
                blocks.append(BasicBlock(in_chans, out_chans, stride=2 if stage > 0 and i == 0 else 1))
                in_chans = out_chans
        self.body = nn.Sequential(*blocks)
        self.num_features = in_chans
        self._init_weights()


@register_backbone_class("mobilenetv3")
class MobileNetV3(Backbone):
    """MobileNetV3-like CNN of inverted residuals; see `MobileNetV3Config`."""

    def __init__(self, config: MobileNetV3Config) -> None:
        super().__init__()
        self.config = config
        scale = config.width_mult
        stem_width = make_divisible(config.stem_channels * scale)
        self.stem = ConvBnAct(config.in_chans, stem_width, 3, config.stem_stride, act="hardswish")
        layers: list[nn.Module] = []
        in_chans = stem_width
        for b in config.blocks:
            out_chans = make_divisible(b.out * scale)
            expanded = make_divisible(b.expanded * scale)
            layers.append(InvertedResidual(in_chans, expanded, out_chans, b.kernel, b.stride, b.se, b.act))
            in_chans = out_chans
        self.num_features = make_divisible(config.head_channels * scale)
        layers.append(ConvBnAct(in_chans, self.num_features, 1, act="hardswish"))
        self.body = nn.Sequential(*layers)
        self._init_weights()


# REFA Sec. 7.1: ResNet-18-like, 224x224 in, 512-channel 7x7 map (stride 32).
register_backbone("resnet18_like", ResNetConfig())
# CPU real time: one 5x5 stride-4 stem conv (no max-pool, which is slow on CPU), one narrow block per stage;
# 192x192 in -> 128 x 6x6 (stride 32).
register_backbone(
    "resnet_tiny",
    ResNetConfig(
        stem_channels=16, stem_kernel=5, stem_stride=4, stem_pool=False, channels=(16, 32, 64, 128), depths=(1, 1, 1, 1)
    ),
)
# The shipped-model budget (4 cameras x 192x192 in a few ms on 2 cores): resnet_tiny at half width, 64 features.
register_backbone("resnet_nano", replace(get_backbone_config("resnet_tiny"), width_mult=0.5))

# The shipped model's encoder: a 3x3 stride-2 stem keeps the detail a stride-4 stem throws away (lip contours and
# the jaw line are a few pixels wide in the oblique mouth views), one block per stage; 96x96 in -> 96 x 6x6.
_RESNET_LITE = ResNetConfig(
    stem_channels=16, stem_kernel=3, stem_stride=2, stem_pool=False, channels=(16, 32, 64, 96), depths=(1, 1, 1, 1)
)
register_backbone("resnet_lite", _RESNET_LITE)
# resnet_lite behind a learned 2x reduction (3x3 stride-2 conv to 8 channels): at 192x192 in, resnet_lite's 96x96
# path plus ~6 MFLOPs per camera.
register_backbone("resnet_lite_192", replace(_RESNET_LITE, reduce_channels=8))

_RE, _HS = "relu", "hardswish"
# MobileNetV3-Small (Howard et al. 2019, Table 2) without the classifier; 576 features, stride 32.
register_backbone(
    "mobilenetv3_small",
    MobileNetV3Config(
        blocks=(
            BlockSpec(3, 16, 16, True, _RE, 2),
            BlockSpec(3, 72, 24, False, _RE, 2),
            BlockSpec(3, 88, 24, False, _RE, 1),
            BlockSpec(5, 96, 40, True, _HS, 2),
            BlockSpec(5, 240, 40, True, _HS, 1),
            BlockSpec(5, 240, 40, True, _HS, 1),
            BlockSpec(5, 120, 48, True, _HS, 1),
            BlockSpec(5, 144, 48, True, _HS, 1),
            BlockSpec(5, 288, 96, True, _HS, 2),
            BlockSpec(5, 576, 96, True, _HS, 1),
            BlockSpec(5, 576, 96, True, _HS, 1),
        ),
        head_channels=576,
    ),
)
# CPU real time: five blocks, stride 32, 128 features.
register_backbone(
    "mobilenetv3_tiny",
    MobileNetV3Config(
        blocks=(
            BlockSpec(3, 16, 16, True, _RE, 2),
            BlockSpec(3, 48, 24, False, _RE, 2),
            BlockSpec(5, 96, 40, True, _HS, 2),
            BlockSpec(5, 120, 48, True, _HS, 1),
            BlockSpec(5, 192, 64, True, _HS, 2),
        ),
        head_channels=128,
    ),
)
