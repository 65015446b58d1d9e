"""Face models from a folder of OBJ blendshapes: `neutral.obj` plus one `<name>.obj` per expression.

Layout (all OBJs share the neutral's vertex count and order; the faces of `neutral.obj` are used):

- `neutral.obj` — the neutral face;
- `<name>.obj` — each shape as ABSOLUTE vertex positions. Names match case-insensitively in ARKit spelling
  (`eyeBlinkLeft`, `jawOpen`, merged `browInnerUp` and `cheekPuff`) or `_L/_R` spelling (`eyeBlink_L`). A merged
  ARKit shape is split into `_L` and `_R` halves by vertex side: x > 0 is the subject's left, with a smooth blend
  (smoothstep over |x| < 10 mm) so that the halves sum exactly to the merged shape. Missing shapes are treated as
  zero (`model.present` False, listed by `model.missing_expressions`) and reported in a warning; files whose names
  are not expressions are reported in a warning and never used;
- optional `regions.json` (region name -> list of vertex ids), `landmarks.json` (landmark name -> vertex id) and
  `eyeballs.json` (`{"L": [ids], "R": [ids]}`, the vertices that rotate with each eye's gaze).

Coordinates must be in the head frame's axes (+X the subject's left, +Y up, +Z out of the face, midline at x = 0);
units are mm unless `units="cm"` or `"m"` is given. When eyeballs are given, a sphere is fitted to each and the
mesh is moved to the head frame's origin (`head_frame_origin`: between the eyes, on the corneal plane); without
eyeballs, gaze moves no
vertices, the coordinates are kept as they are, and nominal eyeball centres are placed 12 mm behind the centroid of
each eye region (or at (+-31.5, 0, 0) mm when there is none).

Regions not given in `regions.json` are inferred from the shapes (`egoface.face.regions.shape_regions`); `face` is
every vertex outside eyeballs, teeth and mouth interior; `teeth` and `mouth_interior` are empty unless given. Lip
pairs come from the landmarks `mouth_corner_L`, `mouth_corner_R`, `lip_upper_center`, `lip_lower_center` when
`landmarks.json` names them, else from the shapes (`lip_pairs_from_shapes`). Without `landmarks.json` the landmarks
are those four lip points plus `nose_tip` (the most forward nose vertex) when a nose region is known.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoface.face.model import FaceModel, FaceModelData, FaceTopology, Landmarks, LipPairs
from egoface.face.names import EXPRESSION_NAMES, NUM_EXPRESSIONS
from egoface.face.objio import read_obj
from egoface.face.regions import eye_parts, eyeball_sphere, lip_pairs_from_shapes, shape_regions

__all__ = ["UNIT_SCALE", "Annotations", "assemble_face_model", "load_obj_folder", "read_annotations"]

#: Millimetres per file unit.
UNIT_SCALE = {"mm": 1.0, "cm": 10.0, "m": 1000.0}

#: Merged ARKit shapes and the two canonical halves they are split into.
_MERGED = {"browinnerup": ("browInnerUp_L", "browInnerUp_R"), "cheekpuff": ("cheekPuff_L", "cheekPuff_R")}
#: Half-width (mm) of the blend across the midline when splitting a merged shape.
_SPLIT_BLEND_MM = 10.0
#: Nominal eyeball radius (mm) when the mesh has no eyeballs.
_NOMINAL_EYE_RADIUS_MM = 12.0
#: The regions `shape_regions` infers.
_SHAPE_REGIONS = ("eye_L", "eye_R", "brows", "lips", "nose", "cheeks", "chin", "upper_face", "lower_face")
_LIP_LANDMARKS = ("mouth_corner_L", "mouth_corner_R", "lip_upper_center", "lip_lower_center")


def _spellings() -> dict[str, str]:
    """Lower-case file stem -> canonical name, for `_L/_R` and ARKit `Left/Right` spellings."""
    table = {}
    for name in EXPRESSION_NAMES:
        table[name.lower()] = name
        for suffix, word in (("_L", "Left"), ("_R", "Right")):
            if name.endswith(suffix):
                table[(name[: -len(suffix)] + word).lower()] = name
    return table


_SPELLINGS = _spellings()


@dataclass(frozen=True)
class Annotations:
    """Optional side files of a mesh folder: regions (name -> ids), landmarks, eyeball ids per eye (left, right)."""

    regions: dict[str, np.ndarray]
    landmarks: Landmarks | None
    eyeballs: tuple[np.ndarray, np.ndarray] | None


def read_annotations(folder: Path, num_vertices: int) -> Annotations:
    """Read `regions.json`, `landmarks.json` and `eyeballs.json` from `folder` if present; check every vertex id."""

    def load(filename: str) -> object:
        path = folder / filename
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None

    def ids(filename: str, key: str, value: object, unique: bool = True) -> np.ndarray:
        array = np.asarray(value)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            raise ValueError(f"{folder / filename}: {key!r} must be a list of integer vertex ids")
        if array.size and (array.min() < 0 or array.max() >= num_vertices):
            raise ValueError(f"{folder / filename}: {key!r} has vertex ids outside [0, {num_vertices})")
        array = array.astype(np.int64)
        return np.unique(array) if unique else array

    regions_raw = load("regions.json") or {}
    if not isinstance(regions_raw, dict):
        raise ValueError(f"{folder / 'regions.json'}: expected an object mapping region names to vertex-id lists")
    regions = {name: ids("regions.json", name, value) for name, value in regions_raw.items()}
    landmarks = None
    landmarks_raw = load("landmarks.json")
    if landmarks_raw is not None:
        if not isinstance(landmarks_raw, dict):
            raise ValueError(f"{folder / 'landmarks.json'}: expected an object mapping landmark names to vertex ids")
        vertex_ids = ids("landmarks.json", "landmarks", list(landmarks_raw.values()), unique=False)
        landmarks = Landmarks(names=tuple(landmarks_raw), vertex_ids=vertex_ids)
    eyeballs = None
    eyeballs_raw = load("eyeballs.json")
    if eyeballs_raw is not None:
        if not isinstance(eyeballs_raw, dict) or set(eyeballs_raw) != {"L", "R"}:
            raise ValueError(f"{folder / 'eyeballs.json'}: expected {{'L': [vertex ids], 'R': [vertex ids]}}")
        eyeballs = (ids("eyeballs.json", "L", eyeballs_raw["L"]), ids("eyeballs.json", "R", eyeballs_raw["R"]))
    return Annotations(regions=regions, landmarks=landmarks, eyeballs=eyeballs)


def load_obj_folder(path: str | Path, units: str = "mm", name: str | None = None) -> FaceModel:
    """Load a folder of OBJ blendshapes (layout in the module docstring) -> FaceModel without identity space.

    units: the files' unit, "mm" (default), "cm" or "m"; everything is converted to mm.
    """
    folder = Path(path)
    if units not in UNIT_SCALE:
        raise ValueError(f"units must be one of {sorted(UNIT_SCALE)}, got {units!r}")
    neutral_path = folder / "neutral.obj"
    if not folder.is_dir():
        raise FileNotFoundError(f"OBJ blendshape folder {folder} does not exist")
    if not neutral_path.exists():
        raise FileNotFoundError(f"OBJ blendshape folder {folder} has no neutral.obj")
    scale = UNIT_SCALE[units]
    neutral, triangles = read_obj(neutral_path)
    neutral = neutral * np.float32(scale)
    files: dict[str, Path] = {}
    unknown = []
    for file in sorted(folder.glob("*.obj")):
        if file == neutral_path:
            continue
        stem = file.stem.lower()
        targets = _MERGED.get(stem) or ((_SPELLINGS[stem],) if stem in _SPELLINGS else ())
        if not targets:
            unknown.append(file.name)
        for target in targets:
            if target in files:
                raise ValueError(f"{folder}: both {files[target].name} and {file.name} give the shape {target!r}")
            files[target] = file
    if unknown:
        warnings.warn(
            f"{folder}: ignoring OBJ files that are not expression shapes: {', '.join(unknown)}", stacklevel=2
        )
    deltas = np.zeros((NUM_EXPRESSIONS, len(neutral), 3), dtype=np.float32)
    present = np.zeros(NUM_EXPRESSIONS, dtype=bool)
    read: dict[Path, np.ndarray] = {}
    for target, file in files.items():
        if file not in read:
            read[file] = read_shape(file, len(neutral)) * np.float32(scale) - neutral
        k = EXPRESSION_NAMES.index(target)
        deltas[k] = read[file] * _side_weight(neutral[:, 0], target) if file.stem.lower() in _MERGED else read[file]
        present[k] = True
    missing = [n for n, has in zip(EXPRESSION_NAMES, present, strict=True) if not has]
    if missing:
        warnings.warn(f"{folder}: no shape for {', '.join(missing)}; treated as zero", stacklevel=2)
    annotations = read_annotations(folder, len(neutral))
    data = assemble_face_model(
        name or folder.name,
        neutral,
        triangles,
        deltas,
        present,
        np.zeros((0, len(neutral), 3), dtype=np.float32),
        annotations,
    )
    return FaceModel(data)


def read_shape(path: Path, num_vertices: int) -> np.ndarray:
    """Vertices (V, 3) of one shape OBJ; its vertex count must match the neutral's."""
    vertices, _ = read_obj(path)
    if len(vertices) != num_vertices:
        raise ValueError(f"{path} has {len(vertices)} vertices, expected {num_vertices} (the neutral's count)")
    return vertices


