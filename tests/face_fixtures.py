"""A tiny synthetic face for loader tests: a 17 x 18 grid face (mm, head-frame axes), two UV-sphere eyeballs, and
one smooth displacement bump per canonical expression placed where that expression acts on a real face.

`write_obj_folder` writes it as an OBJ blendshape folder (ARKit spelling, merged browInnerUp/cheekPuff), and
`write_facexmodel` as ICT-FaceKit's `FaceXModel/` layout (cm, absolute positions, 2 identity modes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoface.face.names import EXPRESSION_NAMES
from egoface.face.objio import write_obj

GRID_X = np.arange(-64.0, 65.0, 8.0)  # 17 columns, includes x = 0
GRID_Y = np.arange(-84.0, 53.0, 8.0)  # 18 rows; the mouth line is y = -40, between rows -36 and -44
MOUTH_Y = -40.0
EYE_CENTRES = np.array([[32.0, 4.0, 66.0], [-32.0, 4.0, 66.0]])  # left (+X), right
EYE_RADIUS = 12.0

# name -> (bump centre (x, y), direction); "_L" shapes are mirrored to "_R".
_BUMPS = {
    "browDown_L": ((30, 28), (0, -1, 0)),
    "browInnerUp_L": ((12, 28), (0, 1, 0)),
    "browOuterUp_L": ((44, 28), (0, 1, 0)),
    "cheekPuff_L": ((40, -32), (1, 0, 1)),
    "cheekSquint_L": ((40, -12), (0, 1, 0)),
    "eyeBlink_L": ((32, 12), (0, -1, 0)),
    "eyeLookDown_L": ((32, 4), (0, -0.3, 0)),
    "eyeLookIn_L": ((32, 4), (-0.3, 0, 0)),
    "eyeLookOut_L": ((32, 4), (0.3, 0, 0)),
    "eyeLookUp_L": ((32, 4), (0, 0.3, 0)),
    "eyeSquint_L": ((32, -4), (0, 1, 0)),
    "eyeWide_L": ((32, 12), (0, 1, 0)),
    "mouthDimple_L": ((28, -40), (1, 0, -1)),
    "mouthFrown_L": ((22, -48), (0, -1, 0)),
    "mouthLowerDown_L": ((8, -44), (0, -1, 0)),
    "mouthPress_L": ((10, -40), (0, 1, 0)),
    "mouthSmile_L": ((20, -40), (1, 1, 0)),
    "mouthStretch_L": ((20, -40), (1, 0, 0)),
    "mouthUpperUp_L": ((8, -36), (0, 1, 0)),
    "noseSneer_L": ((8, -12), (0, 1, 0)),
    "mouthClose": ((0, -44), (0, 1, 0)),
    "mouthFunnel": ((0, -40), (0, 0, 1)),
    "mouthPucker": ((0, -40), (0, 0, 1.5)),
    "mouthRollLower": ((0, -44), (0, 0, -1)),
    "mouthRollUpper": ((0, -36), (0, 0, -1)),
    "mouthShrugLower": ((0, -56), (0, 1, 0)),
    "mouthShrugUpper": ((0, -32), (0, 1, 0)),
    "mouthLeft": ((0, -40), (1, 0, 0)),
    "mouthRight": ((0, -40), (-1, 0, 0)),
}
# Jaw shapes move everything below the mouth line rigidly: direction (mm at weight 1).
_JAW = {"jawOpen": (0, -30, -5), "jawForward": (0, 0, 8), "jawLeft": (6, 0, 0), "jawRight": (-6, 0, 0)}


def _uv_sphere(centre: np.ndarray, radius: float, rings: int = 5, segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (2 + rings * segments, 3) and outward triangles of a UV sphere with poles along +-Z."""
    polar = np.linspace(0, np.pi, rings + 2)[1:-1]
    azimuth = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    p, a = np.meshgrid(polar, azimuth, indexing="ij")
    ring = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], -1).reshape(-1, 3)
    points = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]]) * radius + centre
    tris = []
    last = 1 + rings * segments
    for s in range(segments):
        t = (s + 1) % segments
        tris.append([0, 1 + s, 1 + t])
        tris.append([last, 1 + (rings - 1) * segments + t, 1 + (rings - 1) * segments + s])
        for r in range(rings - 1):
            a0, a1 = 1 + r * segments + s, 1 + r * segments + t
            b0, b1 = a0 + segments, a1 + segments
            tris += [[a0, b0, b1], [a0, b1, a1]]
    return points, np.array(tris)


@dataclass
class SyntheticFace:
    """neutral (V, 3) mm; triangles (T, 3); shapes: name -> (V, 3) mm deltas; eyeballs: vertex ids (left, right)."""

    neutral: np.ndarray
    triangles: np.ndarray
    shapes: dict[str, np.ndarray]
    eyeballs: list[list[int]]

    def write_eyeballs(self, folder: Path) -> None:
        (folder / "eyeballs.json").write_text(json.dumps({"L": self.eyeballs[0], "R": self.eyeballs[1]}))


