"""`egoface track`: run an exported tracker on a source and send the results to OSC, the live viewer and a file.

Each second a status line (frames per second, latency, failures, dropped frames) goes to stderr; at the end a
summary (with `--json`, one JSON object on stdout: keys in README.md).
"""

from __future__ import annotations

import argparse
import math
import queue
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egoface.cli._common import console, print_json
from egoface.runtime.heap import frozen_heap

__all__ = ["Histogram", "TrackLoop", "TrackSummary", "register", "resolve_model"]


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("track", help="track faces live: OSC, live viewer, recording")
    parser.add_argument("--source", required=True, help="where frames come from (see docs/runtime.md 'Sources')")
    parser.add_argument(
        "--model", default="default", help="an exported .onnx file, a run directory (model.onnx or model.pt), default"
    )
    parser.add_argument("--profile", help="calibration profile name (created if missing, saved on exit)")
    parser.add_argument("--profile-dir", help="where profiles live (default: the user's egoface profile folder)")
    parser.add_argument(
        "--osc",
        action="append",
        default=[],
        metavar="KIND[:HOST:PORT]",
        help="send OSC: babble (127.0.0.1:8888), vrchat or unified (127.0.0.1:9000); repeatable",
    )
    parser.add_argument(
        "--osc-refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="send unchanged OSC values again at least this often (0: every value every frame)",
    )
    parser.add_argument("--osc-commands", type=int, metavar="PORT", help="accept /egoface/recenter on this UDP port")
    parser.add_argument("--viewer", action="store_true", help="serve the live viewer (http://127.0.0.1:8765/)")
    parser.add_argument("--viewer-host", default="127.0.0.1", help="viewer address (loopback unless allowed)")
    parser.add_argument("--viewer-port", type=int, default=8765, help="viewer port (0: any free port)")
    parser.add_argument(
        "--viewer-allow-remote", action="store_true", help="allow a non-loopback --viewer-host (needs a token)"
    )
    parser.add_argument("--viewer-token", help="token for the viewer (made up and printed when remote and missing)")
    parser.add_argument("--record", metavar="FILE", help="record the outputs to FILE.jsonl or FILE.csv")
    parser.add_argument(
        "--record-names", default="egoface", help="expression names in the recording: egoface|arkit|unified|movement"
    )
    parser.add_argument("--frames", type=int, help="stop after N frames (default: until the source ends or Ctrl-C)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    parser.add_argument("--quiet", action="store_true", help="no per-second status lines")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=_run)


def resolve_model(spec: str) -> Path:
    """`.onnx` file, a run directory holding `model.onnx`, or `default` (the shipped model's `model.onnx`)."""
    if spec == "default":
        from egoface.models.files import shipped_model_path

        path = shipped_model_path("default") / "model.onnx"
        if not path.is_file():
            raise FileNotFoundError(
                f"the shipped default model has no exported model.onnx ({path}); pass --model FILE.onnx "
                "(`egoface export --model RUN --out FILE.onnx`)"
            )
        return path
    path = Path(spec)
    if path.is_dir():
        path = path / "model.onnx"
    if not path.is_file():
        raise FileNotFoundError(
            f"--model {spec}: no such .onnx file (expected FILE.onnx, RUN/ with model.onnx, default)"
        )
    return path


class Histogram:
    """Millisecond values counted in fixed bins (0.01 ms wide up to 1 s; the last bin holds everything above):
    percentiles to within a bin in constant memory, however long the run."""

    BIN_MS = 0.01
    BINS = 100_000

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS, dtype=np.int64)
        self.count = 0

    def add(self, value_ms: float) -> None:
        self.counts[min(int(value_ms / self.BIN_MS), self.BINS - 1)] += 1
        self.count += 1

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (nearest rank), the centre of its bin, ms; None when empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.count))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return round((index + 0.5) * self.BIN_MS, 3)


