"""The identity space: 36 smooth shape components (offsets at +1 sigma, coefficients ~ N(0, 1)).

Each component is a smooth displacement field of position: global scalings (head width, height, depth, face length,
jaw width) and local features (nose length, width, bridge and tip; lip fullness; mouth width and height; brow ridge;
eye spacing, height and depth; cheekbones and cheek fullness; chin; ...). Fields are evaluated on the mean head and
on the anchor points, then made rigid around each eye (within 16 mm of an eye centre every point moves like the
centre, blending to the free field at 24 mm), so an eyeball moves with its socket and its lids.

Magnitudes are chosen so that N(0, 1) samples stay plausible adults: inter-pupillary distance has a standard
deviation of about 3 mm around 63 mm, and nothing self-intersects at +-3 sigma.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from egoface.face.procedural.anatomy import EYE_CENTRE_L, MOUTH_Y
from egoface.face.procedural.topology import eye_region_weight

__all__ = ["COMPONENT_NAMES", "identity_fields"]

_Field = Callable[[np.ndarray], np.ndarray]


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(u))


def _gauss2(p: np.ndarray, cx: float, cy: float, sx: float, sy: float, mirrored: bool = True) -> np.ndarray:
    """Gaussian in (x, y) restricted to the front of the head; mirrored: the pair at +-cx."""
    front = _sigmoid((p[:, 2] + 45.0) / 12.0)
    g = np.exp(-0.5 * (((p[:, 0] - cx) / sx) ** 2 + ((p[:, 1] - cy) / sy) ** 2))
    if mirrored and cx:
        g = g + np.exp(-0.5 * (((p[:, 0] + cx) / sx) ** 2 + ((p[:, 1] - cy) / sy) ** 2))
    return g * front


def _vec(weight: np.ndarray, x: np.ndarray | float = 0.0, y: np.ndarray | float = 0.0, z: np.ndarray | float = 0.0):
    zeros = np.zeros_like(weight)
    return np.stack([zeros + weight * x, zeros + weight * y, zeros + weight * z], -1)


def _eye_shift(p: np.ndarray, dx: float, dy: float, dz: float) -> np.ndarray:
    """Move both eye regions (dx mirrored away from the midline)."""
    out = np.zeros_like(p)
    for sign in (1.0, -1.0):
        centre = EYE_CENTRE_L * [sign, 1.0, 1.0]
        weight = np.exp(-0.5 * (np.linalg.norm((p - centre) / [14.0, 12.0, 20.0], axis=1) ** 2))
        out += weight[:, None] * np.array([sign * dx, dy, dz])
    return out


_COMPONENTS: dict[str, _Field] = {
    "head_width": lambda p: _vec(np.ones(len(p)), x=0.025 * p[:, 0]),
    "cranium_height": lambda p: _vec(_sigmoid(p[:, 1] / 15.0), y=0.045 * np.maximum(p[:, 1], 0.0)),
    "face_length": lambda p: _vec(_sigmoid(-p[:, 1] / 15.0), y=0.05 * np.minimum(p[:, 1], 0.0)),
    "head_depth": lambda p: _vec(_sigmoid(-(p[:, 2] + 30.0) / 15.0), z=0.05 * np.minimum(p[:, 2] + 30.0, 0.0)),
    "overall_size": lambda p: 0.02 * p,
    "jaw_width": lambda p: _vec(_sigmoid(-(p[:, 1] + 60.0) / 12.0), x=0.06 * p[:, 0]),
    "midface_protrusion": lambda p: _vec(_gauss2(p, 0.0, -35.0, 40.0, 30.0), z=3.0),
    "forehead_slope": lambda p: _vec(_sigmoid((p[:, 1] - 30.0) / 12.0) * _sigmoid((p[:, 2] + 40) / 10), z=-3.0),
    "chin_length": lambda p: _vec(_sigmoid((-95.0 - p[:, 1]) / 8.0) * _sigmoid((p[:, 2] + 70) / 12), y=-4.0),
    "chin_protrusion": lambda p: _vec(_gauss2(p, 0.0, -104.0, 16.0, 12.0), z=3.5),
    "jaw_angle": lambda p: _vec(_gauss2(p, 55.0, -85.0, 18.0, 18.0) * np.sign(p[:, 0]), x=2.5),
    "nose_length": lambda p: _vec(_gauss2(p, 0.0, -33.0, 10.0, 9.0), y=-3.5, z=1.5),
    "nose_width": lambda p: _vec(_gauss2(p, 0.0, -38.0, 14.0, 8.0), x=0.2 * p[:, 0]),
    "nose_bridge": lambda p: _vec(_gauss2(p, 0.0, -12.0, 6.0, 11.0), z=2.5),
    "nose_tip": lambda p: _vec(_gauss2(p, 0.0, -32.0, 7.0, 6.0), z=3.5),
    "nose_hump": lambda p: _vec(_gauss2(p, 0.0, -17.0, 4.5, 4.0), z=1.3),
    "upper_lip_fullness": lambda p: _vec(_gauss2(p, 0.0, -63.0, 16.0, 4.0), y=0.6, z=2.0),
    "lower_lip_fullness": lambda p: _vec(_gauss2(p, 0.0, -75.0, 15.0, 4.0), y=-0.6, z=2.0),
    "mouth_width": lambda p: _vec(_gauss2(p, 0.0, MOUTH_Y, 26.0, 12.0), x=0.08 * p[:, 0]),
    "mouth_height": lambda p: _vec(_gauss2(p, 0.0, MOUTH_Y, 34.0, 16.0), y=-2.5),
    "brow_ridge": lambda p: _vec(_gauss2(p, 25.0, 19.0, 15.0, 6.0), z=2.5),
    "brow_height": lambda p: _vec(_gauss2(p, 27.0, 23.0, 18.0, 7.0), y=2.5),
    "eye_spacing": lambda p: _eye_shift(p, 1.1, 0.0, 0.0),
    "eye_height": lambda p: _eye_shift(p, 0.0, 1.8, 0.0),
    "eye_depth": lambda p: _eye_shift(p, 0.0, 0.0, -2.2),
    "cheekbones": lambda p: _vec(_gauss2(p, 45.0, -22.0, 12.0, 10.0), x=1.5 * np.sign(p[:, 0]), z=2.5),
    "cheek_fullness": lambda p: _vec(_gauss2(p, 40.0, -50.0, 16.0, 14.0), x=3.0 * np.sign(p[:, 0]), z=2.0),
    "temples": lambda p: _vec(_gauss2(p, 60.0, 30.0, 10.0, 16.0) * np.sign(p[:, 0]), x=-2.0),
    "forehead_height": lambda p: _vec(_sigmoid((p[:, 1] - 35.0) / 10.0), y=4.0),
    "neck_thickness": lambda p: _vec(_sigmoid(-(p[:, 1] + 125.0) / 10.0), x=0.08 * p[:, 0], z=0.08 * (p[:, 2] + 68)),
    "chin_width": lambda p: _vec(_sigmoid(-(p[:, 1] + 90.0) / 12.0), x=0.07 * p[:, 0]),
    "philtrum_length": lambda p: _vec(_sigmoid(-(p[:, 1] + 52.0) / 5.0) * _sigmoid((p[:, 1] + 90.0) / 6.0), y=-2.0),
    "nose_droop": lambda p: _vec(_gauss2(p, 0.0, -40.0, 8.0, 6.0), y=-1.8),
    "midface_asymmetry": lambda p: _vec(_gauss2(p, 0.0, -45.0, 25.0, 30.0), x=1.2),
    "face_flatness": lambda p: _vec(_gauss2(p, 42.0, -30.0, 16.0, 35.0), z=-3.0),
    "submental_fullness": lambda p: _vec(_gauss2(p, 0.0, -118.0, 25.0, 9.0), y=-3.0, z=1.5),
}
COMPONENT_NAMES: tuple[str, ...] = tuple(_COMPONENTS)


def identity_fields(points: np.ndarray) -> np.ndarray:
    """points: (N, 3) mm of the mean head -> (K, N, 3) mm identity offsets at +1 sigma, rigid about the eyes."""
    centres = np.stack([EYE_CENTRE_L, EYE_CENTRE_L * [-1.0, 1.0, 1.0]])
    rigid = eye_region_weight(points)[:, None]  # (N, 1)
    nearest_eye = np.where(points[:, 0] >= 0.0, 0, 1)
    result = []
    for field in _COMPONENTS.values():
        free = field(points)
        at_eye = field(centres)[nearest_eye]
        result.append(rigid * at_eye + (1.0 - rigid) * free)
    return np.stack(result)
