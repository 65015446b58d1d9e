"""`egoface generate`, `egoface data info|check`, `egoface show`."""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path

from rich.console import Console
from rich.table import Table

from egoface.cli._common import console, print_json, progress_bar

#: `egoface.capture.generate.GENERATION_PRESETS`' names, here so the CLI starts without importing the renderer
#: (tests/test_cli.py checks they agree).
GENERATION_PRESET_NAMES = ("tiny", "small", "default", "many", "paper", "many-192", "demo")


def register(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate", help="synthesize headset recordings into a dataset store")
    generate.add_argument("--preset", default="tiny", choices=GENERATION_PRESET_NAMES, help="dataset size")
    generate.add_argument("--headset", default="quest-pro-4", help="rig preset name or rig file (YAML/JSON)")
    generate.add_argument(
        "--domains", default="synthetic,real,unlabeled", help="comma-separated subset of synthetic,real,unlabeled"
    )
    generate.add_argument("--subjects", type=int, default=None, help="subjects per domain (default: the preset's)")
    generate.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    generate.add_argument("--shard", default="0/1", help="generate only shard i of n (zero-based), e.g. 0/4")
    generate.add_argument("--real-faces", default=None, help="face model of the real domain, e.g. ict:PATH")
    generate.add_argument("--seed", type=int, default=0, help="dataset seed")
    generate.add_argument(
        "--idiosyncrasies",
        type=float,
        default=None,
        metavar="STRENGTH",
        help="person-specific expression idiosyncrasies for every domain (1 = the real domain's: per-shape gain "
        "+-20%%, asymmetry +-15%%, 25%% perturbed shapes; default: each domain's own, 0 for synthetic)",
    )
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.add_argument("--out", required=True, help="dataset directory (created or resumed)")
    generate.set_defaults(run=_generate)

    data = commands.add_parser("data", help="dataset stores: info and integrity").add_subparsers(
        dest="data_command", required=True
    )
    info = data.add_parser("info", help="subjects, recordings, frames per domain and split, cameras, size")
    info.add_argument("dir")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_info)
    check = data.add_parser("check", help="read every chunk and check shapes, checksums and consistency")
    check.add_argument("dir")
    check.add_argument("--json", action="store_true", help="print JSON")
    check.add_argument("--quiet", action="store_true", help="no progress bar")
    check.set_defaults(run=_check)

    show = commands.add_parser("show", help="a video or peak contact sheet of a recording")
    show.add_argument("dir")
    show.add_argument("--subject", default=None, help="subject id (default: the first)")
    show.add_argument("--recording", default=None, help="recording name (default: the subject's first)")
    show.add_argument("--size", type=int, default=160, help="tile size in pixels")
    show.add_argument("--quiet", action="store_true", help="no progress bar")
    show.add_argument("--out", required=True, help="FILE.mp4 (video of every frame) or FILE.png (segment peaks)")
    show.set_defaults(run=_show)


def _generate(args: argparse.Namespace) -> int:
    from egoface.capture.generate import GENERATION_PRESETS, frames_per_subject, generate, plan_subjects
    from egoface.data import DatasetStore, assign_split, parse_shard
    from egoface.headset import load_rig

    shard = parse_shard(args.shard)
    rig = load_rig(args.headset)
    preset = GENERATION_PRESETS[args.preset]
    settings = dataclasses.replace(preset.settings(rig), idiosyncrasies=args.idiosyncrasies)
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    plans = plan_subjects(
        domains,
        args.subjects or preset.subjects_per_domain,
        args.seed,
        functools.partial(assign_split, seed=args.seed),
        args.real_faces,
    )
    plans = [plan for plan in plans if shard.contains(plan.index)]
    per_subject = frames_per_subject(settings)
    console.print(
        f"generating {len(plans)} subjects (shard {shard}) x {per_subject} frames x {len(rig.cameras)} cameras "
        f"of {rig.name} into {args.out}"
    )
    with progress_bar(args.quiet) as progress:
        task = progress.add_task("frames", total=len(plans) * per_subject)
        summary = generate(
            plans,
            rig,
            settings,
            functools.partial(DatasetStore, args.out),
            workers=args.workers,
            on_subject=lambda _plan, frames: progress.update(task, completed=frames),
        )
    console.print(
        f"wrote {summary.written} recordings ({summary.frames} frames) in {summary.seconds:.1f} s; "
        f"{summary.skipped} already complete"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from egoface.data import dataset_info

    info = dataset_info(_existing(args.dir))
    if args.json:
        print_json(info)
        return 0
    out = Console()
    out.print(
        f"[bold]{args.dir}[/]: {info['subjects']} subjects, {info['frames']} frames, {info['bytes'] / 1e6:.1f} MB"
    )
    table = Table("domain", "subjects", "recordings", "frames", "train / val / test subjects")
    for domain, entry in info["domains"].items():
        splits = " / ".join(str(entry["splits"][s]["subjects"]) for s in ("train", "val", "test"))
        table.add_row(domain, str(entry["subjects"]), str(entry["recordings"]), str(entry["frames"]), splits)
    out.print(table)
    out.print("cameras: " + ", ".join(f"{c} {h}x{w}" for c, (h, w) in info["resolution"].items()))
    return 0


def _check(args: argparse.Namespace) -> int:
    from egoface.data import check_dataset

    with progress_bar(args.quiet or args.json) as progress:
        task = progress.add_task("chunks", total=None)
        report = check_dataset(
            _existing(args.dir), progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    if args.json:
        print_json(report)
    elif report["ok"]:
        Console().print(f"ok: {report['recordings']} recordings, {report['chunks']} chunks read")
    else:
        for problem in report["problems"]:
            Console().print(f"[red]damaged[/] {problem['path']}: {problem['error']}")
    return 0 if report["ok"] else 1


def _show(args: argparse.Namespace) -> int:
    from egoface.data import DatasetStore
    from egoface.eval.visualize import recording_frames, segment_peak_sheet, write_video
    from egoface.render.sheets import save_image

    refs = DatasetStore(_existing(args.dir)).recordings()
    matching = [
        ref for ref in refs if (args.subject in (None, ref.subject)) and (args.recording in (None, ref.recording))
    ]
    if not matching:
        raise ValueError(f"no recording matches subject={args.subject} recording={args.recording} in {args.dir}")
    ref = matching[0]
    out = Path(args.out)
    if out.suffix == ".png":
        save_image(segment_peak_sheet(args.dir, ref.subject, ref.recording, size=args.size), out)
    elif out.suffix == ".mp4":
        first = DatasetStore(args.dir).read_recording(ref.subject, ref.recording, frames=slice(0, 1))
        fps = float(first.attrs.get("fps", 30.0))
        with progress_bar(args.quiet) as progress:
            task = progress.add_task("frames", total=ref.frames)
            frames = recording_frames(args.dir, ref.subject, ref.recording, size=args.size)
            write_video(frames, out, fps, on_frame=lambda: progress.advance(task))
    else:
        raise ValueError(f"--out must end in .mp4 (a video) or .png (a contact sheet of peaks), got {out.name}")
    console.print(f"wrote {out} ({ref.subject}/{ref.recording})")
    return 0


def _existing(path: str) -> str:
    if not Path(path).is_dir():
        raise FileNotFoundError(f"no dataset directory at {path}")
    return path