@dataclass
class TrackSummary:
    """What a run measured. latency: inside `Tracker.track`; end to end: frame handed over -> last OSC datagram
    sent (or the result out when there is no OSC target). Milliseconds."""

    frames: int = 0
    seconds: float = 0.0
    latency: Histogram = field(default_factory=Histogram)
    end_to_end: Histogram = field(default_factory=Histogram)
    failure_frames: int = 0
    held_frames: int = 0
    commands: int = 0

    def as_json(self, **extra: Any) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else 0.0,
            "latency_ms_p50": self.latency.percentile(50),
            "latency_ms_p99": self.latency.percentile(99),
            "end_to_end_ms_p50": self.end_to_end.percentile(50),
            "end_to_end_ms_p99": self.end_to_end.percentile(99),
            "failure_frames": self.failure_frames,
            "held_frames": self.held_frames,
            "commands": self.commands,
            **extra,
        }


@dataclass
class TrackLoop:
    """Frames -> tracker -> OSC, viewer, recording. `commands`: names queued by the viewer or the OSC listener
    (other threads); the loop runs them between frames, where the tracker is not busy."""

    tracker: Any  # egoface.runtime.tracker.Tracker
    osc: Any = None  # egoface.runtime.osc.OscSender
    viewer: Any = None  # egoface.runtime.server.ViewerServer
    recorder: Any = None  # egoface.runtime.record.OutputRecorder
    status: Callable[[str], None] | None = None
    commands: queue.SimpleQueue[str] = field(default_factory=queue.SimpleQueue)
    summary: TrackSummary = field(default_factory=TrackSummary)
    _recent_ms: list[float] = field(default_factory=list, init=False)  # latencies since the last status line

    def run(self, source: Iterable[tuple[Any, float]], max_frames: int | None = None, dropped: Callable[[], int] = int):
        """Track every (frames, timestamp) of `source` until it ends, `max_frames`, or Ctrl-C."""
        summary = self.summary
        start = last_status = time.perf_counter()
        failures_before = 0  # at the last status line
        with frozen_heap():  # no full garbage collection through the whole heap mid-run
            try:
                for frames, timestamp in _limit(source, max_frames):
                    self._run_commands()
                    result = self._step(frames, timestamp)
                    now = time.perf_counter()
                    if self.status is not None and now - last_status >= 1.0:
                        recent = self._recent_ms
                        line = (
                            f"{now - start:6.1f} s  {len(recent) / (now - last_status):5.1f} fps  latency p50 "
                            f"{np.median(recent):.2f} ms p99 {np.percentile(recent, 99):.2f} ms  failures "
                            f"{summary.failure_frames - failures_before}  dropped {dropped()}"
                        )
                        self.status(
                            line + (f"  [{'; '.join(_failure_text(result.failures))}]" if result.failures else "")
                        )
                        last_status, failures_before = now, summary.failure_frames
                        recent.clear()
            except KeyboardInterrupt:
                pass
        summary.seconds = time.perf_counter() - start
        return summary

    def _step(self, frames: Any, timestamp: float) -> Any:
        """One frame through the tracker and every output; returns the result."""
        begin = time.perf_counter()
        result = self.tracker.track(frames, timestamp)
        if self.osc is not None:
            self.osc.send(result)
        summary = self.summary
        summary.end_to_end.add((time.perf_counter() - begin) * 1000.0)
        summary.latency.add(result.latency_ms)
        self._recent_ms.append(result.latency_ms)
        summary.frames += 1
        summary.failure_frames += bool(result.failures)
        summary.held_frames += bool(result.held)
        if self.viewer is not None:
            cameras = frames if isinstance(frames, Mapping) else dict(zip(self.tracker.cameras, frames, strict=True))
            self.viewer.publish(result, cameras)
        if self.recorder is not None:
            self.recorder.write(result)
        return result

    def _run_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            if command == "recenter":
                self.tracker.recenter()
                self.summary.commands += 1


def _limit(source: Iterable[tuple[Any, float]], max_frames: int | None) -> Iterator[tuple[Any, float]]:
    for count, item in enumerate(source):
        if max_frames is not None and count >= max_frames:
            return
        yield item


