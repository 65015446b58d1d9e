"""Evaluation reports: `metrics.json`, `report.md` and plots for one model, with other models (baselines) beside it.

Every report names the split, the domains and the identities it was measured on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from egoface.data import DatasetStore
from egoface.eval.evaluate import METRIC_KEYS, Evaluation
from egoface.eval.plots import plot_curves, plot_error_map, plot_expression_errors
from egoface.eval.visualize import FrontalFace
from egoface.face.names import expression_index

__all__ = ["write_report"]

#: How each metric reads: unit and which direction is better.
METRIC_NOTES: dict[str, str] = {
    "mesh_l2_mm": "mm, lower is better",
    "lower_face_mesh_l2_mm": "mm, lower is better",
    "mouth_shape_l2_mm": "mm, lower is better",
    "gaze_error_deg": "deg, lower is better",
    "photometric_l1": "[0, 1] grey levels, lower is better",
    "semantic_accuracy": "fraction, higher is better",
    "neutralness": "fraction, higher is better",
    "smoothness": "coefficient/s^2, lower is smoother",
    "eye_closure": "fraction, higher is better",
    "mouth_closure": "fraction, higher is better",
    "latency_ms_p50": "ms per frame (batch 1), lower is better",
}


def write_report(evaluation: Evaluation, out: str | os.PathLike[str], others: Sequence[Evaluation] = ()) -> Path:
    """Write `metrics.json`, `report.md` and PNG plots for `evaluation` (and `others` for comparison) into `out`."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = evaluation.to_json()
    if others:
        summary["compared"] = {other.model: other.to_json() for other in others}
    _write_text(directory / "metrics.json", json.dumps(summary, indent=2))
    plots = _plots(evaluation, others, directory)
    _write_text(directory / "report.md", _markdown(evaluation, others, plots))
    return directory


def _plots(evaluation: Evaluation, others: Sequence[Evaluation], directory: Path) -> dict[str, list[str]]:
    made: dict[str, list[str]] = {}
    for name, domain in evaluation.domains.items():
        first = domain.recordings[0]
        files = []
        path = plot_curves(directory / f"curves_{name}.png", first.prediction, first.truth, first.fps, first.segments,
                           title=f"{evaluation.model} on {first.subject} ({name})")  # fmt: skip
        files.append(path.name)
        errors = {evaluation.model: domain.per_expression}
        errors |= {other.model: other.domains[name].per_expression for other in others if name in other.domains}
        files.append(plot_expression_errors(directory / f"expression_errors_{name}.png", errors, title=name).name)
        info = DatasetStore(evaluation.root).subject_info(first.subject)
        frame = int(np.argmax(first.truth.expression[:, expression_index("jawOpen")]))  # the widest mouth
        files.append(plot_error_map(directory / f"error_map_{name}.png", FrontalFace(info, 160), first.prediction,
                                    first.truth, frame, title=f"{first.subject} frame {frame}").name)  # fmt: skip
        made[name] = files
    return made


def _markdown(evaluation: Evaluation, others: Sequence[Evaluation], plots: dict[str, list[str]]) -> str:
    lines = [f"# Evaluation of `{evaluation.model}`", ""]
    latency = f"{evaluation.latency_ms_p50:.2f} ms median, {evaluation.latency_ms_p99:.2f} ms p99"
    lines.append(f"Split `{evaluation.split}` of `{evaluation.root}`; per-frame latency {latency} (batch 1, here).")
    for name, domain in evaluation.domains.items():
        subjects = ", ".join(sorted(domain.per_subject))
        counts = f"Identities ({len(domain.per_subject)}): {subjects}; {len(domain.recordings)} recordings."
        lines += ["", f"## Domain `{name}`", "", counts + " Metrics: mean over subjects of their recordings' mean.", ""]
        models = [evaluation, *[other for other in others if name in other.domains]]
        lines.append("| metric | " + " | ".join(f"`{m.model}`" for m in models) + " | unit |")
        lines.append("|---|" + "---|" * (len(models) + 1))
        for key in METRIC_KEYS:
            cells = [_cell(m.latency_ms_p50 if key == "latency_ms_p50" else m.domains[name].dataset.get(key))
                     for m in models]  # fmt: skip
            lines.append(f"| {key} | " + " | ".join(cells) + f" | {METRIC_NOTES[key]} |")
        worst = sorted(domain.per_expression.items(), key=lambda item: -item[1])[:10]
        lines += ["", "Largest per-expression errors (mean |predicted - true|): "
                  + ", ".join(f"{n} {v:.3f}" for n, v in worst) + "."]  # fmt: skip
        segments = domain.recordings[0].per_segment
        if segments:
            lines += ["", f"Per-segment errors on `{domain.recordings[0].subject}`:", "",
                      "| segment | mesh L2 (mm) | mouth shape (mm) | gaze (deg) |", "|---|---|---|---|"]  # fmt: skip
            for segment, values in segments.items():
                cells = [_cell(values.get(key)) for key in ("mesh_l2_mm", "mouth_shape_l2_mm", "gaze_error_deg")]
                lines.append(f"| {segment} | " + " | ".join(cells) + " |")
        if domain.attribution is not None:
            lines += ["", _attribution_text(domain.attribution)]
        lines += [""] + [f"![{file}]({file})" for file in plots.get(name, [])]
    lines += ["", "Metric definitions: `docs/metrics.md`.", ""]
    return "\n".join(lines)


def _attribution_text(attribution: dict[str, float]) -> str:
    """The error attribution as a sentence: mesh L2 as predicted, then with each group set to the truth, the
    largest drop first."""
    groups = sorted((item for item in attribution.items() if item[0] != "none"), key=lambda item: item[1])
    return (f"Error attribution: mesh L2 {attribution['none']:.3f} mm as predicted; with one group of outputs set to "
            "the truth: " + ", ".join(f"{group} {value:.3f}" for group, value in groups) + " mm.")  # fmt: skip


def _cell(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
