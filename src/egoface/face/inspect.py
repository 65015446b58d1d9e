"""What a user bringing their own rig needs to know about a face model: sizes, names, and per expression its
largest displacement, the region it moves and how well its left/right counterpart mirrors it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from egoface.face.model import FaceModel
from egoface.face.names import EXPRESSION_NAMES, mirror_name

__all__ = ["ExpressionReport", "ModelReport", "inspect_model", "mirror_vertex_map", "region_shares"]

#: Regions an expression is attributed to: the finer, mostly disjoint skin regions. Hidden parts (mouth interior,
#: teeth) are left out: their dense meshes would outweigh the skin a camera actually sees.
ATTRIBUTION_REGIONS: tuple[str, ...] = ("brows", "eye_L", "eye_R", "nose", "cheeks", "lips", "chin")
_MOVING_FRACTION = 0.1  # vertices moving more than this fraction of a shape's maximum count for symmetry


@dataclass(frozen=True)
class ExpressionReport:
    """max_displacement_mm: largest vertex offset at weight 1; region: the attribution region holding the largest
    share of the summed displacement (region_share, in [0, 1]); symmetry_error_mm: mean difference to the mirror
    image of the mirror shape over moving vertices (see `inspect_model`)."""

    name: str
    max_displacement_mm: float
    region: str
    region_share: float
    symmetry_error_mm: float


@dataclass(frozen=True)
class ModelReport:
    model: str
    units: str
    num_vertices: int
    num_triangles: int
    num_identity_components: int
    num_landmarks: int
    regions: dict[str, int]
    expressions: list[ExpressionReport]
    missing: list[str]
    mirror_residual_mm: float

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def mirror_vertex_map(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """vertices: (V, 3) mm -> for each vertex the nearest vertex to its mirror image across x = 0, (V,) int, and
    the mean distance of that match in mm (0 for an exactly symmetric mesh)."""
    distance, index = cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))
    return index.astype(np.int64), float(distance.mean())


def region_shares(model: FaceModel, deltas: np.ndarray) -> dict[str, float]:
    """deltas: (V, 3) mm -> share of the summed displacement magnitude inside each attribution region."""
    magnitude = np.linalg.norm(deltas, axis=1)
    total = max(float(magnitude.sum()), 1e-12)
    return {name: float(magnitude[model.topology.regions[name]].sum()) / total for name in ATTRIBUTION_REGIONS}


def inspect_model(model: FaceModel) -> ModelReport:
    """Measure `model` at its mean identity. Symmetry: for shape X with mirror shape X' (`mirror_name`), the mean
    over vertices moving more than 10% of either shape's maximum of |d_X(v) - F d_X'(m(v))|, where m is
    `mirror_vertex_map` and F flips x."""
    neutral = model.neutral_vertices.detach().cpu().numpy().astype(np.float64)
    deltas = model.expression_deltas.detach().cpu().numpy().astype(np.float64)  # (53, V, 3)
    mirror, residual = mirror_vertex_map(neutral)
    flip = np.array([-1.0, 1.0, 1.0])
    reports = []
    for k, name in enumerate(EXPRESSION_NAMES):
        if not model.present[k]:
            continue
        delta = deltas[k]
        counterpart = deltas[EXPRESSION_NAMES.index(mirror_name(name))][mirror] * flip
        magnitude, counterpart_magnitude = np.linalg.norm(delta, axis=1), np.linalg.norm(counterpart, axis=1)
        moving = (magnitude > _MOVING_FRACTION * magnitude.max()) | (
            counterpart_magnitude > _MOVING_FRACTION * counterpart_magnitude.max()
        )
        difference = np.linalg.norm(delta - counterpart, axis=1)
        shares = region_shares(model, delta)
        region = max(shares, key=shares.__getitem__)
        reports.append(
            ExpressionReport(
                name=name,
                max_displacement_mm=round(float(magnitude.max()), 3),
                region=region,
                region_share=round(shares[region], 3),
                symmetry_error_mm=round(float(difference[moving].mean()) if moving.any() else 0.0, 3),
            )
        )
    return ModelReport(
        model=model.name,
        units="mm",
        num_vertices=model.num_vertices,
        num_triangles=len(model.triangles),
        num_identity_components=model.num_identity_components,
        num_landmarks=len(model.topology.landmarks.vertex_ids),
        regions={name: len(ids) for name, ids in sorted(model.topology.regions.items())},
        expressions=reports,
        missing=list(model.missing_expressions),
        mirror_residual_mm=round(residual, 3),
    )
