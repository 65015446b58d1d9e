"""`egoface demo`: the main job on its embedded defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from egoface.cli._common import console, progress_over


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="the main job on its embedded defaults")
    demo.add_argument("--out", default="egoface-demo", help="output directory")
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from egoface.face import load_face_model
    from egoface.render.sheets import compose_grid, expression_cells, identity_cells, save_image

    out = Path(args.out)
    console.print(
        "[bold]egoface demo[/]: the tracker does not exist yet, so the demo renders the face model's contact sheets "
        "(the face every later stage is built on)."
    )
    model = load_face_model("procedural")
    expressions = compose_grid(progress_over(expression_cells(model), "expressions", 54), columns=9)
    identities = compose_grid(progress_over(identity_cells(model, 12, seed=0), "identities", 12), columns=6)
    save_image(expressions, out / "face_expressions.png")
    save_image(identities, out / "face_identities.png")
    console.print(f"wrote {out / 'face_expressions.png'} and {out / 'face_identities.png'}")
    return 0
