"""`egoface headset show|views`: a rig's cameras and LEDs, and what its cameras see."""

from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console
from rich.table import Table

from egoface.cli._common import console, print_json, progress_over


def register(commands: argparse._SubParsersAction) -> None:
    headset = commands.add_parser("headset", help="headset rigs: describe and look through their cameras")
    actions = headset.add_subparsers(dest="headset_command", required=True)
    show = actions.add_parser("show", help="cameras (role, pose, lens, resolution, rate), LEDs and occluders")
    show.add_argument("headset", help="rig preset name or rig file (YAML/JSON)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_show)
    views = actions.add_parser("views", help="a contact sheet of what every camera sees (full capture pipeline)")
    views.add_argument("headset", help="rig preset name or rig file (YAML/JSON)")
    views.add_argument("--domain", default="synthetic", choices=("synthetic", "real"), help="appearance and sensor")
    views.add_argument("--subjects", type=int, default=2, help="sample subjects")
    views.add_argument("--size", type=int, default=128, help="image size in pixels")
    views.add_argument("--reference", default=None, help="a real camera frame (PNG) to show first, for comparison")
    views.add_argument("--seed", type=int, default=0, help="seed of the sample subjects")
    views.add_argument("--quiet", action="store_true", help="no progress bar")
    views.add_argument("--out", required=True, help="output PNG")
    views.set_defaults(run=_views)


def _show(args: argparse.Namespace) -> int:
    from egoface.headset import describe_rig, load_rig

    description = describe_rig(load_rig(args.headset))
    if args.json:
        print_json(description)
        return 0
    out = Console()
    out.print(f"[bold]{description['name']}[/]: {description.get('description', '')}")
    table = Table("camera", "role", "side", "position (mm)", "fov (deg)", "lens", "resolution", "fps")
    cameras: list[dict] = description["cameras"]  # type: ignore[assignment]
    for camera in cameras:
        width, height = camera["resolution"]
        position = str([round(x, 1) for x in camera["position_mm"]])
        table.add_row(
            camera["name"], camera["role"], camera["side"], position, f"{camera['fov_deg']:.0f}", camera["lens"],
            f"{width}x{height}", f"{camera['fps']:g}",
        )  # fmt: skip
    out.print(table)
    occluders: list[str] = description["occluders"]  # type: ignore[assignment]
    out.print(f"LEDs: {description['leds']}; occluders: {', '.join(occluders)}")
    return 0


def _views(args: argparse.Namespace) -> int:
    from PIL import Image

    from egoface.capture.views import VIEW_SEGMENTS, camera_views
    from egoface.headset import load_rig
    from egoface.render.sheets import compose_grid, save_image

    rig = load_rig(args.headset)
    cells = list(
        progress_over(
            camera_views(rig, args.domain, args.subjects, args.size, args.seed),
            "rendering",
            args.subjects * len(VIEW_SEGMENTS) * len(rig.cameras),
            args.quiet,
        )
    )
    if args.reference:
        reference = Image.open(args.reference).convert("L").resize((args.size, args.size), Image.Resampling.BILINEAR)
        cells.insert(0, ("real reference", np.asarray(reference)))
    save_image(compose_grid(cells, columns=len(rig.cameras) * 2 + (1 if args.reference else 0)), args.out)
    console.print(f"wrote {args.out}")
    return 0
