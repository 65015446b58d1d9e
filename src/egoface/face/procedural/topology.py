"""Named regions, landmarks and lip pairs of the procedural head, derived from what each vertex is (`HeadMesh`).

Landmark names (about 100):
- `eye_{L,R}_corner_outer`, `eye_{L,R}_upper_01..07` (outer to inner corner), `eye_{L,R}_corner_inner`,
  `eye_{L,R}_lower_01..07` (inner to outer corner): on the lid margins, 16 per eye;
- `brow_{L,R}_01..05` from the inner to the outer end of each brow;
- `nose_01..04` down the bridge to the tip, `nose_05` below the tip (subnasale), `nose_ala_{L,R}`,
  `nose_nostril_{L,R}`;
- `lip_outer_00..15` on the lips' outer (vermilion) border and `lip_inner_00..11` on the inner lip contour, both
  counter-clockwise seen from the front starting at the subject's left corner (00);
- `jaw_00..16` along the jaw line from the subject's right ear to the left ear through the chin (`jaw_08`).
"""

from __future__ import annotations

import numpy as np

from egoface.face.model import FaceTopology, Landmarks, LipPairs
from egoface.face.procedural.anatomy import EYE_CENTRE_L, MOUTH_Y
from egoface.face.procedural.mesh import (
    CAVITY,
    EYE_SOCKET,
    EYEBALL,
    IRIS_HALF_ANGLE,
    LID_MARGIN,
    LIP_ROLL,
    NUM_EYE_RING,
    NUM_MOUTH_RING,
    PUPIL_HALF_ANGLE,
    SKIN,
    TEETH_LOWER,
    TEETH_UPPER,
    TONGUE,
    VERMILION_RING,
    HeadMesh,
)

__all__ = ["build_topology", "eye_region_weight"]


def eye_region_weight(points: np.ndarray, inner: float = 16.0, outer: float = 24.0) -> np.ndarray:
    """(..., 3) mm -> (...,) 1 within `inner` mm of either eye centre, 0 beyond `outer`, smooth between."""
    distance = np.minimum(
        np.linalg.norm(points - EYE_CENTRE_L, axis=-1), np.linalg.norm(points - EYE_CENTRE_L * [-1, 1, 1], axis=-1)
    )
    return 1.0 - smoothstep((distance - inner) / (outer - inner))


