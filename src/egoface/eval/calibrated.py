"""Evaluating the anchor-calibrated encoder: per-subject enrollment from the anchor segments, and its per-frame cost.

`CalibratedPredictor` is an image predictor (`egoface.eval.evaluate.Predictor`) that `evaluate` enrolls before each
subject (`enroll_subject`): the subject's anchor frames (the peak of each anchor segment of the capture script, in
the training tree of its domain: images and segment tables only, never oracle labels) go through phi_exp once, and
every frame is then encoded against that cache, as the runtime would after its enrollment step. What the anchors
cost per frame is measured at run time (`egoface.runtime.bench.measure_anchor_overhead`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from egoface.capture.recording import SubjectInfo
from egoface.data import HeadsetDataset
from egoface.eval.evaluate import ModelPredictor
from egoface.eval.plots import _figure, _save
from egoface.models import CalibratedEncoder, normalize_images

__all__ = ["CalibratedPredictor", "write_ablation_report"]

_TABLE_KEYS = ("mesh_l2_mm", "mouth_shape_l2_mm", "gaze_error_deg", "photometric_l1", "latency_ms_p50")


class CalibratedPredictor(ModelPredictor):
    """A `CalibratedEncoder` enrolled from each subject's anchor segments before that subject's frames."""

    model: CalibratedEncoder

    def __init__(self, model: CalibratedEncoder, name: str) -> None:
        super().__init__(model, name)
        self.enrolled: str | None = None

    def anchor_images(self, root: str, info: SubjectInfo) -> torch.Tensor:
        """The anchor frames of `info.subject`, `(M, C, 1, H, W)` in [0, 1] at the model's resolution, anchors in
        the model's order: the peak frames of the first recording (sorted) holding each anchor segment; raises
        ValueError naming the anchors a subject lacks."""
        anchors = self.model.config.anchors
        dataset = HeadsetDataset(
            root, domains=(info.domain,), splits=(info.split,), subjects=[info.subject], cameras=self.cameras,
            resolution=self.resolution, anchors=anchors,
        )  # fmt: skip
        sample = dataset[0]
        return torch.stack([sample.anchor_images[name] for name in anchors])

    def enroll_subject(self, root: str, info: SubjectInfo) -> None:
        """Cache the anchor features of `info.subject` (its `anchor_images`) for its frames."""
        if self.enrolled == info.subject or not self.model.config.anchors:
            return
        images = self.anchor_images(root, info)
        self.model.set_anchors(self.model.enroll(normalize_images(images, self.model.config)))
        self.enrolled = info.subject


def write_ablation_report(result: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """`out/report.md` (the tables of `egoface ablate calibration`'s JSON `result`) with `anchors_curve.png` (Fig.
    8) and `identities_curve.png` (Fig. 19) beside it. Returns the report's path."""
    out = Path(out)
    lines = [
        f"# Calibration ablation ({result['preset']}, {result['steps']} steps, {result['split']} subjects of the "
        f"{result['domain']} domain)",
        "",
        "## Table 1: calibrated vs uncalibrated and the shipped tracker",
        *_table(result["table1"]),
        "## Table 3: calibration modules (latency: per frame, cached anchors)",
        *_table([result["uncalibrated"] | {"name": "none (uncalibrated)"}, *result["modules"]], overhead=True),
        "## Table 2: code loss vs perceptual losses",
        *_table(result["losses"]),
        "## Targets",
        "",
        f"- mesh L2 reduction from anchors: {_number(result['targets']['mesh_reduction_pct'])} % (target >= "
        f"{result['targets']['mesh_target_pct']:.0f} %, met: {result['targets']['mesh_target_met']})",
        f"- per-frame latency overhead: {_number(result['targets']['latency_overhead_pct'])} % (target <= "
        f"{result['targets']['latency_target_pct']:.0f} %, met: {result['targets']['latency_target_met']})",
        "",
        "![error vs number of anchors](anchors_curve.png) ![error vs training identities](identities_curve.png)",
        "",
    ]
    anchors = result["anchors_curve"]
    _plot(out / "anchors_curve.png", "mesh L2 (mm) vs number of anchors", "anchors",
          {"calibrated": ([r["anchors"] for r in anchors], [r["mesh_l2_mm"] for r in anchors])})  # fmt: skip
    rows = result["identities_curve"]
    counts = [r["identities"] for r in rows]
    series = {label: (counts, [r[label]["mesh_l2_mm"] for r in rows]) for label in ("calibrated", "uncalibrated")}
    _plot(out / "identities_curve.png", "mesh L2 (mm) vs training identities", "training identities", series,
          log_x=True)  # fmt: skip
    path = out / "report.md"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("\n".join(lines), encoding="utf-8")
    os.replace(partial, path)
    return path


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _table(rows: list[dict[str, Any]], overhead: bool = False) -> list[str]:
    keys = (*_TABLE_KEYS, "overhead_pct") if overhead else _TABLE_KEYS
    out = ["", "| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for row in rows:
        cells = [f"not evaluated: {row['error']}"] if "error" in row else [_number(row.get(k)) for k in keys]
        out.append("| " + str(row["name"]) + " | " + " | ".join(cells) + " |")
    return [*out, ""]


def _plot(
    path: Path, title: str, xlabel: str, series: dict[str, tuple[list[int], list[float | None]]], log_x: bool = False
) -> None:
    """Mesh L2 against `xlabel`, one line per series; `log_x`: a base-2 x axis ticked at the series' x values (the
    identity counts double)."""
    figure = _figure((640, 400))
    ax = figure.subplots()
    for label, (xs, ys) in series.items():
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label)
    if log_x:
        ax.set_xscale("log", base=2)
        ticks = sorted({x for xs, _ in series.values() for x in xs})
        ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mesh L2 (mm)")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    _save(figure, path)
