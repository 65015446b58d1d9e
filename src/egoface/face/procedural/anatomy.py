"""Anatomical constants of the mean procedural head (mm, head frame) and the anchor points expressions pivot about.

Head frame: the origin is the point between the eyes at the height of the eyeball centres, in the plane of the
corneal apices (the eyeball centres sit at z = -EYEBALL_RADIUS - CORNEA_BULGE); +X toward the subject's left,
+Y up, +Z out of the face. Left-side quantities are given; the right side is their mirror image across x = 0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ANCHOR_NAMES",
    "CORNEA_BULGE",
    "EYEBALL_RADIUS",
    "EYE_CENTRE_L",
    "EYE_SOCKET_RADIUS",
    "LID_MARGIN_RADIUS",
    "LID_SKIN_RADIUS",
    "MOUTH_HALF_WIDTH",
    "MOUTH_Y",
    "RAY_ORIGIN",
    "anchor_points",
]

EYEBALL_RADIUS = 12.0
CORNEA_BULGE = 0.6  # the cornea rises this far above the eyeball sphere at its apex
EYE_CENTRE_L = np.array([31.5, 0.0, -(EYEBALL_RADIUS + CORNEA_BULGE)])  # inter-pupillary distance 63 mm
LID_SKIN_RADIUS = 13.9  # the lids' outer skin hugs a sphere of this radius about the eye centre
LID_MARGIN_RADIUS = 12.75  # the lid margin's inner edge, just clear of the cornea
EYE_SOCKET_RADIUS = 12.8  # the conjunctival sac lines the orbit behind the lids, just clear of the cornea's apex
MOUTH_Y = -69.0  # height of the lip line (stomion)
MOUTH_HALF_WIDTH = 24.5  # eye-centre-to-lip-line 69 mm, mouth 49 mm wide
RAY_ORIGIN = np.array([0.0, -30.0, -70.0])  # every skin point is seen once from here (the head is star-shaped)

#: Points expressions pivot about or aim at, moved with the identity like vertices (mean values below).
_ANCHORS: dict[str, tuple[float, float, float]] = {
    "eye_L": (float(EYE_CENTRE_L[0]), float(EYE_CENTRE_L[1]), float(EYE_CENTRE_L[2])),
    "eye_R": (-float(EYE_CENTRE_L[0]), float(EYE_CENTRE_L[1]), float(EYE_CENTRE_L[2])),
    "jaw_pivot": (0.0, -22.0, -78.0),  # on the axis through both temporo-mandibular joints
    "mouth_corner_L": (MOUTH_HALF_WIDTH, MOUTH_Y, 6.0),
    "mouth_corner_R": (-MOUTH_HALF_WIDTH, MOUTH_Y, 6.0),
    "mouth_centre": (0.0, MOUTH_Y, 14.0),
    "cheek_L": (42.0, -48.0, -6.0),
    "cheek_R": (-42.0, -48.0, -6.0),
    "nose_tip": (0.0, -32.0, 27.0),
}
ANCHOR_NAMES: tuple[str, ...] = tuple(_ANCHORS)


def anchor_points() -> np.ndarray:
    """(A, 3) mm, the anchors of the mean face in `ANCHOR_NAMES` order."""
    return np.array([_ANCHORS[name] for name in ANCHOR_NAMES], dtype=np.float64)
