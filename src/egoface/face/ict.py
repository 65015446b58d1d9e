"""ICT-FaceKit (USC ICT, MIT licence) as a `FaceModel`: 53 expressions, 100 identity PCA modes, 68 landmarks.

`load_ict_facekit(path)` reads either

- a packed `.npz` (keys `neutral` (V, 3), `faces` (F, 4) with -1 padding for triangles, `expression_names` (E,),
  `expression_deltas` (E, V, 3), `identity_deltas` (K, V, 3), optional `landmarks_multipie68` (68,); all in cm), or
- the original distribution folder `FaceXModel/` (or its parent): `generic_neutral_mesh.obj`, `<name>.obj` per
  expression as ABSOLUTE positions, `identityNNN.obj` (identity modes at +1 sigma, absolute; the loader takes them
  as offsets from the neutral), `vertex_indices.json` whose key `expressions` lists the expression names and whose
  optional key `idx_to_landmark_verts` lists the 68 landmark vertices. Optional side files as for OBJ folders
  (`regions.json`, `landmarks.json`, `eyeballs.json`, see `egoface.face.objdir`) override the tables below.

Conversion: cm -> mm; ICT's axes already match the head frame (+X the subject's left, +Y up, +Z out of the face),
and the origin is moved between the eyes on the corneal plane (`egoface.face.objdir.head_frame_origin`); each eyeball
centre is a least-squares sphere fitted to the outer shell of that eyeball's vertices (about (+-31.2, 36.0, 79.8) mm
in ICT's frame, radius 15.8 mm). Only the 53
canonical expressions are kept (`cheekRaiser_L/R` and `PupilDilate_L/R` are dropped). No ICT expression moves the
eyeballs: gaze rotates the eyeball vertex ranges rigidly about their centres. Eyelid ids are left empty (ICT's lids
already sit outside the eyes).

Regions of a full mesh (26,719 vertices) come from ICT's vertex ranges and its 68 Multi-PIE landmarks
(`egoface.face.regions.landmark_regions`); a mesh of another size (a trimmed copy, a test fixture) uses the side
files, the landmarks listed in `vertex_indices.json`, and otherwise infers regions from the shapes like an OBJ folder.
Lip pairs: landmarks 54 / 48 (left / right corner) and 62 / 66 (inner-lip middles), 0-based Multi-PIE.
The eye occlusion and eye blend shells and the eyelash cards keep their vertices but lose their triangles: they are
shading helpers of ICT's own renderer and would otherwise hide the eyes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egoface.face.model import FaceModel, FaceModelData, Landmarks, LipPairs
from egoface.face.names import EXPRESSION_NAMES, NUM_EXPRESSIONS
from egoface.face.objdir import Annotations, assemble_face_model, read_annotations, read_shape
from egoface.face.objio import read_obj
from egoface.face.regions import landmark_regions

__all__ = ["ICT_LANDMARKS_MULTIPIE68", "ICT_NUM_VERTICES", "ICT_REGION_RANGES", "load_ict_facekit"]

ICT_NUM_VERTICES = 26719
_CM_TO_MM = 10.0

#: Inclusive vertex-id ranges of ICT-FaceKit's geometry parts, from ICT-FaceKit's README topology table (identical to
#: `region_names` / `region_vertex_ranges` of the packed npz).
ICT_REGION_RANGES: dict[str, tuple[int, int]] = {
    "face": (0, 9408),
    "head_neck": (9409, 11247),
    "mouth_socket": (11248, 13293),
    "eye_socket_L": (13294, 13677),
    "eye_socket_R": (13678, 14061),
    "gums_tongue": (14062, 17038),
    "teeth": (17039, 21450),
    "eyeball_L": (21451, 23020),
    "eyeball_R": (23021, 24590),
    "lacrimal_L": (24591, 24794),
    "lacrimal_R": (24795, 24998),
    "eyeblend_L": (24999, 25022),
    "eyeblend_R": (25023, 25046),
    "eye_occlusion_L": (25047, 25198),
    "eye_occlusion_R": (25199, 25350),
    "eyelashes_L": (25351, 26034),
    "eyelashes_R": (26035, 26718),
}

#: Vertex ids of the 68 Multi-PIE landmarks on ICT-FaceKit's topology (0-based landmark order), from ICT-FaceKit's
#: `vertex_indices.json` key `idx_to_landmark_verts` (identical to `landmarks_multipie68` of the packed npz).
ICT_LANDMARKS_MULTIPIE68: tuple[int, ...] = (
    1225, 1888, 1052, 367, 1719, 1722, 2199, 1447, 966, 3661, 4390, 3927, 3924, 2608, 3272, 4088, 3443, 268, 493,
    1914, 2044, 1401, 3615, 4240, 4114, 2734, 2509, 978, 4527, 4942, 4857, 1140, 2075, 1147, 4269, 3360, 1507, 1542,
    1537, 1528, 1518, 1511, 3742, 3751, 3756, 3721, 3725, 3732, 5708, 5695, 2081, 0, 4275, 6200, 6213, 6346, 6461,
    5518, 5957, 5841, 5702, 5711, 5533, 6216, 6207, 6470, 5517, 5966,
)  # fmt: skip

_LANDMARK_NAMES = tuple(f"multipie_{i}" for i in range(68))
#: Eye-adjacent parts (sockets, tear film, blends, occlusion shells, lashes) added to each side's `eye_` region.
_EYE_PARTS = ("eye_socket", "lacrimal", "eyeblend", "eye_occlusion", "eyelashes")


@dataclass
class _IctSource:
    """What either file layout gives, still in ICT's frame and cm."""

    neutral: np.ndarray  # (V, 3)
    triangles: np.ndarray  # (T, 3)
    deltas: np.ndarray  # (53, V, 3), canonical order
    identity: np.ndarray  # (K, V, 3)
    landmarks: np.ndarray | None  # (68,)
    annotations: Annotations


