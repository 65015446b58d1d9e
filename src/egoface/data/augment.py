"""Training augmentations of headset images (Universal Sec. 5.1 / Table 5): random rotation (up to 15 deg), random
scale (up to 1.1x), CutMix with 3 patches; plus brightness and gamma jitter and, off by default, sensor jitter (lens
blur, additive noise, a black-level offset: how two cameras of the same scene differ). All seeded by a
`torch.Generator`; a range at 0 draws nothing, so turning one on leaves the other draws of a seed unchanged.

Images are float in [0, 1]. Geometry in pixels: (0, 0) is the centre of the top-left pixel, +x right, +y down; a
warp turns and scales the content about the image centre, `p_out = c + scale * R(angle) @ (p_in - c)`, so a
positive angle turns the content clockwise on screen (from +x toward +y). Keypoints follow the same map.

CutMix (decision): patches come from *another sample of the same batch*, same camera (so it is free: no extra
read), and the labels of the base sample are kept, as in the paper (it mixes inputs for regularization; the labels
are not mixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "AugmentConfig",
    "affine_warp",
    "augment_views",
    "cutmix",
    "photometric",
    "sample_affine",
    "sensor_jitter",
    "sensor_jitter_per_camera",
    "warp_points",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation ranges. Defaults are the Universal paper's (rotation 15 deg, scale 1.1, 3 CutMix patches).

    `max_scale` s draws scales log-uniformly in [1/s, s]; `brightness` b draws a gain in [1-b, 1+b]; `gamma` g
    draws an exponent exp(U(-g, g)); CutMix patch sides are uniform in `cutmix_size` (fraction of the image side).
    Sensor jitter: a Gaussian blur of sigma U(0, `blur_sigma_px`) px, an offset U(0, `black_level`) and Gaussian
    noise of std U(0, `noise_std`), image units ([0, 1]).
    """

    max_rotation_deg: float = 15.0
    max_scale: float = 1.1
    brightness: float = 0.2
    gamma: float = 0.2
    cutmix_patches: int = 3
    cutmix_size: tuple[float, float] = (0.1, 0.35)
    blur_sigma_px: float = 0.0
    noise_std: float = 0.0
    black_level: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_rotation_deg <= 180 or self.max_scale < 1 or not 0 <= self.brightness < 1:
            raise ValueError(f"need 0 <= max_rotation_deg <= 180, max_scale >= 1, 0 <= brightness < 1; got {self}")
        if self.gamma < 0 or self.cutmix_patches < 0 or not 0 < self.cutmix_size[0] <= self.cutmix_size[1] <= 1:
            raise ValueError(f"need gamma >= 0, cutmix_patches >= 0, 0 < cutmix_size[0] <= [1] <= 1; got {self}")
        if not (0 <= self.blur_sigma_px <= 3 and 0 <= self.noise_std < 1 and 0 <= self.black_level < 1):
            raise ValueError(f"need 0 <= blur_sigma_px <= 3, 0 <= noise_std < 1, 0 <= black_level < 1; got {self}")

    @property
    def jitters_sensor(self) -> bool:
        """Whether any sensor-jitter range is open (otherwise `sensor_jitter` changes nothing)."""
        return max(self.blur_sigma_px, self.noise_std, self.black_level) > 0


def _uniform(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator)


