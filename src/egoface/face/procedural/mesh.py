"""The neutral procedural head: skin with eye and mouth openings, lids, lips, mouth cavity, teeth, tongue, eyeballs.

The skin is the boundary of a smooth union of simple solids (cranium ellipsoid, a face height field carrying the
nose, brow ridge, cheekbones, lips and chin, the neck, the lid spheres) seen from `RAY_ORIGIN`: every skin vertex is
the outermost point of that solid along its direction. Directions are laid out on the left half of the sphere (rows
of roughly constant spacing, about 2 mm on the face and 4 mm elsewhere, plus conforming rings around the eye
fissure and the mouth), triangulated as a spherical Delaunay triangulation (the convex hull of unit vectors) and
mirrored, so the mesh is exactly left/right symmetric, triangulation included. Lid margins, the eye sockets
(conjunctival sacs folding back from the margins around the eyeballs to a pole behind them), the inward roll of the
lips and the mouth cavity are strips attached to the ring boundaries, so the head surface is watertight except for
the open cut at the base of the neck; eyeballs, teeth and tongue are separate closed surfaces.
All triangles are counter-clockwise seen from outside (for the cavity and the sockets: seen from the air inside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator, RegularGridInterpolator
from scipy.spatial import ConvexHull

from egoface.face.procedural.anatomy import (
    CORNEA_BULGE,
    EYE_CENTRE_L,
    EYE_SOCKET_RADIUS,
    EYEBALL_RADIUS,
    LID_MARGIN_RADIUS,
    LID_SKIN_RADIUS,
    MOUTH_HALF_WIDTH,
    MOUTH_Y,
    RAY_ORIGIN,
)

__all__ = [
    "PART_NAMES",
    "VERMILION_RING",
    "HeadMesh",
    "build_head_mesh",
    "fissure_bounds",
    "lid_angles",
    "vermilion_heights",
]

#: Part codes of `HeadMesh.part`.
PART_NAMES: tuple[str, ...] = (
    "skin", "lid_margin", "lip_roll", "cavity", "eyeball", "teeth_upper", "teeth_lower", "tongue", "eye_socket",
)  # fmt: skip
SKIN, LID_MARGIN, LIP_ROLL, CAVITY, EYEBALL, TEETH_UPPER, TEETH_LOWER, TONGUE, EYE_SOCKET = range(len(PART_NAMES))

FINE_SPACING = 2.05  # mm between skin vertices on the face
COARSE_SPACING = 2 * FINE_SPACING  # elsewhere on the head and neck
NUM_EYE_RING = 48  # vertices around an eye fissure ring
NUM_EYE_RINGS = 5  # skin rings around the fissure (ring 0 is the lid edge)
NUM_MOUTH_RING = 64  # vertices around a mouth ring (a multiple of 4: the midline carries ring vertices)
NUM_MOUTH_RINGS = 6  # skin rings around the mouth: the lens, two across the vermilion, its border, two outside
VERMILION_RING = 3  # the skin ring on the vermilion border
#: The eye socket (conjunctival sac): rings from the lid margin's inner edge back around the eyeball, as blends of
#: the margin's direction toward a circle at `_SOCKET_FOLD` from the eye's axis, then circles further back.
_SOCKET_BLEND = (0.1, 0.2, 0.32, 0.45, 0.6, 0.75, 0.9, 1.0)
_SOCKET_FOLD = np.deg2rad(110.0)
_SOCKET_BACK = np.deg2rad((135.0, 158.0))
NUM_SOCKET_RINGS = len(_SOCKET_BLEND) + len(_SOCKET_BACK)
RING_STEP = 1.9  # mm between consecutive skin rings
NECK_ELEVATION = np.deg2rad(-67.0)  # the neck is cut open below this elevation seen from RAY_ORIGIN

# Eye fissure on the lid sphere: lateral angle a (positive away from the nose) and elevation b about the eye's
# horizontal axis (see `lid_angles`), both in radians. Canthi at a = A_MID +- A_HALF.
_A_MID, _A_HALF = np.deg2rad(5.0), np.deg2rad(67.0)
_B_UPPER, _B_LOWER, _B_CENTRE, _CANTHAL_TILT = np.deg2rad(25.0), np.deg2rad(19.0), np.deg2rad(-1.0), np.deg2rad(3.0)
_MOUTH_LENS_HALF_HEIGHT = (0.9, 1.0)  # upper, lower: where the lips start to roll into the mouth, mm from MOUTH_Y
_MOUTH_OUTLINE = (7.0, 13.5, 15.5)  # outermost mouth ring: beyond the corners, above and below MOUTH_Y, mm


@dataclass(frozen=True)
class HeadMesh:
    """The neutral mean head and what each vertex is.

    vertices: (V, 3) mm; triangles: (T, 3) int64 CCW from outside; part: (V,) int8 `PART_NAMES` code;
    eye: (V,) int8 0 = left, 1 = right, -1 = not an eye ring/margin/socket/eyeball vertex; ring: (V,) int16 ring
    number around the eye or mouth opening (skin rings 0.., lid margin -1, eye socket -2, -3, ... back to its pole,
    lip roll -1 and -2 (the inner lip contour), cavity 1..), -100 elsewhere; angle: (V,) ring parameter t in
    [0, 2 pi) (NaN off rings), t = pi/2 on top; for eyes t = 0 is the outer corner, for the mouth the left corner.
    eye_ring_ids: (2, NUM_EYE_RINGS + 1, NUM_EYE_RING) vertex ids, row 0 the lid margin, row j + 1 skin ring j;
    socket_ring_ids: (2, NUM_SOCKET_RINGS, NUM_EYE_RING) ids of the eye socket rings, from the margin backward;
    mouth_ring_ids: (NUM_MOUTH_RINGS + 2, NUM_MOUTH_RING) ids, rows: inner lip contour, lip roll, skin rings 0...
    """

    vertices: np.ndarray
    triangles: np.ndarray
    part: np.ndarray
    eye: np.ndarray
    ring: np.ndarray
    angle: np.ndarray
    eye_ring_ids: np.ndarray
    socket_ring_ids: np.ndarray
    mouth_ring_ids: np.ndarray


# ----------------------------------------------------------------------------------------------------- the solid


def _profile(knots: list[tuple[float, float]]) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth monotone-piecewise curve through (y, value) knots, constant beyond the end knots."""
    y, value = np.array(sorted(knots)).T
    curve = PchipInterpolator(y, value)
    return lambda at: curve(np.clip(at, y[0], y[-1]))


