"""A tiny, fully known face model for testing the face interface: a symmetric grid "face" with two sphere eyeballs.

Every expression moves one vertex group by a known offset, so posing results can be checked by hand.
"""

from __future__ import annotations

import numpy as np

from egoface.face import NUM_EXPRESSIONS, REQUIRED_REGIONS, FaceModel, FaceModelData, FaceTopology, Landmarks, LipPairs
from egoface.face.names import expression_index

EYE_RADIUS = 12.0
EYE_CENTRES = np.array([[31.0, 0.0, -12.0], [-31.0, 0.0, -12.0]])


def _sphere(centre: np.ndarray, radius: float, rings: int = 6, segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    points = [centre + [0, 0, radius]]
    for i in range(1, rings):
        polar = np.pi * i / rings
        for j in range(segments):
            azimuth = 2 * np.pi * j / segments
            points.append(
                centre
                + radius * np.array([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)])
            )
    points.append(centre + [0, 0, -radius])
    return np.array(points), np.zeros((0, 3), np.int32)


def toy_face_data() -> FaceModelData:
    xs = np.linspace(-60, 60, 7)
    ys = np.linspace(-90, 30, 7)
    grid = np.array([[x, y, 10.0] for y in ys for x in xs])
    triangles = []
    for r in range(6):
        for c in range(6):
            a = r * 7 + c
            triangles += [(a, a + 1, a + 8), (a, a + 8, a + 7)]
    left_eye, _ = _sphere(EYE_CENTRES[0], EYE_RADIUS)
    right_eye, _ = _sphere(EYE_CENTRES[1], EYE_RADIUS)
    neutral = np.vstack([grid, left_eye, right_eye]).astype(np.float32)
    n_grid, n_eye = len(grid), len(left_eye)
    left_ids = np.arange(n_grid, n_grid + n_eye)
    right_ids = np.arange(n_grid + n_eye, n_grid + 2 * n_eye)
    face = np.arange(n_grid)
    regions = {name: face for name in REQUIRED_REGIONS}
    regions["eyeballs"] = np.concatenate([left_ids, right_ids])
    regions.update(
        pupil=np.concatenate([left_ids[:1], right_ids[:1]]),
        iris=np.concatenate([left_ids[1:9], right_ids[1:9]]),
        sclera=np.concatenate([left_ids[9:], right_ids[9:]]),
    )
    regions.update(lips=np.array([10, 17]), nose=np.array([31]), teeth=np.array([24]), mouth_interior=np.array([24]))
    deltas = np.zeros((NUM_EXPRESSIONS, len(neutral), 3), np.float32)
    deltas[expression_index("jawOpen"), :7, 1] = -10.0  # bottom row moves down 10 mm
    deltas[expression_index("browDown_L"), 42:, 1] = -3.0
    identity = np.zeros((2, len(neutral), 3), np.float32)
    identity[0, :, 0] = neutral[:, 0] * 0.1  # widen by 10% at +1 sigma
    identity[1, left_ids, 2] = 2.0  # left eye forward by 2 mm
    topology = FaceTopology(
        triangles=np.asarray(triangles, np.int32),
        regions=regions,
        landmarks=Landmarks(names=("chin", "brow"), vertex_ids=np.array([3, 45])),
        lip_pairs=LipPairs(corner_L=8, corner_R=12, upper_center=17, lower_center=10),
        eyeball_vertex_ids=(left_ids, right_ids),
    )
    return FaceModelData(
        name="toy",
        neutral=neutral,
        identity_basis=identity,
        expression_deltas=deltas,
        eyeball_centers=EYE_CENTRES.astype(np.float32),
        eyeball_radius=np.full(2, EYE_RADIUS, np.float32),
        topology=topology,
    )


def toy_face() -> FaceModel:
    return FaceModel(toy_face_data())
