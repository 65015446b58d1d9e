"""The face model interface: (identity, expression, gaze) -> posed mesh, batched and differentiable.

Every face model (procedural, ICT-FaceKit, a folder of OBJ blendshapes) is a `FaceModel` built from a
`FaceModelData`: a linear identity space, one displacement field per expression (the 53 canonical names), explicit
eyeballs rotated by gaze, and a `FaceTopology` of triangles, named regions, landmarks and lip pairs.

Posing (`pose_vertices`) is one pure function shared by all models:

1. ``v = neutral(identity) + sum_k expression_k * delta_k`` (one einsum);
2. each eyeball's vertices rotate rigidly about its centre by that eye's gaze;
3. eyelid vertices that would pass inside an eyeball's clearance sphere (through its corneal apex, plus 0.1 mm)
   are pushed out onto it (lids slide over the eye), so that linear blink shapes never cut through the cornea
   half-way.

The eye-following shapes and gaze are tied by `egoface.face.gaze`: given `gaze`, the `eyeLook*` weights are computed
from it; without `gaze`, the gaze is derived from the `eyeLook*` weights, so the eyeballs always agree with the lids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from egoface.face._check import as_float_tensor
from egoface.face.gaze import eye_look_from_gaze, gaze_from_eye_look, gaze_rotation
from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, NUM_EXPRESSIONS, expression_index

__all__ = [
    "REQUIRED_REGIONS",
    "FaceMesh",
    "FaceModel",
    "FaceModelData",
    "FaceRig",
    "FaceTopology",
    "Landmarks",
    "LipPairs",
    "pose_vertices",
]

#: Vertex regions every face model names. More are allowed: models with eyeballs also name `sclera`, `iris` and
#: `pupil`; others used when present: `tongue`, `eyelid_L/R`, `beard`, `moustache`.
REQUIRED_REGIONS: tuple[str, ...] = (
    "face", "upper_face", "lower_face", "eye_L", "eye_R", "brows", "nose", "cheeks", "lips",
    "mouth_interior", "teeth", "eyeballs", "chin",
)  # fmt: skip

_EYE_LOOK_COLUMNS = [expression_index(name) for name in EYE_LOOK_NAMES]


@dataclass(frozen=True)
class Landmarks:
    """Named landmark vertices usable as 2D keypoints once projected: `vertex_ids (L,)`, `names` (L,)."""

    names: tuple[str, ...]
    vertex_ids: np.ndarray

    def __post_init__(self) -> None:
        if len(self.names) != len(self.vertex_ids):
            raise ValueError(f"{len(self.names)} landmark names for {len(self.vertex_ids)} landmark vertices")


@dataclass(frozen=True)
class LipPairs:
    """Vertex ids of the mouth-shape metric: width = |corner_L - corner_R|, opening = |upper - lower| (inner lips)."""

    corner_L: int
    corner_R: int
    upper_center: int
    lower_center: int


@dataclass(frozen=True)
class FaceTopology:
    """Everything about a face mesh that does not move: triangles, regions, landmarks, eyes.

    triangles: (T, 3) int32, counter-clockwise seen from outside (normals point out of the head).
    regions: name -> sorted vertex ids (int64); must contain every name in `REQUIRED_REGIONS`.
    eyeball_vertex_ids: per eye (left, right) the vertex ids that rotate with gaze (sclera, iris, pupil).
    eyelid_vertex_ids: per eye the lid vertices kept outside the eyeball (may be empty).
    """

    triangles: np.ndarray
    regions: dict[str, np.ndarray]
    landmarks: Landmarks
    lip_pairs: LipPairs
    eyeball_vertex_ids: tuple[np.ndarray, np.ndarray]
    eyelid_vertex_ids: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )

    def validate(self, num_vertices: int) -> None:
        """Raise ValueError naming the first inconsistency with a mesh of `num_vertices` vertices."""
        tri = self.triangles
        if tri.ndim != 2 or tri.shape[1] != 3:
            raise ValueError(f"triangles must have shape (T, 3), got {tri.shape}")
        if tri.size and (tri.min() < 0 or tri.max() >= num_vertices):
            raise ValueError(f"triangle vertex ids must lie in [0, {num_vertices}), got [{tri.min()}, {tri.max()}]")
        missing = [name for name in REQUIRED_REGIONS if name not in self.regions]
        if missing:
            raise ValueError(f"face topology lacks the regions {missing}; every model must name {REQUIRED_REGIONS}")
        groups = {f"region {k!r}": v for k, v in self.regions.items()}
        groups["landmarks"] = self.landmarks.vertex_ids
        for side, eyeball_ids, eyelid_ids in zip("LR", self.eyeball_vertex_ids, self.eyelid_vertex_ids, strict=True):
            groups[f"eyeball {side}"] = eyeball_ids
            groups[f"eyelid {side}"] = eyelid_ids
        for what, ids in groups.items():
            if ids.size and (ids.min() < 0 or ids.max() >= num_vertices):
                raise ValueError(f"{what} has vertex ids outside [0, {num_vertices})")


@dataclass(frozen=True)
class FaceMesh:
    """A batch of posed faces. vertices: (B, V, 3) mm, head frame; eyeball_centers: (B, 2, 3) mm; gaze: (B, 2, 2)
    deg; expression: (B, 53) with the eye-following shapes consistent with gaze."""

    vertices: torch.Tensor
    eyeball_centers: torch.Tensor
    gaze: torch.Tensor
    expression: torch.Tensor


@dataclass
class FaceModelData:
    """The arrays that define a face model (all in mm, head frame).

    neutral: (V, 3) mean neutral face. identity_basis: (K, V, 3) offsets at +1 sigma (K may be 0).
    expression_deltas: (53, V, 3) offsets at weight 1, canonical order. present: (53,) bool, False for shapes a
    model lacks (their deltas are zero). eyeball_centers: (2, 3) of the mean face. eyeball_radius: (2,) mm.
    """

    name: str
    neutral: np.ndarray
    identity_basis: np.ndarray
    expression_deltas: np.ndarray
    eyeball_centers: np.ndarray
    eyeball_radius: np.ndarray
    topology: FaceTopology
    present: np.ndarray = field(default_factory=lambda: np.ones(NUM_EXPRESSIONS, dtype=bool))

    def validate(self) -> None:
        num_vertices = self.neutral.shape[0]
        expected = {
            "neutral": (self.neutral, (num_vertices, 3)),
            "identity_basis": (self.identity_basis, (self.identity_basis.shape[0], num_vertices, 3)),
            "expression_deltas": (self.expression_deltas, (NUM_EXPRESSIONS, num_vertices, 3)),
            "eyeball_centers": (self.eyeball_centers, (2, 3)),
            "eyeball_radius": (self.eyeball_radius, (2,)),
            "present": (self.present, (NUM_EXPRESSIONS,)),
        }
        for what, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"{self.name}: {what} must have shape {shape}, got {array.shape}")
            if array.dtype != bool and not np.isfinite(array).all():
                raise ValueError(f"{self.name}: {what} contains NaN or infinite values")
        self.topology.validate(num_vertices)


def pose_vertices(
    neutral: torch.Tensor,
    expression_deltas: torch.Tensor,
    eyeball_centers: torch.Tensor,
    lid_clearance: torch.Tensor,
    expression: torch.Tensor,
    gaze: torch.Tensor,
    topology: FaceTopology,
) -> torch.Tensor:
    """Pose faces. neutral: (B, V, 3) mm; expression_deltas: (53, V, 3) mm; eyeball_centers: (B, 2, 3) mm;
    lid_clearance: (2,) mm, how far from each eye centre its lids stay; expression: (B, 53); gaze: (B, 2, 2) deg
    -> vertices (B, V, 3) mm."""
    vertices = neutral + torch.einsum("bk,kvc->bvc", expression, expression_deltas)
    rotations = gaze_rotation(gaze)  # (B, 2, 3, 3)
    for eye, ids in enumerate(topology.eyeball_vertex_ids):
        if ids.size == 0:
            continue
        index = torch.from_numpy(ids).to(vertices.device)
        centre = eyeball_centers[:, eye, None, :]  # (B, 1, 3)
        rotated = centre + torch.einsum("bij,bvj->bvi", rotations[:, eye], vertices[:, index] - centre)
        vertices = vertices.index_copy(1, index, rotated)
    for eye, ids in enumerate(topology.eyelid_vertex_ids):
        if ids.size == 0:
            continue
        index = torch.from_numpy(ids).to(vertices.device)
        offset = vertices[:, index] - eyeball_centers[:, eye, None, :]  # (B, L, 3)
        distance = offset.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        surface = lid_clearance[eye]
        pushed = eyeball_centers[:, eye, None, :] + offset * (torch.clamp(surface / distance, min=1.0))
        vertices = vertices.index_copy(1, index, pushed)
    return vertices


#: Lids stay this far outside the eyeball's farthest vertex (its corneal apex).
_LID_CLEARANCE_MM = 0.1


def lid_clearance(neutral: np.ndarray, centers: np.ndarray, eyeball_ids: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(2,) mm: per eye, the distance from its centre to its farthest eyeball vertex plus `_LID_CLEARANCE_MM`."""
    return np.array(
        [
            np.linalg.norm(neutral[ids] - centers[eye], axis=1).max() + _LID_CLEARANCE_MM if ids.size else 0.0
            for eye, ids in enumerate(eyeball_ids)
        ],
        dtype=np.float32,
    )


