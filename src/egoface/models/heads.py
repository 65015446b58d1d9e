"""Tracker outputs and the heads that produce them.

Every tracker returns a `TrackerOutput`: the 45 free expression coefficients in [0, 1] (`unit_interval`), per-eye
gaze in degrees (tanh-scaled to +-`gaze_limit_deg`), and the 53-vector with the `eyeLook*` shapes computed from that
gaze by `egoface.face.gaze.eye_look_from_gaze`. Name orders come from the model's `ModelConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from egoface.face.gaze import eye_look_from_gaze
from egoface.face.names import EYE_LOOK_NAMES
from egoface.models.config import SIDES, ModelConfig, camera_role, camera_side

__all__ = ["ExpressionAssembler", "FreeGazeHead", "PerEyeHead", "TrackerOutput", "mlp", "unit_interval"]


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


class PerEyeHead(nn.Module):
    """REFA's heads (Sec. 7.1, Fig. 7) on camera-major features `(B, C * F)` of the cameras `feature_cameras`.

    - The eye MLP reads one eye camera's F features and predicts that eye's `config.eye_shapes` (with the camera's
      side as suffix: `eye_left` -> `eyeBlink_L`) and its gaze; both eyes share it. It sees every eye as the
      unflipped side does: for the flipped eye camera (`config.flipped_cameras`) the predicted yaw is negated to undo
      the mirror (pitch is unchanged). So a wink is not forced to be symmetric, and mirroring the face mirrors these
      outputs exactly.
    - The face MLP reads all C * F features and predicts the other free shapes.
    """

    gaze_scale: torch.Tensor
    free_order: torch.Tensor

    def __init__(self, config: ModelConfig, feature_cameras: Sequence[str], feature_dim: int) -> None:
        super().__init__()
        eye_cameras = [  # gaze order: eye 0 = subject's left
            [c for c in feature_cameras if camera_role(c) == "eye" and camera_side(c) == side] for side in SIDES
        ]
        if [len(c) for c in eye_cameras] != [1, 1]:
            raise ValueError(f"REFA's per-eye head needs one left and one right eye camera (eye_left, eye_right), "
                             f"got {eye_cameras}")  # fmt: skip
        per_eye = [shape + suffix for suffix in ("_L", "_R") for shape in config.eye_shapes]
        not_free = [n for n in per_eye if n not in config.free_expression_names]
        if not_free:
            raise ValueError(f"eye_shapes give {not_free}, which are not free expression names")
        face_names = [n for n in config.free_expression_names if n not in per_eye]
        self.feature_dim, self.num_cameras = feature_dim, len(feature_cameras)
        self._eye_index = [list(feature_cameras).index(c) for (c,) in eye_cameras]
        self.num_eye_shapes = len(config.eye_shapes)
        self.eye_mlp = mlp(feature_dim, config.hidden_features, self.num_eye_shapes + 2)
        self.face_mlp = mlp(len(feature_cameras) * feature_dim, config.hidden_features, len(face_names))
        self.assemble = ExpressionAssembler(config)
        flipped = [c in config.flipped for (c,) in eye_cameras]
        sign = torch.tensor([[-1.0 if f else 1.0, 1.0] for f in flipped])  # (2 eyes, (yaw, pitch)): undo the mirror
        self.register_buffer("gaze_scale", config.gaze_limit_deg * sign, persistent=False)
        source = face_names + per_eye  # layout of cat([face_mlp, eye shapes of eye 0, of eye 1])
        self.register_buffer(
            "free_order", torch.tensor([source.index(n) for n in config.free_expression_names]), persistent=False
        )

    def forward(self, features: torch.Tensor) -> TrackerOutput:
        """features: (B, C * F) camera-major -> TrackerOutput."""
        per_camera = features.reshape(-1, self.num_cameras, self.feature_dim)  # (B, C, F)
        eye_out = self.eye_mlp(per_camera[:, self._eye_index])  # (B, 2, S + 2), subject's left eye first
        eye_shapes = unit_interval(eye_out[..., : self.num_eye_shapes]).flatten(1)  # (B, 2 S): eye 0's, then eye 1's
        gaze = torch.tanh(eye_out[..., self.num_eye_shapes :]) * self.gaze_scale  # (B, 2, 2) deg
        face = unit_interval(self.face_mlp(features))  # (B, 45 - 2 S)
        free = torch.cat([face, eye_shapes], dim=1).index_select(1, self.free_order)  # (B, 45)
        return self.assemble(free, gaze)
