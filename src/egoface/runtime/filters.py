"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012), vectorized over the outputs of a tracker.

A low-pass filter whose cutoff rises with the signal's speed: `cutoff = min_cutoff + beta * |dx/dt|`. Low
`min_cutoff` removes jitter when the face is still; higher `beta` removes lag when it moves fast. Eyes (gaze and eye
shapes) move in fast saccades and blinks, the rest of the face more slowly, so `Smoothing` holds one parameter set
for each group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OneEuroFilter", "OneEuroParams", "Smoothing"]


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff: Hz at rest; beta: cutoff increase per unit of speed (units of the signal per second); d_cutoff:
    Hz of the low-pass on the speed estimate. enabled=False passes values through unchanged."""

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"One Euro needs min_cutoff > 0, d_cutoff > 0 and beta >= 0, got {self}")


@dataclass(frozen=True)
class Smoothing:
    """One Euro parameters per output group. eyes: gaze (degrees) and the eye shapes (`eye*`); face: the other
    expression shapes. Gaze speeds are in deg/s, so its `beta` is scaled by `gaze_beta_scale` (1 deg/s of gaze is
    about as fast as 1/30 of a shape's range per second)."""

    eyes: OneEuroParams = field(default_factory=lambda: OneEuroParams(min_cutoff=3.0, beta=1.0))
    face: OneEuroParams = field(default_factory=lambda: OneEuroParams(min_cutoff=1.5, beta=2.0))
    gaze_beta_scale: float = 1.0 / 30.0

    @classmethod
    def off(cls) -> Smoothing:
        """No smoothing at all."""
        return cls(OneEuroParams(enabled=False), OneEuroParams(enabled=False))


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return np.asarray(1.0 / (1.0 + tau / dt))


class OneEuroFilter:
    """Filters a vector signal sampled at increasing timestamps; every parameter may be a scalar or a per-element
    array of the signal's shape. `__call__(value, timestamp)` -> the filtered value (same shape, float32)."""

    def __init__(
        self, min_cutoff: np.ndarray | float, beta: np.ndarray | float, d_cutoff: np.ndarray | float = 1.0
    ) -> None:
        self.min_cutoff = np.asarray(min_cutoff, np.float64)
        self.beta = np.asarray(beta, np.float64)
        self.d_cutoff = np.asarray(d_cutoff, np.float64)
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time = 0.0

    def reset(self) -> None:
        self._value = self._speed = None

    def __call__(self, value: np.ndarray, timestamp: float) -> np.ndarray:
        x = np.asarray(value, np.float64)
        if self._value is None or self._speed is None:
            self._value, self._speed, self._time = x, np.zeros_like(x), timestamp
            return x.astype(np.float32)
        dt = timestamp - self._time
        if dt <= 0:
            raise ValueError(f"One Euro timestamps must increase: {timestamp} s after {self._time} s")
        speed = (x - self._value) / dt
        self._speed = self._speed + _alpha(self.d_cutoff, dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, dt) * (x - self._value)
        self._time = timestamp
        return self._value.astype(np.float32)
