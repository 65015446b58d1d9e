"""`egoface export` (a trained model to ONNX with its metadata) and `egoface enroll` (guided calibration into a
user profile). `model_file` turns a `--model` spec into an ONNX file for every runtime command."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from egoface.cli._common import console, print_json, progress_bar

if TYPE_CHECKING:
    import numpy as np

    from egoface.models import TrackerModel
    from egoface.runtime.tracker import Inference

__all__ = ["load_tracker_model", "model_file", "register", "register_bench"]


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="export a trained tracker to ONNX for the runtime")
    export.add_argument("--model", default="default", help="a run directory, a model file, or `default` (shipped)")
    export.add_argument("--out", required=True, help="the .onnx file to write")
    export.add_argument("--data", default=None, help="dataset store: summarize the training features (OOD detection)")
    export.add_argument("--feature-frames", type=int, default=2000, help="frames summarized with --data")
    export.add_argument("--json", action="store_true", help="print JSON")
    export.set_defaults(run=_export)
    enroll = commands.add_parser("enroll", help="guided calibration: neutral and anchor expressions into a profile")
    enroll.add_argument("--source", required=True, help="frame source (see `egoface track --help`, docs/runtime.md)")
    enroll.add_argument("--profile", required=True, help="profile name (created or updated)")
    enroll.add_argument("--model", default="default", help="an .onnx file, a run directory, or `default`")
    enroll.add_argument("--anchors", default=None, help="comma-separated anchors (default: all, neutral first)")
    enroll.add_argument("--frames", type=int, default=30, help="frames captured per anchor")
    enroll.add_argument("--countdown", type=float, default=None, help="seconds before each capture instead of Enter")
    enroll.add_argument("--profiles", default=None, help="profile directory (default $EGOFACE_PROFILES or ~/.config)")
    enroll.add_argument("--json", action="store_true", help="print JSON")
    enroll.set_defaults(run=_enroll)


def register_bench(bench: argparse._SubParsersAction) -> None:
    """Adds `bench latency` and `bench soak` to the `bench` subcommand group (created in `egoface.cli.bench`)."""
    latency = bench.add_parser("latency", help="per-frame tracker latency vs. this machine's compute bound")
    latency.add_argument(
        "--model", default="default", help="a run, a model file, `default`, or a registered name (random weights)"
    )
    latency.add_argument("--frames", type=int, default=500, help="timed frames per case")
    latency.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    latency.add_argument(
        "--native-size", type=int, default=None, help="px a side of the `native` case (default: the model's own)"
    )
    latency.add_argument("--json", action="store_true", help="print JSON")
    latency.set_defaults(run=_bench_latency)
    soak = bench.add_parser("soak", help="a long live run on a synthetic subject: memory growth, dropped outputs")
    soak.add_argument("--model", default="default", help="an .onnx file, a run, `default`, or a registered name")
    soak.add_argument("--frames", type=int, default=20_000, help="frames to track")
    soak.add_argument("--fps", type=float, default=72.0, help="source rate, paced in real time")
    soak.add_argument("--size", type=int, default=96, help="rendered camera images, px a side")
    soak.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    soak.add_argument("--json", action="store_true", help="print JSON")
    soak.set_defaults(run=_bench_soak)


def load_tracker_model(spec: str, registered: bool = False) -> TrackerModel:
    """`default` (the shipped model), a run directory / model file, or (for benchmarks, `registered=True`) a
    registered model name (a tracker or a calibrated encoder) with random weights, as a torch model in eval mode."""
    from egoface.models import TrackerModel, create_model, list_models, load_model, load_shipped_model
    from egoface.models.calibrated import create_calibrated_model, list_calibrated_models

    if registered and spec in list_calibrated_models():
        return create_calibrated_model(spec).eval()
    if registered and spec in list_models():
        model = create_model(spec)
        if not isinstance(model, TrackerModel):
            raise ValueError(f"{spec} is not a tracker")
        return model.eval()
    return load_shipped_model("default") if spec == "default" else load_model(spec)


def model_file(spec: str, cache: Path | None = None) -> Path:
    """An ONNX file for a `--model` spec: what `egoface track` accepts (an `.onnx` file, a run directory holding
    `model.onnx`, the shipped `model.onnx`), else a run directory, model file or `default` whose torch weights are
    exported once into `cache` (default `~/.cache/egoface/onnx`), keyed by the weights file's path and mtime. A
    calibrated encoder's enrollment graph is written beside the file (`<stem>.enroll.onnx`, named in its
    metadata), wherever the file comes from."""
    from egoface.cli.track import resolve_model

    try:
        return resolve_model(spec)
    except FileNotFoundError:
        if spec.endswith(".onnx"):
            raise
    from egoface.models import shipped_model_path
    from egoface.runtime.export import export_onnx

    weights = shipped_model_path("default") / "model.pt" if spec == "default" else Path(spec)
    weights = weights / "model.pt" if weights.is_dir() else weights
    if not weights.is_file():
        raise FileNotFoundError(f"--model {spec}: no exported .onnx and no trained weights at {weights}")
    key = hashlib.sha256(f"{weights.resolve()}:{weights.stat().st_mtime_ns}".encode()).hexdigest()[:16]
    out = (cache or Path.home() / ".cache" / "egoface" / "onnx") / f"{key}.onnx"
    if not out.is_file() or _lacks_enroll_graph(out):
        console.print(f"exporting {spec} to {out}")
        export_onnx(load_tracker_model(spec), out, spec)
    return out


def _lacks_enroll_graph(path: Path) -> bool:
    """Whether `path` is a calibrated encoder whose enrollment graph is not beside it."""
    from egoface.runtime.tracker import AnchorInput, read_metadata

    anchor_input = AnchorInput.from_metadata(read_metadata(path))
    return anchor_input is not None and not (path.parent / anchor_input.enroll_graph).is_file()


def _export(args: argparse.Namespace) -> int:
    from egoface.runtime.export import enroll_graph_path, export_onnx, feature_statistics

    model = load_tracker_model(args.model)
    ood = None
    if args.data is not None:
        with progress_bar(args.json) as progress:
            progress.add_task("summarizing training features", total=None)
            ood = feature_statistics(model, args.data, max_frames=args.feature_frames)
    path = export_onnx(model, args.out, args.model, ood)
    anchors = list(getattr(model.config, "anchors", ()))  # a calibrated encoder's, else none
    result: dict[str, Any] = {
        "path": str(path),
        "model": args.model,
        "cameras": list(model.config.cameras),
        "input_size": list(model.config.input_size),
        "anchors": anchors,
        "enroll_graph": str(enroll_graph_path(path)) if anchors else None,
        "ood": ood is not None,
        "ood_blocks": [] if ood is None else [block.name for block in ood.blocks],
        "feature_frames": 0 if ood is None else ood.frames,
        "bytes": path.stat().st_size,
    }
    if args.json:
        print_json(result)
        return 0
    note = (
        f"OOD detection from {result['feature_frames']} training frames"
        if ood is not None
        else "no feature statistics: out-of-distribution detection is off (pass --data DIR to enable it)"
    )
    Console().print(f"wrote {path} ({result['bytes'] / 1e6:.1f} MB; cameras {', '.join(result['cameras'])}); {note}")
    if anchors:
        Console().print(
            f"anchor-calibrated ({', '.join(anchors)}): enrollment graph {result['enroll_graph']}; keep the two files "
            "together and enroll each user with `egoface enroll --profile NAME --model FILE.onnx`"
        )
    return 0


def _bench_latency(args: argparse.Namespace) -> int:
    from egoface.runtime.bench import LATENCY_TARGETS, benchmark_latency

    model = load_tracker_model(args.model, registered=True)
    with progress_bar(args.json) as progress:
        progress.add_task(f"timing {args.model}", total=None)
        native = None if args.native_size is None else (args.native_size, args.native_size)
        result = benchmark_latency(model, args.model, threads=args.threads, frames=args.frames, native_size=native)
    if args.json:
        print_json(result)
        return 0
    out = Console()
    for label, case in (("4 cameras x 192x192", result), ("native", result["native"])):
        size = "x".join(str(v) for v in case["input_size"])
        out.print(
            f"{label} ({case['cameras']} x {size}): p50 {case['latency_ms_p50']:.2f} ms, p99 "
            f"{case['latency_ms_p99']:.2f} ms; {case['flops_per_frame'] / 1e9:.3f} GFLOP -> bound "
            f"{case['bound_ms']:.2f} ms, ratio {case['ratio_to_bound']:.2f}; end to end p99 "
            f"{case['end_to_end_ms_p99']:.2f} ms"
        )
        if case["anchor_timing"] is not None:
            timing = case["anchor_timing"]
            out.print(
                f"  anchors: p50 {timing['with_anchors']['latency_ms_p50']:.2f} ms with, "
                f"{timing['without_anchors']['latency_ms_p50']:.2f} ms without (module none, alternating frames): "
                f"overhead {100 * case['anchor_overhead']:+.1f}%"
            )
    out.print(
        f"throughput {result['throughput_gflops']:.1f} GFLOP/s ({args.threads} thread(s)); targets: p50 <= "
        f"{LATENCY_TARGETS['latency_ms_p50']} ms, <= {LATENCY_TARGETS['ratio_to_bound']}x bound, end to end p99 <= "
        f"{LATENCY_TARGETS['end_to_end_ms_p99']} ms"
    )
    return 0


def _bench_soak(args: argparse.Namespace) -> int:
    import tempfile

    from egoface.models import list_models
    from egoface.runtime.bench import soak
    from egoface.runtime.export import export_onnx

    with tempfile.TemporaryDirectory(prefix="egoface-soak-") as directory:
        if args.model in list_models():
            path = export_onnx(load_tracker_model(args.model, registered=True), Path(directory) / "m.onnx", args.model)
        else:
            path = model_file(args.model)
        console.print(f"rendering the synthetic subject ({args.size}x{args.size}), then {args.frames} live frames")
        with progress_bar(args.json) as progress:
            task = progress.add_task("soak", total=args.frames)
            result = soak(
                path,
                args.frames,
                args.fps,
                args.size,
                args.threads,
                on_frame=lambda done, _total: progress.update(task, completed=done),
            )
    result["model"] = args.model
    if args.json:
        print_json(result)
        return 0
    Console().print(
        f"{result['outputs']} outputs of {result['frames']} frames at {args.fps:g} Hz ({result['fps']:.1f}/s), "
        f"dropped {result['dropped']}; memory {result['rss_mb_start']:.1f} -> {result['rss_mb_end']:.1f} MB "
        f"({result['rss_growth_mb']:+.2f} MB); latency p50 {result['latency_ms_p50']:.2f} ms p99 "
        f"{result['latency_ms_p99']:.2f} ms"
    )
    return 0


def _enroll(args: argparse.Namespace) -> int:
    """Capture every anchor first (the frames are kept), then: for a calibrated model, its enrollment graph turns
    them into the profile's anchor memory; then the tracker (with that memory) gives each anchor's mean features
    and raw expression, the neutral's becoming the profile's neutral."""
    from egoface.runtime.calibration import ANCHOR_PROMPTS, ProfileStore, enroll
    from egoface.runtime.sources import open_source
    from egoface.runtime.tracker import AnchorEnroller, AnchorInput, Frames, Tracker, TrackerOptions, read_metadata

    path = model_file(args.model)
    metadata = read_metadata(path)
    anchor_input = AnchorInput.from_metadata(metadata)
    needed = list(anchor_input.anchors) if anchor_input is not None else []
    if args.anchors is not None:
        anchors = [a.strip() for a in args.anchors.split(",")]
    else:
        anchors = needed or list(ANCHOR_PROMPTS)
    unknown = [a for a in anchors if a not in ANCHOR_PROMPTS]
    if unknown:
        raise ValueError(f"unknown anchors {unknown}; anchors are {', '.join(ANCHOR_PROMPTS)}")
    lacking = [a for a in needed if a not in anchors]
    if lacking:
        raise ValueError(f"the calibrated model needs anchors {needed}; --anchors lacks {lacking}")
    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}")
    cameras = tuple(json.loads(metadata["egoface.cameras"]))
    interactive = args.countdown is None and sys.stdin.isatty()
    captured: dict[str, list[Frames]] = {}
    with open_source(args.source) as source:
        for name in anchors:
            console.print(f"[bold]{name}[/]: {ANCHOR_PROMPTS[name]}")
            if interactive:
                console.input("  press Enter when ready ")  # the prompt goes to stderr, like all progress
            else:
                time.sleep(args.countdown or 0.0)
            frames: list[Frames] = []
            while len(frames) < args.frames:
                frame = source.read()
                if frame is None:
                    raise ValueError(f"the source ended before {args.frames} frames of {name!r} were captured")
                images = frame.select(cameras)
                if all(image is not None for image in images.values()):  # else a camera is reconnecting: wait
                    frames.append(images)
            captured[name] = frames
    store = ProfileStore(args.profiles)
    profile = store.load_or_new(args.profile)
    profile.model = metadata.get("egoface.model_name", "")
    if anchor_input is not None:
        memory = AnchorEnroller(path).enroll(captured)
        profile.memories[memory.model_id] = memory
    with Tracker.create(TrackerOptions(path, profile=profile)) as tracker:
        enroll(profile, lambda name: [_sample(tracker.infer(f)) for f in captured[name]], anchors)
    saved = store.save(profile)
    result = {
        "profile": args.profile,
        "path": str(saved),
        "model": profile.model,
        "anchors": {name: profile.anchors[name].frames for name in anchors},
        "neutral": profile.neutral is not None,
        "anchor_memory": None
        if anchor_input is None
        else {"model_id": anchor_input.model_id, "size": anchor_input.size},
    }
    if args.json:
        print_json(result)
    elif anchor_input is not None:
        Console().print(
            f"saved profile {args.profile!r} to {saved}: {len(anchors)} anchors and the calibrated model's anchor "
            f"memory ({anchor_input.size} values, model {anchor_input.model_id}); track with --profile {args.profile}"
        )
    else:
        Console().print(
            f"saved profile {args.profile!r} to {saved}: {len(anchors)} anchors (this model is not anchor-calibrated: "
            "the neutral re-centres its outputs; the other anchors are kept for reference)"
        )
    return 0


def _sample(inference: Inference) -> tuple[np.ndarray, np.ndarray]:
    """An inference's (features, raw expression), what `egoface.runtime.calibration.enroll` averages per anchor."""
    return inference.features, inference.expression
