"""Comparing candidate rigs as in REFA Fig. 1: per camera role, V and M of each candidate and the winner.

Every candidate is evaluated on the same `Population` (same faces, donnings and glasses). Per role, a candidate's
figures are the means over its cameras of that role (e.g. both eye cameras); per region, regions of side cameras are
matched by kind (`eye_L` of the left eye camera with `eye_R` of the right one: `eye`). The winner of a role has the
highest `placement_score`, with V and M taken relative to the best candidate of that role.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from egoface.headset.rig import HeadsetRig
from egoface.placement.metrics import DEPTH_RESOLUTION, CameraMetrics, RigMetrics, evaluate_rig
from egoface.placement.population import Population

__all__ = ["Comparison", "RoleComparison", "RoleScore", "compare_rigs", "placement_score", "region_kind"]

#: Floors of the reference V and M of `placement_score`, so that a camera that sees nothing does not divide by zero.
_MIN_REFERENCE_VISIBILITY = 0.01
_MIN_REFERENCE_MOTION_PX = 1.0


def placement_score(
    visibility: float, range_of_motion_px: float, reference_visibility: float, reference_motion_px: float,
    visibility_weight: float = 0.5,
) -> float:  # fmt: skip
    """The weighted V/M score: w V / V_ref + (1 - w) M / M_ref (dimensionless; 1 for the reference itself).

    The references are floored at V 0.01 and M 1 px. `visibility_weight` w is in [0, 1].
    """
    if not 0.0 <= visibility_weight <= 1.0:
        raise ValueError(f"visibility_weight must be in [0, 1], got {visibility_weight!r}")
    v_ref = max(reference_visibility, _MIN_REFERENCE_VISIBILITY)
    m_ref = max(reference_motion_px, _MIN_REFERENCE_MOTION_PX)
    return visibility_weight * visibility / v_ref + (1.0 - visibility_weight) * range_of_motion_px / m_ref


def region_kind(region: str, side: str) -> str:
    """The region's name without the camera's own side tag (`eye_L` of a left camera -> `eye`)."""
    tag = {"left": "_L", "right": "_R"}.get(side)
    return region[: -len(tag)] if tag and region.endswith(tag) else region


@dataclass(frozen=True)
class RoleScore:
    """One candidate's cameras of one role: mean V, F, M (px) over those cameras, the score, and per region kind
    (V, M px)."""

    cameras: tuple[str, ...]
    visibility: float
    visible_fraction: float
    range_of_motion_px: float
    score: float
    regions: dict[str, tuple[float, float]]

    def to_json(self) -> dict[str, object]:
        return {
            "cameras": list(self.cameras),
            "visibility": round(self.visibility, 4),
            "visible_fraction": round(self.visible_fraction, 4),
            "range_of_motion_px": round(self.range_of_motion_px, 3),
            "score": round(self.score, 4),
            "regions": {
                name: {"visibility": round(v, 4), "range_of_motion_px": round(m, 3)}
                for name, (v, m) in self.regions.items()
            },
        }


@dataclass(frozen=True)
class RoleComparison:
    """One camera role across the candidates that have it (label -> RoleScore) and the winning label."""

    role: str
    candidates: dict[str, RoleScore]
    winner: str

    def to_json(self) -> dict[str, object]:
        return {
            "winner": self.winner,
            "candidates": {label: score.to_json() for label, score in self.candidates.items()},
        }


@dataclass(frozen=True)
class Comparison:
    """Candidates (labels, their `RigMetrics`), per-role comparisons, the visibility weight and the wall time."""

    labels: tuple[str, ...]
    metrics: tuple[RigMetrics, ...]
    roles: tuple[RoleComparison, ...]
    visibility_weight: float
    seconds: float

    def to_json(self) -> dict[str, object]:
        first = self.metrics[0]
        return {
            "candidates": list(self.labels),
            "face_model": first.face_model,
            "population": first.num_identities,
            "donnings": first.num_donnings,
            "seed": first.seed,
            "visibility_weight": self.visibility_weight,
            "roles": {role.role: role.to_json() for role in self.roles},
            "rigs": {label: metrics.to_json() for label, metrics in zip(self.labels, self.metrics, strict=True)},
            "seconds": round(self.seconds, 2),
        }


def _role_figures(cameras: list[CameraMetrics]) -> tuple[float, float, float, dict[str, tuple[float, float]]]:
    kinds: dict[str, list[tuple[float, float]]] = {}
    for camera in cameras:
        for name, region in camera.regions.items():
            kinds.setdefault(region_kind(name, camera.side), []).append((region.visibility, region.range_of_motion_px))
    regions = {kind: (float(np.mean([v for v, _ in values])), float(np.mean([m for _, m in values])))
               for kind, values in kinds.items()}  # fmt: skip
    return (
        float(np.mean([camera.visibility for camera in cameras])),
        float(np.mean([camera.visible_fraction for camera in cameras])),
        float(np.mean([camera.range_of_motion_px for camera in cameras])),
        regions,
    )


def _unique_labels(rigs: Sequence[HeadsetRig], labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is not None:
        if len(labels) != len(rigs) or len(set(labels)) != len(labels):
            raise ValueError(f"need {len(rigs)} distinct labels, one per rig, got {list(labels)}")
        return tuple(labels)
    result: list[str] = []
    for rig in rigs:
        label, count = rig.name, 2
        while label in result:
            label, count = f"{rig.name} #{count}", count + 1
        result.append(label)
    return tuple(result)


def compare_rigs(
    rigs: Sequence[HeadsetRig],
    population: Population,
    labels: Sequence[str] | None = None,
    visibility_weight: float = 0.5,
    depth_resolution: int = DEPTH_RESOLUTION,
    progress: Callable[[int, int], None] | None = None,
) -> Comparison:
    """Evaluate each rig on `population` and compare them per camera role (at least 2 rigs).

    labels: names of the candidates in reports (default: the rigs' names, made unique); progress: called with
    (identities done, identities in all) over all rigs.
    """
    if len(rigs) < 2:
        raise ValueError(f"a comparison needs at least 2 candidate rigs, got {len(rigs)}")
    placement_score(0.0, 0.0, 1.0, 1.0, visibility_weight)  # checks the weight before the long part
    names = _unique_labels(rigs, labels)
    start = time.perf_counter()
    total = len(rigs) * population.num_identities
    results = []
    for k, rig in enumerate(rigs):
        offset = k * population.num_identities

        def step(done: int, _: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        results.append(evaluate_rig(rig, population, depth_resolution=depth_resolution, progress=step))
    by_label = dict(zip(names, results, strict=True))
    roles = []
    for role in dict.fromkeys(camera.role for metrics in results for camera in metrics.cameras):
        members = {label: [c for c in metrics.cameras if c.role == role] for label, metrics in by_label.items()}
        figures = {label: _role_figures(cameras) for label, cameras in members.items() if cameras}
        best_v = max(v for v, _, _, _ in figures.values())
        best_m = max(m for _, _, m, _ in figures.values())
        scores = {
            label: RoleScore(
                cameras=tuple(camera.camera for camera in members[label]),
                visibility=v,
                visible_fraction=f,
                range_of_motion_px=m,
                score=placement_score(v, m, best_v, best_m, visibility_weight),
                regions=regions,
            )
            for label, (v, f, m, regions) in figures.items()
        }
        winner = max(scores, key=lambda label: scores[label].score)
        roles.append(RoleComparison(role, scores, winner))
    return Comparison(names, tuple(results), tuple(roles), visibility_weight, time.perf_counter() - start)
