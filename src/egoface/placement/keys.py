"""What a camera is judged on: its key facial regions, key keypoints and key expressions, per camera role.

REFA Sec. 4 scores a camera by the visibility of "key facial regions" (Eq. 1) and by how far "a key set of facial
expressions" moves the projected "facial keypoints" (Eq. 2). The sets used here (docs/placement.md):

- eye camera on side S: regions `eye_S` (lids and the skin around the eye), `iris_S` (iris and pupil), `brow_S`;
  expressions eyeBlink_S, browInnerUp, browDown;
- mouth and boom cameras on side S: regions `lips`, `chin`, `cheek_S` (both cheeks, `cheeks`, for a centre
  camera), `lower_face`; expressions jawOpen, mouthSmile_L, mouthSmile_R, mouthPucker, mouthFunnel, cheekPuff;
- glabella camera: regions `glabella`, `brow_L`, `brow_R`; expressions browInnerUp, browDown.

S is the subject's side the camera sits on (`left` -> `_L`, +X). Regions come from the face model's named regions,
split by side on the mean face (x >= 0 is the left side); `glabella` is the skin within 14 mm (in x, y) of the point
between the brows (x = 0, mean brow height), without the eyes and brows. The keypoints of a camera are the model's
landmarks that lie in its key regions; a model with fewer than 3 such landmarks uses up to 24 evenly spread vertices
of those regions instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoface.face.model import FaceTopology
from egoface.face.names import expression_vector

__all__ = ["KEY_EXPRESSIONS", "ROLE_EXPRESSIONS", "CameraKeys", "camera_keys", "key_expression_matrix"]

#: The key expressions (name -> canonical expression weights); browInnerUp, browDown and cheekPuff act on both sides.
KEY_EXPRESSIONS: dict[str, dict[str, float]] = {
    "jawOpen": {"jawOpen": 1.0},
    "mouthSmile_L": {"mouthSmile_L": 1.0},
    "mouthSmile_R": {"mouthSmile_R": 1.0},
    "mouthPucker": {"mouthPucker": 1.0},
    "mouthFunnel": {"mouthFunnel": 1.0},
    "cheekPuff": {"cheekPuff_L": 1.0, "cheekPuff_R": 1.0},
    "eyeBlink_L": {"eyeBlink_L": 1.0},
    "eyeBlink_R": {"eyeBlink_R": 1.0},
    "browInnerUp": {"browInnerUp_L": 1.0, "browInnerUp_R": 1.0},
    "browDown": {"browDown_L": 1.0, "browDown_R": 1.0},
}

_MOUTH_EXPRESSIONS = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "mouthPucker", "mouthFunnel", "cheekPuff")
#: Key expressions per (role, side): the set E of REFA Eq. 2 for a camera.
ROLE_EXPRESSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("eye", "left"): ("eyeBlink_L", "browInnerUp", "browDown"),
    ("eye", "right"): ("eyeBlink_R", "browInnerUp", "browDown"),
    ("eye", "center"): ("eyeBlink_L", "eyeBlink_R", "browInnerUp", "browDown"),
    **{(role, side): _MOUTH_EXPRESSIONS for role in ("mouth", "boom") for side in ("left", "right", "center")},
    **{("glabella", side): ("browInnerUp", "browDown") for side in ("left", "right", "center")},
}

_GLABELLA_RADIUS_MM = 14.0
_MIN_LANDMARKS = 3
_FALLBACK_KEYPOINTS = 24


def key_expression_matrix() -> np.ndarray:
    """(1 + E, 53) float32 expression weights: row 0 neutral, then the `KEY_EXPRESSIONS` in order."""
    rows = [expression_vector({})] + [expression_vector(weights) for weights in KEY_EXPRESSIONS.values()]
    return np.stack(rows)


@dataclass(frozen=True)
class CameraKeys:
    """What a camera of one role and side is judged on (vertex ids of the face model).

    regions: key region name -> sorted vertex ids (non-empty); keypoints: (L,) vertex ids (each in some key region);
    keypoint_names: (L,) landmark names (or `v<id>` for fallback vertices); expressions: names in `KEY_EXPRESSIONS`.
    """

    role: str
    side: str
    regions: dict[str, np.ndarray]
    keypoints: np.ndarray
    keypoint_names: tuple[str, ...]
    expressions: tuple[str, ...]

    @property
    def vertex_ids(self) -> np.ndarray:
        """(K,) sorted union of the key regions' vertex ids."""
        return np.unique(np.concatenate(list(self.regions.values())))