def synthetic_face() -> SyntheticFace:
    """The fixture face (see the module docstring)."""
    x, y = np.meshgrid(GRID_X, GRID_Y)  # (rows, cols)
    z = 90.0 - 0.004 * x**2 - 0.002 * (y + 20) ** 2 + 18.0 * np.exp(-(x**2 + (y + 10) ** 2) / 150.0)
    face = np.stack([x, y, z], -1).reshape(-1, 3)
    cols = len(GRID_X)
    tris = []
    for r in range(len(GRID_Y) - 1):
        for c in range(cols - 1):
            a, b, d = r * cols + c, r * cols + c + 1, (r + 1) * cols + c
            tris += [[a, b, d + 1], [a, d + 1, d]]
    vertices, triangles = [face], [np.array(tris)]
    eyeballs = []
    for centre in EYE_CENTRES:
        start = sum(len(v) for v in vertices)
        points, sphere_tris = _uv_sphere(centre, EYE_RADIUS)
        vertices.append(points)
        triangles.append(sphere_tris + start)
        eyeballs.append(list(range(start, start + len(points))))
    neutral = np.concatenate(vertices)
    on_face = np.arange(len(neutral)) < len(face)
    shapes = {}
    for name in EXPRESSION_NAMES:
        key = name if name in _BUMPS or name in _JAW else name[:-2] + "_L"
        sign = -1.0 if name.endswith("_R") else 1.0
        if key in _JAW:
            below = 1.0 / (1.0 + np.exp((neutral[:, 1] - MOUTH_Y) / 2.0))
            delta = below[:, None] * np.array(_JAW[key], dtype=float)
        else:
            (cx, cy), direction = _BUMPS[key]
            weight = np.exp(-((neutral[:, 0] - sign * cx) ** 2 + (neutral[:, 1] - cy) ** 2) / (2 * 8.0**2))
            delta = weight[:, None] * np.array(direction, dtype=float) * np.array([sign, 1.0, 1.0]) * 6.0
        shapes[name] = (delta * on_face[:, None]).astype(np.float32)
    return SyntheticFace(neutral.astype(np.float32), np.concatenate(triangles), shapes, eyeballs)


def arkit_file_name(name: str) -> str:
    """`eyeBlink_L` -> `eyeBlinkLeft` (ARKit spelling)."""
    return name.replace("_L", "Left").replace("_R", "Right")


def write_obj_folder(
    folder: Path, skip: tuple[str, ...] = (), extra: tuple[str, ...] = (), eyeballs: bool = True, scale: float = 1.0
) -> SyntheticFace:
    """Write the fixture as `neutral.obj` + ARKit-named shapes (merged browInnerUp and cheekPuff as the sum of their
    halves) at `scale` file units per mm; `skip` canonical names, add `extra` unknown OBJ names. Returns the face."""
    face = synthetic_face()
    folder.mkdir(parents=True, exist_ok=True)
    neutral, triangles, shapes = face.neutral, face.triangles, face.shapes
    write_obj(folder / "neutral.obj", neutral * scale, triangles)
    written = set()
    for name, delta in shapes.items():
        if name in skip:
            continue
        merged = name[:-2] if name[:-2] in ("browInnerUp", "cheekPuff") else None
        if merged:
            if merged not in written:
                total = shapes[merged + "_L"] + shapes[merged + "_R"]
                write_obj(folder / f"{merged}.obj", (neutral + total) * scale, triangles)
                written.add(merged)
            continue
        write_obj(folder / f"{arkit_file_name(name)}.obj", (neutral + delta) * scale, triangles)
    for name in extra:
        write_obj(folder / f"{name}.obj", neutral * scale, triangles)
    if eyeballs:
        face.write_eyeballs(folder)
    return face


def write_facexmodel(folder: Path) -> SyntheticFace:
    """Write the fixture in ICT-FaceKit's `FaceXModel/` layout (cm, absolute positions) with 2 identity modes."""
    face = synthetic_face()
    folder.mkdir(parents=True, exist_ok=True)
    neutral, triangles, shapes = face.neutral, face.triangles, face.shapes
    cm = neutral / 10.0
    write_obj(folder / "generic_neutral_mesh.obj", cm, triangles)
    for name, delta in shapes.items():
        write_obj(folder / f"{name}.obj", cm + delta / 10.0, triangles)
    rng = np.random.default_rng(0)
    for k in range(2):
        offset = np.zeros_like(cm)
        offset[: len(GRID_X) * len(GRID_Y)] = 0.2 * rng.standard_normal(3)  # a rigid shift of the face surface
        write_obj(folder / f"identity{k:03d}.obj", cm + offset, triangles)
    (folder / "vertex_indices.json").write_text(json.dumps({"expressions": list(EXPRESSION_NAMES)}))
    face.write_eyeballs(folder)
    return face