def _side_weight(x: np.ndarray, target: str) -> np.ndarray:
    """(V, 1) weight of a merged shape's `_L` or `_R` half: smoothstep across x = 0; the two halves sum to 1."""
    t = np.clip(0.5 + 0.5 * x / _SPLIT_BLEND_MM, 0.0, 1.0)
    left = t * t * (3.0 - 2.0 * t)
    return (left if target.endswith("_L") else 1.0 - left)[:, None].astype(np.float32)


def assemble_face_model(
    name: str,
    neutral: np.ndarray,
    triangles: np.ndarray,
    deltas: np.ndarray,
    present: np.ndarray,
    identity_basis: np.ndarray,
    annotations: Annotations,
    lip_pairs: LipPairs | None = None,
) -> FaceModelData:
    """Complete a mesh with what `FaceTopology` needs (see the module docstring for the rules).

    neutral: (V, 3) mm, head-frame axes; triangles: (T, 3); deltas: (53, V, 3) mm; present: (53,) bool;
    identity_basis: (K, V, 3) mm; annotations: regions/landmarks/eyeballs known from files or tables (they win over
    inference); lip_pairs: known lip pairs, else taken from the landmarks or inferred.
    """
    neutral = np.asarray(neutral, dtype=np.float32)
    regions = dict(annotations.regions)
    empty = np.zeros(0, np.int64)
    eyeball_ids = annotations.eyeballs or (empty, empty)
    has_eyeballs = all(ids.size for ids in eyeball_ids)
    if has_eyeballs:
        spheres = [eyeball_sphere(neutral, ids, triangles) for ids in eyeball_ids]
        origin = head_frame_origin(neutral, eyeball_ids, [centre for centre, _ in spheres])
        neutral = (neutral - origin).astype(np.float32)
        centres = np.stack([centre - origin for centre, _ in spheres])
        radius = np.array([r for _, r in spheres])
        parts = [eye_parts(neutral, ids, triangles, c) for ids, c in zip(eyeball_ids, centres, strict=True)]
        eye_regions = {part: np.union1d(parts[0][part], parts[1][part]) for part in parts[0]}
        eye_regions |= {"eyeball_L": eyeball_ids[0], "eyeball_R": eyeball_ids[1]}
        eye_regions["eyeballs"] = np.union1d(*eyeball_ids)
    else:
        eyeball_ids = (empty, empty)
        eye_regions = {"eyeballs": empty}
    for region, ids in (eye_regions | {"teeth": empty, "mouth_interior": empty}).items():
        regions.setdefault(region, ids)
    if "face" not in regions:
        inside = np.union1d(np.union1d(regions["eyeballs"], regions["teeth"]), regions["mouth_interior"])
        regions["face"] = np.setdiff1d(np.arange(len(neutral)), inside)
    if not set(_SHAPE_REGIONS) <= regions.keys():
        for region, ids in shape_regions(neutral, deltas, present, regions["face"]).items():
            regions.setdefault(region, ids)
    if not has_eyeballs:
        centres = np.stack(
            [_nominal_eye_centre(neutral, regions[f"eye_{s}"], sign) for s, sign in (("L", 1), ("R", -1))]
        )
        radius = np.full(2, _NOMINAL_EYE_RADIUS_MM)
    if lip_pairs is None:
        lip_pairs = _lip_pairs(annotations.landmarks, neutral, deltas, present, regions["lips"])
    landmarks = annotations.landmarks or _default_landmarks(neutral, lip_pairs, regions["nose"])
    topology = FaceTopology(
        triangles=np.asarray(triangles, dtype=np.int32),
        regions={key: np.asarray(value, dtype=np.int64) for key, value in regions.items()},
        landmarks=landmarks,
        lip_pairs=lip_pairs,
        eyeball_vertex_ids=eyeball_ids,
    )
    return FaceModelData(
        name=name,
        neutral=neutral,
        identity_basis=np.asarray(identity_basis, dtype=np.float32),
        expression_deltas=np.asarray(deltas, dtype=np.float32),
        eyeball_centers=np.asarray(centres, dtype=np.float32),
        eyeball_radius=np.asarray(radius, dtype=np.float32),
        topology=topology,
        present=np.asarray(present, dtype=bool),
    )