def _failure_text(failures: dict[str, list[str]]) -> list[str]:
    return [f"{camera}: {', '.join(names)}" for camera, names in failures.items()]


def _run(args: argparse.Namespace) -> int:
    from egoface.cli.runtime import model_file
    from egoface.runtime.osc import OscCommandListener, OscSender, parse_osc_target
    from egoface.runtime.record import OutputRecorder
    from egoface.runtime.server import ViewerOptions, ViewerServer
    from egoface.runtime.sources import open_source
    from egoface.runtime.tracker import Tracker, TrackerOptions

    if args.frames is not None and args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}")
    targets = [parse_osc_target(spec) for spec in args.osc]  # checked before anything starts
    token = args.viewer_token
    if args.viewer and args.viewer_allow_remote and not token:
        token = secrets.token_urlsafe(24)
    viewer_options = ViewerOptions(args.viewer_host, args.viewer_port, args.viewer_allow_remote, token)  # checked
    model = model_file(args.model)  # an .onnx file, or trained weights exported once into the cache
    with ExitStack() as stack:
        # no spinning worker threads: the sources, OSC and the viewer run in threads of this process (at 2 threads,
        # spinning made a 72 Hz soak drop 52 of 20,000 frames, without it none)
        options = TrackerOptions(
            model, threads=args.threads, profile=args.profile, profile_dir=args.profile_dir, spin=False
        )
        tracker = stack.enter_context(Tracker.create(options))
        loop = TrackLoop(tracker, status=None if args.quiet else lambda line: console.print(line, highlight=False))
        if args.record:  # before the source, which may take a while to open, so that a bad name fails at once
            loop.recorder = stack.enter_context(OutputRecorder(args.record, standard=args.record_names))
        console.print(f"opening source {args.source} (a synthetic subject is rendered first: a few seconds)")
        source = stack.enter_context(open_source(args.source))
        if targets:
            loop.osc = stack.enter_context(OscSender(targets, refresh_s=args.osc_refresh))
            for target in targets:
                console.print(f"OSC {target.kind} -> {target.host}:{target.port}")
        listener = None
        if args.osc_commands is not None:
            try:
                listener = stack.enter_context(OscCommandListener(loop.commands.put, port=args.osc_commands))
            except OSError as error:
                raise ValueError(f"--osc-commands {args.osc_commands}: {error}") from error
            console.print(f"OSC commands: /egoface/recenter on udp://{listener.host}:{listener.port}")
        if args.viewer:
            try:
                loop.viewer = stack.enter_context(ViewerServer(viewer_options, on_command=loop.commands.put))
            except OSError as error:  # most often: the port is taken
                raise ValueError(f"--viewer: {error}; choose another --viewer-port (0: any free port)") from error
            console.print(f"viewer: {loop.viewer.url}")
        frames = ((frame.select(tracker.cameras), frame.timestamp) for frame in source)
        summary = loop.run(frames, args.frames, dropped=lambda: source.dropped)
        report = summary.as_json(
            model=str(model),
            source=args.source,
            cameras=list(tracker.cameras),
            dropped=source.dropped,
            osc_datagrams=loop.osc.sent if loop.osc is not None else 0,
            osc_unchanged=loop.osc.unchanged if loop.osc is not None else 0,
            osc_errors=loop.osc.errors if loop.osc is not None else 0,
            rejected_viewer=dict(loop.viewer.rejected) if loop.viewer is not None else {},
            rejected_osc=dict(listener.rejected) if listener is not None else {},
            record=args.record,
        )
    if args.json:
        print_json(report)
    else:
        console.print(
            f"{report['frames']} frames in {report['seconds']:.1f} s ({report['fps']:.1f} fps); latency p50 "
            f"{report['latency_ms_p50']} ms p99 {report['latency_ms_p99']} ms; end to end p99 "
            f"{report['end_to_end_ms_p99']} ms; failures in {report['failure_frames']} frames; "
            f"dropped {report['dropped']}" + (f"; recorded to {args.record}" if args.record else ""),
            highlight=False,
        )
    return 0