class FaceModel(nn.Module):
    """A parametric face: `model(identity, expression, gaze) -> FaceMesh`. Stateless; arrays are buffers.

    identity: (B, K) N(0, 1) coefficients or None (mean face); expression: (B, 53) in [0, 1] or None (neutral);
    gaze: (B, 2, 2) deg or None (derived from the eyeLook* weights). Gradients flow to all three.
    """

    neutral_vertices: torch.Tensor
    identity_basis: torch.Tensor
    expression_deltas: torch.Tensor
    mean_eyeball_centers: torch.Tensor
    eyeball_radius: torch.Tensor
    lid_clearance: torch.Tensor

    def __init__(self, data: FaceModelData) -> None:
        super().__init__()
        data.validate()
        self.name = data.name
        self.topology = data.topology
        self.present = data.present.copy()
        self.register_buffer("neutral_vertices", torch.from_numpy(np.asarray(data.neutral, np.float32)))
        self.register_buffer("identity_basis", torch.from_numpy(np.asarray(data.identity_basis, np.float32)))
        self.register_buffer("expression_deltas", torch.from_numpy(np.asarray(data.expression_deltas, np.float32)))
        self.register_buffer("mean_eyeball_centers", torch.from_numpy(np.asarray(data.eyeball_centers, np.float32)))
        self.register_buffer("eyeball_radius", torch.from_numpy(np.asarray(data.eyeball_radius, np.float32)))
        clearance = lid_clearance(data.neutral, data.eyeball_centers, data.topology.eyeball_vertex_ids)
        self.register_buffer("lid_clearance", torch.from_numpy(clearance))

    @property
    def num_vertices(self) -> int:
        return int(self.neutral_vertices.shape[0])

    @property
    def num_identity_components(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def triangles(self) -> np.ndarray:
        """(T, 3) int32 triangle vertex ids."""
        return self.topology.triangles

    @property
    def expression_names(self) -> tuple[str, ...]:
        return EXPRESSION_NAMES

    @property
    def missing_expressions(self) -> tuple[str, ...]:
        """Canonical names this model has no shape for (treated as zero)."""
        return tuple(name for name, has in zip(EXPRESSION_NAMES, self.present, strict=True) if not has)

    def sample_identity(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(num, K) identity coefficients drawn from N(0, 1)."""
        return torch.randn(num, self.num_identity_components, generator=generator)

    def identity_neutral(self, identity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """identity: (B, K) -> neutral vertices (B, V, 3) mm and eyeball centres (B, 2, 3) mm.

        Eyeball centres move with the mean offset of each eyeball's vertices (models without eyeball vertices keep
        their nominal centres).
        """
        offsets = torch.einsum("bk,kvc->bvc", identity.to(self.identity_basis.dtype), self.identity_basis)
        centres = [
            self.mean_eyeball_centers[eye]
            + (
                offsets[:, torch.from_numpy(ids).to(offsets.device)].mean(dim=1)
                if ids.size
                else torch.zeros_like(offsets[:, 0])
            )
            for eye, ids in enumerate(self.topology.eyeball_vertex_ids)
        ]  # (B, 3) each
        return self.neutral_vertices + offsets, torch.stack(centres, dim=1)

    def forward(
        self,
        identity: object = None,
        expression: object = None,
        gaze: object = None,
    ) -> FaceMesh:
        batch = _batch_size(identity, expression, gaze)
        device = self.neutral_vertices.device
        if identity is None:
            identity_t = torch.zeros(batch, self.num_identity_components, device=device)
        else:
            identity_t = as_float_tensor("identity", identity, (batch, self.num_identity_components), device)
        neutral, centres = self.identity_neutral(identity_t)
        expression_t, gaze_t = resolve_expression_and_gaze(expression, gaze, batch, device)
        vertices = pose_vertices(
            neutral, self.expression_deltas, centres, self.lid_clearance, expression_t, gaze_t, self.topology
        )
        return FaceMesh(vertices=vertices, eyeball_centers=centres, gaze=gaze_t, expression=expression_t)

    def adapted_expression_deltas(self, identity: torch.Tensor) -> torch.Tensor:
        """identity: (K,) -> (53, V, 3) this identity's own blendshapes. Generic models reuse the mean ones;
        models that can re-derive shapes on a new face (the procedural model) override this."""
        del identity
        return self.expression_deltas

    def rig(self, identity: object = None, idiosyncrasies: object = None) -> FaceRig:
        """The person-specific rig of one subject: identity (K,) or None, optional `Idiosyncrasies`."""
        from egoface.face.rig import Idiosyncrasies, apply_idiosyncrasies

        device = self.neutral_vertices.device
        if identity is None:
            identity_t = torch.zeros(self.num_identity_components, device=device)
        else:
            identity_t = as_float_tensor("identity", identity, (self.num_identity_components,), device)
        neutral, centres = self.identity_neutral(identity_t[None])
        deltas = self.adapted_expression_deltas(identity_t)
        if idiosyncrasies is not None:
            if not isinstance(idiosyncrasies, Idiosyncrasies):
                raise TypeError(f"idiosyncrasies must be an Idiosyncrasies, got {type(idiosyncrasies).__name__}")
            deltas = apply_idiosyncrasies(deltas, neutral[0], idiosyncrasies)
        return FaceRig(self, neutral[0], deltas, centres[0])


class FaceRig(nn.Module):
    """One subject's rig: fixed identity, own blendshapes. `rig(expression, gaze) -> FaceMesh`.

    neutral: (V, 3) mm; expression_deltas: (53, V, 3) mm; eyeball_centers: (2, 3) mm.
    """

    neutral_vertices: torch.Tensor
    expression_deltas: torch.Tensor
    eyeball_centers: torch.Tensor
    eyeball_radius: torch.Tensor
    lid_clearance: torch.Tensor

    def __init__(
        self, model: FaceModel, neutral: torch.Tensor, expression_deltas: torch.Tensor, eyeball_centers: torch.Tensor
    ) -> None:
        super().__init__()
        self.name = model.name
        self.topology = model.topology
        self.register_buffer("neutral_vertices", neutral.detach().clone())
        self.register_buffer("expression_deltas", expression_deltas.detach().clone())
        self.register_buffer("eyeball_centers", eyeball_centers.detach().clone())
        self.register_buffer("eyeball_radius", model.eyeball_radius.detach().clone())
        self.register_buffer("lid_clearance", model.lid_clearance.detach().clone())

    @property
    def triangles(self) -> np.ndarray:
        return self.topology.triangles

    def forward(self, expression: object = None, gaze: object = None) -> FaceMesh:
        batch = _batch_size(None, expression, gaze)
        device = self.neutral_vertices.device
        expression_t, gaze_t = resolve_expression_and_gaze(expression, gaze, batch, device)
        neutral = self.neutral_vertices.expand(batch, -1, -1)
        centres = self.eyeball_centers.expand(batch, -1, -1)
        vertices = pose_vertices(
            neutral, self.expression_deltas, centres, self.lid_clearance, expression_t, gaze_t, self.topology
        )
        return FaceMesh(vertices=vertices, eyeball_centers=centres, gaze=gaze_t, expression=expression_t)


def resolve_expression_and_gaze(
    expression: object, gaze: object, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check inputs and tie eyeLook* to gaze: -> expression (B, 53), gaze (B, 2, 2) deg."""
    if expression is None:
        expression_t = torch.zeros(batch, NUM_EXPRESSIONS, device=device)
    else:
        expression_t = as_float_tensor("expression", expression, (batch, NUM_EXPRESSIONS), device)
    if gaze is None:
        gaze_t = gaze_from_eye_look(expression_t[:, _EYE_LOOK_COLUMNS])
    else:
        gaze_t = as_float_tensor("gaze", gaze, (batch, 2, 2), device)
        columns = torch.zeros_like(expression_t)
        columns[:, _EYE_LOOK_COLUMNS] = eye_look_from_gaze(gaze_t).to(expression_t.dtype)
        mask = torch.zeros(NUM_EXPRESSIONS, dtype=torch.bool, device=device)
        mask[_EYE_LOOK_COLUMNS] = True
        expression_t = torch.where(mask, columns, expression_t)
    return expression_t, gaze_t


def _batch_size(*inputs: object) -> int:
    for value in inputs:
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
        if isinstance(value, list | tuple) and len(value) > 0:
            return len(value)
    return 1
