"""The embedded default face model, generated entirely by code: `ProceduralFaceModel()`.

A symmetric adult head (about 18k vertices, most on the face; a watertight surface open only at the base of the neck)
with lids that close over explicit eyeballs in eye sockets (region `eye_socket`), full lips that part into a mouth
cavity (region `mouth_interior`) with teeth and tongue, 36 identity components and the 53 expressions as anatomical
deformations that can be re-derived on any identity's own geometry (`adapted_expression_deltas`).
Head frame and anatomy: `egoface.face.procedural.anatomy`; mesh construction: `.mesh`; regions and landmark
names: `.topology`; identity space: `.identity`; expressions: `.expressions`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from egoface.face._check import as_float_tensor
from egoface.face.model import FaceModel, FaceModelData
from egoface.face.procedural.anatomy import EYE_CENTRE_L, EYEBALL_RADIUS, anchor_points
from egoface.face.procedural.expressions import RigWeights, compute_rig_weights, expression_deltas
from egoface.face.procedural.identity import identity_fields
from egoface.face.procedural.mesh import build_head_mesh
from egoface.face.procedural.topology import build_topology

__all__ = ["ProceduralFaceModel", "lid_gap", "lip_gap"]


@dataclass(frozen=True)
class _Build:
    data: FaceModelData
    weights: RigWeights
    anchors: np.ndarray  # (A, 3) mm
    anchor_basis: np.ndarray  # (K, A, 3) mm


#: Where built faces are kept between processes (`EGOFACE_CACHE_DIR` overrides): building takes about a second, which
#: every generation worker and command start-up paid before.
def _cache_file() -> Path:
    sources = sorted(Path(__file__).parents[1].rglob("*.py"))  # all of egoface.face: any change rebuilds
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]
    root = Path(os.environ.get("EGOFACE_CACHE_DIR") or Path.home() / ".cache" / "egoface")
    return root / f"procedural-face-{digest}.pkl"


@functools.cache
def _build() -> _Build:
    """The built face, from the on-disk cache when its key (a hash of the face room's source) matches, else built
    and cached (atomically; a cache that cannot be read or written is rebuilt or skipped)."""
    path = _cache_file()
    try:
        with path.open("rb") as file:
            cached = pickle.load(file)
        if isinstance(cached, _Build):
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    build = _build_uncached()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as partial:
            pickle.dump(build, partial, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial.name, path)
    except OSError:
        pass  # a read-only home still builds every time
    return build


def _build_uncached() -> _Build:
    head = build_head_mesh()
    anchors = anchor_points()
    fields = identity_fields(np.concatenate([head.vertices, anchors]))
    num_vertices = len(head.vertices)
    weights = compute_rig_weights(head)
    data = FaceModelData(
        name="procedural",
        neutral=head.vertices.astype(np.float32),
        identity_basis=fields[:, :num_vertices].astype(np.float32),
        expression_deltas=expression_deltas(head.vertices, anchors, weights).astype(np.float32),
        eyeball_centers=np.stack([EYE_CENTRE_L, EYE_CENTRE_L * [-1.0, 1.0, 1.0]]).astype(np.float32),
        eyeball_radius=np.full(2, EYEBALL_RADIUS, np.float32),
        topology=build_topology(head),
    )
    data.validate()
    return _Build(data, weights, anchors, fields[:, num_vertices:])


class ProceduralFaceModel(FaceModel):
    """The procedural default face (name "procedural"). Building it is deterministic and cached per process."""

    def __init__(self) -> None:
        build = _build()
        super().__init__(build.data)
        self._weights = build.weights
        self._anchors = build.anchors
        self._anchor_basis = build.anchor_basis

    def adapted_expression_deltas(self, identity: torch.Tensor) -> torch.Tensor:
        """identity: (K,) -> (53, V, 3) mm, the 53 shapes re-derived on this identity's own neutral face (jaw about
        its own jaw axis, lids about its own eye centres, sizes scaled to its mouth and eyes). Not differentiable;
        the zero identity gives exactly the generic shapes."""
        coefficients = as_float_tensor("identity", identity, (self.num_identity_components,), torch.device("cpu"))
        alpha = coefficients.detach().to(torch.float64).numpy()
        if not alpha.any():
            return self.expression_deltas
        basis = self.identity_basis.detach().cpu().numpy().astype(np.float64)
        neutral = self.neutral_vertices.detach().cpu().numpy().astype(np.float64) + np.einsum("k,kvc->vc", alpha, basis)
        anchors = self._anchors + np.einsum("k,kac->ac", alpha, self._anchor_basis)
        deltas = expression_deltas(neutral, anchors, self._weights)
        return torch.from_numpy(deltas.astype(np.float32)).to(self.expression_deltas.device)


def lip_gap(vertices: np.ndarray | torch.Tensor, model: FaceModel) -> np.ndarray:
    """vertices: (..., V, 3) mm -> (...,) distance between the inner-lip centre vertices (mouth opening), mm."""
    v = torch.as_tensor(vertices).detach().cpu().numpy()
    pairs = model.topology.lip_pairs
    return np.linalg.norm(v[..., pairs.upper_center, :] - v[..., pairs.lower_center, :], axis=-1)


def lid_gap(vertices: np.ndarray | torch.Tensor, model: FaceModel, side: str) -> np.ndarray:
    """vertices: (..., V, 3) mm; side "L" or "R" -> (...,) distance between the centres of the upper and lower lid
    margins (landmarks `eye_{side}_upper_04` and `eye_{side}_lower_04`), mm."""
    if side not in ("L", "R"):
        raise ValueError(f"side must be 'L' or 'R', got {side!r}")
    v = torch.as_tensor(vertices).detach().cpu().numpy()
    names = model.topology.landmarks.names
    ids = model.topology.landmarks.vertex_ids
    upper = ids[names.index(f"eye_{side}_upper_04")]
    lower = ids[names.index(f"eye_{side}_lower_04")]
    return np.linalg.norm(v[..., upper, :] - v[..., lower, :], axis=-1)
