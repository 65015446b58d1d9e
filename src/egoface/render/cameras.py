"""Cameras: lens models (pinhole, fisheye) and extrinsics, projecting 3D points to pixels.

The lens math is written once, in torch (each lens's `project_camera_frame`), so that projected pixels carry gradients
for fitting; numpy inputs are wrapped as tensors without copying and returned as numpy.

Frames (design.md): world points in mm; the camera frame is OpenCV (+X right, +Y down, +Z forward);
`x_cam = rotation @ x_world + translation`; pixel (0, 0) is the centre of the top-left pixel.
Triangles of a face mesh are small, so only vertices go through the lens; the rasterizer then draws straight 2D
triangles between them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np
import torch

__all__ = [
    "Camera",
    "FisheyeLens",
    "PinholeLens",
    "Projection",
    "fisheye_for_fov",
    "pinhole_for_fov",
]

#: Points nearer than this to the camera plane (mm, along +Z) are not projected (invalid).
NEAR_MM = 1e-3

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class Projection(Generic[ArrayT]):
    """Projected points, same kind (numpy or torch) as the input.

    pixels: (..., N, 2) pixel coordinates (x right, y down); depth: (..., N) mm distance from the camera centre;
    valid: (..., N) bool, True where the point is in front of the lens and within its field of view (pixels and
    depth of invalid points are finite but meaningless).
    """

    pixels: ArrayT
    depth: ArrayT
    valid: ArrayT


def _check_intrinsics(fx: float, fy: float, cx: float, cy: float) -> None:
    for name, value in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if fx <= 0 or fy <= 0:
        raise ValueError(f"focal lengths must be positive pixels, got fx={fx}, fy={fy}")


@dataclass(frozen=True)
class PinholeLens:
    """Pinhole lens: u = fx * x / z + cx, v = fy * y / z + cy (pixels). Valid: z > NEAR_MM (points outside the
    image are valid; the rasterizer clips them)."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        _check_intrinsics(self.fx, self.fy, self.cx, self.cy)

    def project_camera_frame(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x, y, z: (..., N) mm camera frame -> pixel u, v (..., N) and valid (..., N) bool."""
        valid = z > NEAR_MM
        inv_z = 1.0 / torch.where(valid, z, torch.ones_like(z))
        return self.fx * x * inv_z + self.cx, self.fy * y * inv_z + self.cy, valid


@dataclass(frozen=True)
class FisheyeLens:
    """Fisheye lens with image radius r(theta) for the angle theta (rad) from the optical axis.

    equidistant: r = theta (times f); kannala_brandt: r = theta + k1 theta^3 + k2 theta^5 + k3 theta^7 +
    k4 theta^9 (OpenCV's fisheye model). Pixel: u = fx * r * x / |xy| + cx, v = fy * r * y / |xy| + cy.
    Valid: in front of the lens (z > NEAR_MM) and theta <= max_angle_deg.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    model: Literal["equidistant", "kannala_brandt"] = "equidistant"
    max_angle_deg: float = 90.0

    def __post_init__(self) -> None:
        _check_intrinsics(self.fx, self.fy, self.cx, self.cy)
        if self.model not in ("equidistant", "kannala_brandt"):
            raise ValueError(f"model must be 'equidistant' or 'kannala_brandt', got {self.model!r}")
        distortion = tuple(float(k) for k in self.distortion)
        if len(distortion) != 4 or not all(math.isfinite(k) for k in distortion):
            raise ValueError(f"distortion must be 4 finite numbers (k1, k2, k3, k4), got {self.distortion!r}")
        if self.model == "equidistant" and any(distortion):
            raise ValueError(f"an equidistant lens has no distortion; use model='kannala_brandt', got {distortion}")
        if not 0.0 < self.max_angle_deg <= 90.0:
            raise ValueError(f"max_angle_deg must be in (0, 90], got {self.max_angle_deg}")
        object.__setattr__(self, "distortion", distortion)

    def project_camera_frame(
        self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x, y, z: (..., N) mm camera frame -> pixel u, v (..., N) and valid (..., N) bool."""
        # The tiny offset keeps the on-axis point (x = y = 0) finite with a zero gradient; it is far below float32
        # resolution of any real coordinate.
        radial = torch.sqrt(x * x + y * y + 1e-30)
        theta = torch.atan2(radial, z)
        theta2 = theta * theta
        k1, k2, k3, k4 = self.distortion
        image_radius = theta * (1.0 + theta2 * (k1 + theta2 * (k2 + theta2 * (k3 + theta2 * k4))))
        scale = image_radius / radial
        valid = (z > NEAR_MM) & (theta <= math.radians(self.max_angle_deg))
        return self.fx * scale * x + self.cx, self.fy * scale * y + self.cy, valid


Lens = PinholeLens | FisheyeLens


def _image_centre(width: int, height: int) -> tuple[float, float]:
    return (width - 1) / 2.0, (height - 1) / 2.0


def _check_image_size(width: object, height: object) -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive integer number of pixels, got {value!r}")
    return int(width), int(height)  # type: ignore[call-overload]


def fisheye_for_fov(
    width: int, height: int, fov_deg: float, model: Literal["equidistant", "kannala_brandt"] = "equidistant"
) -> FisheyeLens:
    """An equidistant fisheye whose image circle of `fov_deg` (full angle) fits the shorter image side; the image
    corners see further, up to 90 deg off-axis."""
    width, height = _check_image_size(width, height)
    if not 0.0 < fov_deg <= 180.0:
        raise ValueError(f"fov_deg must be in (0, 180], got {fov_deg}")
    focal = (min(width, height) / 2.0) / math.radians(fov_deg / 2.0)
    cx, cy = _image_centre(width, height)
    return FisheyeLens(focal, focal, cx, cy, model=model)


def pinhole_for_fov(width: int, height: int, fov_deg: float) -> PinholeLens:
    """A pinhole lens with a horizontal field of view of `fov_deg` and square pixels, centred."""
    width, height = _check_image_size(width, height)
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    focal = (width / 2.0) / math.tan(math.radians(fov_deg / 2.0))
    cx, cy = _image_centre(width, height)
    return PinholeLens(focal, focal, cx, cy)


@dataclass(frozen=True)
class Camera:
    """A lens placed in the world: `x_cam = rotation @ x_world + translation` (mm), image `width` x `height` px."""

    lens: Lens
    width: int
    height: int
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def __post_init__(self) -> None:
        if not isinstance(self.lens, PinholeLens | FisheyeLens):
            raise TypeError(f"lens must be a PinholeLens or FisheyeLens, got {type(self.lens).__name__}")
        _check_image_size(self.width, self.height)
        rotation = np.asarray(self.rotation, dtype=np.float64)
        translation = np.asarray(self.translation, dtype=np.float64)
        if rotation.shape != (3, 3) or not np.isfinite(rotation).all():
            raise ValueError(f"rotation must be a finite (3, 3) matrix, got shape {rotation.shape}")
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5) or np.linalg.det(rotation) < 0:
            raise ValueError("rotation must be a proper rotation matrix (orthonormal, determinant +1)")
        if translation.shape != (3,) or not np.isfinite(translation).all():
            raise ValueError(f"translation must be a finite (3,) vector in mm, got shape {translation.shape}")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @classmethod
    def look_at(
        cls,
        position: object,
        target: object,
        up: object = (0.0, 1.0, 0.0),
        *,
        lens: Lens,
        width: int,
        height: int,
    ) -> Camera:
        """A camera at `position` (3,) mm looking at `target` (3,) mm, with world `up` pointing up in the image."""
        position_v = np.asarray(position, dtype=np.float64)
        target_v = np.asarray(target, dtype=np.float64)
        up_v = np.asarray(up, dtype=np.float64)
        for name, value in (("position", position_v), ("target", target_v), ("up", up_v)):
            if value.shape != (3,) or not np.isfinite(value).all():
                raise ValueError(f"{name} must be a finite (3,) vector, got shape {value.shape}")
        forward = target_v - position_v
        if np.linalg.norm(forward) < 1e-9:
            raise ValueError("target must differ from position")
        forward /= np.linalg.norm(forward)
        down = -(up_v - (up_v @ forward) * forward)
        if np.linalg.norm(down) < 1e-9:
            raise ValueError("up must not be parallel to the viewing direction")
        down /= np.linalg.norm(down)
        right = np.cross(down, forward)
        rotation = np.stack((right, down, forward))
        return cls(lens, width, height, rotation, -rotation @ position_v)

    @property
    def center(self) -> np.ndarray:
        """(3,) the camera centre in world coordinates, mm."""
        return -self.rotation.T @ self.translation

    @property
    def optical_axis(self) -> np.ndarray:
        """(3,) unit world direction the camera looks along (+Z of the camera frame)."""
        return self.rotation[2].copy()

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """points: (..., N, 3) mm world -> (..., 3, N) mm camera frame, coordinate-major so that each of x, y, z
        is contiguous for the lens math (torch, differentiable)."""
        rotation = torch.as_tensor(self.rotation, dtype=points.dtype, device=points.device)
        translation = torch.as_tensor(self.translation, dtype=points.dtype, device=points.device)
        return rotation @ points.transpose(-1, -2) + translation[:, None]

    def project(self, points: ArrayT) -> Projection[ArrayT]:
        """points: (..., N, 3) mm world, numpy or torch -> Projection of the same kind (torch keeps gradients)."""
        is_numpy = isinstance(points, np.ndarray)
        tensor = torch.from_numpy(points) if is_numpy else points
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"points must be a numpy array or torch tensor, got {type(points).__name__}")
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"points must be floating point (mm), got dtype {tensor.dtype}")
        if tensor.ndim < 2 or tensor.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., N, 3), got {tuple(tensor.shape)}")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError("points contain NaN or infinite coordinates")
        pixels, depth, valid = self.project_unchecked(tensor)
        if is_numpy:
            return Projection(pixels.numpy(), depth.numpy(), valid.numpy())  # type: ignore[arg-type]
        return Projection(pixels, depth, valid)  # type: ignore[arg-type]

    def project_unchecked(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`project` for callers that have already checked `points` (..., N, 3) finite floats, e.g. a `Mesh`:
        -> pixels (..., N, 2), depth (..., N), valid (..., N) as tensors."""
        x, y, z = self.world_to_camera(points).unbind(-2)
        u, v, valid = self.lens.project_camera_frame(x, y, z)
        return torch.stack((u, v), dim=-1), torch.sqrt(x * x + y * y + z * z), valid
