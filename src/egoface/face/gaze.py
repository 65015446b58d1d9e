"""Gaze conventions and the one function that drives the 8 eye-following shapes from gaze.

Gaze is per eye, `(B, 2, 2)`: eye 0 is the subject's left eye, eye 1 the right; the last axis is (yaw, pitch) in
degrees in the head frame, yaw positive toward the subject's left (+X), pitch positive up (+Y). Looking straight
ahead is (0, 0), along +Z.

The eye-following shapes saturate at these angles (ARKit-like ranges):

- `eyeLookOut` / `eyeLookIn`: |yaw| / 30 deg, "out" is away from the nose (yaw > 0 for the left eye,
  yaw < 0 for the right eye), "in" toward it;
- `eyeLookUp`: pitch / 25 deg for pitch > 0; `eyeLookDown`: -pitch / 30 deg for pitch < 0;

each clamped to [0, 1]. `gaze_from_eye_look` is its inverse inside those ranges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from egoface.face._arrays import torch_of
from egoface.face.names import EYE_LOOK_NAMES

if TYPE_CHECKING:  # torch is imported by the functions that need it: the runtime uses this module without torch
    import torch

Array = TypeVar("Array", np.ndarray, "torch.Tensor")

__all__ = [
    "DOWN_RANGE_DEG",
    "HORIZONTAL_RANGE_DEG",
    "UP_RANGE_DEG",
    "eye_look_from_gaze",
    "gaze_from_eye_look",
    "gaze_rotation",
    "gaze_vector",
]

HORIZONTAL_RANGE_DEG = 30.0
UP_RANGE_DEG = 25.0
DOWN_RANGE_DEG = 30.0


def _eye_look_matrix() -> np.ndarray:
    """(4, 8): gaze flattened to (yaw_L, pitch_L, yaw_R, pitch_R) deg -> each eye-following shape's signed value in
    `EYE_LOOK_NAMES` order (its weight where in [0, 1])."""
    matrix = np.zeros((4, len(EYE_LOOK_NAMES)))
    for column, name in enumerate(EYE_LOOK_NAMES):
        eye = 0 if name.endswith("_L") else 1
        outward = 1.0 if eye == 0 else -1.0  # yaw > 0 turns the left eye away from the nose, the right one toward it
        yaw, pitch = 2 * eye, 2 * eye + 1
        kind = name[:-2]
        if kind in ("eyeLookOut", "eyeLookIn"):
            matrix[yaw, column] = (outward if kind == "eyeLookOut" else -outward) / HORIZONTAL_RANGE_DEG
        else:
            matrix[pitch, column] = 1.0 / UP_RANGE_DEG if kind == "eyeLookUp" else -1.0 / DOWN_RANGE_DEG
    return matrix


_EYE_LOOK_MATRIX = _eye_look_matrix()


def eye_look_from_gaze(gaze: torch.Tensor) -> torch.Tensor:
    """gaze: (B, 2, 2) deg -> (B, 8) eye-following shape weights in `EYE_LOOK_NAMES` order (one matrix product and
    a clamp: two operations in an exported graph)."""
    import torch

    matrix = torch.as_tensor(_EYE_LOOK_MATRIX, dtype=gaze.dtype, device=gaze.device)
    return (gaze.flatten(1) @ matrix).clamp(0.0, 1.0)


def gaze_from_eye_look(eye_look: torch.Tensor) -> torch.Tensor:
    """eye_look: (B, 8) in `EYE_LOOK_NAMES` order -> gaze (B, 2, 2) deg; inverse of `eye_look_from_gaze`."""
    import torch

    shape = {name: eye_look[:, i] for i, name in enumerate(EYE_LOOK_NAMES)}
    eyes = []
    for side, outward_sign in (("_L", 1.0), ("_R", -1.0)):
        outward = HORIZONTAL_RANGE_DEG * (shape["eyeLookOut" + side] - shape["eyeLookIn" + side])
        pitch = UP_RANGE_DEG * shape["eyeLookUp" + side] - DOWN_RANGE_DEG * shape["eyeLookDown" + side]
        eyes.append(torch.stack([outward_sign * outward, pitch], dim=-1))
    return torch.stack(eyes, dim=1)


def gaze_vector(gaze: Array) -> Array:
    """gaze: (..., 2) deg (yaw, pitch) -> (..., 3) unit direction in the head frame; numpy in, numpy out; torch in,
    torch out."""
    xp = torch_of(gaze) or np
    yaw, pitch = xp.deg2rad(gaze[..., 0]), xp.deg2rad(gaze[..., 1])
    return xp.stack([xp.sin(yaw) * xp.cos(pitch), xp.sin(pitch), xp.cos(yaw) * xp.cos(pitch)], -1)


def gaze_rotation(gaze: torch.Tensor) -> torch.Tensor:
    """gaze: (..., 2) deg -> (..., 3, 3) rotation taking +Z (straight ahead) to `gaze_vector(gaze)`.

    R = R_y(yaw) @ R_x(-pitch): first tilt up by pitch, then turn toward +X by yaw.
    """
    import torch

    yaw, pitch = torch.deg2rad(gaze[..., 0]), torch.deg2rad(gaze[..., 1])
    cy, sy, cp, sp = torch.cos(yaw), torch.sin(yaw), torch.cos(pitch), torch.sin(pitch)
    zero = torch.zeros_like(yaw)
    rows = [
        torch.stack([cy, -sy * sp, sy * cp], -1),
        torch.stack([zero, cp, sp], -1),
        torch.stack([-sy, -cy * sp, cy * cp], -1),
    ]
    return torch.stack(rows, -2)
