"""`egoface bench render|generate`: speed measured as medians of several runs, reference and target beside it.

`bench train`, `bench latency` and `bench soak` are registered by their command modules (train, runtime).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import resource
import statistics
import tempfile

from rich.console import Console

from egoface.cli import runtime, train
from egoface.cli._common import console, print_json

#: bench generate's target (issue: at least 60 frames/s for 4 cameras at 192x192 with 2 workers).
GENERATE_TARGET_FPS = 60.0


def register(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    render = bench.add_parser("render", help="views per second of the fast and reference render paths")
    render.add_argument("--repeats", type=int, default=50, help="timed fast-path views; the median is reported")
    render.add_argument("--json", action="store_true", help="print JSON")
    render.set_defaults(run=_render)
    generate = bench.add_parser("generate", help="frames per second of recording generation (render+sensor+write)")
    generate.add_argument("--workers", type=int, default=2, help="worker processes")
    generate.add_argument("--subjects", type=int, default=4, help="subjects per run")
    generate.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported")
    generate.add_argument("--json", action="store_true", help="print JSON")
    generate.set_defaults(run=_generate)
    train.register_bench(bench)
    runtime.register_bench(bench)


def _render(args: argparse.Namespace) -> int:
    from egoface.render.bench import benchmark_render

    result = benchmark_render(repeats=args.repeats)
    if args.json:
        print_json(result)
    else:
        Console().print(
            f"fast path: {result['views_per_second']:.0f} views/s; reference: "
            f"{result['reference_views_per_second']:.2f} views/s; speedup {result['speedup']:.0f}x "
            f"({result['mesh']}, 192x192 fisheye, medians)"
        )
    return 0


def _cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its finished child processes (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _generate(args: argparse.Namespace) -> int:
    """4-camera (quest-pro-4) synthetic recordings at 192x192, 30 Hz, tiny script, written to a temporary store."""
    from egoface.capture.generate import GENERATION_PRESETS, generate, plan_subjects
    from egoface.data import DatasetStore
    from egoface.headset import load_rig

    rig = load_rig("quest-pro-4")
    settings = GENERATION_PRESETS["tiny"].settings(rig)
    settings = dataclasses.replace(settings, resolution=(192, 192))
    plans = plan_subjects(["synthetic"], args.subjects, 0, lambda _index: "train")
    rates, cpu_rates = [], []
    for run in range(args.repeats):
        cpu_start = _cpu_seconds()
        with tempfile.TemporaryDirectory(prefix="egoface-bench-") as root:
            summary = generate(plans, rig, settings, functools.partial(DatasetStore, root), workers=args.workers)
        rates.append(summary.frames / summary.seconds)
        cpu_rates.append(summary.frames / (_cpu_seconds() - cpu_start))
        console.print(f"run {run + 1}/{args.repeats}: {rates[-1]:.1f} frames/s, {cpu_rates[-1]:.1f} per CPU second")
    result = {
        "frames_per_second": statistics.median(rates),
        "frames_per_cpu_second": statistics.median(cpu_rates),
        "runs": rates,
        "workers": args.workers,
        "cameras": len(rig.cameras),
        "resolution": [192, 192],
        "frames_per_run": summary.frames,
        "target_frames_per_second": GENERATE_TARGET_FPS,
    }
    if args.json:
        print_json(result)
    else:
        Console().print(
            f"{result['frames_per_second']:.1f} frames/s (median of {args.repeats}; 4 cameras at 192x192, "
            f"{args.workers} workers, incl. process start-up); target {GENERATE_TARGET_FPS:.0f}"
        )
    return 0
