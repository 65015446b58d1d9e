"""Head poses: the head's rigid transform in the headset frame, `x_headset = rotation @ x_head + translation` (mm).

A `HeadPose` holds one pose (`rotation (3, 3)`, `translation (3,)`) or a batch (`rotation (N, 3, 3)`,
`translation (N, 3)`), e.g. one per frame of a recording. Rotations are exchanged with the outside world as
axis-angle vectors in degrees (direction = axis, norm = angle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = ["HeadPose"]


@dataclass(frozen=True, eq=False)
class HeadPose:
    """The head's pose in the headset frame. rotation: (..., 3, 3) proper rotations; translation: (..., 3) mm.

    The batch shape (`...`) is () for one pose or (N,) for a track; `pose[i]` picks one pose of a track.
    """

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        rotation = np.array(self.rotation, dtype=np.float64)
        translation = np.array(self.translation, dtype=np.float64)
        if rotation.ndim not in (2, 3) or rotation.shape[-2:] != (3, 3):
            raise ValueError(f"rotation must have shape (3, 3) or (N, 3, 3), got {rotation.shape}")
        if translation.shape != rotation.shape[:-1]:
            raise ValueError(
                f"translation must have shape {rotation.shape[:-1]} to match rotation {rotation.shape}, "
                f"got {translation.shape}"
            )
        if not (np.isfinite(rotation).all() and np.isfinite(translation).all()):
            raise ValueError("rotation and translation must be finite")
        gram = np.einsum("...ji,...jk->...ik", rotation, rotation)
        if not np.allclose(gram, np.eye(3), atol=1e-6) or (np.linalg.det(rotation) < 0).any():
            raise ValueError("rotation must hold proper rotation matrices (orthonormal, determinant +1)")
        rotation.flags.writeable = False
        translation.flags.writeable = False
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)

    @classmethod
    def identity(cls) -> HeadPose:
        """The nominal donning: the head frame coincides with the headset frame."""
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_axis_angle(cls, rotation_deg: object, translation_mm: object) -> HeadPose:
        """rotation_deg: (..., 3) axis-angle vectors in degrees; translation_mm: (..., 3) mm."""
        vectors = np.asarray(rotation_deg, dtype=np.float64)
        if vectors.ndim not in (1, 2) or vectors.shape[-1] != 3:
            raise ValueError(f"rotation_deg must have shape (3,) or (N, 3), got {vectors.shape}")
        matrices = Rotation.from_rotvec(vectors, degrees=True).as_matrix()
        return cls(matrices, np.asarray(translation_mm, dtype=np.float64))

    @property
    def axis_angle_deg(self) -> np.ndarray:
        """(..., 3) the rotation as axis-angle vectors, degrees."""
        return Rotation.from_matrix(self.rotation).as_rotvec(degrees=True)

    @property
    def angle_deg(self) -> np.ndarray:
        """(...) the rotation angle, degrees (0 for the identity)."""
        return np.linalg.norm(self.axis_angle_deg, axis=-1)

    def __len__(self) -> int:
        if self.rotation.ndim == 2:
            raise TypeError("a single HeadPose has no length; only a track of poses (N, 3, 3) does")
        return int(self.rotation.shape[0])

    def __getitem__(self, index: int) -> HeadPose:
        if self.rotation.ndim == 2:
            raise TypeError("a single HeadPose cannot be indexed; only a track of poses (N, 3, 3) can")
        return HeadPose(self.rotation[index], self.translation[index])

    def apply(self, points_head: object) -> np.ndarray:
        """Head-frame points to the headset frame (mm).

        One pose: points_head (..., 3) -> (..., 3). A track of N poses: points_head (N, P, 3) -> (N, P, 3), pose i
        applied to points_head[i].
        """
        points = np.asarray(points_head, dtype=np.float64)
        if points.ndim < 1 or points.shape[-1] != 3:
            raise ValueError(f"points_head must have shape (..., 3), got {points.shape}")
        if self.rotation.ndim == 2:
            return points @ self.rotation.T + self.translation
        if points.ndim != 3 or points.shape[0] != self.rotation.shape[0]:
            raise ValueError(
                f"a track of {self.rotation.shape[0]} poses needs points_head of shape "
                f"({self.rotation.shape[0]}, P, 3), got {points.shape}"
            )
        return np.einsum("nij,npj->npi", self.rotation, points) + self.translation[:, None, :]

    def inverse(self) -> HeadPose:
        """The inverse transform (headset frame -> head frame)."""
        rotation_t = np.swapaxes(self.rotation, -1, -2)
        return HeadPose(rotation_t, -np.einsum("...ij,...j->...i", rotation_t, self.translation))

    def then(self, other: HeadPose) -> HeadPose:
        """The pose that applies `self` first and `other` second: x -> other.apply(self.apply(x))."""
        rotation = np.einsum("...ij,...jk->...ik", other.rotation, self.rotation)
        translation = np.einsum("...ij,...j->...i", other.rotation, self.translation) + other.translation
        return HeadPose(rotation, translation)
