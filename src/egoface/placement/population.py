"""The simulated population a placement is judged on: identities, donnings, glasses and the key expressions.

A `Population` is independent of any headset rig, so that candidate rigs are compared on exactly the same faces
(common random numbers) and the evaluation of a rig is deterministic given the seed. It holds, per identity, the
neutral face (for visibility), its vertex normals, the tracked keypoints under every key expression (for range of
motion), optional glasses frames, and per identity `num_donnings` donning offsets (head pose in the headset frame).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from egoface.face.appearance import Appearance, glasses_geometry
from egoface.face.model import FaceModel, FaceTopology, pose_vertices
from egoface.headset.donning import DonningModel
from egoface.headset.rig import CAMERA_ROLES, CAMERA_SIDES
from egoface.placement.keys import KEY_EXPRESSIONS, CameraKeys, camera_keys, key_expression_matrix
from egoface.render.shading import vertex_normals

__all__ = ["GlassesFrame", "Population", "sample_population"]

#: Lens sizes (width, height) mm of sampled glasses, uniform in these ranges.
_GLASSES_WIDTH_MM = (44.0, 56.0)
_GLASSES_HEIGHT_MM = (30.0, 42.0)
_CHUNK = 25  # identities posed at once


@dataclass(frozen=True)
class GlassesFrame:
    """The opaque frame of one subject's glasses (head frame): vertices (G, 3) float32 mm, triangles (T, 3) int32.
    The lenses are left out: IR passes through them (their glints are not occlusion)."""

    vertices: np.ndarray
    triangles: np.ndarray


@dataclass(frozen=True)
class Population:
    """A sampled population (all positions mm, head frame; N identities, D donnings, E key expressions).

    identities: (N, K) identity coefficients; neutral: (N, V, 3) float32 neutral faces; eyeball_centers: (N, 2, 3)
    (left, right); normals: (N, V, 3) float32
    unit outward vertex normals of the neutral faces; vertex_area: (V,) mm^2, a third of the area of the triangles
    around each vertex on the mean face (the weight of a vertex in a region's mean); tracked_ids: (P,) the vertex ids
    whose positions are kept under every expression; tracked: (N, 1 + E, P, 3) float32 their positions, index 0
    neutral, then `expressions` in order; donning_rotation: (N, D, 3, 3), donning_translation: (N, D, 3) mm, the
    head pose offset of each donning (applied after the rig's nominal head pose); glasses: per identity a
    `GlassesFrame` or None; render_triangles: (T', 3) the triangles of the face that can hide other parts (skin and
    eyeballs); keys: the `CameraKeys` of every (role, side).
    """

    model_name: str
    seed: int
    topology: FaceTopology
    identities: np.ndarray
    neutral: np.ndarray
    eyeball_centers: np.ndarray
    normals: np.ndarray
    vertex_area: np.ndarray
    expressions: tuple[str, ...]
    tracked_ids: np.ndarray
    tracked: np.ndarray
    donning_rotation: np.ndarray
    donning_translation: np.ndarray
    glasses: tuple[GlassesFrame | None, ...]
    render_triangles: np.ndarray
    keys: dict[tuple[str, str], CameraKeys]

    @property
    def num_identities(self) -> int:
        return int(self.neutral.shape[0])

    @property
    def num_donnings(self) -> int:
        return int(self.donning_rotation.shape[1])

    @property
    def mean_neutral(self) -> np.ndarray:
        """(V, 3) the population's mean neutral face, mm head frame."""
        return self.neutral.mean(axis=0)

    def tracked_columns(self, vertex_ids: np.ndarray) -> np.ndarray:
        """Columns of `tracked` holding the given vertex ids (each must be tracked)."""
        return np.searchsorted(self.tracked_ids, vertex_ids)


def _vertex_area(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V,) a third of the area of the triangles around each vertex, mm^2."""
    corners = vertices[triangles].astype(np.float64)  # (T, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return np.bincount(triangles.ravel(), np.repeat(area / 3.0, 3), minlength=len(vertices))


def _tracked_topology(topology: FaceTopology, tracked_ids: np.ndarray) -> FaceTopology:
    """The topology restricted to the tracked vertices for `pose_vertices`: no eyeballs (gaze is zero for every key
    expression), eyelid ids renumbered to columns of the tracked array so the lids still slide over the eyes."""
    empty = np.zeros(0, np.int64)
    lids = tuple(np.flatnonzero(np.isin(tracked_ids, ids)) for ids in topology.eyelid_vertex_ids)
    return dataclasses.replace(topology, eyeball_vertex_ids=(empty, empty), eyelid_vertex_ids=(lids[0], lids[1]))


def _sample_glasses(rng: np.random.Generator, eyeball_centers: np.ndarray) -> GlassesFrame:
    width = rng.uniform(*_GLASSES_WIDTH_MM)
    height = rng.uniform(*_GLASSES_HEIGHT_MM)
    glasses = glasses_geometry(eyeball_centers, Appearance(glasses=True, glasses_lens_mm=(width, height)))
    return GlassesFrame(glasses.frame_vertices, glasses.frame_triangles)


def sample_population(
    model: FaceModel,
    num_identities: int = 100,
    num_donnings: int = 5,
    seed: int = 0,
    glasses_fraction: float = 0.25,
    donning: DonningModel | None = None,
) -> Population:
    """Sample `num_identities` identities from `model` (N(0, 1) coefficients), `num_donnings` donning offsets for
    each from `donning` (default `DonningModel()`; `DonningModel(session_translation_mm=0, session_rotation_deg=0)`
    keeps the nominal donning), glasses frames on a `glasses_fraction` of them, and pose the tracked keypoints under
    every key expression. Deterministic given `seed`. Roles whose key regions the model lacks get no `keys` entry."""
    for name, value in (("num_identities", num_identities), ("num_donnings", num_donnings)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r} (an empty population has no metrics)")
    if not 0.0 <= glasses_fraction <= 1.0:
        raise ValueError(f"glasses_fraction must be in [0, 1], got {glasses_fraction!r}")
    donning = donning or DonningModel()
    topology = model.topology
    generator = torch.Generator().manual_seed(seed)
    identities = model.sample_identity(num_identities, generator)
    rng = np.random.default_rng(seed)
    expressions = torch.from_numpy(key_expression_matrix())  # (1 + E, 53)

    with torch.no_grad():
        mean_face = model.neutral_vertices.numpy()
        keys = {}
        for role in CAMERA_ROLES:
            for side in CAMERA_SIDES:
                with contextlib.suppress(ValueError):  # the model lacks every key region of this role
                    keys[(role, side)] = camera_keys(topology, mean_face, role, side)
        if not keys:
            raise ValueError(f"face model {model.name!r} names none of the key regions of any camera role")
        tracked_ids = np.unique(np.concatenate([key.keypoints for key in keys.values()]))
        tracked_topology = _tracked_topology(topology, tracked_ids)
        tracked_index = torch.from_numpy(tracked_ids)
        deltas = model.expression_deltas[:, tracked_index]  # (53, P, 3)
        neutral, normals, tracked, centres = [], [], [], []
        for start in range(0, num_identities, _CHUNK):
            chunk = identities[start : start + _CHUNK]
            faces, eye_centres = model.identity_neutral(chunk)  # (B, V, 3), (B, 2, 3)
            if eye_centres.shape != (len(chunk), 2, 3):
                # A model without eyeball vertices gets its nominal centres without the batch dimension.
                eye_centres = model.mean_eyeball_centers.expand(len(chunk), 2, 3)
            neutral.append(faces.numpy().astype(np.float32))
            normals.append(vertex_normals(faces, topology.triangles).numpy().astype(np.float32))
            centres.append(eye_centres.numpy())
            batch, rows = len(chunk), len(expressions)
            posed = pose_vertices(
                faces[:, tracked_index].repeat_interleave(rows, dim=0),
                deltas,
                eye_centres.repeat_interleave(rows, dim=0),
                model.eyeball_radius,
                expressions.repeat(batch, 1),
                torch.zeros(batch * rows, 2, 2),
                tracked_topology,
            )  # (B * (1 + E), P, 3)
            tracked.append(posed.reshape(batch, rows, len(tracked_ids), 3).numpy().astype(np.float32))

    poses = [donning.sample_session_pose(rng) for _ in range(num_identities * num_donnings)]
    rotation = np.stack([pose.rotation for pose in poses]).reshape(num_identities, num_donnings, 3, 3)
    translation = np.stack([pose.translation for pose in poses]).reshape(num_identities, num_donnings, 3)
    eye_centres_all = np.concatenate(centres)
    wears = rng.random(num_identities) < glasses_fraction
    glasses = tuple(_sample_glasses(rng, eye_centres_all[i]) if wears[i] else None for i in range(num_identities))
    occluding = np.union1d(topology.regions["face"], topology.regions["eyeballs"])
    render_triangles = topology.triangles[np.isin(topology.triangles, occluding).all(axis=1)]
    return Population(
        model_name=model.name,
        seed=seed,
        topology=topology,
        identities=identities.numpy(),
        neutral=np.concatenate(neutral),
        eyeball_centers=eye_centres_all,
        normals=np.concatenate(normals),
        vertex_area=_vertex_area(mean_face, topology.triangles),
        expressions=tuple(KEY_EXPRESSIONS),
        tracked_ids=tracked_ids,
        tracked=np.concatenate(tracked),
        donning_rotation=rotation,
        donning_translation=translation,
        glasses=glasses,
        render_triangles=np.ascontiguousarray(render_triangles, dtype=np.int32),
        keys=keys,
    )
