"""Inferring what a bare mesh does not say: eyeball spheres, named regions and lip pairs.

Face models loaded from files often lack the semantic tables of `FaceTopology`. Two inference routes live here:

- from the 68 Multi-PIE landmarks and the geometry (`landmark_regions`, used for ICT-FaceKit): brows, eyes, nose,
  lips, cheeks and chin are neighbourhoods of landmark polylines or polygons (sizes in mm below);
- from the expression shapes themselves (`shape_regions`, used for folders of OBJ blendshapes): a region is the set
  of vertices a shape moves by at least a fraction of that shape's largest displacement (eye_L: `eyeBlink_L`; brows:
  the six brow shapes; lips: funnel, pucker and the two rolls; nose: `noseSneer`; cheeks: `cheekPuff`,
  `cheekSquint`; chin: `jawOpen` below the lips).

All coordinates are mm in the head frame (+X the subject's left, +Y up, +Z out of the face).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from egoface.face.model import LipPairs
from egoface.face.names import EXPRESSION_NAMES

__all__ = [
    "eye_parts",
    "eyeball_sphere",
    "fit_sphere",
    "landmark_regions",
    "lip_pairs_from_shapes",
    "shape_regions",
    "split_upper_lower",
]

# Sizes of the landmark neighbourhoods (mm).
_BROW_RADIUS = 9.0
_EYE_MARGIN = 7.0
_NOSE_MARGIN = 4.0
_LIP_MARGIN = 2.0
# Fractions of a shape's largest displacement above which a vertex belongs to the shape's region.
_MOVED_FRACTION = {"eye": 0.2, "brow": 0.3, "lip": 0.4, "nose": 0.3, "cheek": 0.3, "chin": 0.3}
# Iris and pupil: eyeball vertices within these angles (deg) of the eye's forward axis (+Z), on the inner shell
# when the eyeball has an outer (cornea) shell.
_IRIS_HALF_ANGLE_DEG = 32.0
_PUPIL_HALF_ANGLE_DEG = 11.0


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (N >= 4, 3) -> centre (3,) float64, radius.

    Solves |p|^2 = 2 p.c + (r^2 - |c|^2) linearly (the algebraic fit).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4:
        raise ValueError(f"fitting a sphere needs at least 4 points of shape (N, 3), got {points.shape}")
    system = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    solution = np.linalg.lstsq(system, (points**2).sum(axis=1), rcond=None)[0]
    centre = solution[:3]
    return centre, float(np.sqrt(solution[3] + centre @ centre))


def eyeball_sphere(vertices: np.ndarray, ids: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and radius of an eyeball given by vertex ids.

    Eyeball meshes often nest shells (ICT-FaceKit: an outer sclera/cornea shell around an inner one carrying the
    iris). A sphere is fitted to every connected shell of at least 4 vertices and the largest one is returned, so
    the inner shell does not pull the fit inward; vertices without triangles are fitted all together.
    """
    fits = [fit_sphere(vertices[shell]) for shell in _components(ids, triangles) if len(shell) >= 4]
    if not fits:  # no triangles among them: a point cloud
        return fit_sphere(vertices[ids])
    return max(fits, key=lambda fit: fit[1])


def eye_parts(
    vertices: np.ndarray, ids: np.ndarray, triangles: np.ndarray, centre: np.ndarray
) -> dict[str, np.ndarray]:
    """Split one eyeball's vertex ids into `sclera`, `iris` and `pupil` (sorted ids).

    With nested shells the outer one is the sclera (and cornea); iris and pupil are the inner shells' vertices
    within 32 and 11 deg of straight ahead (+Z); a single shell is split by the same angles.
    """
    shells = sorted(
        _components(ids, triangles), key=lambda shell: -np.linalg.norm(vertices[shell] - centre, axis=1).mean()
    )
    inner = np.concatenate(shells[1:]) if len(shells) > 1 else shells[0]
    offsets = vertices[inner] - centre
    cos_forward = offsets[:, 2] / np.maximum(np.linalg.norm(offsets, axis=1), 1e-9)
    iris = inner[cos_forward >= np.cos(np.deg2rad(_IRIS_HALF_ANGLE_DEG))]
    pupil = inner[cos_forward >= np.cos(np.deg2rad(_PUPIL_HALF_ANGLE_DEG))]
    sclera = np.setdiff1d(ids, iris) if len(shells) == 1 else shells[0]
    return {"sclera": np.sort(sclera), "iris": np.sort(iris), "pupil": np.sort(pupil)}


def _components(ids: np.ndarray, triangles: np.ndarray) -> list[np.ndarray]:
    """Connected components (as sorted vertex-id arrays) of the sub-mesh spanned by `ids`."""
    ids = np.unique(np.asarray(ids, dtype=np.int64))
    local = np.full(int(max(ids.max(initial=-1), triangles.max(initial=-1))) + 1, -1, dtype=np.int64)
    local[ids] = np.arange(len(ids))
    inside = triangles[(local[triangles] >= 0).all(axis=1)]
    edges = np.concatenate([inside[:, [0, 1]], inside[:, [1, 2]], inside[:, [2, 0]]])
    rows, cols = local[edges[:, 0]], local[edges[:, 1]]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(ids)))
    count, labels = connected_components(graph, directed=False)
    return [ids[labels == label] for label in range(count)]


