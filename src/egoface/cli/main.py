"""`egoface` — one command, subcommands per job. Each subcommand parses, calls the library, prints.

Commands that measure accept `--json` and then print exactly one JSON object on stdout (keys in README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import track
from rich.table import Table

__all__ = ["main"]

T = TypeVar("T")
console = Console(stderr=True)


def _progress(items: Iterable[T], description: str, total: int, quiet: bool) -> Iterable[T]:
    return items if quiet else track(items, description=description, total=total, console=console, transient=True)


def _face_preview(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.render.sheets import compose_grid, expression_cells, identity_cells, save_image

    model = load_face_model(args.model)
    if args.identities:
        cells = identity_cells(model, args.identities, seed=args.seed, size=args.cell)
        grid = compose_grid(_progress(cells, "rendering identities", args.identities, args.quiet), columns=args.columns)
    else:
        cells = expression_cells(model, size=args.cell)
        grid = compose_grid(_progress(cells, "rendering expressions", 54, args.quiet), columns=args.columns)
    save_image(grid, args.out)
    console.print(f"wrote {args.out}")
    return 0


def _face_inspect(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.face.inspect import inspect_model

    report = inspect_model(load_face_model(args.model))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
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


def _bench_render(args: argparse.Namespace) -> int:
    from egoface.render.bench import benchmark_render

    result = benchmark_render(repeats=args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        Console().print(
            f"fast path: {result['views_per_second']:.0f} views/s; reference: "
            f"{result['reference_views_per_second']:.2f} views/s; speedup {result['speedup']:.0f}x "
            "(192x192 fisheye view of the default face, medians)"
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.render.sheets import compose_grid, expression_cells, identity_cells, save_image

    out = Path(args.out)
    console.print(
        "[bold]egoface demo[/]: the tracker does not exist yet, so the demo renders the face model's contact sheets "
        "(the face every later stage is built on)."
    )
    model = load_face_model("procedural")
    expressions = compose_grid(_progress(expression_cells(model), "expressions", 54, False), columns=9)
    identities = compose_grid(_progress(identity_cells(model, 12, seed=0), "identities", 12, False), columns=6)
    save_image(expressions, out / "face_expressions.png")
    save_image(identities, out / "face_identities.png")
    console.print(f"wrote {out / 'face_expressions.png'} and {out / 'face_identities.png'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egoface", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    model_help = "face model: procedural (default), ict:PATH (npz or FaceXModel folder), objdir:PATH (OBJ folder)"
    face = commands.add_parser("face", help="face models: preview and inspect").add_subparsers(
        dest="face_command", required=True
    )
    preview = face.add_parser("preview", help="render a contact sheet of expressions or random identities")
    preview.add_argument("--model", default="procedural", help=model_help)
    preview.add_argument("--identities", type=int, default=0, help="render N random identities instead")
    preview.add_argument("--seed", type=int, default=0, help="seed of the random identities")
    preview.add_argument("--cell", type=int, default=192, help="cell size in pixels")
    preview.add_argument("--columns", type=int, default=9, help="cells per row")
    preview.add_argument("--quiet", action="store_true", help="no progress bar")
    preview.add_argument("--out", required=True, help="output PNG")
    preview.set_defaults(run=_face_preview)
    inspect = face.add_parser("inspect", help="vertex counts, names found and missing, per-expression statistics")
    inspect.add_argument("--model", default="procedural", help=model_help)
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(run=_face_inspect)

    bench = commands.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    render = bench.add_parser("render", help="views per second of the fast and reference render paths")
    render.add_argument("--repeats", type=int, default=7, help="timed runs; the median is reported")
    render.add_argument("--json", action="store_true", help="print JSON")
    render.set_defaults(run=_bench_render)

    demo = commands.add_parser("demo", help="the main job on its embedded defaults")
    demo.add_argument("--out", default="egoface-demo", help="output directory")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
