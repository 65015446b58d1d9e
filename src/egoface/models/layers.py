"""The few building blocks the backbones need: conv-BN-activation, residual basic block, squeeze-excite, inverted
residual. All export-friendly (no data-dependent Python control flow); tensors are (B, C, H, W)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ConvBnAct", "InvertedResidual", "SqueezeExcite", "make_activation", "make_divisible"]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to the nearest multiple of `divisor`, never going below `divisor` or 90% of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def make_activation(name: str | None) -> nn.Module:
    """`relu`, `hardswish` or None (identity)."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hardswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}; expected 'relu', 'hardswish' or None")


class ConvBnAct(nn.Sequential):
    """Conv2d (no bias, 'same' padding for odd kernels) -> BatchNorm2d -> activation."""

    def __init__(
        self, in_chans: int, out_chans: int, kernel: int, stride: int = 1, groups: int = 1, act: str | None = "relu"
    ) -> None:
        super().__init__(
            nn.Conv2d(in_chans, out_chans, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_chans),
            make_activation(act),
        )


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, identity (or 1x1 conv-BN projection) shortcut, ReLU after the sum."""

    def __init__(self, in_chans: int, out_chans: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBnAct(in_chans, out_chans, 3, stride)
        self.conv2 = ConvBnAct(out_chans, out_chans, 3, act=None)
        keep = stride == 1 and in_chans == out_chans
        self.shortcut = nn.Identity() if keep else ConvBnAct(in_chans, out_chans, 1, stride, act=None)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class SqueezeExcite(nn.Module):
    """Channel gating: global mean -> 1x1 conv -> ReLU -> 1x1 conv -> hard-sigmoid -> scale (MobileNetV3)."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))  # (B, C, 1, 1)
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck: 1x1 expand (skipped when expanded == in) -> k x k depthwise (stride) -> optional
    squeeze-excite -> 1x1 linear projection; residual connection when shape is preserved."""

    def __init__(
        self, in_chans: int, expanded: int, out_chans: int, kernel: int, stride: int, se: bool, act: str
    ) -> None:
        super().__init__()
        self.expand = nn.Identity() if expanded == in_chans else ConvBnAct(in_chans, expanded, 1, act=act)
        self.depthwise = ConvBnAct(expanded, expanded, kernel, stride, groups=expanded, act=act)
        self.se = SqueezeExcite(expanded, make_divisible(expanded / 4)) if se else nn.Identity()
        self.project = ConvBnAct(expanded, out_chans, 1, act=None)
        self.residual = stride == 1 and in_chans == out_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y
