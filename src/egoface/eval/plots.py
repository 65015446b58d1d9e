"""Report plots (matplotlib, Agg, no pyplot state): predicted vs true curves over a recording, per-expression error
bars, and an error map of the frontal render. Each writes a PNG of a fixed pixel size (the `*_SIZE` constants,
width x height) atomically and returns its path."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from egoface.eval.metrics import FaceTrack, frontal_render, metric_regions, neutral_exposure, vertex_errors_mm
from egoface.eval.refa_metrics import parse_segments
from egoface.eval.visualize import FrontalFace
from egoface.face.names import EXPRESSION_NAMES, expression_index

__all__ = [
    "CURVES_SIZE",
    "CURVE_EXPRESSIONS",
    "ERROR_BARS_SIZE",
    "ERROR_MAP_SIZE",
    "plot_curves",
    "plot_error_map",
    "plot_expression_errors",
]

_DPI = 100
CURVES_SIZE = (1200, 1000)
ERROR_BARS_SIZE = (1400, 520)
ERROR_MAP_SIZE = (1200, 440)
#: The expressions `plot_curves` shows by default (plus a gaze row).
CURVE_EXPRESSIONS: tuple[str, ...] = (
    "jawOpen", "mouthSmile_L", "mouthPucker", "eyeBlink_L", "eyeBlink_R", "browInnerUp_L",
)  # fmt: skip


def _figure(size: tuple[int, int]) -> Figure:
    figure = Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write `figure` as a PNG of exactly its pixel size, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(partial, dpi=_DPI, format="png")
        os.chmod(partial, 0o644)  # mkstemp makes it private (0600); a plot is for reading
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path


def plot_curves(
    path: str | os.PathLike[str],
    pred: FaceTrack,
    true: FaceTrack,
    fps: float,
    segments: Sequence[Mapping[str, Any]] | None = None,
    names: Sequence[str] = CURVE_EXPRESSIONS,
    title: str = "",
) -> Path:
    """Predicted (solid) vs true (dashed) coefficients of `names` over a recording, one row each, then the left eye's
    gaze yaw and pitch; peak (hold) frames of `segments` shaded and labelled. `CURVES_SIZE` pixels."""
    if len(pred) != len(true):
        raise ValueError(f"prediction has {len(pred)} frames but the truth has {len(true)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    columns = [expression_index(name) for name in names]
    time = np.arange(len(pred)) / fps
    rows = parse_segments(segments, len(pred)) if segments is not None else []
    peaks = [(s.name, s.peak) for s in rows if s.peak is not None]
    figure = _figure(CURVES_SIZE)
    axes = figure.subplots(len(columns) + 1, 1, sharex=True, squeeze=False)[:, 0]
    for row, (ax, name, column) in enumerate(zip(axes, names, columns, strict=False)):
        ax.plot(time, true.expression[:, column], "--", color="0.35", lw=1.2, label="true")
        ax.plot(time, pred.expression[:, column], color="tab:blue", lw=1.2, label="predicted")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        if row == 0:
            ax.legend(loc="upper right", fontsize=8, ncol=2)
    gaze_ax = axes[-1]
    for index, (label, color) in enumerate((("yaw", "tab:orange"), ("pitch", "tab:green"))):
        gaze_ax.plot(time, true.gaze[:, 0, index], "--", color=color, lw=1.0, alpha=0.7)
        gaze_ax.plot(time, pred.gaze[:, 0, index], color=color, lw=1.2, label=f"left eye {label}")
    gaze_ax.set_ylabel("gaze (deg)", rotation=0, ha="right", va="center", fontsize=9)
    gaze_ax.legend(loc="upper right", fontsize=8, ncol=2)
    gaze_ax.set_xlabel("time (s)")
    for ax in axes:
        for _, peak in peaks:
            ax.axvspan(peak.start / fps, peak.stop / fps, color="0.9", zorder=0)
    for name, peak in peaks:
        axes[0].text(peak.start / fps, 1.07, name, fontsize=7, rotation=30, va="bottom")
    figure.suptitle(title or "predicted (solid) vs true (dashed)", fontsize=11)
    figure.subplots_adjust(left=0.13, right=0.98, top=0.9, bottom=0.06, hspace=0.15)
    return _save(figure, path)


def plot_expression_errors(
    path: str | os.PathLike[str], errors: Mapping[str, Mapping[str, float]], title: str = "", unit: str = "mean |error|"
) -> Path:
    """Grouped bars: for each expression (canonical order) one bar per method. errors: method -> expression name
    -> error (e.g. `per_expression_errors` of each model). `ERROR_BARS_SIZE` pixels."""
    if not errors:
        raise ValueError("errors needs at least one method")
    names = [name for name in EXPRESSION_NAMES if any(name in per_name for per_name in errors.values())]
    if not names:
        raise ValueError("errors name no known expression")
    figure = _figure(ERROR_BARS_SIZE)
    ax = figure.subplots()
    width = 0.8 / len(errors)
    positions = np.arange(len(names))
    for i, (method, per_name) in enumerate(errors.items()):
        values = [per_name.get(name, np.nan) for name in names]
        ax.bar(positions + (i - (len(errors) - 1) / 2) * width, values, width, label=method)
    ax.set_xticks(positions, names, rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(unit)
    ax.legend(fontsize=8)
    ax.set_title(title or "per-expression error", fontsize=11)
    figure.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.3)
    return _save(figure, path)


def plot_error_map(
    path: str | os.PathLike[str],
    face: FrontalFace,
    pred: FaceTrack,
    true: FaceTrack,
    frame: int,
    max_mm: float | None = None,
    title: str = "",
) -> Path:
    """Frontal renders of the true and the predicted face at `frame`, and the per-vertex mesh error |v_pred - v_true|
    (mm, interpolated across each triangle) colour-mapped over the true render's face. The colour scale runs to
    `max_mm` (default: the frame's largest face error, at least 1 mm). `ERROR_MAP_SIZE` pixels."""
    if not 0 <= frame < len(true):
        raise ValueError(f"frame must lie in [0, {len(true)}), got {frame}")
    exposure = neutral_exposure(face)
    truth = frontal_render(face, true.expression[frame], true.gaze[frame], exposure)
    predicted = frontal_render(face, pred.expression[frame], pred.gaze[frame], exposure)
    errors = vertex_errors_mm(pred.take([frame]), true.take([frame]), face.rig)[0]  # (V,) mm
    fragments = truth.fragments
    corners = face.rig.triangles[np.maximum(fragments.triangle_id, 0)]  # (H, W, 3)
    pixel_error = (fragments.barycentrics * errors[corners]).sum(axis=-1)  # (H, W) mm
    top = max_mm if max_mm is not None else max(1.0, float(errors[metric_regions(face.rig.topology)["face"]].max()))
    norm = Normalize(0.0, top)
    colours = colormaps["inferno"](norm(pixel_error))[..., :3]
    grey = np.repeat(truth.image[..., None], 3, axis=-1)
    overlay = np.where(truth.mask[..., None], 0.25 * grey + 0.75 * colours, grey)

    figure = _figure(ERROR_MAP_SIZE)
    axes = figure.subplots(1, 3)
    for ax, image, label in zip(
        axes, (truth.image, predicted.image, overlay), ("true", "predicted", "mesh error"), strict=True
    ):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    figure.colorbar(ScalarMappable(norm=norm, cmap="inferno"), ax=axes[2], fraction=0.046, pad=0.02, label="mm")
    figure.suptitle(title or f"frame {frame}", fontsize=11)
    figure.subplots_adjust(left=0.01, right=0.95, top=0.86, bottom=0.03, wspace=0.05)
    return _save(figure, path)
