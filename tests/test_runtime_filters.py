"""One Euro filter: a constant passes unchanged, noise at rest is reduced, a higher beta follows a fast ramp with
less lag, per-element parameters act per element, and timestamps must increase."""

from __future__ import annotations

import numpy as np
import pytest

from egoface.runtime.filters import OneEuroFilter, OneEuroParams


def run(f: OneEuroFilter, values: np.ndarray, rate: float = 72.0) -> np.ndarray:
    return np.array([f(v, i / rate) for i, v in enumerate(values)])


def test_constant_passes_and_noise_is_reduced() -> None:
    assert np.allclose(run(OneEuroFilter(1.0, 0.0), np.full((50, 3), 0.4)), 0.4)
    noise = 0.5 + 0.05 * np.random.default_rng(0).standard_normal((500, 1))
    out = run(OneEuroFilter(1.0, 0.0), noise)
    assert out[100:].std() < 0.3 * noise[100:].std()


def test_beta_reduces_lag_on_fast_motion() -> None:
    ramp = np.clip(np.arange(100) / 20.0, 0, 1)[:, None]  # 0 -> 1 in 20 frames (0.28 s)
    slow = run(OneEuroFilter(1.0, 0.0), ramp)
    fast = run(OneEuroFilter(1.0, 5.0), ramp)
    lag = lambda out: np.abs(out[:30] - ramp[:30]).mean()  # noqa: E731
    assert lag(fast) < 0.5 * lag(slow)


def test_parameters_per_element_and_errors() -> None:
    step = np.concatenate([np.zeros((1, 2)), np.ones((10, 2))])
    out = run(OneEuroFilter(np.array([0.5, 1e9]), 0.0), step)
    assert out[1, 1] == pytest.approx(1.0) and out[1, 0] < 0.1  # a huge cutoff passes values through
    f = OneEuroFilter(1.0, 0.0)
    f(np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="timestamps must increase"):
        f(np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="min_cutoff > 0"):
        OneEuroParams(min_cutoff=0.0)
