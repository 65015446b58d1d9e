"""Recording the tracker's outputs: one line per frame, JSON Lines (`.jsonl`) or CSV (`.csv`).

While recording, lines go to `FILE.partial` (each line written whole and flushed, so a crash leaves every finished
frame readable); `close` renames it to `FILE` in one step, so `FILE` is either a complete recording or absent.

JSONL line: `timestamp` (s), `frame`, `latency_ms`, `held`, `expressions` ({name: value} in `standard`'s names),
`gaze` ([[left yaw, left pitch], [right yaw, right pitch]] deg), `confidence` ({region: value}), `failures`
({camera: [names]}), and `head_rotation` (3x3) / `head_translation` (mm) when the model has a head pose.
CSV: the columns of `csv_columns(standard)`: the same scalars, one column per expression, `gaze_L_yaw`,
`gaze_L_pitch`, `gaze_R_yaw`, `gaze_R_pitch`, `confidence_<region>`, and `failures` as `camera:name;...`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from egoface.face.mappings import STANDARDS
from egoface.face.names import EXPRESSION_NAMES
from egoface.runtime.result import REGIONS, TrackResult

__all__ = ["RECORD_FORMATS", "OutputRecorder", "csv_columns", "read_records", "record_fields"]

RECORD_FORMATS = {".jsonl": "jsonl", ".csv": "csv"}


def _names(standard: str) -> tuple[str, ...]:
    if standard == "egoface":
        return EXPRESSION_NAMES
    if standard not in STANDARDS:
        raise ValueError(f"unknown expression standard {standard!r}; known: egoface, {', '.join(STANDARDS)}")
    return STANDARDS[standard].names


def csv_columns(standard: str = "egoface") -> list[str]:
    """The CSV header for expressions named in `standard`."""
    gaze = ["gaze_L_yaw", "gaze_L_pitch", "gaze_R_yaw", "gaze_R_pitch"]
    confidence = [f"confidence_{region}" for region in REGIONS]
    return ["timestamp", "frame", "latency_ms", "held", *_names(standard), *gaze, *confidence, "failures"]


def record_fields(result: TrackResult, standard: str = "egoface") -> dict[str, Any]:
    """One frame as the JSON-ready dict of a JSONL line."""
    fields: dict[str, Any] = {
        "timestamp": result.timestamp,
        "frame": result.frame_index,
        "latency_ms": round(float(result.latency_ms), 4),
        "held": bool(result.held),
        "expressions": {name: round(value, 6) for name, value in result.expressions(standard).items()},
        "gaze": [[round(float(v), 4) for v in eye] for eye in result.gaze],
        "confidence": {region: float(result.confidence.get(region, 0.0)) for region in REGIONS},
        "failures": {camera: list(names) for camera, names in result.failures.items()},
    }
    if result.head_rotation is not None and result.head_translation is not None:
        fields["head_rotation"] = [[float(v) for v in row] for row in result.head_rotation]
        fields["head_translation"] = [float(v) for v in result.head_translation]
    return fields


class OutputRecorder:
    """Writes results to `path` (`.jsonl` or `.csv`); a context manager. `frames`: lines written so far.

    standard: the expression names to record (`egoface`, `arkit`, `unified`, `movement`, `mediapipe`).
    """

    def __init__(self, path: str | os.PathLike[str], standard: str = "egoface") -> None:
        self.path = Path(path)
        self.format = RECORD_FORMATS.get(self.path.suffix.lower(), "")
        if not self.format:
            raise ValueError(f"--record {self.path}: unknown file type; expected a name ending in .jsonl or .csv")
        self.standard = standard
        self._columns = csv_columns(standard)  # also checks the standard
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self.partial, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by close())
        self.frames = 0
        if self.format == "csv":
            self._write_line(self._csv_line(self._columns))

    def _csv_line(self, row: list[Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        return buffer.getvalue()

    def _write_line(self, line: str) -> None:
        self._file.write(line)  # one whole line per write, flushed: a crash leaves complete lines
        self._file.flush()

    def write(self, result: TrackResult) -> None:
        """Append one frame."""
        if self.format == "jsonl":
            self._write_line(json.dumps(record_fields(result, self.standard), separators=(",", ":")) + "\n")
        else:
            expressions = result.expressions(self.standard)
            failures = ";".join(f"{camera}:{name}" for camera, names in result.failures.items() for name in names)
            row = [
                result.timestamp,
                result.frame_index,
                round(float(result.latency_ms), 4),
                int(result.held),
                *(round(expressions[name], 6) for name in _names(self.standard)),
                *(round(float(v), 4) for v in result.gaze.reshape(-1)),
                *(float(result.confidence.get(region, 0.0)) for region in REGIONS),
                failures,
            ]
            self._write_line(self._csv_line(row))
        self.frames += 1

    def close(self) -> None:
        """Finish: the recording appears at `path` complete."""
        if self._file.closed:
            return
        self._file.close()
        os.replace(self.partial, self.path)

    def __enter__(self) -> OutputRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The frames of a recording (finished, or a `.partial` left by a crash: an unfinished last line is skipped).
    JSONL lines come back as written; CSV rows as {column: str}."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines = lines[:-1]
    suffix = path.suffix if path.suffix != ".partial" else Path(path.stem).suffix
    if suffix.lower() == ".csv":
        return list(csv.DictReader(lines))
    return [json.loads(line) for line in lines if line.strip()]