def sample_affine(count: int, config: AugmentConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (angle_deg (count,), scale (count,)) within the configured bounds."""
    angle = _uniform(count, -config.max_rotation_deg, config.max_rotation_deg, generator)
    log_scale = math.log(config.max_scale)
    return angle, torch.exp(_uniform(count, -log_scale, log_scale, generator))


def affine_warp(images: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Turn and scale `images: (B, 1, H, W)` about their centres (`angle_deg`, `scale`: (B,)); zeros outside.
    Returns `images` itself when every angle is 0 and every scale 1."""
    if not bool(angle_deg.any()) and bool((scale == 1).all()):
        return images
    _, _, height, width = images.shape
    a = torch.deg2rad(angle_deg.to(images.dtype))
    cos, sin = torch.cos(a) / scale, torch.sin(a) / scale
    # Output -> input map in normalized coordinates: D^-1 R(-angle) D / scale, D = diag(W/2, H/2).
    theta = torch.zeros(images.shape[0], 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = -sin * width / height, cos
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_points(
    points: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Where `points: (B, L, 2)` px land after `affine_warp` with the same (B,) angle and scale."""
    a = torch.deg2rad(angle_deg.to(points.dtype))
    rotation = torch.stack([torch.cos(a), -torch.sin(a), torch.sin(a), torch.cos(a)], dim=-1).view(-1, 2, 2)
    centre = points.new_tensor([(width - 1) / 2, (height - 1) / 2])
    moved = torch.einsum("bij,blj->bli", rotation * scale.view(-1, 1, 1).to(points.dtype), points - centre)
    return moved + centre


def photometric(images: torch.Tensor, gain: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """`clamp(gain * images, 0, 1) ** gamma` per image; `images: (B, 1, H, W)`, `gain`, `gamma`: (B,)."""
    return (images * gain.view(-1, 1, 1, 1)).clamp(0.0, 1.0) ** gamma.view(-1, 1, 1, 1)


def _gaussian_blur(images: torch.Tensor, sigma_px: torch.Tensor) -> torch.Tensor:
    """Blur `images: (B, K, H, W)` with one Gaussian per image, `sigma_px: (B,)` (0 = unchanged), the same for its
    K planes; edges reflect."""
    count, planes, height, width = images.shape
    radius = max(1, math.ceil(3 * float(sigma_px.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    sigma = sigma_px.to(images.dtype).clamp(min=1e-3).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(planes, dim=0)  # (B K, 2 radius + 1)
    padded = F.pad(images.reshape(1, count * planes, height, width), (radius, radius, radius, radius), mode="reflect")
    padded = F.conv2d(padded, kernel.view(count * planes, 1, 1, -1), groups=count * planes)
    padded = F.conv2d(padded, kernel.view(count * planes, 1, -1, 1), groups=count * planes)
    return padded.view(count, planes, height, width)


def sensor_jitter(images: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Lens blur, black-level offset and noise (`AugmentConfig` sensor ranges) of `images: (B, K, H, W)`: one draw
    per image, shared by its K planes (e.g. one camera's anchor frames: one sensor), the noise itself per pixel."""
    count = images.shape[0]
    if config.blur_sigma_px > 0:
        images = _gaussian_blur(images, _uniform(count, 0.0, config.blur_sigma_px, generator))
    if config.black_level > 0:
        images = images + _uniform(count, 0.0, config.black_level, generator).view(-1, 1, 1, 1)
    if config.noise_std > 0:
        std = _uniform(count, 0.0, config.noise_std, generator).view(-1, 1, 1, 1)
        images = images + std * torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return images.clamp(0.0, 1.0)


def sensor_jitter_per_camera(frames: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """`sensor_jitter` of `frames: (..., M, C, 1, H, W)`, M frames of C cameras (e.g. one subject's anchors): one draw
    per camera of each leading index, shared by its M frames (one enrollment: one session of one headset)."""
    count, cameras, _, height, width = frames.shape[-5:]
    per_camera = frames.reshape(-1, count, cameras, height, width).transpose(1, 2).reshape(-1, count, height, width)
    jittered = sensor_jitter(per_camera, config, generator).view(-1, cameras, count, 1, height, width)
    return jittered.transpose(1, 2).reshape(frames.shape)


def augment_views(
    images: torch.Tensor,
    config: AugmentConfig,
    generator: torch.Generator,
    keypoints: torch.Tensor | None = None,
    visibility: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Per-camera random rotation, scale, sensor jitter, brightness and gamma of one sample's `images: (C, 1, H, W)`.

    `keypoints: (C, L, 2)` px move with their image; `visibility: (C, L)` turns False for points warped outside.
    """
    count, _, height, width = images.shape
    angle, scale = sample_affine(count, config, generator)
    gain = _uniform(count, 1 - config.brightness, 1 + config.brightness, generator)
    gamma = torch.exp(_uniform(count, -config.gamma, config.gamma, generator))
    out = photometric(sensor_jitter(affine_warp(images, angle, scale), config, generator), gain, gamma)
    if keypoints is None:
        return out, None, visibility
    moved = warp_points(keypoints, angle, scale, height, width)
    inside = (moved[..., 0] >= -0.5) & (moved[..., 0] <= width - 0.5)
    inside &= (moved[..., 1] >= -0.5) & (moved[..., 1] <= height - 0.5)
    return out, moved, None if visibility is None else visibility & inside


def cutmix(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paste `config.cutmix_patches` rectangles into every view from another sample of the batch (same camera).

    `images: (B, C, 1, H, W)` with B >= 2. Returns `(mixed, boxes (B, C, P, 4) [y0, x0, y1, x1) px, source (B,))`:
    sample b receives its patches from sample `source[b] != b`. Labels stay those of the base sample.
    """
    batch, cameras, _, height, width = images.shape
    patches = config.cutmix_patches
    if batch < 2:
        raise ValueError(f"cutmix needs a batch of at least 2 samples, got {batch}")
    shift = int(torch.randint(1, batch, (1,), generator=generator))
    source = (torch.arange(batch) + shift) % batch
    low, high = config.cutmix_size
    shape = (batch, cameras, patches)
    size_y = (_uniform(math.prod(shape), low, high, generator).view(shape) * height).round().clamp(min=1).long()
    size_x = (_uniform(math.prod(shape), low, high, generator).view(shape) * width).round().clamp(min=1).long()
    y0 = (torch.rand(shape, generator=generator) * (height - size_y + 1)).long()
    x0 = (torch.rand(shape, generator=generator) * (width - size_x + 1)).long()
    boxes = torch.stack([y0, x0, y0 + size_y, x0 + size_x], dim=-1)
    rows = torch.arange(height).view(1, 1, 1, height, 1)
    cols = torch.arange(width).view(1, 1, 1, 1, width)
    in_rows = (rows >= boxes[..., 0, None, None]) & (rows < boxes[..., 2, None, None])  # (B, C, P, H, 1)
    in_cols = (cols >= boxes[..., 1, None, None]) & (cols < boxes[..., 3, None, None])  # (B, C, P, 1, W)
    inside = in_rows & in_cols
    mask = inside.any(dim=2, keepdim=True)  # (B, C, 1, H, W)
    return torch.where(mask, images[source], images), boxes, source
