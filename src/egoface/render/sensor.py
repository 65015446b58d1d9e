"""Infrared sensing: from the shader's radiance image to the 8-bit frame a headset camera delivers.

Stages, in the order light meets them: lens blur and vignetting (optics), an optional motion-blur blend with the
previous frame, exposure (radiance x exposure time -> photo-electrons, clipped at the full well), shot and read noise,
analog gain, black level and quantization with clipping at both ends of the 8-bit range. `AutoExposure` is the
camera's per-session exposure loop: it steers exposure toward a target mean level, within limits, so faces far from
the LEDs come out dark and close ones saturate, as on real headsets. Out-of-distribution events (a hand in view, a
covered camera) are image-space composites flagged by the caller.

Two sensor models stand for the two domains: `SYNTHETIC_SENSOR` (the training renderer's) and `REAL_SENSOR` (the
"real" domain's: noisier, softer, stronger vignetting, a non-linear response and fixed-pattern noise).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.ndimage import gaussian_filter

__all__ = [
    "REAL_SENSOR",
    "SYNTHETIC_SENSOR",
    "AutoExposure",
    "SensorModel",
    "cover_camera",
    "hand_in_view",
    "sense",
]


@dataclass(frozen=True)
class SensorModel:
    """A camera's optics and sensor. full_well: electrons at saturation; read_noise: electrons RMS;
    gain_dn_per_electron: digital numbers per electron at unit analog gain; black_level: DN; vignetting: relative
    fall-off at the image corner; blur_sigma_px: lens blur; response_gamma: 1 = linear; fixed_pattern: relative
    per-pixel gain variation (PRNU)."""

    full_well: float = 9000.0
    read_noise: float = 6.0
    gain_dn_per_electron: float = 255.0 / 9000.0
    black_level: float = 4.0
    vignetting: float = 0.35
    blur_sigma_px: float = 0.5
    response_gamma: float = 1.0
    fixed_pattern: float = 0.0


SYNTHETIC_SENSOR = SensorModel()
REAL_SENSOR = SensorModel(
    full_well=7000.0,
    read_noise=12.0,
    gain_dn_per_electron=255.0 / 7000.0,
    black_level=10.0,
    vignetting=0.55,
    blur_sigma_px=0.9,
    response_gamma=0.8,
    fixed_pattern=0.02,
)


@dataclass
class AutoExposure:
    """Per-session exposure control. exposure: electrons per unit radiance; steers the metered level toward
    `target_dn` by a fraction `rate` per frame (in log exposure), within [min_exposure, max_exposure]. The meter is
    the mean of the brightest quarter of the pixels, so a face filling part of a dark frame is exposed for the face."""

    exposure: float
    target_dn: float = 150.0
    rate: float = 0.15
    min_exposure: float = 10.0
    max_exposure: float = 60000.0

    def update(self, frame: np.ndarray, sensor_frames: int = 1) -> None:
        """Adapt to a delivered uint8 frame (H, W). sensor_frames: loop iterations the camera ran on this scene (it
        meters every frame at its own rate; a capture at a lower rate keeps one frame of `sensor_frames`), applied
        as one compounded step."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 2:
            raise ValueError(f"frame must be a uint8 (H, W) array, got {getattr(frame, 'dtype', type(frame))}")
        if sensor_frames < 1:
            raise ValueError(f"sensor_frames must be >= 1, got {sensor_frames}")
        step = (self.target_dn / self.level(frame)) ** (1.0 - (1.0 - self.rate) ** sensor_frames)
        self.exposure = float(np.clip(self.exposure * step, self.min_exposure, self.max_exposure))

    @staticmethod
    def level(frame: np.ndarray) -> float:
        """The meter's reading of a uint8 (H, W) frame, DN (at least 1)."""
        return max(float(_brightest_quarter_mean(frame)), 1.0)


@njit(cache=True)
def _brightest_quarter_mean(frame):  # pragma: no cover - compiled
    """Mean of the brightest quarter (frame.size // 4 pixels, at least 1) of a uint8 (H, W) frame, exactly, from its
    histogram."""
    counts = np.zeros(256, np.int64)
    for value in frame.ravel():
        counts[value] += 1
    quarter = max(frame.size // 4, 1)
    remaining, total = quarter, 0
    for level in range(255, -1, -1):  # brightest first
        taken = min(counts[level], remaining)
        total += taken * level
        remaining -= taken
        if remaining == 0:
            break
    return total / quarter


def sense(
    radiance: np.ndarray,
    sensor: SensorModel,
    exposure: float,
    rng: np.random.Generator,
    gain: float = 1.0,
    previous_radiance: np.ndarray | None = None,
    motion_blur: float = 0.0,
) -> np.ndarray:
    """radiance: (H, W) float from the shader -> (H, W) uint8 frame.

    exposure: electrons per unit radiance (see `AutoExposure`); gain: analog gain; motion_blur in [0, 1): the weight
    of `previous_radiance` (the scene one frame earlier) in a linear blend that stands in for movement during the
    exposure.
    """
    if radiance.ndim != 2:
        raise ValueError(f"radiance must be an (H, W) image, got shape {radiance.shape}")
    if not 0.0 <= motion_blur < 1.0:
        raise ValueError(f"motion_blur must be in [0, 1), got {motion_blur}")
    light = radiance.astype(np.float64)
    if previous_radiance is not None and motion_blur > 0:
        light = (1.0 - motion_blur) * light + motion_blur * previous_radiance
    if sensor.blur_sigma_px > 0:
        light = _blur(light, _gaussian_taps(sensor.blur_sigma_px), np.empty_like(light), np.empty_like(light))
    frame = np.empty(light.shape, np.uint8)
    _expose(
        light, _optical_gain(light.shape, sensor.vignetting, sensor.fixed_pattern), float(exposure), rng,
        sensor.full_well, sensor.read_noise, sensor.gain_dn_per_electron * gain / 255.0, sensor.response_gamma,
        sensor.black_level, frame,
    )  # fmt: skip
    return frame


@functools.cache
def _gaussian_taps(sigma: float) -> np.ndarray:
    """(2 r + 1,) normalized Gaussian weights, r = round(4 sigma) px: scipy.ndimage's `gaussian_filter` kernel."""
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 / (sigma * sigma) * offsets**2)
    return taps / taps.sum()