def _segment_distance(points: np.ndarray, polyline: np.ndarray, closed: bool) -> np.ndarray:
    """Distance (N,) from points (N, D) to a polyline (M, D), optionally closed."""
    starts = polyline if closed else polyline[:-1]
    ends = np.roll(polyline, -1, axis=0) if closed else polyline[1:]
    edge = ends - starts  # (S, D)
    rel = points[:, None, :] - starts[None]  # (N, S, D)
    t = np.clip((rel * edge).sum(-1) / np.maximum((edge**2).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(rel - t[..., None] * edge, axis=-1).min(axis=1)


def _inside_polygon(points_xy: np.ndarray, polygon_xy: np.ndarray, margin: float) -> np.ndarray:
    """(N,) bool: points inside a closed 2D polygon (even-odd rule) or within `margin` of its outline."""
    x, y = points_xy[:, 0:1], points_xy[:, 1:2]
    x0, y0 = polygon_xy[:, 0], polygon_xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    straddles = (y0 > y) != (y1 > y)
    crossing_x = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
    inside = (straddles & (x < crossing_x)).sum(axis=1) % 2 == 1
    return inside | (_segment_distance(points_xy, polygon_xy, closed=True) <= margin)


def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3)."""
    corners = vertices[triangles]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, triangles[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def split_upper_lower(vertices: np.ndarray, face_ids: np.ndarray, split_y: float) -> dict[str, np.ndarray]:
    """`upper_face` (y >= split_y) and `lower_face` (y < split_y) of the face vertices (split at the nose base)."""
    upper = vertices[face_ids, 1] >= split_y
    return {"upper_face": np.sort(face_ids[upper]), "lower_face": np.sort(face_ids[~upper])}


def landmark_regions(
    vertices: np.ndarray, triangles: np.ndarray, landmark_ids: np.ndarray, face_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Regions of the face surface from the 68 Multi-PIE landmarks (0-based; 0-16 jaw from the subject's right,
    17-21 / 22-26 right / left brow, 27-35 nose, 36-41 / 42-47 right / left eye, 48-67 lips).

    Returns sorted ids (subsets of `face_ids`) for brows, eye_L, eye_R (lids and surroundings), nose, lips, cheeks,
    chin, upper_face and lower_face (split at the nose base, landmark 33).
    """
    points = vertices[face_ids].astype(np.float64)
    xy = points[:, :2]
    marks = vertices[landmark_ids].astype(np.float64)
    facing = _vertex_normals(vertices, triangles)[face_ids, 2] > -0.2

    def poly(*indices: int) -> np.ndarray:
        return marks[list(indices), :2]

    brows = (_segment_distance(points, marks[17:22], False) < _BROW_RADIUS) | (
        _segment_distance(points, marks[22:27], False) < _BROW_RADIUS
    )
    eye_r = _inside_polygon(xy, marks[36:42, :2], _EYE_MARGIN) & facing
    eye_l = _inside_polygon(xy, marks[42:48, :2], _EYE_MARGIN) & facing
    lips = _inside_polygon(xy, marks[48:60, :2], _LIP_MARGIN) & facing
    nose = _inside_polygon(xy, poly(27, 35, 34, 33, 32, 31), _NOSE_MARGIN) & (points[:, 2] > marks[39, 2]) & ~lips
    eyes = eye_l | eye_r
    brows &= ~eyes
    cheek_l = _inside_polygon(xy, poly(42, 47, 46, 45, 15, 14, 13, 12, 54, 35), 0.0)
    cheek_r = _inside_polygon(xy, poly(39, 40, 41, 36, 1, 2, 3, 4, 48, 31), 0.0)
    cheeks = (cheek_l | cheek_r) & facing & ~(eyes | nose | lips)
    chin = _inside_polygon(xy, poly(6, 7, 8, 9, 10, 54, 55, 56, 57, 58, 59, 48), 0.0) & facing & ~lips
    regions = {
        "brows": brows,
        "eye_L": eye_l,
        "eye_R": eye_r,
        "nose": nose,
        "lips": lips,
        "cheeks": cheeks,
        "chin": chin,
    }
    result = {name: np.sort(face_ids[mask]) for name, mask in regions.items()}
    result.update(split_upper_lower(vertices, face_ids, float(marks[33, 1])))
    return result


def _moved(deltas: np.ndarray, present: np.ndarray, names: Iterable[str], fraction: float) -> np.ndarray:
    """(V,) bool: vertices that any of the named (present) shapes moves by >= fraction of its largest move."""
    mask = np.zeros(deltas.shape[1], dtype=bool)
    for name in names:
        k = EXPRESSION_NAMES.index(name)
        if not present[k]:
            continue
        length = np.linalg.norm(deltas[k], axis=1)
        if length.max() > 0:
            mask |= length >= fraction * length.max()
    return mask


def shape_regions(
    neutral: np.ndarray, deltas: np.ndarray, present: np.ndarray, face_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Regions inferred from the expression shapes: neutral (V, 3) mm, deltas (53, V, 3) mm, present (53,) bool.

    Returns sorted ids (subsets of `face_ids`) for eye_L, eye_R, brows, lips, nose, cheeks, chin, upper_face and
    lower_face. Regions whose shapes are missing come back empty. The face is split into upper and lower halves at
    the lowest nose vertex, or half-way between the eyes and the lips when the nose is unknown.
    """
    on_face = np.zeros(len(neutral), dtype=bool)
    on_face[face_ids] = True
    fraction = _MOVED_FRACTION
    eye_l = _moved(deltas, present, ["eyeBlink_L"], fraction["eye"]) & on_face
    eye_r = _moved(deltas, present, ["eyeBlink_R"], fraction["eye"]) & on_face
    brow_names = [n for n in EXPRESSION_NAMES if n.startswith("brow")]
    brows = _moved(deltas, present, brow_names, fraction["brow"]) & on_face & ~(eye_l | eye_r)
    lip_names = ["mouthFunnel", "mouthPucker", "mouthRollUpper", "mouthRollLower"]
    lips = _moved(deltas, present, lip_names, fraction["lip"]) & on_face
    nose = _moved(deltas, present, ["noseSneer_L", "noseSneer_R"], fraction["nose"]) & on_face
    nose &= ~(lips | eye_l | eye_r | brows)
    cheek_names = ["cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R"]
    cheeks = _moved(deltas, present, cheek_names, fraction["cheek"]) & on_face & ~(lips | nose | eye_l | eye_r | brows)
    chin = _moved(deltas, present, ["jawOpen"], fraction["chin"]) & on_face & ~lips
    if lips.any():
        chin &= neutral[:, 1] < neutral[lips, 1].min()
    regions = {"eye_L": eye_l, "eye_R": eye_r, "brows": brows, "lips": lips, "nose": nose, "cheeks": cheeks}
    regions["chin"] = chin
    result = {name: np.flatnonzero(mask) for name, mask in regions.items()}
    if nose.any():
        split_y = float(neutral[nose, 1].min())
    elif (eye_l | eye_r).any() and lips.any():
        split_y = 0.5 * float(neutral[eye_l | eye_r, 1].mean() + neutral[lips, 1].mean())
    else:
        split_y = float(np.median(neutral[face_ids, 1]))
    result.update(split_upper_lower(neutral, face_ids, split_y))
    return result


def lip_pairs_from_shapes(neutral: np.ndarray, deltas: np.ndarray, present: np.ndarray, lips: np.ndarray) -> LipPairs:
    """Lip pairs from the shapes: neutral (V, 3) mm, deltas (53, V, 3) mm, lips: region ids (non-empty).

    Corners: the lip vertices pushed furthest toward +X (left) / -X (right) by `mouthSmile` + `mouthStretch` of that
    side, or the extreme lip vertices in x when those shapes are missing. Centres: among lip vertices near the
    midline (|x| within 10 % of the lip width), the lower centre is the highest vertex that `jawOpen` moves by at
    least half its largest move there, the upper centre the lowest vertex it moves less (the inner lip line); without
    `jawOpen`, the midline vertices nearest the lips' mean height above and below it.
    """
    if len(lips) == 0:
        raise ValueError("cannot place lip pairs without lip vertices")
    points = neutral[lips]
    corners = []
    for side, sign in (("_L", 1.0), ("_R", -1.0)):
        push = np.zeros(len(lips))
        for name in ("mouthSmile" + side, "mouthStretch" + side):
            k = EXPRESSION_NAMES.index(name)
            if present[k]:
                push += sign * deltas[k, lips, 0]
        score = push if push.max() > 0 else sign * points[:, 0]
        corners.append(int(lips[np.argmax(score)]))
    width = points[:, 0].max() - points[:, 0].min()
    middle = np.abs(points[:, 0]) <= max(0.1 * width, 1e-6)
    if not middle.any():
        middle = np.abs(points[:, 0]) <= np.abs(points[:, 0]).min()
    ids, y = lips[middle], points[middle, 1]
    jaw = EXPRESSION_NAMES.index("jawOpen")
    opening = np.linalg.norm(deltas[jaw, ids], axis=1) if present[jaw] else np.zeros(len(ids))
    lower_side = opening >= 0.5 * opening.max() if opening.max() > 0 else y < points[:, 1].mean()
    if lower_side.all() or not lower_side.any():
        raise ValueError("cannot tell the upper lip from the lower lip along the midline")
    lower = ids[lower_side][np.argmax(y[lower_side])]
    upper = ids[~lower_side][np.argmin(y[~lower_side])]
    return LipPairs(corner_L=corners[0], corner_R=corners[1], upper_center=int(upper), lower_center=int(lower))