def load_ict_facekit(path: str | Path, num_identity_components: int | None = None) -> FaceModel:
    """Load ICT-FaceKit from its packed npz or its `FaceXModel/` folder -> FaceModel (mm, head frame).

    num_identity_components: keep only the first K identity modes (default: all, 100 for ICT-FaceKit Light).
    """
    path = Path(path)
    if path.is_dir():
        source = _read_folder(path / "FaceXModel" if (path / "FaceXModel").is_dir() else path)
    elif path.is_file():
        source = _read_npz(path)
    else:
        raise FileNotFoundError(f"ICT-FaceKit not found at {path} (expected an .npz file or a FaceXModel folder)")
    if num_identity_components is not None:
        if not 0 <= num_identity_components <= len(source.identity):
            raise ValueError(
                f"num_identity_components must be in [0, {len(source.identity)}], got {num_identity_components}"
            )
        source.identity = source.identity[:num_identity_components]
    return FaceModel(_to_face_model_data(source))


def _read_npz(path: Path) -> _IctSource:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable npz archive ({error})") from None
    with archive:

        def get(key: str, shape: tuple[int | None, ...]) -> np.ndarray:
            if key not in archive.files:
                raise ValueError(f"{path}: missing key {key!r} (has {', '.join(archive.files)})")
            array = archive[key]
            if array.ndim != len(shape) or any(
                w is not None and w != g for w, g in zip(shape, array.shape, strict=True)
            ):
                spec = "(" + ", ".join("*" if w is None else str(w) for w in shape) + ")"
                raise ValueError(f"{path}: key {key!r} must have shape {spec}, got {array.shape}")
            return array

        neutral = get("neutral", (None, 3)).astype(np.float32)
        num_vertices = len(neutral)
        faces = get("faces", (None, 4))
        names = [str(n) for n in get("expression_names", (None,))]
        all_deltas = get("expression_deltas", (len(names), num_vertices, 3))
        identity = get("identity_deltas", (None, num_vertices, 3)).astype(np.float32)
        landmarks = get("landmarks_multipie68", (68,)) if "landmarks_multipie68" in archive.files else None
    missing = [n for n in EXPRESSION_NAMES if n not in names]
    if missing:
        raise ValueError(f"{path}: key 'expression_names' lacks {', '.join(missing)}")
    deltas = all_deltas[[names.index(n) for n in EXPRESSION_NAMES]].astype(np.float32)
    return _IctSource(
        neutral=neutral,
        triangles=_triangulate_padded(faces, num_vertices, f"{path}: key 'faces'"),
        deltas=deltas,
        identity=identity,
        landmarks=None if landmarks is None else np.asarray(landmarks, np.int64),
        annotations=Annotations(regions={}, landmarks=None, eyeballs=None),
    )


