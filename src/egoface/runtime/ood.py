"""Out-of-distribution detection from a model's features: a summary of the training distribution (mean and
principal components) and a Mahalanobis-style distance to it. Computed at export time (`egoface export --data`) and
stored in the ONNX file's metadata; numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FeatureStatistics"]


@dataclass(frozen=True)
class FeatureStatistics:
    """The training distribution of the model's features, summarized for a Mahalanobis-style distance.

    mean: (F,); components: (K, F) the top principal directions (orthonormal rows); variances: (K,) the variance
    along each; residual_variance: mean variance per dimension outside those K directions. The score of a feature
    vector f is the mean over K + 1 terms of squared standardized distances (K along the components, one for the
    residual, scaled per dimension), so a typical training frame scores about 1. threshold: the `quantile` of the
    training frames' scores, times `margin`; frames: how many training frames were summarized.
    """

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual_variance: float
    threshold: float
    frames: int
    quantile: float = 0.995
    margin: float = 1.5

    def score(self, features: np.ndarray) -> np.ndarray:
        """features: (B, F) -> (B,) distance scores (about 1 in distribution, larger outside)."""
        centred = np.asarray(features, np.float64) - self.mean
        projected = centred @ self.components.T  # (B, K)
        residual = centred - projected @ self.components  # (B, F)
        outside = max(centred.shape[1] - len(self.variances), 1)
        terms = (projected**2 / self.variances).sum(1) + (residual**2).sum(1) / (self.residual_variance * outside)
        return np.asarray(terms / (len(self.variances) + 1), np.float64)

    def to_json(self) -> str:
        return json.dumps(
            {
                "mean": self.mean.tolist(),
                "components": self.components.tolist(),
                "variances": self.variances.tolist(),
                "residual_variance": self.residual_variance,
                "threshold": self.threshold,
                "frames": self.frames,
                "quantile": self.quantile,
                "margin": self.margin,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureStatistics:
        data: dict[str, Any] = json.loads(text)
        return cls(
            mean=np.asarray(data["mean"], np.float64),
            components=np.asarray(data["components"], np.float64),
            variances=np.asarray(data["variances"], np.float64),
            residual_variance=float(data["residual_variance"]),
            threshold=float(data["threshold"]),
            frames=int(data["frames"]),
            quantile=float(data["quantile"]),
            margin=float(data["margin"]),
        )

    @classmethod
    def fit(
        cls, features: np.ndarray, components: int = 16, quantile: float = 0.995, margin: float = 1.5
    ) -> FeatureStatistics:
        """features: (N, F) of training frames -> their summary (PCA with `components` directions)."""
        data = np.asarray(features, np.float64)
        if data.ndim != 2 or len(data) < 2:
            raise ValueError(f"feature statistics need (N >= 2, F) features, got shape {data.shape}")
        mean = data.mean(0)
        centred = data - mean
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        variance = singular**2 / (len(data) - 1)  # (min(N, F),)
        k = min(components, len(variance) - 1, data.shape[1] - 1)
        floor = 1e-6 * max(float(variance[0]), 1e-12)  # keeps degenerate directions from dividing by zero
        outside = max(data.shape[1] - k, 1)
        residual_variance = max(float(variance[k:].sum()) / outside, floor)
        stats = cls(mean, vt[:k], np.maximum(variance[:k], floor), residual_variance, 1.0, len(data), quantile, margin)
        threshold = float(np.quantile(stats.score(data), quantile)) * margin
        return cls(mean, vt[:k], stats.variances, residual_variance, threshold, len(data), quantile, margin)