@njit(cache=True)
def _blur(image, taps, rows, out):  # pragma: no cover - compiled
    """Separable Gaussian blur of (H, W) `image` with `taps` (`_gaussian_taps`), edges replicated (scipy.ndimage's
    mode 'nearest'): along rows into `rows`, then along columns into `out`, which is returned."""
    height, width = image.shape
    radius = taps.shape[0] // 2
    for y in range(height):
        for x in range(width):
            total = 0.0
            for k in range(-radius, radius + 1):
                total += taps[k + radius] * image[y, min(max(x + k, 0), width - 1)]
            rows[y, x] = total
    for y in range(height):
        for x in range(width):
            out[y, x] = 0.0
        for k in range(-radius, radius + 1):
            source = min(max(y + k, 0), height - 1)
            for x in range(width):
                out[y, x] += taps[k + radius] * rows[source, x]
    return out


@njit(cache=True, error_model="numpy")
def _expose(
    light, optical_gain, exposure, rng, full_well, read_noise, signal_per_electron, gamma, black_level, frame
):  # fmt: skip  # pragma: no cover - compiled
    """The per-pixel chain of `sense` after the optics, one pass: light (H, W) x optical gain x exposure ->
    electrons + shot noise, clipped at the full well, + read noise -> signal (1 = 255 DN above black, clipped at 0)
    -> response curve -> black level -> rounded and clipped uint8 `frame`. Draws one or two standard normals from
    `rng` per pixel."""
    height, width = light.shape
    for y in range(height):
        for x in range(width):
            electrons = max(light[y, x] * optical_gain[y, x] * exposure, 0.0)
            if electrons + 7.0 * math.sqrt(electrons) < full_well:
                # The well cannot clip (but with probability < 1e-11): shot and read noise, independent Gaussians,
                # add in quadrature and are drawn at once.
                electrons += math.sqrt(electrons + read_noise * read_noise) * rng.standard_normal()
            else:
                electrons += math.sqrt(electrons) * rng.standard_normal()  # shot noise
                electrons = min(electrons, full_well)  # the well clips the collected charge
                electrons += read_noise * rng.standard_normal()
            signal = max(electrons * signal_per_electron, 0.0)
            if gamma != 1.0:
                signal = signal**gamma
            frame[y, x] = np.uint8(min(max(np.rint(255.0 * signal + black_level), 0.0), 255.0))


@functools.cache
def _optical_gain(shape: tuple[int, ...], vignetting: float, fixed_pattern: float) -> np.ndarray:
    """(H, W) relative illumination x per-pixel gain: `_vignetting`, times `_fixed_pattern` when it is on."""
    gain = _vignetting(shape, vignetting)
    return gain * _fixed_pattern(shape, fixed_pattern) if fixed_pattern > 0 else gain


@functools.cache
def _vignetting(shape: tuple[int, ...], strength: float) -> np.ndarray:
    """(H, W) relative illumination 1 at the centre, 1 - strength at the corners (quadratic in radius)."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width]
    radius = np.hypot((x - (width - 1) / 2) / (width / 2), (y - (height - 1) / 2) / (height / 2)) / np.sqrt(2)
    return 1.0 - strength * radius**2


@functools.cache
def _fixed_pattern(shape: tuple[int, ...], strength: float) -> np.ndarray:
    """A sensor's own per-pixel gain pattern: fixed for a sensor (seeded by its size), not per frame."""
    return 1.0 + strength * np.random.default_rng(shape[0] * 10007 + shape[1]).standard_normal(shape)


def hand_in_view(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Composite a close hand into a uint8 frame: bright (near the LEDs), blurred fingers entering from an edge."""
    height, width = frame.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    entry = np.array([width / 2, height / 2]) - direction * 0.6 * max(width, height)
    depth = (x - entry[0]) * direction[0] + (y - entry[1]) * direction[1]  # distance into the image
    across = -(x - entry[0]) * direction[1] + (y - entry[1]) * direction[0]
    reach = rng.uniform(0.5, 0.9) * max(width, height)
    finger_width = rng.uniform(0.08, 0.14) * width
    mask = np.zeros_like(x)
    for offset in np.arange(-1.5, 2.0) * finger_width * 1.1:
        finger = (np.abs(across - offset) < finger_width / 2) & (depth < reach - abs(offset) * 0.5)
        mask = np.maximum(mask, finger.astype(np.float64))
    mask = np.maximum(mask, (depth < 0.45 * reach).astype(np.float64))  # the palm
    mask = gaussian_filter(mask, 0.02 * width)
    brightness = rng.uniform(170, 250) * (1.0 + 0.08 * gaussian_filter(rng.standard_normal(x.shape), 2.0))
    blended = frame * (1.0 - mask) + brightness * mask
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def cover_camera(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A covered lens: almost no structure, a dim or glowing blur (LED light scattered by a finger or cloth)."""
    level = rng.uniform(2, 60)
    blurred = gaussian_filter(frame.astype(np.float64), 0.25 * frame.shape[1]) * 0.2 + level
    noisy = blurred + 2.0 * rng.standard_normal(frame.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
