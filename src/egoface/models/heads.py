"""Tracker outputs and the heads that produce them.

Every tracker returns a `TrackerOutput`: the 45 free expression coefficients in [0, 1] (`unit_interval`), per-eye
gaze in degrees (tanh-scaled to +-`gaze_limit_deg`), and the 53-vector with the `eyeLook*` shapes computed from that
gaze by `egoface.face.gaze.eye_look_from_gaze`. Name orders come from the model's `ModelConfig`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from egoface.face.gaze import eye_look_from_gaze
from egoface.face.names import EYE_LOOK_NAMES
from egoface.models.config import ModelConfig

__all__ = ["ExpressionAssembler", "FreeGazeHead", "TrackerOutput", "mlp", "unit_interval"]


class TrackerOutput(NamedTuple):
    """expression: (B, 53) in `config.expression_names` order, [0, 1]; free_expression: (B, 45) in
    `config.free_expression_names` order, [0, 1]; gaze: (B, 2, 2) deg, eye 0 = subject's left, (yaw, pitch) as in
    `egoface.face.gaze`."""

    expression: torch.Tensor
    free_expression: torch.Tensor
    gaze: torch.Tensor


def mlp(in_features: int, hidden_features: int, out_features: int) -> nn.Sequential:
    """Two-layer perceptron: Linear -> ReLU -> Linear (raw outputs)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden_features), nn.ReLU(inplace=True), nn.Linear(hidden_features, out_features)
    )


def unit_interval(x: torch.Tensor) -> torch.Tensor:
    """Raw outputs -> [0, 1] by clamping, with the identity's gradient (straight-through).

    Not a sigmoid: our coefficients are zero most of the time, and a sigmoid must be driven deep into saturation to
    output zero, where its gradient vanishes, so L1-trained sigmoid heads stall at the median for thousands of steps.
    The forward pass is a plain clamp (ONNX `Clip`); the backward pass lets a prediction below 0 or above 1 still be
    pulled toward its target.
    """
    clamped = x.clamp(0.0, 1.0)
    return x + (clamped - x).detach() if torch.is_grad_enabled() else clamped  # no gradient: the clamp alone


class ExpressionAssembler(nn.Module):
    """(free (B, 45), gaze (B, 2, 2)) -> `TrackerOutput`, filling the `eyeLook*` columns from gaze. No parameters."""

    order: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        source = list(config.free_expression_names) + list(EYE_LOOK_NAMES)  # layout of cat([free, eye_look])
        order = torch.tensor([source.index(n) for n in config.expression_names])
        self.register_buffer("order", order, persistent=False)

    def forward(self, free: torch.Tensor, gaze: torch.Tensor) -> TrackerOutput:
        expression = torch.cat([free, eye_look_from_gaze(gaze)], dim=1).index_select(1, self.order)  # (B, 53)
        return TrackerOutput(expression, free, gaze)


class FreeGazeHead(nn.Module):
    """One MLP from a feature vector (B, in_features) to all 45 free shapes and both eyes' gaze (the baselines'
    head: no per-eye branch)."""

    def __init__(self, config: ModelConfig, in_features: int) -> None:
        super().__init__()
        self.num_free = len(config.free_expression_names)
        self.gaze_limit_deg = config.gaze_limit_deg
        self.mlp = mlp(in_features, config.hidden_features, self.num_free + 4)
        self.assemble = ExpressionAssembler(config)

    def forward(self, features: torch.Tensor) -> TrackerOutput:
        raw = self.mlp(features)  # (B, 45 + 4)
        free = unit_interval(raw[:, : self.num_free])
        gaze = self.gaze_limit_deg * torch.tanh(raw[:, self.num_free :]).unflatten(1, (2, 2))  # (B, 2, 2)
        return self.assemble(free, gaze)