# Midline depth (z) of the face without nose, lips and brow ridge, its half width and how far its sides recede.
_FRONT = _profile([(-150, -120), (-128, -52), (-118, -6), (-110, 7), (-100, 10.5), (-85, 12), (-70, 14), (-55, 12),
                   (-40, 9), (-20, 6), (0, 5), (15, 7.5), (30, 7.5), (50, 5.5), (70, 1), (90, -8), (110, -25),
                   (150, -70)])  # fmt: skip
_HALF_WIDTH = _profile([(-150, 30), (-115, 34), (-100, 45), (-80, 58), (-60, 66), (-30, 72), (0, 75), (40, 76),
                        (80, 74), (110, 70), (150, 60)])  # fmt: skip
_SIDE_DEPTH = _profile([(-150, 40), (-110, 50), (-80, 58), (-40, 64), (0, 70), (40, 74), (80, 70), (150, 60)])
# The nose: ridge height above the face and cross-section width along y.
_NOSE_HEIGHT = _profile([(10, 0), (3, 2.5), (-5, 5.5), (-15, 10.5), (-25, 16), (-31, 19.5), (-35, 19), (-39, 14),
                         (-43, 6.5), (-47, 1.0), (-52, 0)])  # fmt: skip
_NOSE_WIDTH = _profile([(10, 7), (-5, 5.5), (-20, 6.5), (-32, 8.0), (-42, 10), (-52, 10)])


