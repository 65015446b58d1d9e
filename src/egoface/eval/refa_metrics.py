"""The heuristic metrics of REFA Sec. 8.1, computed from predicted coefficients, the capture script's segment table
(art priors, peaks, closure flags) and the subject's rig - never from true labels, so they also score pseudo labels.

Exact definitions: `docs/metrics.md`. In short (thresholds in `RefaThresholds`):

- semantic accuracy: on the peak (hold) frames of each expression segment with an art prior, the fraction of frames
  on which every key shape (prior >= half the prior's largest value) reaches half its prior value and the
  strongest shape is one the prior names (blinks aside); mean over segments; higher is better, in [0, 1];
- neutralness: on the hold frames of neutral segments, the fraction of frames on which every free shape except
  the blinks stays below 0.15; higher is better, in [0, 1];
- smoothness: the mean over frames and free shapes of |x[t+1] - 2 x[t] + x[t-1]| * fps^2 (the second derivative,
  coefficient / s^2); lower is better, 0 for constant curves;
- eye closure: on the peak frames of `eyes_closed` segments, the fraction on which each eye the prior closes has
  eyeBlink >= 0.8 and each other eye eyeBlink < 0.5 (winks); mean over segments; in [0, 1];
- mouth closure: on the peak frames of `mouth_closed` segments, the fraction on which the lips are closed on the
  rig: inner-lip vertical gap (upper_center - lower_center along +Y) at most 2 mm above the neutral face's;
  mean over segments; in [0, 1].

A metric with no segment to apply to is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from egoface.face.model import FaceRig
from egoface.face.names import FREE_EXPRESSION_NAMES, NUM_EXPRESSIONS, expression_index, expression_vector

__all__ = [
    "REFA_METRICS",
    "RefaThresholds",
    "ScriptSegment",
    "lip_gap_mm",
    "parse_segments",
    "refa_metrics",
    "refa_segment_scores",
    "smoothness",
]

#: The keys of `refa_metrics`, in the paper's order.
REFA_METRICS: tuple[str, ...] = ("semantic_accuracy", "neutralness", "smoothness", "eye_closure", "mouth_closure")

_FREE = np.array([expression_index(name) for name in FREE_EXPRESSION_NAMES])
#: The free shapes except the blinks: a blink is not an expression (neutralness, semantic-accuracy rivals).
_EXPRESSIVE = np.array(
    [expression_index(name) for name in FREE_EXPRESSION_NAMES if name not in ("eyeBlink_L", "eyeBlink_R")]
)
_BLINK = {"L": expression_index("eyeBlink_L"), "R": expression_index("eyeBlink_R")}


@dataclass(frozen=True)
class RefaThresholds:
    """The thresholds of the REFA metrics (coefficients in [0, 1] unless stated).

    key_fraction: a prior's key shapes are those with value >= key_fraction * the prior's largest value.
    activation_fraction: a key shape is active when its prediction is >= activation_fraction * its prior value.
    neutral_max: on neutral frames every free shape except eyeBlink_L/R must stay below this.
    eye_closed_min / eye_open_max: a closed eye has eyeBlink >= eye_closed_min; an open one < eye_open_max.
    lip_gap_mm: lips are closed when their vertical gap is at most this much (mm) above the neutral face's.
    """

    key_fraction: float = 0.5
    activation_fraction: float = 0.5
    neutral_max: float = 0.15
    eye_closed_min: float = 0.8
    eye_open_max: float = 0.5
    lip_gap_mm: float = 2.0


@dataclass(frozen=True)
class ScriptSegment:
    """What the REFA metrics read from one row of a segment table (`CaptureScript.segment_table()`).

    frames: [start_frame, stop_frame); peak: the hold [peak_start_frame, peak_stop_frame), or None (speech, ROM,
    gaze); prior: (53,) float32 art prior (zeros where silent).
    """

    name: str
    kind: str
    frames: range
    peak: range | None
    prior: np.ndarray
    eyes_closed: bool
    mouth_closed: bool


def parse_segments(rows: Sequence[Mapping[str, Any]], num_frames: int) -> list[ScriptSegment]:
    """Segment-table rows -> `ScriptSegment`s, checked against a recording of `num_frames` frames."""
    segments = []
    for row in rows:
        missing = [key for key in ("name", "kind", "start_frame", "stop_frame") if key not in row]
        if missing:
            raise ValueError(f"segment row {row.get('name', row)!r} lacks {missing}")
        frames = range(int(row["start_frame"]), int(row["stop_frame"]))
        peak = None
        if row.get("peak_start_frame") is not None:
            peak = range(int(row["peak_start_frame"]), int(row["peak_stop_frame"]))
        for what, span in (("frames", frames), ("peak", peak)):
            if span is not None and not 0 <= span.start <= span.stop <= num_frames:
                raise ValueError(
                    f"segment {row['name']!r} {what} [{span.start}, {span.stop}) lie outside the {num_frames} frames "
                    "of the recording"
                )
        segments.append(
            ScriptSegment(
                name=str(row["name"]),
                kind=str(row["kind"]),
                frames=frames,
                peak=peak,
                prior=expression_vector(row.get("art_prior") or {}),
                eyes_closed=bool(row.get("eyes_closed", False)),
                mouth_closed=bool(row.get("mouth_closed", False)),
            )
        )
    return segments


def _check_expression(expression: np.ndarray) -> np.ndarray:
    expression = np.asarray(expression, dtype=np.float64)
    if expression.ndim != 2 or expression.shape[1] != NUM_EXPRESSIONS:
        raise ValueError(f"expression must have shape (N, {NUM_EXPRESSIONS}), got {expression.shape}")
    if not np.isfinite(expression).all():
        raise ValueError("expression must be finite")
    return expression


def _peak_frames(segment: ScriptSegment) -> np.ndarray:
    return np.arange(segment.peak.start, segment.peak.stop) if segment.peak is not None else np.zeros(0, np.int64)


def _semantic_hits(expression: np.ndarray, segment: ScriptSegment, th: RefaThresholds) -> np.ndarray:
    """(P,) bool per peak frame: every key shape active, and the strongest shape one the prior names."""
    prior = segment.prior.astype(np.float64)
    keys = np.flatnonzero(prior >= th.key_fraction * prior.max())
    named = np.flatnonzero(prior > 0)
    rivals = np.setdiff1d(_EXPRESSIVE, named)  # free shapes the prior does not name, blinks aside
    peak = expression[_peak_frames(segment)]  # (P, 53)
    active = (peak[:, keys] >= th.activation_fraction * prior[keys]).all(axis=1)
    rival = peak[:, rivals].max(axis=1) if rivals.size else np.full(len(peak), -np.inf)
    return active & (peak[:, named].max(axis=1) > rival)


def _eye_hits(expression: np.ndarray, segment: ScriptSegment, th: RefaThresholds) -> np.ndarray:
    """(P,) bool per peak frame: the eyes the prior closes are closed, the others open."""
    closed = [side for side, column in _BLINK.items() if segment.prior[column] >= 0.5] or list(_BLINK)
    peak = expression[_peak_frames(segment)]
    hits = np.ones(len(peak), dtype=bool)
    for side, column in _BLINK.items():
        hits &= peak[:, column] >= th.eye_closed_min if side in closed else peak[:, column] < th.eye_open_max
    return hits


def lip_gap_mm(rig: FaceRig, expression: np.ndarray) -> np.ndarray:
    """(N, 53) -> (N,) mm: the inner-lip vertical gap, (upper_center - lower_center) along the head's +Y, of the
    posed rig. Negative when the lips press or roll into each other; gaze does not move the lips.

    Only the two lip vertices are posed: the rig is linear in the expression away from the eyes (`pose_vertices`),
    so this is `rig(expression).vertices` at those vertices without posing the whole mesh.
    """
    pairs = rig.topology.lip_pairs
    ids = np.array([pairs.upper_center, pairs.lower_center])
    eye_ids = np.concatenate([*rig.topology.eyeball_vertex_ids, *rig.topology.eyelid_vertex_ids])
    if np.isin(ids, eye_ids).any():
        raise ValueError(f"rig {rig.name!r} has lip-pair vertices on an eye; the lip gap needs lips off the eyes")
    weights = torch.as_tensor(np.asarray(expression, dtype=np.float32))
    with torch.no_grad():
        lips = rig.neutral_vertices[ids] + torch.einsum("bk,kvc->bvc", weights, rig.expression_deltas[:, ids])
    return (lips[:, 0, 1] - lips[:, 1, 1]).double().numpy()


def _mouth_hits(expression: np.ndarray, segment: ScriptSegment, rig: FaceRig, th: RefaThresholds) -> np.ndarray:
    neutral = lip_gap_mm(rig, np.zeros((1, NUM_EXPRESSIONS)))[0]
    return lip_gap_mm(rig, expression[_peak_frames(segment)]) <= neutral + th.lip_gap_mm


def refa_segment_scores(
    expression: np.ndarray,
    segments: Sequence[Mapping[str, Any]],
    rig: FaceRig,
    thresholds: RefaThresholds | None = None,
) -> dict[str, dict[str, float]]:
    """Per-segment scores -> {"semantic_accuracy", "eye_closure", "mouth_closure"} -> segment name -> fraction of
    its peak frames that pass. Only segments the metric applies to (with peak frames) appear.

    expression: (N, 53) predicted coefficients; segments: the recording's segment-table rows; rig: the subject's.
    """
    th = thresholds or RefaThresholds()
    expression = _check_expression(expression)
    scores: dict[str, dict[str, float]] = {"semantic_accuracy": {}, "eye_closure": {}, "mouth_closure": {}}
    for segment in parse_segments(segments, len(expression)):
        if segment.peak is None or len(segment.peak) == 0:
            continue
        if segment.kind == "expression" and segment.prior.any():
            scores["semantic_accuracy"][segment.name] = float(_semantic_hits(expression, segment, th).mean())
        if segment.eyes_closed:
            scores["eye_closure"][segment.name] = float(_eye_hits(expression, segment, th).mean())
        if segment.mouth_closed:
            scores["mouth_closure"][segment.name] = float(_mouth_hits(expression, segment, rig, th).mean())
    return scores


def smoothness(expression: np.ndarray, fps: float) -> float:
    """Mean over frames t = 1..N-2 and the 45 free shapes of |x[t+1] - 2 x[t] + x[t-1]| * fps^2: the mean absolute
    second derivative, coefficient / s^2. Lower is smoother; 0 for constant or linear curves; NaN below 3 frames."""
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    curves = _check_expression(expression)[:, _FREE]
    if len(curves) < 3:
        return float("nan")
    return float(np.abs(curves[2:] - 2.0 * curves[1:-1] + curves[:-2]).mean() * fps**2)


def _neutralness(expression: np.ndarray, segments: list[ScriptSegment], th: RefaThresholds) -> float:
    frames = np.concatenate([_peak_frames(s) for s in segments if s.kind == "neutral"] + [np.zeros(0, np.int64)])
    if frames.size == 0:
        return float("nan")
    return float((expression[frames][:, _EXPRESSIVE].max(axis=1) < th.neutral_max).mean())


def _mean(values: Mapping[str, float]) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


def refa_metrics(
    expression: np.ndarray,
    segments: Sequence[Mapping[str, Any]],
    fps: float,
    rig: FaceRig,
    thresholds: RefaThresholds | None = None,
) -> dict[str, float]:
    """Recording-level REFA metrics (keys `REFA_METRICS`): semantic_accuracy, eye_closure and mouth_closure are means
    of `refa_segment_scores` over segments; neutralness pools the neutral segments' hold frames; smoothness covers
    every frame. NaN where no segment applies.

    expression: (N, 53) predicted coefficients; segments: the recording's segment-table rows; fps: frames per
    second; rig: the subject's rig (for mouth closure).
    """
    th = thresholds or RefaThresholds()
    expression = _check_expression(expression)
    per_segment = refa_segment_scores(expression, segments, rig, th)
    return {
        "semantic_accuracy": _mean(per_segment["semantic_accuracy"]),
        "neutralness": _neutralness(expression, parse_segments(segments, len(expression)), th),
        "smoothness": smoothness(expression, fps),
        "eye_closure": _mean(per_segment["eye_closure"]),
        "mouth_closure": _mean(per_segment["mouth_closure"]),
    }
