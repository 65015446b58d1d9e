"""Input checks at the face room's public boundary: one clear message per mistake."""

from __future__ import annotations

import numpy as np
import torch


def as_float_tensor(name: str, value: object, shape: tuple[int | None, ...], device: torch.device) -> torch.Tensor:
    """Convert `value` to a float32 tensor (keeping float64) and check its shape and finiteness.

    `shape` uses None for "any size"; e.g. (None, 53) for a batch of expression vectors.
    """
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{name} must be an array of numbers with shape {_spec(shape)}, got {value!r}") from error
    if not (value.dtype.is_floating_point or value.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must be a float tensor with shape {_spec(shape)}, got dtype {value.dtype}")
    tensor = value if value.dtype in (torch.float32, torch.float64) else value.to(torch.float32)
    tensor = tensor.to(device)
    if tensor.ndim != len(shape) or any(
        want is not None and want != got for want, got in zip(shape, tensor.shape, strict=True)
    ):
        raise ValueError(f"{name} must have shape {_spec(shape)}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def _spec(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("B" if dim is None else str(dim) for dim in shape) + ")"