def smoothstep(u: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, 3u^2 - 2u^3 between."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _ids(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _regions(head: HeadMesh) -> dict[str, np.ndarray]:
    v, part = head.vertices, head.part
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ax = np.abs(x)
    skin = np.isin(part, (SKIN, LID_MARGIN, LIP_ROLL))
    front = skin & (z > -40.0) & (y > -132.0) & (y < 92.0)
    eyeball = part == EYEBALL
    lids = [(head.eye == side) & skin for side in (0, 1)]
    centres = [EYE_CENTRE_L, EYE_CENTRE_L * [-1, 1, 1]]
    polar = np.zeros(len(v))
    for side in (0, 1):
        q = v[eyeball & (head.eye == side)] - centres[side]
        polar[eyeball & (head.eye == side)] = np.arccos(np.clip(q[:, 2] / np.linalg.norm(q, axis=1), -1, 1))
    near_eye = [front & (np.hypot(x - c[0], (y - c[1]) * 1.2) < 24.0) & (y < 14.0) for c in centres]
    brows = front & (y > 12.0) & (y < 36.0) & (ax > 4.0) & (ax < 60.0) & ~(near_eye[0] | near_eye[1])
    nose = front & (ax < 9.0 + 10.0 * smoothstep((-y - 20.0) / 18.0)) & (y < 6.0) & (y > -50.0) & (z > 2.0)
    lips = skin & (head.eye < 0) & (head.ring >= -2) & (head.ring <= VERMILION_RING)  # the vermilion and its roll
    mouth_interior = np.isin(part, (CAVITY, TONGUE))
    teeth = np.isin(part, (TEETH_UPPER, TEETH_LOWER))
    chin = front & (y < MOUTH_Y - 10.0) & (ax < 42.0) & ~lips
    cheeks = front & (ax > 18.0) & (ax < 74.0) & (y < -4.0) & (y > -100.0) & ~(lips | nose | chin)
    cheeks &= ~(near_eye[0] | near_eye[1])
    forehead = front & (y > 30.0) & ~brows
    socket = part == EYE_SOCKET
    eye = [near_eye[s] | lids[s] | ((eyeball | socket) & (head.eye == s)) for s in (0, 1)]
    upper_face = (front & (y > -22.0)) | eyeball | socket
    lower_face = (front & (y <= -22.0)) | mouth_interior | teeth | (skin & (y < -100.0) & (z > -60.0))
    face = front | eyeball | socket
    neck = skin & (y < -118.0) & ~front
    moustache = front & (ax < 26.0) & (y > MOUTH_Y + 3.0) & (y < -46.0) & ~(lips | nose)
    beard = front & (((y < MOUTH_Y - 4.0) & ~lips) | ((ax > 34.0) & (y < -40.0) & (z > -75.0))) | moustache
    beard |= skin & (y < -100.0) & (z > -60.0)
    return {
        "face": _ids(face),
        "upper_face": _ids(upper_face),
        "lower_face": _ids(lower_face),
        "eye_L": _ids(eye[0]),
        "eye_R": _ids(eye[1]),
        "eyelid_L": _ids(lids[0]),
        "eyelid_R": _ids(lids[1]),
        "brows": _ids(brows),
        "forehead": _ids(forehead),
        "nose": _ids(nose),
        "cheeks": _ids(cheeks),
        "lips": _ids(lips),
        "mouth_interior": _ids(mouth_interior),
        "tongue": _ids(part == TONGUE),
        "teeth": _ids(teeth),
        "teeth_upper": _ids(part == TEETH_UPPER),
        "teeth_lower": _ids(part == TEETH_LOWER),
        "eyeballs": _ids(eyeball),
        "eye_socket": _ids(socket),
        "sclera": _ids(eyeball & (polar >= IRIS_HALF_ANGLE)),
        "iris": _ids(eyeball & (polar < IRIS_HALF_ANGLE) & (polar >= PUPIL_HALF_ANGLE)),
        "pupil": _ids(eyeball & (polar < PUPIL_HALF_ANGLE)),
        "chin": _ids(chin),
        "beard": _ids(beard),
        "moustache": _ids(moustache),
        "head": _ids(skin & ~front),
        "neck": _ids(neck),
        "skin": _ids(skin),
    }


def _landmarks(head: HeadMesh) -> Landmarks:
    names: list[str] = []
    ids: list[int] = []
    step = NUM_EYE_RING // 16
    for side, tag in ((0, "L"), (1, "R")):
        margin = head.eye_ring_ids[side, 0]
        for k in range(16):
            vertex = int(margin[k * step])
            if k == 0:
                name = f"eye_{tag}_corner_outer"
            elif k < 8:
                name = f"eye_{tag}_upper_{k:02d}"
            elif k == 8:
                name = f"eye_{tag}_corner_inner"
            else:
                name = f"eye_{tag}_lower_{k - 8:02d}"
            names.append(name)
            ids.append(vertex)
    for sign, tag in ((1.0, "L"), (-1.0, "R")):
        targets = np.array([[sign * x, y, 40.0] for x, y in ((12, 24), (22, 27), (32, 28), (42, 26.5), (51, 23))])
        brow_ids = _nearest_surface(head, targets)
        names += [f"brow_{tag}_{i + 1:02d}" for i in range(5)]
        ids += brow_ids.tolist()
    nose_targets = [(0, 2), (0, -10), (0, -21), (0, -32), (0, -47), (15, -40), (-15, -40), (7, -44), (-7, -44)]
    nose_ids = _nearest_surface(head, np.array([[x, y, 60.0] for x, y in nose_targets]))
    names += ["nose_01", "nose_02", "nose_03", "nose_04", "nose_05", "nose_ala_L", "nose_ala_R", "nose_nostril_L",
              "nose_nostril_R"]  # fmt: skip
    ids += nose_ids.tolist()
    outer = head.mouth_ring_ids[2 + VERMILION_RING]  # the vermilion border
    names += [f"lip_outer_{i:02d}" for i in range(16)]
    ids += outer[:: NUM_MOUTH_RING // 16].tolist()
    inner = head.mouth_ring_ids[0]
    names += [f"lip_inner_{i:02d}" for i in range(12)]
    ids += inner[np.round(np.arange(12) * NUM_MOUTH_RING / 12).astype(int)].tolist()
    angle = np.linspace(-np.pi / 2, np.pi / 2, 17)  # right ear -> chin -> left ear
    jaw_targets = np.stack([70.0 * np.sin(angle), -15.0 - 97.0 * np.cos(angle) ** 1.2, 200.0 * np.ones(17)], -1)
    jaw_ids = _jaw_line(head, jaw_targets)
    names += [f"jaw_{i:02d}" for i in range(17)]
    ids += jaw_ids.tolist()
    return Landmarks(names=tuple(names), vertex_ids=np.array(ids, dtype=np.int64))


def _nearest_surface(head: HeadMesh, targets: np.ndarray) -> np.ndarray:
    """Skin vertices under (x, y) of each target seen from the front: the front-most skin vertex within 2.5 mm."""
    skin = _ids(head.part == SKIN)
    v = head.vertices[skin]
    result = []
    for x, y, _ in targets:
        near = np.hypot(v[:, 0] - x, v[:, 1] - y)
        candidates = np.flatnonzero(near < max(2.5, near.min() + 0.5))
        result.append(skin[candidates[np.argmax(v[candidates, 2])]])
    return np.array(result, dtype=np.int64)


def _jaw_line(head: HeadMesh, targets: np.ndarray) -> np.ndarray:
    """Points of the jaw's outline seen from the front: along each ray from (0, -15) toward a target (x, y), the
    outermost front skin vertex (the chin point at x = 0 is the lowest midline vertex)."""
    skin = _ids(head.part == SKIN)
    v = head.vertices[skin]
    front = v[:, 2] > -75.0
    result = []
    for x, y, _ in targets:
        if abs(x) < 1e-6:  # the chin's lowest point (menton), still facing forward
            pool = np.flatnonzero((v[:, 2] > 0.0) & (np.abs(v[:, 0]) < 2.0) & (v[:, 1] < -90.0))
            result.append(skin[pool[np.argmin(v[pool, 1])]])
            continue
        direction = np.array([x, y + 15.0])
        direction /= np.linalg.norm(direction)
        offset = v[:, :2] - [0.0, -15.0]
        along = offset @ direction
        across = np.abs(offset @ [-direction[1], direction[0]])
        pool = np.flatnonzero(front & (across < 2.5) & (v[:, 2] > -60.0))
        result.append(skin[pool[np.argmax(along[pool])]])
    return np.array(result, dtype=np.int64)


def build_topology(head: HeadMesh) -> FaceTopology:
    mouth_inner = head.mouth_ring_ids[0]
    lip_pairs = LipPairs(
        corner_L=int(mouth_inner[0]),
        corner_R=int(mouth_inner[NUM_MOUTH_RING // 2]),
        upper_center=int(mouth_inner[NUM_MOUTH_RING // 4]),
        lower_center=int(mouth_inner[3 * NUM_MOUTH_RING // 4]),
    )
    eyeballs = tuple(_ids((head.part == EYEBALL) & (head.eye == side)) for side in (0, 1))
    eyelids = tuple(_ids(np.isin(head.part, (SKIN, LID_MARGIN, EYE_SOCKET)) & (head.eye == side)) for side in (0, 1))
    return FaceTopology(
        triangles=head.triangles.astype(np.int32),
        regions=_regions(head),
        landmarks=_landmarks(head),
        lip_pairs=lip_pairs,
        eyeball_vertex_ids=(eyeballs[0], eyeballs[1]),
        eyelid_vertex_ids=(eyelids[0], eyelids[1]),
    )
