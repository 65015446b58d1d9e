"""The model's input transform in numpy, read from an exported file's metadata: the runtime's copy of
`egoface.data.dataset.prepare_views` followed by `egoface.models.files.normalize_images`, without torch.

Resizing is separable: `view = Ry @ image @ Rx.T` with per-axis weight matrices equal to torch's bilinear
interpolation with `antialias=True, align_corners=False` (a triangle filter widened by the downscale factor, its
weights renormalized at the borders); a horizontal flip is folded into `Rx` by reversing its columns. Matrices are
cached per input size, so a frame costs two small matrix products per camera.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["InputSpec", "resize_weights"]


@functools.lru_cache(maxsize=64)
def resize_weights(source: int, target: int) -> np.ndarray:
    """(target, source) float32 rows of interpolation weights for one axis (torch `_upsample_bilinear2d_aa`)."""
    scale = source / target
    support = scale if scale >= 1.0 else 1.0  # the triangle's half-width in source pixels
    inverse = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((target, source), np.float64)
    for i in range(target):
        centre = scale * (i + 0.5)
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), source)
        taps = np.arange(low, high)
        w = np.maximum(0.0, 1.0 - np.abs((taps - centre + 0.5) * inverse))
        weights[i, low:high] = w / w.sum()
    return weights.astype(np.float32)


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input. cameras: names in input order; flipped: cameras mirrored horizontally;
    input_size: (H, W) px; scale, mean, std: `x = (pixel * scale - mean) / std`."""

    cameras: tuple[str, ...]
    flipped: frozenset[str]
    input_size: tuple[int, int]
    scale: float
    mean: float
    std: float

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> InputSpec:
        """From an exported file's metadata (`egoface.runtime.export.METADATA_KEYS`)."""
        normalization = json.loads(metadata["egoface.normalization"])
        height, width = json.loads(metadata["egoface.input_size"])
        return cls(
            cameras=tuple(json.loads(metadata["egoface.cameras"])),
            flipped=frozenset(json.loads(metadata["egoface.flipped_cameras"])),
            input_size=(int(height), int(width)),
            scale=float(normalization["scale"]),
            mean=float(normalization["mean"]),
            std=float(normalization["std"]),
        )

    def view(self, image: np.ndarray, camera: str) -> np.ndarray:
        """image: (H_c, W_c) uint8 -> (H, W) float32 in [0, 1]: flipped if `camera` is, resized (`prepare_views`)."""
        height, width = self.input_size
        pixels = image.astype(np.float32) * np.float32(self.scale)
        if image.shape == (height, width):
            return pixels[:, ::-1] if camera in self.flipped else pixels
        rows = resize_weights(image.shape[0], height)
        columns = resize_weights(image.shape[1], width)
        if camera in self.flipped:
            columns = columns[:, ::-1]
        return rows @ pixels @ columns.T

    def normalize(self, views: np.ndarray) -> np.ndarray:
        """views: (C, H, W) in [0, 1] -> the graph's input (1, C, 1, H, W) float32."""
        return ((views - np.float32(self.mean)) / np.float32(self.std))[None, :, None]
