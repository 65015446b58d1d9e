"""`egoface face preview|inspect`."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from egoface.cli._common import console, print_json, progress_over

MODEL_HELP = "face model: procedural (default), ict:PATH (npz or FaceXModel folder), objdir:PATH (OBJ folder)"


def register(commands: argparse._SubParsersAction) -> None:
    face = commands.add_parser("face", help="face models: preview and inspect").add_subparsers(
        dest="face_command", required=True
    )
    preview = face.add_parser("preview", help="render a contact sheet of expressions or random identities")
    preview.add_argument("--model", default="procedural", help=MODEL_HELP)
    preview.add_argument("--identities", type=int, default=0, help="render N random identities instead")
    preview.add_argument("--seed", type=int, default=0, help="seed of the random identities")
    preview.add_argument("--cell", type=int, default=192, help="cell size in pixels")
    preview.add_argument("--columns", type=int, default=9, help="cells per row")
    preview.add_argument("--quiet", action="store_true", help="no progress bar")
    preview.add_argument("--out", required=True, help="output PNG")
    preview.set_defaults(run=_preview)
    inspect = face.add_parser("inspect", help="vertex counts, names found and missing, per-expression statistics")
    inspect.add_argument("--model", default="procedural", help=MODEL_HELP)
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(run=_inspect)


def _preview(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.render.sheets import compose_grid, expression_cells, identity_cells, save_image

    model = load_face_model(args.model)
    if args.identities:
        cells = identity_cells(model, args.identities, seed=args.seed, size=args.cell)
        total = args.identities
    else:
        cells = expression_cells(model, size=args.cell)
        total = 54
    save_image(compose_grid(progress_over(cells, "rendering", total, args.quiet), columns=args.columns), args.out)
    console.print(f"wrote {args.out}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.face.inspect import inspect_model

    report = inspect_model(load_face_model(args.model))
    if args.json:
        print_json(report.to_json())
        return 0
    out = Console()
    out.print(
        f"[bold]{report.model}[/]: {report.num_vertices} vertices, {report.num_triangles} triangles, units "
        f"{report.units}, {report.num_identity_components} identity components, {report.num_landmarks} landmarks; "
        f"mirror match residual {report.mirror_residual_mm} mm"
    )
    table = Table("expression", "max displacement (mm)", "region", "share", "symmetry error (mm)")
    table.columns[0].no_wrap = True
    for row in report.expressions:
        table.add_row(
            row.name,
            f"{row.max_displacement_mm:.2f}",
            row.region,
            f"{row.region_share:.2f}",
            f"{row.symmetry_error_mm:.2f}",
        )
    out.print(table)
    out.print(f"missing: {', '.join(report.missing) if report.missing else 'none'}")
    return 0
