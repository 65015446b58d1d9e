"""The 53 expressions as functions of a face's own neutral geometry.

Each shape is a localized deformation: a rotation about an anatomical axis (jaw about the axis through the
temporo-mandibular joints, lids about the eye's horizontal or vertical axis) or a displacement field, weighted per
vertex. The weights (`RigWeights`, which vertex belongs to the jaw, the upper lid, the left mouth corner...) are
fixed per vertex and computed once on the mean face; the pivots, axes, normals and sizes come from the face the
shapes are made for. The generic rig is `expression_deltas` evaluated on the mean face; a subject's own rig is the
same function evaluated on that subject's neutral face (`ProceduralFaceModel.adapted_expression_deltas`).

Shapes never move eyeball vertices; `_L` shapes are the exact mirror images of `_R` shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoface.face.names import EXPRESSION_NAMES
from egoface.face.procedural.anatomy import ANCHOR_NAMES, EYE_CENTRE_L, MOUTH_HALF_WIDTH, MOUTH_Y
from egoface.face.procedural.mesh import (
    CAVITY,
    EYEBALL,
    LID_MARGIN,
    LIP_ROLL,
    NUM_MOUTH_RINGS,
    SKIN,
    TEETH_LOWER,
    TEETH_UPPER,
    TONGUE,
    VERMILION_RING,
    HeadMesh,
    fissure_bounds,
    lid_angles,
)
from egoface.face.procedural.topology import smoothstep

__all__ = ["JAW_OPEN_DEG", "RigWeights", "compute_rig_weights", "expression_deltas"]

JAW_OPEN_DEG = 20.0  # jawOpen = 1 turns the mandible this far about the jaw axis
_SOCKET_FOLLOW = (
    1.0,
    1.0,
    0.95,
    0.8,
    0.6,
    0.4,
    0.2,
    0.05,
    0.0,
    0.0,
)  # share of the lid's turn per socket ring, margin backward
_BLINK_SHARE = 0.85  # the upper lid travels this share of the fissure height when blinking; the lower lid the rest


@dataclass(frozen=True)
class RigWeights:
    """Per-vertex weights, (V,) each unless noted; `sided` holds (2, V) arrays, row 0 for the subject's left."""

    jaw: np.ndarray
    lips_upper: np.ndarray
    lips_lower: np.ndarray
    lip_area: np.ndarray
    lip_offset: np.ndarray  # (V,) signed x offset from the mouth centre relative to the half width, lips only
    chin: np.ndarray
    mouth_area: np.ndarray
    lid_upper: np.ndarray  # (2, V)
    lid_lower: np.ndarray  # (2, V)
    fissure_height: np.ndarray  # (2, V) radians: upper minus lower lid edge elevation at each vertex's lid angle
    sided: dict[str, np.ndarray]
    triangles: np.ndarray


def _gauss(points: np.ndarray, centre: tuple[float, float, float], sigma: tuple[float, float, float]) -> np.ndarray:
    return np.exp(-0.5 * np.sum(((points - np.array(centre)) / np.array(sigma)) ** 2, axis=-1))


#: Side-specific bumps (left-side centre, sigma) in mm: name -> (centre, sigma).
_SIDED_BUMPS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "corner": ((MOUTH_HALF_WIDTH, MOUTH_Y, 6.0), (13.0, 11.0, 18.0)),
    "corner_tight": ((MOUTH_HALF_WIDTH + 2.0, MOUTH_Y, 4.0), (9.0, 8.0, 14.0)),
    "cheek_raise": ((38.0, -38.0, 0.0), (14.0, 12.0, 20.0)),
    "cheek_puff": ((40.0, -58.0, -5.0), (13.0, 15.0, 22.0)),
    "cheek_squint": ((38.0, -22.0, -2.0), (13.0, 8.0, 16.0)),
    "under_eye": ((31.5, -15.0, -2.0), (13.0, 6.0, 16.0)),
    "sneer": ((11.0, -30.0, 12.0), (7.0, 11.0, 16.0)),
    "brow": ((30.0, 24.0, 4.0), (17.0, 9.0, 20.0)),
    "brow_inner": ((14.0, 26.0, 8.0), (9.0, 11.0, 20.0)),
    "brow_outer": ((43.0, 24.0, -2.0), (11.0, 11.0, 20.0)),
}