def _bumps(x: np.ndarray, y: np.ndarray, bumps: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    """Sum of mirrored Gaussian pairs (cx, cy, sx, sy, height); a pair with cx = 0 is one bump of that height."""
    total = np.zeros_like(x)
    for cx, cy, sx, sy, height in bumps:
        vertical = np.exp(-0.5 * ((y - cy) / sy) ** 2)
        pair = np.exp(-0.5 * ((x - cx) / sx) ** 2) + (np.exp(-0.5 * ((x + cx) / sx) ** 2) if cx else 0.0)
        total += height * vertical * pair
    return total


_FACE_BUMPS = [
    (25.0, 19.0, 15.0, 5.5, 4.0),  # brow ridge
    (0.0, 15.0, 9.0, 7.0, 2.0),  # glabella
    (31.5, 1.0, 13.0, 9.5, -11.0),  # eye sockets
    (44.0, -22.0, 12.0, 9.0, 5.0),  # cheekbones
    (40.0, -50.0, 15.0, 13.0, 2.5),  # cheek fullness
    (13.0, -40.0, 4.5, 4.0, 4.5),  # nose wings (alae)
    (24.0, -70.0, 5.0, 5.0, -3.5),  # mouth corners
    (0.0, -88.0, 15.0, 4.0, -2.5),  # mentolabial sulcus
    (0.0, -102.0, 13.0, 8.0, 4.0),  # chin
    (60.0, 30.0, 9.0, 16.0, -3.0),  # temples
]


def vermilion_heights(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (mm) -> heights (upper, lower) of the vermilion border above and below the lip line (MOUTH_Y), mm: about
    8 mm at the midline of the upper lip with a Cupid's bow (peaks of about 9 mm 5.5 mm off the midline), 11 mm for
    the fuller lower lip, both tapering to 0 at the mouth corners."""
    u = np.clip(np.abs(x) / MOUTH_HALF_WIDTH, 0.0, 1.0)
    bow = np.exp(-0.5 * ((np.abs(x) - 5.5) / 2.5) ** 2) - 0.7 * np.exp(-0.5 * (x / 1.6) ** 2)
    return (8.5 + bow) * (1.0 - u**2) ** 0.55, 11.0 * (1.0 - u**2) ** 0.45


def _lips(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (mm) the lips and the philtrum add to the face: each lip a roll that is full at about a third of its
    vermilion, falls gently toward the lip line (the inward roll of the lips is the `LIP_ROLL` strip, so that the
    surface stays visible from RAY_ORIGIN) and ends in a slight ridge on the vermilion border (the white roll)."""
    x, y = np.broadcast_arrays(x, y)
    result = np.zeros(x.shape)
    near = (np.abs(x) < MOUTH_HALF_WIDTH + 12.0) & (np.abs(y - MOUTH_Y) < 32.0)  # negligible (< 0.01 mm) beyond
    x, y = x[near], y[near]
    upper, lower = vermilion_heights(x)
    along = y - MOUTH_Y
    v = np.where(along >= 0, along / np.maximum(upper, 0.8), -along / np.maximum(lower, 0.8))  # 1 on the border
    u2 = np.clip(x / (MOUTH_HALF_WIDTH + 3.0), -1.0, 1.0) ** 2
    height = np.where(along >= 0, 4.2, 4.8) * np.sqrt(1.0 - u2)
    profile = np.exp(-((np.maximum(v - 0.3, 0.0) / 0.8) ** 2)) - 0.3 * (np.maximum(0.3 - v, 0.0) / 0.3) ** 2
    ridge = 0.35 * np.exp(-0.5 * ((v - 1.0) / 0.1) ** 2)
    # Philtrum: two columns from the Cupid's bow peaks up to the nose, a groove between them.
    rise = np.clip((along - 8.0) / 12.0, 0.0, 1.0)
    window = np.exp(-0.5 * ((along - 14.0) / 5.0) ** 2)
    column = 5.2 - 1.8 * rise
    philtrum = 0.9 * np.exp(-0.5 * ((np.abs(x) - column) / 1.3) ** 2) - 0.35 * np.exp(-0.5 * (x / 1.8) ** 2)
    result[near] = height * (profile + ridge) + window * philtrum
    return result


def _face_depth(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z (mm) of the face height field at (x, y); falls away steeply beyond the face."""
    u = np.abs(x) / _HALF_WIDTH(y)
    z = _FRONT(y) - _SIDE_DEPTH(y) * (0.45 * u**2 + 0.55 * u**6)
    nose_section = np.exp(-0.5 * np.abs(x / _NOSE_WIDTH(y)) ** 2.4)
    return z + np.maximum(_NOSE_HEIGHT(y), 0.0) * nose_section + _bumps(x, y, _FACE_BUMPS) + _lips(x, y)


_BLEND = 3.0  # mm, smoothness of the union of the solids


def _inside(points: np.ndarray) -> np.ndarray:
    """(..., 3) -> (...,) smooth signed pseudo-distance to the head solid (negative inside)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    cranium = (np.linalg.norm((points - [0.0, 22.0, -82.0]) / [75.0, 95.0, 90.0], axis=-1) - 1.0) * 85.0
    face = -_smooth_min(-np.stack([0.7 * (z - _face_depth(x, y)), -65.0 - z, y - 95.0], -1), 6.0)  # the face's front
    neck = np.maximum.reduce([(np.hypot(x / 52.0, (z + 68.0) / 50.0) - 1.0) * 51.0, y + 20.0, -230.0 - y])
    ears = np.where(y < 0, (np.linalg.norm(np.stack([np.abs(x) - 68.0, y + 12.0, z + 82.0], -1)
                                           / [10.0, 28.0, 15.0], axis=-1) - 1) * 12, 1e3)  # fmt: skip
    lids = np.linalg.norm(
        np.stack([np.abs(x) - EYE_CENTRE_L[0], y - EYE_CENTRE_L[1], z - EYE_CENTRE_L[2]], -1), axis=-1
    )
    parts = np.stack([cranium, face, neck, ears, lids - LID_SKIN_RADIUS], axis=-1)
    return _smooth_min(parts, _BLEND)


def _smooth_min(values: np.ndarray, blend: float) -> np.ndarray:
    """(..., n) -> (...,) soft minimum over the last axis (log-sum-exp with width `blend`, mm)."""
    nearest = values.min(axis=-1)
    return nearest - blend * np.log(np.exp((nearest[..., None] - values) / blend).sum(axis=-1))


def _ray_exit(directions: np.ndarray) -> np.ndarray:
    """directions: (N, 3) unit -> (N,) distance from RAY_ORIGIN to the outermost skin point along each."""
    steps = np.arange(5.0, 260.0, 3.5)
    samples = RAY_ORIGIN + directions[:, None, :] * steps[None, :, None]  # (N, S, 3)
    inside = _inside(samples) < 0
    last_inside = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    low, high = steps[last_inside], steps[np.minimum(last_inside + 1, len(steps) - 1)]
    for _ in range(22):
        middle = 0.5 * (low + high)
        is_inside = _inside(RAY_ORIGIN + directions * middle[:, None]) < 0
        low, high = np.where(is_inside, middle, low), np.where(is_inside, high, middle)
    return 0.5 * (low + high)


def _direction(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Azimuth 0 = +Z, pi/2 = +X; elevation toward +Y -> (..., 3) unit vectors."""
    azimuth, elevation = np.broadcast_arrays(azimuth, elevation)
    c = np.cos(elevation)
    return np.stack([c * np.sin(azimuth), np.sin(elevation), c * np.cos(azimuth)], axis=-1)


# ---------------------------------------------------------------------------------------- direction layout (x >= 0)


def _is_face(points: np.ndarray) -> np.ndarray:
    """Where the skin gets the fine spacing: the front of the head from above the brows to under the chin."""
    return (points[..., 2] > -38.0) & (points[..., 1] > -135.0) & (points[..., 1] < 88.0)


def _row_directions() -> tuple[np.ndarray, np.ndarray]:
    """Background directions on the x >= 0 half: (N, 3) unit vectors and (N,) row numbers (0 = neck cut)."""
    az_grid = np.linspace(0.0, np.pi, 61)
    el_grid = np.linspace(NECK_ELEVATION, np.pi / 2, 41)
    az_mesh, el_mesh = np.meshgrid(az_grid, el_grid, indexing="ij")
    radius_grid = _ray_exit(_direction(az_mesh, el_mesh).reshape(-1, 3)).reshape(az_mesh.shape)
    radius = RegularGridInterpolator((az_grid, el_grid), radius_grid)

    directions, rows = [], []
    elevation, row = NECK_ELEVATION, 0
    fine_az = np.linspace(0.0, np.pi, 2049)
    while elevation < np.pi / 2 - 0.5 * FINE_SPACING / 90.0:
        r = radius(np.stack([fine_az, np.full_like(fine_az, elevation)], axis=1))
        points = RAY_ORIGIN + _direction(fine_az, elevation) * r[:, None]
        face = _is_face(points)
        spacing = np.where(face, FINE_SPACING, COARSE_SPACING)
        arc = np.concatenate([[0.0], np.cumsum(np.diff(fine_az) * 0.5 * (r[1:] + r[:-1]) * np.cos(elevation))])
        count = np.concatenate([[0.0], np.cumsum(np.diff(arc) / (0.5 * (spacing[1:] + spacing[:-1])))])
        total = count[-1]
        intervals = max(round(total), 2)
        chosen = []
        for use_face, offset in ((True, 0.5 * (row % 2)), (False, 0.5 * ((row // 2) % 2))):
            if not use_face and row % 2 and row > 0:
                continue
            marks = (np.arange(intervals + 1) + offset) * total / intervals
            marks = marks[marks < total - 0.3]
            az = np.interp(marks, count, fine_az)
            keep = np.interp(az, fine_az, face.astype(float)) > 0.5
            chosen.append(az[keep == use_face])
        az = np.sort(np.concatenate([*chosen, [0.0, np.pi]]))
        arc_at = np.interp(az, fine_az, arc)
        step = np.interp(az, fine_az, spacing)
        keep = np.ones(len(az), dtype=bool)
        last = arc_at[0]
        for i in range(1, len(az)):  # drop points crowding their predecessor (zone seams)
            if arc_at[i] - last < 0.55 * step[i] and i != len(az) - 1:
                keep[i] = False
            else:
                last = arc_at[i]
        if keep.sum() >= 2 and arc_at[-1] - arc_at[keep][-2] < 0.55 * step[-1]:
            keep[np.flatnonzero(keep)[-2]] = False
        directions.append(_direction(az[keep], np.full(int(keep.sum()), elevation)))
        rows.append(np.full(int(keep.sum()), row))
        r_front = float(radius([[0.0, elevation]])[0])
        elevation += FINE_SPACING / r_front
        row += 1
    directions.append(np.array([[0.0, 1.0, 0.0]]))
    rows.append(np.array([row]))
    result = np.concatenate(directions)
    result[np.abs(result[:, 0]) < 1e-9, 0] = 0.0
    return result, np.concatenate(rows)


class _Chart:
    """Gnomonic projection about a centre direction, in mm at distance `scale`: a local flat map of directions."""

    def __init__(self, centre: np.ndarray, scale: float) -> None:
        self.normal = centre / np.linalg.norm(centre)
        east = np.cross([0.0, 1.0, 0.0], self.normal)
        self.east = east / np.linalg.norm(east)
        self.north = np.cross(self.normal, self.east)
        self.scale = scale

    def to_map(self, directions: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        del points
        depth = directions @ self.normal
        return self.scale * np.stack([directions @ self.east, directions @ self.north], -1) / depth[:, None]

    def to_directions(self, points: np.ndarray) -> np.ndarray:
        d = self.normal + (points[:, :1] * self.east + points[:, 1:] * self.north) / self.scale
        return d / np.linalg.norm(d, axis=1, keepdims=True)


class _FaceChart:
    """The face height field's own (x, y): a flat map of the skin around the mouth, in mm."""

    normal = np.array([0.0, 0.0, 1.0])

    def to_map(self, directions: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
        if points is None:
            points = RAY_ORIGIN + directions * _ray_exit(directions)[:, None]
        return points[:, :2].copy()

    def to_directions(self, points: np.ndarray) -> np.ndarray:
        return _unit(np.stack([points[:, 0], points[:, 1], _face_depth(points[:, 0], points[:, 1])], -1) - RAY_ORIGIN)


def _offset_rings(ring0: np.ndarray, steps: list[float]) -> list[np.ndarray]:
    """ring0: (N, 2) closed polygon in a chart -> the rings offset outward by each step (mm)."""
    tangent = np.roll(ring0, -1, axis=0) - np.roll(ring0, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    signed_area = 0.5 * np.sum(ring0[:, 0] * np.roll(ring0[:, 1], -1) - np.roll(ring0[:, 0], -1) * ring0[:, 1])
    if signed_area < 0:
        normal = -normal
    return [ring0 + step * normal for step in steps]


def _midline(ring0: np.ndarray) -> np.ndarray:
    """ring0: (N, 2) closed ring whose vertex k faces vertex N - k (upper and lower lid or lip) -> (N, 2) the
    midpoints of the facing pairs (at the corners, k = 0 and N/2, the corner itself)."""
    return 0.5 * (ring0 + np.roll(ring0[::-1], 1, axis=0))


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule. points: (M, 2), polygon: (N, 2) -> (M,) bool."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    px, py = points[:, None, 0], points[:, None, 1]
    crosses = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[None, :, 0] + (py - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (
            b[None, :, 1] - a[None, :, 1]
        )
    return (crosses & (px < x_cross)).sum(axis=1) % 2 == 1


def lid_angles(points: np.ndarray, centre: np.ndarray, outward: float) -> tuple[np.ndarray, np.ndarray]:
    """Lid coordinates of points about an eye centre: lateral angle a (positive away from the nose; `outward` is
    +1 for the left eye, -1 for the right) and elevation b about the eye's horizontal axis, radians.

    A rotation about the eye's x axis changes b and keeps a, which is how the lids close."""
    q = points - centre
    radius = np.linalg.norm(q, axis=-1)
    a = np.arcsin(np.clip(outward * q[..., 0] / radius, -1.0, 1.0))
    b = np.arctan2(q[..., 1], q[..., 2])
    return a, b


def _lid_point(a: np.ndarray, b: np.ndarray, radius: float, centre: np.ndarray, outward: float) -> np.ndarray:
    return centre + radius * np.stack([outward * np.sin(a), np.cos(a) * np.sin(b), np.cos(a) * np.cos(b)], -1)


def _fissure_angles(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring parameter t (0 = outer corner, pi/2 = top) -> lid-edge angles (a, b) of the eye fissure."""
    s = np.sin(t)
    a = _A_MID + _A_HALF * np.cos(t)
    b = _B_CENTRE + _CANTHAL_TILT * np.cos(t) + np.where(s > 0, _B_UPPER, _B_LOWER) * np.sign(s) * np.abs(s) ** 1.6
    return a, b


def fissure_bounds(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lateral lid angle a (radians) -> elevations (b_upper, b_lower) of the upper and lower lid edge there; both
    equal the corner's elevation beyond the corners."""
    cos_t = np.clip((a - _A_MID) / _A_HALF, -1.0, 1.0)
    sin_t = np.sqrt(1.0 - cos_t**2) ** 1.6
    middle = _B_CENTRE + _CANTHAL_TILT * cos_t
    return middle + _B_UPPER * sin_t, middle - _B_LOWER * sin_t


def _ring_parameter(count: int) -> np.ndarray:
    return 2 * np.pi * np.arange(count) / count


def _mouth_lens(t: np.ndarray) -> np.ndarray:
    """(N, 3) points of the mouth's lens ring (where the lips turn inward) on the lip surface; t = 0: left corner."""
    s = np.sin(t)
    x = MOUTH_HALF_WIDTH * np.cos(t)
    x[np.abs(x) < 1e-9] = 0.0
    half_height = np.where(s > 0, _MOUTH_LENS_HALF_HEIGHT[0], _MOUTH_LENS_HALF_HEIGHT[1])
    y = MOUTH_Y + half_height * np.sign(s) * np.abs(s) ** 1.3
    return np.stack([x, y, _face_depth(x, y)], -1)


def _mouth_rings(t: np.ndarray) -> list[np.ndarray]:
    """The NUM_MOUTH_RINGS skin rings around the mouth in the face's (x, y), each (N, 2) mm: the lens, rings across
    the vermilion, the vermilion border (VERMILION_RING), then rings out to a smooth outline around the lips."""
    lens = _mouth_lens(t)[:, :2]
    c, s = np.cos(t), np.sin(t)
    upper, lower = vermilion_heights(MOUTH_HALF_WIDTH * c)
    border = np.stack([(MOUTH_HALF_WIDTH + 2.0) * c, MOUTH_Y + np.where(s > 0, upper, -lower)], -1)
    beyond, above, below = _MOUTH_OUTLINE
    outline = np.stack(
        [(MOUTH_HALF_WIDTH + beyond) * c, MOUTH_Y + np.where(s > 0, above, below) * np.sign(s) * np.abs(s) ** 0.8], -1
    )
    across = [lens + (j / VERMILION_RING) * (border - lens) for j in range(VERMILION_RING + 1)]
    outside = NUM_MOUTH_RINGS - 1 - VERMILION_RING
    rings = across + [border + (j / outside) * (outline - border) for j in range(1, outside + 1)]
    for ring in rings:
        ring[np.abs(c) < 1e-9, 0] = 0.0
    return rings


@dataclass(frozen=True)
class _Layout:
    directions: np.ndarray  # (N, 3) on x >= 0
    kind: np.ndarray  # 0 background, 1 eye ring, 2 mouth ring, -1 inside an opening (removed), -2 neck cut row
    ring: np.ndarray
    index: np.ndarray  # position along its ring
    openings: tuple[tuple[int, _Chart | _FaceChart, np.ndarray], ...]  # (kind, chart, ring 0 polygon in the chart)


def _layout() -> _Layout:
    background, rows = _row_directions()
    parts_dir, parts_kind, parts_ring, parts_index = [], [], [], []
    exclusions = []

    # Eye (left): ring 0 is the lid edge on the lid sphere; outer rings follow it on the face.
    t_eye = _ring_parameter(NUM_EYE_RING)
    a, b = _fissure_angles(t_eye)
    edge = _lid_point(a, b, LID_SKIN_RADIUS, EYE_CENTRE_L, 1.0)
    eye_chart = _Chart(EYE_CENTRE_L + [0, 0, LID_SKIN_RADIUS] - RAY_ORIGIN, 90.0)
    eye_map = eye_chart.to_map(_unit(edge - RAY_ORIGIN))
    # Mouth: ring 0 is the lens where the lips turn inward.
    t_mouth = _ring_parameter(NUM_MOUTH_RING)
    mouth_chart = _FaceChart()
    mouth_map = _mouth_lens(t_mouth)[:, :2]
    mouth_map[np.abs(mouth_map[:, 0]) < 1e-9, 0] = 0.0

    charts: tuple[_Chart | _FaceChart, ...] = (eye_chart, mouth_chart)
    eye_rings = _offset_rings(eye_map, [RING_STEP * j for j in range(NUM_EYE_RINGS)])
    mouth_rings = _mouth_rings(t_mouth)
    for kind, chart, rings in ((1, charts[0], eye_rings), (2, charts[1], mouth_rings)):
        ring_directions = [chart.to_directions(ring) for ring in rings]
        # Points inside the opening, placed among the ring 0 directions (the surface inside a closed mouth is a groove
        # the rays do not see), so that no skin triangle spans the opening.
        inner_chart = _Chart(ring_directions[0].mean(axis=0), 100.0)
        inner = inner_chart.to_directions(_midline(inner_chart.to_map(ring_directions[0])))
        not_corner = np.arange(len(inner)) % (len(inner) // 2) != 0
        for j, d in enumerate([*ring_directions, inner]):
            d[np.abs(d[:, 0]) < 1e-9, 0] = 0.0
            keep = d[:, 0] >= 0.0 if kind == 2 else np.ones(len(d), dtype=bool)
            if j == len(rings):
                keep &= not_corner
            parts_dir.append(d[keep])
            inside = j >= len(rings)
            parts_kind.append(np.full(int(keep.sum()), -1 if inside else kind))
            parts_ring.append(np.full(int(keep.sum()), j))
            parts_index.append(np.flatnonzero(keep))
        exclusions.append((chart, _offset_rings(rings[-1], [0.65 * FINE_SPACING])[0]))

    keep_background = np.ones(len(background), dtype=bool)
    surface = RAY_ORIGIN + background * _ray_exit(background)[:, None]
    for chart, polygon in exclusions:
        front = background @ chart.normal > 0.5
        keep_background[front] &= ~_inside_polygon(chart.to_map(background[front], surface[front]), polygon)
    directions = np.concatenate([background[keep_background], *parts_dir])
    kinds = np.concatenate([np.where(rows[keep_background] == 0, -2, 0), *parts_kind])
    rings_all = np.concatenate([np.full(int(keep_background.sum()), -100), *parts_ring])
    indices = np.concatenate([np.full(int(keep_background.sum()), -1), *parts_index])
    directions[np.abs(directions[:, 0]) < 1e-9, 0] = 0.0
    openings = ((1, charts[0], eye_map), (2, charts[1], mouth_map))
    return _Layout(directions, kinds, rings_all, indices, openings)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# ----------------------------------------------------------------------------------------------------- the skin


def _half_triangles(layout: _Layout) -> np.ndarray:
    """Spherical Delaunay triangles of the x >= 0 directions, outward, without the openings and the cut planes."""
    hull = ConvexHull(layout.directions)
    tri = hull.simplices.astype(np.int64)
    d = layout.directions
    normal = np.cross(d[tri[:, 1]] - d[tri[:, 0]], d[tri[:, 2]] - d[tri[:, 0]])
    flip = np.einsum("ij,ij->i", normal, d[tri].mean(axis=1)) < 0
    tri[flip] = tri[flip][:, ::-1]
    on_midline = (d[:, 0] == 0.0)[tri].all(axis=1)
    on_neck_cut = (layout.kind == -2)[tri].all(axis=1)
    in_opening = (layout.kind == -1)[tri].any(axis=1)
    for kind, chart, polygon in layout.openings:  # ears across a narrow corner of an opening, between ring 0 vertices
        candidates = np.flatnonzero(((layout.kind == kind) & (layout.ring == 0))[tri].all(axis=1))
        centroids = _unit(d[tri[candidates]].mean(axis=1))
        in_opening[candidates] |= _inside_polygon(chart.to_map(centroids), polygon)
    return tri[~(on_midline | on_neck_cut | in_opening)]


@dataclass(frozen=True)
class _Skin:
    vertices: np.ndarray
    triangles: np.ndarray
    eye: np.ndarray
    ring: np.ndarray
    index: np.ndarray
    is_mouth: np.ndarray


def _skin() -> _Skin:
    layout = _layout()
    tri = _half_triangles(layout)
    used = np.zeros(len(layout.directions), dtype=bool)
    used[tri] = True
    old_to_new = np.cumsum(used) - 1
    directions = layout.directions[used]
    tri = old_to_new[tri]
    kind, ring, index = layout.kind[used], layout.ring[used], layout.index[used]
    half = RAY_ORIGIN + directions * _ray_exit(directions)[:, None]
    half[directions[:, 0] == 0.0, 0] = 0.0

    # Mirror: vertices with x > 0 get a copy at -x; triangles are mirrored with reversed winding.
    off_midline = np.flatnonzero(half[:, 0] > 0.0)
    mirror_of = np.arange(len(half))
    mirror_of[off_midline] = len(half) + np.arange(len(off_midline))
    vertices = np.concatenate([half, half[off_midline] * [-1.0, 1.0, 1.0]])
    triangles = np.concatenate([tri, mirror_of[tri][:, ::-1]])
    is_eye = kind == 1
    is_mouth_half = kind == 2
    eye = np.concatenate([np.where(is_eye, 0, -1), np.where(is_eye[off_midline], 1, -1)])
    ring_all = np.concatenate([np.where(is_eye | is_mouth_half, ring, -100), np.where((is_eye | is_mouth_half)[
        off_midline], ring[off_midline], -100)])  # fmt: skip
    # The mouth ring's mirror image of index k is N/2 - k (t -> pi - t); an eye ring keeps its index.
    mirrored_index = np.where(is_mouth_half, (NUM_MOUTH_RING // 2 - index) % NUM_MOUTH_RING, index)
    index_all = np.concatenate([index, mirrored_index[off_midline]])
    is_mouth = np.concatenate([is_mouth_half, is_mouth_half[off_midline]])
    return _Skin(vertices, triangles, eye.astype(np.int8), ring_all.astype(np.int16), index_all, is_mouth)


# ---------------------------------------------------------------------------------------------- strips and parts


def _has_edge(triangles: np.ndarray, start: int, end: int) -> bool:
    """Whether some triangle runs along the directed edge start -> end."""
    following = np.roll(triangles, -1, axis=1)
    return bool(((triangles == start) & (following == end)).any())


def _strip(
    outer: np.ndarray, inner: np.ndarray, neighbours: np.ndarray, flip_diagonal: np.ndarray | None = None
) -> np.ndarray:
    """Triangles joining two closed rings of vertex ids, wound to continue the surface of `neighbours` (triangles
    that already use the edges of `outer`). flip_diagonal: (N,) bool, quads split along the other diagonal (a
    mirror-symmetric ring needs mirrored splits)."""
    o, o_next, i, i_next = outer, np.roll(outer, -1), inner, np.roll(inner, -1)
    first, second = np.stack([o, o_next, i_next], 1), np.stack([o, i_next, i], 1)
    if flip_diagonal is not None:
        flip = flip_diagonal[:, None]
        first, second = (
            np.where(flip, np.stack([o, o_next, i], 1), first),
            np.where(flip, np.stack([o_next, i_next, i], 1), second),
        )
    tri = np.concatenate([first, second])
    if _has_edge(neighbours, int(o[0]), int(o_next[0])):
        tri = tri[:, ::-1]
    return tri


def _fan(ring: np.ndarray, centre: int, neighbours: np.ndarray) -> np.ndarray:
    tri = np.stack([ring, np.roll(ring, -1), np.full_like(ring, centre)], 1)
    if _has_edge(neighbours, int(ring[0]), int(ring[1])):
        tri = tri[:, ::-1]
    return tri


def _closed_surface(
    rings: np.ndarray, front: np.ndarray, back: np.ndarray, flip_diagonal: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """rings: (R, N, 3) closed loops from a front pole to a back pole -> vertices, outward triangles (local ids).
    flip_diagonal: (R - 1, N) bool, quads (between rings r and r + 1, loop vertices k and k + 1) split along the
    other diagonal, so that a mirror-symmetric surface gets a mirror-symmetric triangulation."""
    num_rings, n = rings.shape[:2]
    vertices = np.concatenate([front[None], rings.reshape(-1, 3), back[None]])
    ids = 1 + np.arange(num_rings * n).reshape(num_rings, n)
    k, k_next = np.arange(n), (np.arange(n) + 1) % n
    tri = [np.stack([np.zeros(n, np.int64), ids[0, k], ids[0, k_next]], 1)]
    for r in range(num_rings - 1):
        a, b, c, d = ids[r, k], ids[r, k_next], ids[r + 1, k], ids[r + 1, k_next]
        flip = np.zeros(n, dtype=bool) if flip_diagonal is None else flip_diagonal[r]
        first = np.where(flip[:, None], np.stack([a, c, b], 1), np.stack([a, c, d], 1))
        second = np.where(flip[:, None], np.stack([b, c, d], 1), np.stack([a, d, b], 1))
        tri += [first, second]
    last = len(vertices) - 1
    tri.append(np.stack([np.full(n, last), ids[-1, k_next], ids[-1, k]], 1))
    triangles = np.concatenate(tri)
    corners = vertices[triangles] - vertices.mean(axis=0)  # (T, 3, 3)
    if np.einsum("ti,ti->t", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() < 0:
        triangles = triangles[:, ::-1]  # make the enclosed volume positive: normals point out
    return vertices, triangles


def _eyeball_rings(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sphere with a cornea bulge looking along +Z: vertices and outward triangles (local ids)."""
    polar = np.deg2rad([3, 6, 9.5, 13, 17, 21, 25.5, 30, 34, 40, 50, 62, 76, 92, 110, 130, 155])
    n = 40
    azimuth = _ring_parameter(n)
    radius = _eyeball_radius_at(polar)
    s, c = np.sin(polar)[:, None], np.cos(polar)[:, None]
    rings = np.stack([s * np.cos(azimuth), s * np.sin(azimuth), np.broadcast_to(c, (len(polar), n))], -1)
    rings = centre + rings * radius[:, None, None]
    return _closed_surface(rings, centre + [0, 0, EYEBALL_RADIUS + CORNEA_BULGE], centre - [0, 0, EYEBALL_RADIUS])


def _socket(margin: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The left eye's socket on a sphere of EYE_SOCKET_RADIUS: margin (N, 3) mm inner edge of the lid margin, t (N,)
    its ring parameter -> rings (NUM_SOCKET_RINGS, N, 3) from the margin backward and the back pole (3,)."""
    start = _unit(margin - EYE_CENTRE_L)

    def circle(polar: float) -> np.ndarray:  # azimuth t about the eye's axis, t = 0 lateral (+X), pi/2 up
        return np.stack([np.sin(polar) * np.cos(t), np.sin(polar) * np.sin(t), np.full_like(t, np.cos(polar))], -1)

    fold = circle(_SOCKET_FOLD)
    directions = [_unit((1.0 - f) * start + f * fold) for f in _SOCKET_BLEND] + [circle(p) for p in _SOCKET_BACK]
    rings = EYE_CENTRE_L + EYE_SOCKET_RADIUS * np.stack(directions)
    return rings, EYE_CENTRE_L - [0.0, 0.0, EYE_SOCKET_RADIUS]


#: Iris and pupil edges as angles from the eye's axis (iris radius 6 mm, pupil radius 2 mm on a 12 mm eye).
IRIS_HALF_ANGLE = np.deg2rad(30.0)
PUPIL_HALF_ANGLE = np.deg2rad(9.6)


def _eyeball_radius_at(polar: np.ndarray) -> np.ndarray:
    """Distance from the eye centre of the eye surface at a polar angle: sphere plus a spherical cornea cap."""
    big = EYEBALL_RADIUS + CORNEA_BULGE
    offset = (big**2 - EYEBALL_RADIUS**2) / (2 * (big - EYEBALL_RADIUS * np.cos(IRIS_HALF_ANGLE)))
    cornea = offset * np.cos(polar) + np.sqrt((big - offset) ** 2 - (offset * np.sin(polar)) ** 2)
    return np.where(polar < IRIS_HALF_ANGLE, np.maximum(cornea, EYEBALL_RADIUS), EYEBALL_RADIUS)


# Teeth: arch front z, arch depth to the last molar, half width; crown heights above/below the lip line.
TEETH_FRONT_Z = 7.0


def _arch(upper: bool) -> tuple[np.ndarray, np.ndarray]:
    """One dental arch as a closed swept section: vertices and outward triangles (local ids)."""
    u = np.linspace(-1.0, 1.0, 57)
    half_width, depth = (23.0, 32.0) if upper else (21.0, 31.0)
    front = TEETH_FRONT_Z if upper else TEETH_FRONT_Z - 3.0
    centre_x, centre_z = half_width * np.sin(0.5 * np.pi * u), front - depth * u**2
    tangent = np.stack([np.gradient(centre_x), np.gradient(centre_z)], 1)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    labial = np.stack([-tangent[:, 1], tangent[:, 0]], 1)  # points away from the tongue
    labial *= np.sign(labial[len(u) // 2, 1])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(centre_x), np.diff(centre_z)))])
    arc -= arc[len(u) // 2]
    tooth_width = np.where(np.abs(arc) < 17.0, 7.6, 9.5)
    groove = np.abs(np.cos(np.pi * arc / tooth_width)) ** 0.5  # 1 mid-tooth, 0 between teeth
    thickness = np.interp(np.abs(arc), [0, 12, 25, 60], [6.5, 7.5, 9.5, 10.0]) * (0.85 + 0.15 * groove)
    if upper:
        top = np.full_like(u, MOUTH_Y + 10.0)
        bottom = MOUTH_Y - 1.6 - 0.7 * groove - np.interp(np.abs(arc), [0, 20, 60], [0.3, 0.0, 0.6])
    else:
        top = MOUTH_Y - 0.9 + 0.5 * groove - np.interp(np.abs(arc), [0, 20, 60], [0.0, 0.2, 0.6])
        bottom = np.full_like(u, MOUTH_Y - 12.0)
    phi = _ring_parameter(14)
    across = np.sign(np.cos(phi)) * np.abs(np.cos(phi)) ** 0.45  # boxy section, +1 labial
    along = np.sign(np.sin(phi)) * np.abs(np.sin(phi)) ** 0.45
    # 0 on the labial face, -thickness on the lingual face; crowns thin toward the biting edge
    taper = 0.35 + 0.65 * 0.5 * (1.0 + (along if upper else -along))
    depth_off = 0.5 * (across - 1.0)[None, :] * thickness[:, None] * taper[None, :]
    y = (0.5 * (top + bottom))[:, None] + 0.5 * (top - bottom)[:, None] * along[None, :]
    x = centre_x[:, None] + labial[:, None, 0] * depth_off
    z = centre_z[:, None] + labial[:, None, 1] * depth_off
    rings = np.stack([x, y, z], -1)  # (S, P, 3) sections along the arch, from the right end to the left end
    left_half = np.arange(len(u) - 1) >= (len(u) - 1) // 2  # quad r mirrors quad S - 2 - r
    flip = np.broadcast_to(left_half[:, None], (len(u) - 1, len(phi)))
    return _closed_surface(rings, rings[0].mean(axis=0), rings[-1].mean(axis=0), flip)


def _tongue() -> tuple[np.ndarray, np.ndarray]:
    centre = np.array([0.0, MOUTH_Y - 10.5, TEETH_FRONT_Z - 26.0])
    semi = np.array([19.0, 6.0, 24.0])
    polar = np.linspace(0, np.pi, 14)[1:-1]
    azimuth = _ring_parameter(28)
    s, c = np.sin(polar)[:, None], np.cos(polar)[:, None]
    # poles along z (front tip to back), loops counter-clockwise seen from the front
    unit = np.stack([s * np.cos(azimuth), s * np.sin(azimuth), np.broadcast_to(c, (len(polar), 28))], -1)
    flat = np.where(unit[..., 1:2] > 0, 0.55, 1.0)  # flatter top
    rings = centre + unit * semi * np.concatenate([np.ones_like(flat), flat, np.ones_like(flat)], -1)
    right_half = np.cos(azimuth + np.pi / len(azimuth)) < 0  # quad k mirrors quad N/2 - 1 - k
    flip = np.broadcast_to(right_half, (len(polar) - 1, len(azimuth)))
    return _closed_surface(rings, centre + [0, 0, semi[2]], centre - [0, 0, semi[2]], flip)


_CAVITY_RINGS = [  # (half width, half height, z of the front, how far the sides curve back), mm
    (20.0, 7.0, 10.0, 18.0),
    (27.0, 16.0, 2.0, 26.0),
    (27.0, 19.0, -14.0, 18.0),
    (23.0, 16.0, -36.0, 8.0),
    (13.0, 10.0, -52.0, 2.0),
]


def _cavity_ring(t: np.ndarray, half_width: float, half_height: float, front: float, curve: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    x = half_width * c
    x[np.abs(c) < 1e-9] = 0.0
    return np.stack([x, MOUTH_Y - 2.0 + half_height * s, front - curve * c**2], -1)


def build_head_mesh() -> HeadMesh:
    """Assemble the mean head (deterministic; about 0.5 s)."""
    skin = _skin()
    vertices = [skin.vertices]
    triangles = [skin.triangles]
    count = len(skin.vertices)
    part = [np.full(count, SKIN, np.int8)]
    eye = [skin.eye]
    ring = [skin.ring]
    angle = [np.where(skin.ring > -100, 0.0, np.nan)]
    angle[0][skin.eye >= 0] = _ring_parameter(NUM_EYE_RING)[skin.index[skin.eye >= 0]]
    angle[0][skin.is_mouth] = _ring_parameter(NUM_MOUTH_RING)[skin.index[skin.is_mouth]]

    def ring_ids(is_member: np.ndarray, j: int, n: int) -> np.ndarray:
        members = np.flatnonzero(is_member & (skin.ring == j))
        ids = np.full(n, -1)
        ids[skin.index[members]] = members
        if (ids < 0).any():
            raise RuntimeError(f"ring {j} lost vertices in the triangulation")
        return ids

    def add(new_vertices: np.ndarray, new_part: int, eye_code: int = -1, ring_no: int = -100,
            t: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        nonlocal count
        ids = count + np.arange(len(new_vertices))
        vertices.append(new_vertices)
        part.append(np.full(len(new_vertices), new_part, np.int8))
        eye.append(np.full(len(new_vertices), eye_code, np.int8))
        ring.append(np.full(len(new_vertices), ring_no, np.int16))
        angle.append(np.full(len(new_vertices), np.nan) if t is None else t)
        count += len(new_vertices)
        return ids

    # Lid margins and eye sockets: built for the left eye, mirrored (same vertex order, reversed winding).
    t_eye = _ring_parameter(NUM_EYE_RING)
    eye_ring_ids = np.zeros((2, NUM_EYE_RINGS + 1, NUM_EYE_RING), np.int64)
    socket_ring_ids = np.zeros((2, NUM_SOCKET_RINGS, NUM_EYE_RING), np.int64)
    for side in (0, 1):
        for j in range(NUM_EYE_RINGS):
            eye_ring_ids[side, j + 1] = ring_ids(skin.eye == side, j, NUM_EYE_RING)
    margin = EYE_CENTRE_L + _unit(skin.vertices[eye_ring_ids[0, 1]] - EYE_CENTRE_L) * LID_MARGIN_RADIUS
    socket, fornix = _socket(margin, t_eye)
    poles = []
    for side, mirror in ((0, np.array([1.0, 1.0, 1.0])), (1, np.array([-1.0, 1.0, 1.0]))):
        eye_ring_ids[side, 0] = add(margin * mirror, LID_MARGIN, side, -1, t_eye.copy())
        for k in range(NUM_SOCKET_RINGS):
            socket_ring_ids[side, k] = add(socket[k] * mirror, EYE_SOCKET, side, -2 - k, t_eye.copy())
        poles.append(int(add(fornix[None] * mirror, EYE_SOCKET, side, -2 - NUM_SOCKET_RINGS)[0]))
    left = [_strip(eye_ring_ids[0, 1], eye_ring_ids[0, 0], skin.triangles)]
    previous = eye_ring_ids[0, 0]
    for k in range(NUM_SOCKET_RINGS):
        left.append(_strip(previous, socket_ring_ids[0, k], left[-1]))
        previous = socket_ring_ids[0, k]
    left.append(_fan(previous, poles[0], left[-1]))
    left_tri = np.concatenate(left)
    to_right = np.arange(count)
    to_right[eye_ring_ids[0]], to_right[socket_ring_ids[0]], to_right[poles[0]] = (
        eye_ring_ids[1],
        socket_ring_ids[1],
        poles[1],
    )
    triangles += [left_tri, to_right[left_tri][:, ::-1]]

    # Lips roll into the mouth: lens ring -> roll ring -> inner lip contour (upper and lower halves 0.3 mm apart).
    t_mouth = _ring_parameter(NUM_MOUTH_RING)
    mouth_ring_ids = np.zeros((NUM_MOUTH_RINGS + 2, NUM_MOUTH_RING), np.int64)
    for j in range(NUM_MOUTH_RINGS):
        mouth_ring_ids[j + 2] = ring_ids(skin.is_mouth, j, NUM_MOUTH_RING)
    lens = skin.vertices[mouth_ring_ids[2]]
    side = np.sign(np.round(np.sin(t_mouth), 9))
    roll = lens + np.stack([0.0 * lens[:, 0], -0.55 * (lens[:, 1] - MOUTH_Y), np.full(len(lens), -0.9)], -1)
    facing_z = np.roll(lens[::-1, 2], 1)  # the lens vertex across the mouth (N - k)
    inner = np.stack([lens[:, 0] * 0.985, MOUTH_Y + 0.15 * side, 0.5 * (lens[:, 2] + facing_z) - 3.0], -1)
    mouth_ring_ids[1] = add(roll, LIP_ROLL, ring_no=-1, t=t_mouth.copy())
    mouth_ring_ids[0] = add(inner, LIP_ROLL, ring_no=-2, t=t_mouth.copy())
    mirrored = np.cos(t_mouth + np.pi / NUM_MOUTH_RING) < 0  # quads on the right split the mirrored way
    roll_tri = _strip(mouth_ring_ids[2], mouth_ring_ids[1], skin.triangles, mirrored)
    inner_tri = _strip(mouth_ring_ids[1], mouth_ring_ids[0], roll_tri, mirrored)
    triangles += [roll_tri, inner_tri]
    previous, previous_tri = mouth_ring_ids[0], inner_tri
    for j, spec in enumerate(_CAVITY_RINGS):
        ids = add(_cavity_ring(t_mouth, *spec), CAVITY, ring_no=j + 1, t=t_mouth.copy())
        previous_tri = _strip(previous, ids, previous_tri, mirrored)
        triangles.append(previous_tri)
        previous = ids
    back = add(np.array([[0.0, MOUTH_Y - 2.0, _CAVITY_RINGS[-1][2] - 5.0]]), CAVITY, ring_no=len(_CAVITY_RINGS) + 1)
    triangles.append(_fan(previous, int(back[0]), previous_tri))

    for side, outward in ((0, 1.0), (1, -1.0)):
        ball, ball_tri = _eyeball_rings(EYE_CENTRE_L)
        if outward < 0:  # mirror image of the left eye: same vertex order, reversed winding
            ball, ball_tri = ball * [-1.0, 1.0, 1.0], ball_tri[:, ::-1]
        ids = add(ball, EYEBALL, side)
        triangles.append(ids[ball_tri])
    for code, upper in ((TEETH_UPPER, True), (TEETH_LOWER, False)):
        arch, arch_tri = _arch(upper)
        triangles.append(add(arch, code)[arch_tri])
    tongue, tongue_tri = _tongue()
    triangles.append(add(tongue, TONGUE)[tongue_tri])

    return HeadMesh(
        vertices=np.concatenate(vertices),
        triangles=np.concatenate(triangles).astype(np.int64),
        part=np.concatenate(part),
        eye=np.concatenate(eye),
        ring=np.concatenate(ring),
        angle=np.concatenate(angle),
        eye_ring_ids=eye_ring_ids,
        socket_ring_ids=socket_ring_ids,
        mouth_ring_ids=mouth_ring_ids,
    )
