"""`egoface demo`: the main job on its embedded defaults — record unseen subjects, track them with the shipped model,
measure, and show it."""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

from egoface.cli._common import console, print_json, progress_bar

#: The demo's subjects are drawn with a seed the shipped model's training set does not use: unseen identities.
DEMO_SEED = 2026


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo", help="record unseen subjects, track them with the shipped model, print the metrics, write a video"
    )
    demo.add_argument("--out", default="egoface-demo", help="output directory (data/, report/, tracking.mp4)")
    demo.add_argument("--model", default="default", help="a run directory or `default` (the shipped model)")
    demo.add_argument("--headset", default="quest-pro-4", help="rig preset or rig file of the recorded subjects")
    demo.add_argument("--workers", type=int, default=2, help="processes that record the subjects")
    demo.add_argument("--json", action="store_true", help="print metrics.json instead of tables")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from egoface.capture.generate import GENERATION_PRESETS, generate, plan_subjects
    from egoface.cli.eval import load_predictor, print_metric_table
    from egoface.data import DatasetStore
    from egoface.eval.evaluate import NeutralPredictor, evaluate
    from egoface.eval.report import write_report
    from egoface.eval.visualize import recording_frames, write_video
    from egoface.headset import load_rig

    started = time.perf_counter()
    out = Path(args.out)
    data_dir = out / "data"
    rig = load_rig(args.headset)
    preset = GENERATION_PRESETS["demo"]
    settings = preset.settings(rig)
    plans = plan_subjects(("synthetic", "real"), preset.subjects_per_domain, DEMO_SEED, lambda _index: "test")
    cameras = tuple(camera.name for camera in rig.cameras)
    predictor = load_predictor(args.model, cameras)
    console.print(
        f"[bold]egoface demo[/]: tracking {len(plans)} unseen subjects ({', '.join(p.subject for p in plans)}, "
        f"seed {DEMO_SEED}) wearing {rig.name} with the {predictor.name} model"
    )
    with progress_bar(args.quiet or args.json) as progress:
        task = progress.add_task("recording subjects", total=len(plans))
        generate(plans, rig, settings, functools.partial(DatasetStore, data_dir), workers=args.workers,
                 on_subject=lambda _plan, _frames: progress.advance(task))  # fmt: skip
        enrollment = _enroll(predictor, data_dir, [p.subject for p in plans], out / "enrollment.png")
        task = progress.add_task("tracking and scoring", total=2 * len(plans))
        evaluations = [
            evaluate(p, str(data_dir), "test", on_recording=lambda _s, _r: progress.advance(task))
            for p in (predictor, NeutralPredictor(cameras))
        ]
        main = evaluations[0]
        write_report(main, out / "report", evaluations[1:])
        shown = main.domains["synthetic"].recordings[0]
        task = progress.add_task("writing the video", total=len(shown.prediction.expression))
        frames = recording_frames(data_dir, shown.subject, shown.recording,
                                  prediction=(shown.prediction.expression, shown.prediction.gaze))  # fmt: skip
        write_video(frames, out / "tracking.mp4", shown.fps, on_frame=lambda: progress.advance(task))
    if args.json:
        summary = main.to_json()
        summary["compared"] = {other.model: other.to_json() for other in evaluations[1:]}
        if enrollment:
            summary["enrollment"] = enrollment
        print_json(summary)
        return 0
    print_metric_table(main, evaluations[1:])
    console.print(
        f"per-frame latency of {main.model}: {main.latency_ms_p50:.2f} ms median, {main.latency_ms_p99:.2f} ms p99 "
        "(torch, 1 frame, this machine)"
    )
    sheet = f", {out / 'enrollment.png'} (its anchors)" if enrollment else ""
    console.print(
        f"wrote {out / 'tracking.mp4'} ({shown.subject}: cameras | true face | tracked face | expression bars){sheet} "
        f"and {out / 'report' / 'report.md'} in {time.perf_counter() - started:.0f} s"
    )
    return 0


def _enroll(predictor: object, data_dir: Path, subjects: list[str], sheet: Path) -> dict[str, dict[str, object]]:
    """An anchor-calibrated model's enrollment step, as a user makes it once: each subject's anchor expressions
    (the peaks of the capture script's anchor segments) -> cached anchor features. Prints one line per subject,
    writes the first subject's anchor frames to `sheet` (a row per anchor, a column per camera) and returns
    {subject: {anchors, enroll_ms}}; nothing for a model without anchors (evaluation enrolls again per subject)."""
    import torch

    from egoface.data import DatasetStore
    from egoface.eval.calibrated import CalibratedPredictor
    from egoface.models import normalize_images
    from egoface.render.sheets import compose_grid, save_image

    if not isinstance(predictor, CalibratedPredictor) or not predictor.model.config.anchors:
        return {}
    anchors = predictor.model.config.anchors
    store, enrolled = DatasetStore(data_dir), {}
    for subject in subjects:
        images = predictor.anchor_images(str(data_dir), store.subject_info(subject))  # (M, C, 1, H, W) in [0, 1]
        start = time.perf_counter()
        predictor.model.enroll(normalize_images(images, predictor.model.config))
        enroll_ms = 1000.0 * (time.perf_counter() - start)
        enrolled[subject] = {"anchors": list(anchors), "enroll_ms": enroll_ms}
        console.print(f"enrolled {subject}: {len(anchors)} anchor expressions ({', '.join(anchors)}) -> cached "
                      f"anchor features in {enroll_ms:.0f} ms, once per user")  # fmt: skip
        if subject == subjects[0]:
            pixels = (images[:, :, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # (M, C, H, W)
            cells = [(f"{name} / {camera}", pixels[m, c]) for m, name in enumerate(anchors)
                     for c, camera in enumerate(predictor.cameras)]  # fmt: skip
            save_image(compose_grid(cells, columns=len(predictor.cameras)), sheet)
    return enrolled