def _triangulate_padded(faces: np.ndarray, num_vertices: int, what: str) -> np.ndarray:
    """(F, 4) quads with -1 in the last column for triangles -> (T, 3) int32, winding kept."""
    if faces.size and (faces[:, :3].min() < 0 or faces.max() >= num_vertices):
        raise ValueError(f"{what} has vertex ids outside [0, {num_vertices}) (only the 4th column may be -1)")
    quads = faces[faces[:, 3] >= 0]
    return np.concatenate([faces[:, :3], quads[:, [0, 2, 3]]]).astype(np.int32)


def _read_folder(folder: Path) -> _IctSource:
    config_path = folder / "vertex_indices.json"
    neutral_path = folder / "generic_neutral_mesh.obj"
    for required in (config_path, neutral_path):
        if not required.exists():
            raise FileNotFoundError(f"ICT-FaceKit folder {folder} has no {required.name}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("expressions"), list):
        raise ValueError(f"{config_path}: expected a key 'expressions' listing the expression names")
    missing = [n for n in EXPRESSION_NAMES if n not in config["expressions"]]
    if missing:
        raise ValueError(f"{config_path}: key 'expressions' lacks {', '.join(missing)}")
    neutral, triangles = read_obj(neutral_path)
    num_vertices = len(neutral)
    deltas = np.stack([read_shape(folder / f"{n}.obj", num_vertices) - neutral for n in EXPRESSION_NAMES])
    identity_files = sorted(
        (p for p in folder.glob("identity*.obj") if re.fullmatch(r"identity\d+", p.stem)), key=lambda p: int(p.stem[8:])
    )
    identity = np.stack(
        [read_shape(p, num_vertices) - neutral for p in identity_files] or [np.zeros((0, num_vertices, 3))]
    )
    landmarks = config.get("idx_to_landmark_verts")
    if landmarks is not None:
        landmarks = np.asarray(landmarks, dtype=np.int64)
        if landmarks.shape != (68,) or landmarks.min() < 0 or landmarks.max() >= num_vertices:
            raise ValueError(
                f"{config_path}: key 'idx_to_landmark_verts' must list 68 vertex ids in [0, {num_vertices})"
            )
    return _IctSource(
        neutral=neutral,
        triangles=triangles,
        deltas=deltas.astype(np.float32),
        identity=identity.reshape(-1, num_vertices, 3).astype(np.float32),
        landmarks=landmarks,
        annotations=read_annotations(folder, num_vertices),
    )


def _range(name: str) -> np.ndarray:
    first, last = ICT_REGION_RANGES[name]
    return np.arange(first, last + 1, dtype=np.int64)


def _ict_regions(neutral: np.ndarray, triangles: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Regions of the full ICT mesh: its vertex ranges plus landmark-derived face regions (mm)."""
    regions = {name: _range(name) for name in ICT_REGION_RANGES}
    regions.update(landmark_regions(neutral, triangles, landmarks, regions["face"]))
    for side in "LR":
        regions[f"eye_{side}"] = np.unique(
            np.concatenate([regions[f"eye_{side}"]] + [_range(f"{p}_{side}") for p in _EYE_PARTS])
        )
    regions["mouth_interior"] = np.union1d(regions["mouth_socket"], regions["gums_tongue"])
    regions["eyeballs"] = np.union1d(regions["eyeball_L"], regions["eyeball_R"])
    regions["eyelashes"] = np.union1d(regions["eyelashes_L"], regions["eyelashes_R"])
    return regions


_IRIS_HALF_ANGLE_DEG = 32.0  # the iris's angular radius seen from the eye centre (as in `regions.eye_parts`)

#: ICT parts that are real-time shading helpers or hair cards rather than surfaces a camera sees: the eye occlusion
#: and eye blend shells (transparent overlays in ICT's own renderer) and the eyelash cards. Rendered as opaque
#: geometry they would hide the eyes, so their triangles are dropped (their vertices stay, ids are unchanged).
_UNRENDERED_PARTS = ("eyeblend", "eye_occlusion", "eyelashes")


def _rendered_triangles(triangles: np.ndarray) -> np.ndarray:
    """Triangles of a full ICT mesh without those of `_UNRENDERED_PARTS`."""
    hidden = np.zeros(ICT_NUM_VERTICES, dtype=bool)
    for part in _UNRENDERED_PARTS:
        for side in "LR":
            hidden[_range(f"{part}_{side}")] = True
    return triangles[~hidden[triangles].all(axis=1)]


def _to_face_model_data(source: _IctSource) -> FaceModelData:
    neutral = source.neutral * np.float32(_CM_TO_MM)
    num_vertices = len(neutral)
    given = source.annotations
    landmark_ids = source.landmarks
    triangles = source.triangles
    if num_vertices == ICT_NUM_VERTICES:
        triangles = _rendered_triangles(triangles)
        landmark_ids = np.asarray(ICT_LANDMARKS_MULTIPIE68, np.int64) if landmark_ids is None else landmark_ids
        regions = _ict_regions(neutral, source.triangles, landmark_ids) | given.regions
        eyeballs: tuple[np.ndarray, np.ndarray] | None = given.eyeballs or (_range("eyeball_L"), _range("eyeball_R"))
    else:
        regions, eyeballs = dict(given.regions), given.eyeballs
    lip_pairs = None
    landmarks = given.landmarks
    if landmarks is None and landmark_ids is not None:
        landmarks = Landmarks(names=_LANDMARK_NAMES, vertex_ids=landmark_ids)
        corner_l, corner_r, upper, lower = (int(landmark_ids[i]) for i in (54, 48, 62, 66))
        lip_pairs = LipPairs(corner_L=corner_l, corner_R=corner_r, upper_center=upper, lower_center=lower)
    data = assemble_face_model(
        "ict_facekit",
        neutral,
        triangles,
        source.deltas * np.float32(_CM_TO_MM),
        np.ones(NUM_EXPRESSIONS, dtype=bool),
        source.identity * np.float32(_CM_TO_MM),
        Annotations(regions=regions, landmarks=landmarks, eyeballs=eyeballs),
        lip_pairs=lip_pairs,
    )
    if num_vertices != ICT_NUM_VERTICES:
        return data
    return dataclasses.replace(data, topology=dataclasses.replace(data.topology, triangles=_without_corneas(data)))


def _without_corneas(data: FaceModelData) -> np.ndarray:
    """ICT's outer eyeball shell (the `sclera` region) includes the transparent cornea over the iris shell: drop the
    triangles of its cap within the iris's angle of straight ahead so the iris and pupil show."""
    triangles = data.topology.triangles
    cornea = np.zeros(len(data.neutral), dtype=bool)
    sclera = data.topology.regions["sclera"]
    for centre, eye_ids in zip(data.eyeball_centers, data.topology.eyeball_vertex_ids, strict=True):
        ids = np.intersect1d(sclera, eye_ids)
        offsets = data.neutral[ids] - centre
        forward = offsets[:, 2] / np.linalg.norm(offsets, axis=1)
        cornea[ids[forward > np.cos(np.radians(_IRIS_HALF_ANGLE_DEG))]] = True
    return triangles[~cornea[triangles].all(axis=1)]
