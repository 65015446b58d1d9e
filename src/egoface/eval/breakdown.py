"""Where the errors are: per-expression coefficient errors, per-segment geometry errors, the error attribution
(mesh L2 with one group of outputs set to the truth), and the three-level aggregation of REFA Sec. 8.1
(recording -> subject -> dataset) used for every metric of a report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from egoface.eval.metrics import FaceTrack, FrameErrors, frame_errors
from egoface.eval.refa_metrics import parse_segments
from egoface.face.model import FaceRig
from egoface.face.names import EXPRESSION_NAMES, NUM_EXPRESSIONS

__all__ = ["ATTRIBUTION_GROUPS", "Aggregate", "aggregate", "error_attribution", "per_expression_errors",
           "per_segment_errors"]  # fmt: skip


def _starting(*prefixes: str) -> tuple[str, ...]:
    return tuple(name for name in EXPRESSION_NAMES if name.startswith(prefixes))


#: The output groups of `error_attribution`: expression names, or () for the gaze of both eyes (which also drives
#: the `eyeLook*` shapes).
ATTRIBUTION_GROUPS: dict[str, tuple[str, ...]] = {
    "gaze": (),
    "brows": _starting("brow"),
    "eyelids": _starting("eyeBlink", "eyeSquint", "eyeWide"),
    "cheeks_nose": _starting("cheek", "nose"),
    "jaw_open": ("jawOpen",),
    "jaw_sideways_forward": ("jawLeft", "jawRight", "jawForward"),
    "mouth": _starting("mouth"),
}


def per_expression_errors(
    pred_expression: np.ndarray, true_expression: np.ndarray, frames: np.ndarray | slice | None = None
) -> dict[str, float]:
    """Mean |pred - true| per expression over `frames` (default all): (N, 53), (N, 53) -> name -> error, in the
    canonical order. The `eyeLook*` columns are included (they follow gaze)."""
    pred = np.asarray(pred_expression, dtype=np.float64)
    true = np.asarray(true_expression, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != NUM_EXPRESSIONS or pred.shape != true.shape:
        raise ValueError(f"expected two (N, {NUM_EXPRESSIONS}) arrays of one shape, got {pred.shape} and {true.shape}")
    selection = slice(None) if frames is None else frames
    error = np.abs(pred[selection] - true[selection])
    if len(error) == 0:
        raise ValueError("no frames selected")
    return dict(zip(EXPRESSION_NAMES, error.mean(axis=0).tolist(), strict=True))


def per_segment_errors(errors: FrameErrors, segments: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Segment name -> the `FrameErrors` metrics averaged over its frames [start_frame, stop_frame), in table order
    (segments without frames are left out). errors: `frame_errors(...)` of the recording."""
    out = {}
    for segment in parse_segments(segments, len(errors)):
        if len(segment.frames):
            out[segment.name] = errors.mean(slice(segment.frames.start, segment.frames.stop))
    return out


def error_attribution(prediction: FaceTrack, truth: FaceTrack, rig: FaceRig) -> dict[str, float]:
    """How much of the mesh L2 each group of outputs causes: `mesh_l2_mm` of the prediction with one group of
    `ATTRIBUTION_GROUPS` replaced by the truth, per group (mm, mean over frames), plus `none` (the prediction as it
    is). A group whose replacement lowers the error most is where the error is; the groups interact, so the drops
    need not add up."""
    out = {"none": frame_errors(prediction, truth, rig).mean()["mesh_l2_mm"]}
    for group, names in ATTRIBUTION_GROUPS.items():
        expression, gaze = prediction.expression.copy(), prediction.gaze
        if names:
            columns = [EXPRESSION_NAMES.index(name) for name in names]
            expression[:, columns] = truth.expression[:, columns]
        else:
            gaze = truth.gaze
        out[group] = frame_errors(FaceTrack(expression, gaze), truth, rig).mean()["mesh_l2_mm"]
    return out


@dataclass(frozen=True)
class Aggregate:
    """per_subject: subject -> metric -> mean over that subject's recordings; dataset: metric -> mean over subjects.
    NaN values (a metric that did not apply to a recording) are skipped; a metric with no value at all is NaN."""

    per_subject: dict[str, dict[str, float]]
    dataset: dict[str, float]


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def aggregate(per_recording: Sequence[tuple[str, Mapping[str, float]]]) -> Aggregate:
    """REFA's three levels: (subject, metrics of one recording) pairs -> the mean over each subject's recordings,
    then the mean over subjects (every subject weighs the same, however many recordings it has). Metrics missing
    from some recordings count as NaN there."""
    if not per_recording:
        raise ValueError("aggregate needs at least one recording")
    keys = list(dict.fromkeys(key for _, metrics in per_recording for key in metrics))
    by_subject: dict[str, list[Mapping[str, float]]] = {}
    for subject, metrics in per_recording:
        by_subject.setdefault(subject, []).append(metrics)
    per_subject = {
        subject: {key: _nanmean([float(m.get(key, np.nan)) for m in recordings]) for key in keys}
        for subject, recordings in by_subject.items()
    }
    dataset = {key: _nanmean([metrics[key] for metrics in per_subject.values()]) for key in keys}
    return Aggregate(per_subject=per_subject, dataset=dataset)
