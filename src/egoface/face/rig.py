"""Person-specific idiosyncrasies: how one subject's blendshapes differ from anyone else's.

Applied on top of a subject's adapted blendshapes (`FaceModel.rig`), they make a rig that another person's generic
rig cannot reproduce exactly: per-shape amplitude, left/right asymmetry, and a smooth perturbation of each shape's
displacement field. The "real" domain of the capture stage uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from egoface.face.names import NUM_EXPRESSIONS

__all__ = ["Idiosyncrasies", "apply_idiosyncrasies", "sample_idiosyncrasies"]


@dataclass(frozen=True)
class Idiosyncrasies:
    """amplitude: (53,) gain per shape (1 = as generic); asymmetry: (53,) in [-1, 1], the relative gain difference
    between the subject's left (+X) and right side; perturbation: fraction of each shape's own displacement added
    as a smooth random field; seed: fixes that field."""

    amplitude: np.ndarray
    asymmetry: np.ndarray
    perturbation: float
    seed: int

    def __post_init__(self) -> None:
        for name in ("amplitude", "asymmetry"):
            value = getattr(self, name)
            if value.shape != (NUM_EXPRESSIONS,) or not np.isfinite(value).all():
                raise ValueError(f"Idiosyncrasies.{name} must be a finite (53,) array, got shape {value.shape}")
        if not 0.0 <= self.perturbation <= 1.0:
            raise ValueError(f"Idiosyncrasies.perturbation must be in [0, 1], got {self.perturbation}")


def sample_idiosyncrasies(seed: int, strength: float = 1.0) -> Idiosyncrasies:
    """Random idiosyncrasies; strength 1 gives amplitudes of about 1 +- 0.2, asymmetry +- 0.15, 25% perturbation."""
    rng = np.random.default_rng(seed)
    amplitude = np.clip(1.0 + 0.2 * strength * rng.standard_normal(NUM_EXPRESSIONS), 0.5, 1.6)
    asymmetry = np.clip(0.15 * strength * rng.standard_normal(NUM_EXPRESSIONS), -0.6, 0.6)
    return Idiosyncrasies(
        amplitude=amplitude.astype(np.float32),
        asymmetry=asymmetry.astype(np.float32),
        perturbation=float(min(1.0, 0.25 * strength)),
        seed=seed,
    )


def apply_idiosyncrasies(deltas: torch.Tensor, neutral: torch.Tensor, idiosyncrasies: Idiosyncrasies) -> torch.Tensor:
    """deltas: (53, V, 3) mm, neutral: (V, 3) mm -> (53, V, 3) mm, the subject's own shapes."""
    amplitude = torch.as_tensor(idiosyncrasies.amplitude, dtype=deltas.dtype, device=deltas.device)
    asymmetry = torch.as_tensor(idiosyncrasies.asymmetry, dtype=deltas.dtype, device=deltas.device)
    side = torch.tanh(neutral[:, 0] / 10.0)  # (V,) -1 on the right, +1 on the left, smooth across the midline
    gain = amplitude[:, None] * (1.0 + asymmetry[:, None] * side[None, :])  # (53, V)
    field = _smooth_random_field(neutral, NUM_EXPRESSIONS, idiosyncrasies.seed)  # (53, V, 3), |.| <= ~1
    magnitude = deltas.norm(dim=-1, keepdim=True)  # (53, V, 1)
    return gain[..., None] * deltas + idiosyncrasies.perturbation * magnitude * field


def _smooth_random_field(points: torch.Tensor, num_fields: int, seed: int) -> torch.Tensor:
    """(num_fields, V, 3) sums of random low-frequency sinusoids (wavelengths 30-80 mm) of unit RMS amplitude."""
    rng = np.random.default_rng(seed)
    num_waves = 4
    directions = rng.standard_normal((num_fields, num_waves, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    wavelength = rng.uniform(30.0, 80.0, (num_fields, num_waves, 1))
    frequency = torch.as_tensor(2 * np.pi * directions / wavelength, dtype=points.dtype)  # (F, W, 3)
    phase = torch.as_tensor(rng.uniform(0, 2 * np.pi, (num_fields, num_waves)), dtype=points.dtype)
    amplitude = torch.as_tensor(rng.standard_normal((num_fields, num_waves, 3)), dtype=points.dtype)
    waves = torch.sin(torch.einsum("fwc,vc->fwv", frequency, points) + phase[..., None])  # (F, W, V)
    return torch.einsum("fwv,fwc->fvc", waves, amplitude) / np.sqrt(num_waves)