def compute_rig_weights(head: HeadMesh) -> RigWeights:
    """Weights of the mean head (deterministic)."""
    v, part = head.vertices, head.part
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax = np.abs(x)
    skin = np.isin(part, (SKIN, LID_MARGIN, LIP_ROLL)).astype(float)
    movable = (part != EYEBALL).astype(float)

    # Lip side: ring vertices by their ring parameter, the rest by height relative to the lip line.
    lip_side = np.sin(np.nan_to_num(head.angle))  # > 0 upper, < 0 lower on the mouth rings
    on_mouth_ring = (head.eye < 0) & ~np.isnan(head.angle) & np.isin(part, (SKIN, LIP_ROLL, CAVITY))
    line = MOUTH_Y + 39.0 * smoothstep((ax - 20.0) / 50.0)  # the jaw's upper edge rises toward the ears
    band = 6.0 + 22.0 * smoothstep((ax - 18.0) / 35.0)
    jaw = smoothstep((line - y + 1.5) / band)
    ring_jaw = 0.5 - 0.5 * np.sign(lip_side) * np.abs(lip_side) ** 0.7  # the opening narrows to the corners
    # rings beyond the vermilion border blend into the smooth field (no crease around the lips when the jaw opens)
    beyond = (part == SKIN) * np.clip((head.ring - VERMILION_RING) / (NUM_MOUTH_RINGS - VERMILION_RING), 0.0, 1.0)
    jaw = np.where(on_mouth_ring, (1.0 - beyond) * ring_jaw + beyond * jaw, jaw)
    jaw *= smoothstep((y + 170.0) / 35.0) * smoothstep((z + 100.0) / 30.0)
    jaw = np.where(np.isin(part, (TEETH_LOWER, TONGUE)), 1.0, np.where(part == TEETH_UPPER, 0.0, jaw))
    jaw *= movable * (head.eye < 0)

    lip_area = np.exp(-0.5 * ((x / 24.0) ** 4 + ((y - MOUTH_Y) / 9.0) ** 2)) * smoothstep((z + 10.0) / 10.0)
    lip_area = np.where(np.isin(part, (LIP_ROLL,)), 1.0, lip_area * skin)
    lip_area = np.where(part == CAVITY, np.where(head.ring == 1, 0.7, 0.0), lip_area)
    lips_lower = lip_area * jaw
    lips_upper = lip_area * (1.0 - jaw) * (head.eye < 0)
    mouth_area = np.exp(-0.5 * ((x / 30.0) ** 2 + ((y - MOUTH_Y) / 16.0) ** 2)) * smoothstep((z + 25.0) / 20.0)
    mouth_area = np.where(np.isin(part, (CAVITY,)), mouth_area * 0.5, mouth_area * skin)

    lid_upper, lid_lower, fissure = np.zeros((2, len(v))), np.zeros((2, len(v))), np.zeros((2, len(v)))
    for side, outward in ((0, 1.0), (1, -1.0)):
        centre = EYE_CENTRE_L * [outward, 1.0, 1.0]
        a, b = lid_angles(v, centre, outward)
        b_up, b_low = fissure_bounds(a)
        distance = np.linalg.norm(v - centre, axis=1)
        near = (1.0 - smoothstep((distance - 20.0) / 10.0)) * skin * (z > centre[2] - 12.0)
        beyond_corner = np.abs(a - np.deg2rad(5.0)) - np.deg2rad(67.0)
        lateral = 1.0 - smoothstep(beyond_corner / 0.35)
        upper = b >= 0.5 * (b_up + b_low)
        lid_upper[side] = near * lateral * upper * (1.0 - smoothstep(np.maximum(b - b_up, 0.0) / 0.8))
        lid_lower[side] = near * lateral * ~upper * (1.0 - smoothstep(np.maximum(b_low - b, 0.0) / 0.5))
        fissure[side] = b_up - b_low
        # The socket follows its lid margin, less and less toward the back of the orbit.
        margin = head.eye_ring_ids[side, 0]
        for ids, follow in zip(head.socket_ring_ids[side], _SOCKET_FOLLOW, strict=True):
            lid_upper[side, ids] = follow * lid_upper[side, margin]
            lid_lower[side, ids] = follow * lid_lower[side, margin]
            fissure[side, ids] = fissure[side, margin]

    sided = {
        name: np.stack([_gauss(v, (sign * centre[0], centre[1], centre[2]), sigma) * skin for sign in (1.0, -1.0)])
        for name, (centre, sigma) in _SIDED_BUMPS.items()
    }
    sided["half"] = np.stack([smoothstep(0.5 + sign * x / 16.0) for sign in (1.0, -1.0)])  # lip halves
    chin = np.exp(-0.5 * ((x / 20.0) ** 2 + ((y + 92.0) / 12.0) ** 2)) * smoothstep((z + 20.0) / 10.0) * skin
    return RigWeights(
        jaw=jaw,
        lips_upper=lips_upper,
        lips_lower=lips_lower,
        lip_area=lip_area,
        chin=chin,
        lip_offset=np.clip(x / MOUTH_HALF_WIDTH, -1.2, 1.2) * lip_area,
        mouth_area=mouth_area,
        lid_upper=lid_upper,
        lid_lower=lid_lower,
        fissure_height=fissure,
        sided=sided,
        triangles=head.triangles,
    )