def _side_ids(ids: np.ndarray, mean_neutral: np.ndarray, side: str) -> np.ndarray:
    """The ids on the subject's `side` of the mean face (x >= 0 left, x <= 0 right; all for center)."""
    x = mean_neutral[ids, 0]
    if side == "left":
        return ids[x >= 0]
    if side == "right":
        return ids[x <= 0]
    return ids


def _glabella(topology: FaceTopology, mean_neutral: np.ndarray) -> np.ndarray:
    regions = topology.regions
    brows = regions["brows"]
    if brows.size == 0:
        return np.zeros(0, np.int64)
    centre_y = float(mean_neutral[brows, 1].mean())
    face = regions["face"]
    near = np.hypot(mean_neutral[face, 0], mean_neutral[face, 1] - centre_y) < _GLABELLA_RADIUS_MM
    excluded = np.concatenate([brows, regions["eye_L"], regions["eye_R"]])
    return np.setdiff1d(face[near], excluded)


def _regions(topology: FaceTopology, mean_neutral: np.ndarray, role: str, side: str) -> dict[str, np.ndarray]:
    regions = topology.regions
    tag = {"left": "L", "right": "R"}.get(side)

    def brow(on: str) -> np.ndarray:
        return _side_ids(regions["brows"], mean_neutral, on)

    if role == "eye":
        empty = np.zeros(0, np.int64)
        iris = np.union1d(regions.get("iris", empty), regions.get("pupil", empty))
        result = {}
        for eye_tag, eye_side in (("L", "left"), ("R", "right")):
            if tag in (None, eye_tag):
                result[f"eye_{eye_tag}"] = np.setdiff1d(regions[f"eye_{eye_tag}"], regions["eyeballs"])
                result[f"iris_{eye_tag}"] = _side_ids(iris, mean_neutral, eye_side)
                result[f"brow_{eye_tag}"] = brow(eye_side)
        return result
    if role in ("mouth", "boom"):
        cheek_name = f"cheek_{tag}" if tag else "cheeks"
        return {
            "lips": regions["lips"],
            "chin": regions["chin"],
            cheek_name: _side_ids(regions["cheeks"], mean_neutral, side),
            "lower_face": regions["lower_face"],
        }
    return {"glabella": _glabella(topology, mean_neutral), "brow_L": brow("left"), "brow_R": brow("right")}


def camera_keys(topology: FaceTopology, mean_neutral: np.ndarray, role: str, side: str) -> CameraKeys:
    """The key regions, keypoints and expressions of a camera of `role` on `side`.

    topology: the face model's topology; mean_neutral: (V, 3) mm, the mean neutral face (head frame).
    Regions a model leaves empty are dropped; a model with none of a role's regions raises ValueError.
    """
    if (role, side) not in ROLE_EXPRESSIONS:
        raise ValueError(f"no key regions for a camera of role {role!r} on side {side!r}")
    regions = {
        name: np.unique(np.asarray(ids, np.int64))
        for name, ids in _regions(topology, mean_neutral, role, side).items()
        if len(ids)
    }
    if not regions:
        raise ValueError(f"the face model names none of the key regions of a {role} camera ({side})")
    union = np.unique(np.concatenate(list(regions.values())))
    landmark_ids = np.asarray(topology.landmarks.vertex_ids, np.int64)
    inside = np.isin(landmark_ids, union)
    if inside.sum() >= _MIN_LANDMARKS:
        keypoints = landmark_ids[inside]
        names = tuple(name for name, keep in zip(topology.landmarks.names, inside, strict=True) if keep)
    else:
        keypoints = union[np.linspace(0, len(union) - 1, min(_FALLBACK_KEYPOINTS, len(union))).round().astype(int)]
        keypoints = np.unique(keypoints)
        names = tuple(f"v{i}" for i in keypoints)
    return CameraKeys(role, side, regions, keypoints, names, ROLE_EXPRESSIONS[(role, side)])