def head_frame_origin(
    neutral: np.ndarray, eyeball_ids: Sequence[np.ndarray], centres: Sequence[np.ndarray]
) -> np.ndarray:
    """The head frame's origin in a mesh's own coordinates: x and y half-way between the two eyeball centres, z on
    the corneal plane (the mean of the two eyes' most forward vertices). Headset rigs measure eye relief from it."""
    apex_z = np.mean([neutral[ids, 2].max() for ids in eyeball_ids])
    midpoint = 0.5 * (np.asarray(centres[0]) + np.asarray(centres[1]))
    return np.array([midpoint[0], midpoint[1], apex_z])


def _nominal_eye_centre(neutral: np.ndarray, eye_ids: np.ndarray, sign: int) -> np.ndarray:
    if eye_ids.size == 0:
        return np.array([sign * 31.5, 0.0, 0.0])
    return neutral[eye_ids].mean(axis=0) - np.array([0.0, 0.0, _NOMINAL_EYE_RADIUS_MM])


def _lip_pairs(
    landmarks: Landmarks | None, neutral: np.ndarray, deltas: np.ndarray, present: np.ndarray, lips: np.ndarray
) -> LipPairs:
    if landmarks is not None and set(_LIP_LANDMARKS) <= set(landmarks.names):
        by_name = dict(zip(landmarks.names, landmarks.vertex_ids.tolist(), strict=True))
        corner_l, corner_r, upper, lower = (int(by_name[key]) for key in _LIP_LANDMARKS)
        return LipPairs(corner_L=corner_l, corner_R=corner_r, upper_center=upper, lower_center=lower)
    if lips.size == 0:
        raise ValueError(
            "cannot place the lip pairs: no lip vertices (give mouth shapes such as mouthPucker, a 'lips' entry in "
            f"regions.json, or the landmarks {', '.join(_LIP_LANDMARKS)} in landmarks.json)"
        )
    return lip_pairs_from_shapes(neutral, deltas, present, lips)


def _default_landmarks(neutral: np.ndarray, lip_pairs: LipPairs, nose: np.ndarray) -> Landmarks:
    names = list(_LIP_LANDMARKS)
    ids = [lip_pairs.corner_L, lip_pairs.corner_R, lip_pairs.upper_center, lip_pairs.lower_center]
    if nose.size:
        names.append("nose_tip")
        ids.append(int(nose[np.argmax(neutral[nose, 2])]))
    return Landmarks(names=tuple(names), vertex_ids=np.asarray(ids, dtype=np.int64))
