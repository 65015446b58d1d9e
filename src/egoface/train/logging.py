"""Run metrics: one JSON object per line in `RUN/metrics.jsonl`, mirrored to TensorBoard when it is installed.

Line kinds (key `kind`), every line also has `step` (optimizer steps done) and `time_s` (seconds since the run
directory was first trained in, across resumes):

- `train`: `loss` (the weighted total, including `loss.expression_l2`'s squared term), `loss_expression` (the L1),
  `loss_gaze`, `loss_geometry` (null when off) averaged over the steps since
  the previous line, `lr`, `samples_per_second` (over those steps), `epoch`;
- `val`: `val_loss`, `val_loss_expression`, `val_loss_gaze`, `val_loss_geometry` (null when off),
  `val_gaze_error_deg` (mean absolute yaw/pitch error), `val_samples`, `best` (true when it improved the best).

When a run resumes from a checkpoint at step S, lines with step > S (written after that checkpoint by the
interrupted process) are dropped first, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["TRAIN_KEYS", "VAL_KEYS", "MetricsLog", "read_metrics"]

TRAIN_KEYS = (
    "kind", "step", "time_s", "epoch", "loss", "loss_expression", "loss_gaze", "loss_geometry", "lr",
    "samples_per_second",
)  # fmt: skip
VAL_KEYS = (
    "kind", "step", "time_s", "val_loss", "val_loss_expression", "val_loss_gaze", "val_loss_geometry",
    "val_gaze_error_deg", "val_samples", "best",
)  # fmt: skip


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every line of a metrics file, parsed."""
    text = Path(path).read_text() if Path(path).exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class MetricsLog:
    """Appends metric lines; `resume_step` truncates what came after the checkpoint being resumed."""

    def __init__(self, run_dir: str | os.PathLike[str], resume_step: int = 0, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        kept = [line for line in read_metrics(self.path) if line["step"] <= resume_step]
        self.time_offset = max((float(line["time_s"]) for line in kept), default=0.0)
        self.path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self._writer = _tensorboard_writer(Path(run_dir) / "tensorboard") if tensorboard else None

    def write(self, kind: str, values: dict[str, Any]) -> None:
        """Append one line of `kind` ('train' or 'val'); `values` must hold that kind's keys (see module doc)."""
        keys = TRAIN_KEYS if kind == "train" else VAL_KEYS
        line = {"kind": kind, **values}
        line["time_s"] = round(self.time_offset + float(values["time_s"]), 3)
        missing = [k for k in keys if k not in line]
        if missing:
            raise ValueError(f"a {kind} metrics line needs {missing}")
        with open(self.path, "a") as handle:
            handle.write(json.dumps({k: _plain(line[k]) for k in keys}) + "\n")
        if self._writer is not None:
            for key in keys[3:]:
                value = line[key]
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, line["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _tensorboard_writer(directory: Path) -> Any:
    """A `SummaryWriter` when tensorboard is installed (it is optional, not a dependency), else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(directory))