def _rotation_delta(points: np.ndarray, pivot: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Offsets that turn each point about the line (pivot, unit axis) by its own angle (radians, right-handed)."""
    q = points - pivot
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    rotated = q * cos + np.cross(axis, q) * sin + axis * (q @ axis)[:, None] * (1.0 - cos)
    return rotated - q


def _vertex_normals(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    corners = points[triangles]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(points)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


_X, _Y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def expression_deltas(points: np.ndarray, anchors: np.ndarray, weights: RigWeights) -> np.ndarray:
    """points: (V, 3) mm neutral face; anchors: (A, 3) mm in `ANCHOR_NAMES` order -> (53, V, 3) mm offsets."""
    anchor = dict(zip(ANCHOR_NAMES, anchors, strict=True))
    mouth_scale = float(np.linalg.norm(anchor["mouth_corner_L"] - anchor["mouth_corner_R"])) / (2 * MOUTH_HALF_WIDTH)
    face_scale = float(np.linalg.norm(anchor["eye_L"] - anchor["eye_R"]) / (2 * EYE_CENTRE_L[0]))
    normals = _vertex_normals(points, weights.triangles)
    w = weights

    def field(weight: np.ndarray, vector: np.ndarray | list[float], scale: float = 1.0) -> np.ndarray:
        return scale * weight[:, None] * np.asarray(vector, dtype=float)[None, :]

    def jaw_turn(angle_deg: float, weight: np.ndarray) -> np.ndarray:
        return _rotation_delta(points, anchor["jaw_pivot"], _X, np.deg2rad(angle_deg) * weight)

    def lids(side: int, upper_deg: float | None, lower_deg: float | None, axis: np.ndarray = _X) -> np.ndarray:
        """Turn the upper/lower lid about the eye centre; None = by the fissure-closing angle (blink)."""
        centre = anchor["eye_L" if side == 0 else "eye_R"]
        height = w.fissure_height[side]
        up = _BLINK_SHARE * height if upper_deg is None else np.deg2rad(upper_deg)
        low = -(1 - _BLINK_SHARE) * height if lower_deg is None else np.deg2rad(lower_deg)
        angle = up * w.lid_upper[side] + low * w.lid_lower[side]
        return _rotation_delta(points, centre, axis, np.broadcast_to(angle, (len(points),)).copy())

    jaw_open = jaw_turn(JAW_OPEN_DEG, w.jaw)
    lip_gap = np.linalg.norm(jaw_open, axis=1) * w.lips_lower  # (V,) how far the lower lip drops

    def left(name: str, side: int) -> np.ndarray:
        return w.sided[name][side]

    def sided_shapes(side: int) -> dict[str, np.ndarray]:
        s = 1.0 if side == 0 else -1.0
        m = np.array([s, 1.0, 1.0])  # mirror vectors for the right side
        corner, tight, half = left("corner", side), left("corner_tight", side), left("half", side)
        return {
            "browDown": field(left("brow", side), m * [-1.5, -7.0, 1.5], face_scale),
            "browInnerUp": field(left("brow_inner", side), m * [0.5, 6.0, 0.8], face_scale),
            "browOuterUp": field(left("brow_outer", side), m * [0.5, 8.5, 0.5], face_scale),
            "cheekPuff": 14.0 * face_scale * left("cheek_puff", side)[:, None] * normals,
            "cheekSquint": field(left("cheek_squint", side), m * [0.5, 5.5, 3.0], face_scale),
            "eyeBlink": lids(side, None, None),
            "eyeLookDown": lids(side, 12.0, 5.0),
            "eyeLookIn": lids(side, -s * 6.0, -s * 6.0, _Y),
            "eyeLookOut": lids(side, s * 6.0, s * 6.0, _Y),
            "eyeLookUp": lids(side, -9.0, -4.0),
            "eyeSquint": lids(side, 0.0, -7.0) + field(left("under_eye", side), m * [0.0, 2.5, 1.0], face_scale),
            "eyeWide": lids(side, -14.0, 3.0),
            "mouthDimple": field(tight, m * [3.0, 0.5, -8.0], mouth_scale),
            "mouthFrown": field(corner, m * [1.5, -5.5, -1.0], mouth_scale),
            "mouthLowerDown": field(w.lips_lower * half, m * [0.0, -4.5, 0.8], mouth_scale),
            "mouthPress": field(w.lips_upper * half, m * [0.0, -2.5, -2.5], mouth_scale)
            + field(w.lips_lower * half, m * [0.0, 2.5, -2.5], mouth_scale),
            "mouthSmile": field(corner, m * [6.0, 10.0, -8.0], mouth_scale)
            + field(left("cheek_raise", side), m * [1.0, 4.0, 2.0], face_scale),
            "mouthStretch": field(corner, m * [7.0, -6.0, -3.5], mouth_scale),
            "mouthUpperUp": field(w.lips_upper * half, m * [0.0, 5.0, 1.5], mouth_scale),
            "noseSneer": field(left("sneer", side), m * [1.0, 8.0, 3.0], face_scale),
        }

    shapes: dict[str, np.ndarray] = {}
    for side, suffix in ((0, "_L"), (1, "_R")):
        for stem, delta in sided_shapes(side).items():
            shapes[stem + suffix] = delta
    offset = w.lip_offset
    shapes.update(
        {
            "jawOpen": jaw_open,
            "jawForward": field(w.jaw, [0.0, 0.0, 11.0], face_scale),
            "jawLeft": field(w.jaw, [8.5, 0.0, 0.0], face_scale),
            "jawRight": field(w.jaw, [-8.5, 0.0, 0.0], face_scale),
            "mouthClose": -0.85 * jaw_open * w.lip_area[:, None]
            + field(w.lips_upper, [0.0, -0.15 * float(lip_gap.max()), 0.0]),
            "mouthFunnel": mouth_scale
            * (
                (w.lips_upper + w.lips_lower)[:, None] * [0.0, 0.0, 7.0]
                + w.lips_upper[:, None] * [0.0, 4.0, 0.0]
                + w.lips_lower[:, None] * [0.0, -5.0, 0.0]
                + (offset * -0.25 * MOUTH_HALF_WIDTH)[:, None] * _X
            ),
            "mouthPucker": mouth_scale
            * (
                (w.lips_upper + w.lips_lower)[:, None] * [0.0, 0.0, 8.5]
                + (offset * -0.35 * MOUTH_HALF_WIDTH)[:, None] * _X
            ),
            "mouthLeft": field(w.mouth_area, [16.0, 0.0, -2.0], mouth_scale),
            "mouthRight": field(w.mouth_area, [-16.0, 0.0, -2.0], mouth_scale),
            "mouthRollLower": field(w.lips_lower, [0.0, 5.0, -12.0], mouth_scale),
            "mouthRollUpper": field(w.lips_upper, [0.0, -4.0, -10.0], mouth_scale),
            "mouthShrugLower": field(w.lips_lower + w.chin * (1 - w.lips_lower), [0.0, 4.0, 3.0], mouth_scale),
            "mouthShrugUpper": field(w.lips_upper, [0.0, 3.0, 2.5], mouth_scale),
        }
    )
    return np.stack([shapes[name] for name in EXPRESSION_NAMES])
