"""`egoface placement evaluate|compare|search`: camera placement by simulation (REFA Sec. 4, docs/placement.md)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from egoface.cli._common import print_json, progress_bar

FACE_HELP = "face model of the population: procedural (default), ict:PATH (ICT-FaceKit identities), objdir:PATH"


def _population_arguments(parser: argparse.ArgumentParser, population: int, donnings: int) -> None:
    parser.add_argument("--population", type=int, default=population, help=f"identities (default {population})")
    parser.add_argument("--donnings", type=int, default=donnings, help=f"donnings per identity (default {donnings})")
    parser.add_argument("--seed", type=int, default=0, help="seed of identities, donnings and glasses")
    parser.add_argument("--face", default="procedural", help=FACE_HELP)
    parser.add_argument("--glasses", type=float, default=0.25, help="fraction of the population wearing glasses")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands: argparse._SubParsersAction) -> None:
    placement = commands.add_parser("placement", help="camera placement: evaluate, compare and search rigs")
    sub = placement.add_subparsers(dest="placement_command", required=True)
    evaluate = sub.add_parser("evaluate", help="visibility V and range of motion M of every camera of a rig")
    evaluate.add_argument("--headset", required=True, help="preset name or rig file (.yaml/.yml/.json)")
    _population_arguments(evaluate, 100, 5)
    evaluate.add_argument("--out", help="write a report (report.md, metrics.json, bars.png, views.png) here")
    evaluate.set_defaults(run=_evaluate)
    compare = sub.add_parser("compare", help="compare candidate rigs per camera role (REFA Fig. 1)")
    compare.add_argument("rigs", nargs="+", help="two or more preset names or rig files")
    _population_arguments(compare, 100, 5)
    compare.add_argument("--weight", type=float, default=0.5, help="weight of V in the score (M gets 1 - weight)")
    compare.add_argument("--out", help="write a report (report.md, comparison.json, bars.png, views_*.png) here")
    compare.set_defaults(run=_compare)
    search = sub.add_parser("search", help="move one camera inside the mount region for a better V/M score")
    search.add_argument("--headset", required=True, help="preset name or rig file (.yaml/.yml/.json)")
    search.add_argument("--camera", required=True, help="the camera to move")
    search.add_argument("--budget", type=int, default=40, help="evaluations, the start pose included (default 40)")
    _population_arguments(search, 24, 2)
    search.add_argument("--weight", type=float, default=0.5, help="weight of V in the score (M gets 1 - weight)")
    search.add_argument("--step-mm", type=float, default=6.0, help="initial step of the position, mm")
    search.add_argument("--step-deg", type=float, default=6.0, help="initial step of the viewing direction, degrees")
    search.add_argument("--mirror", action="store_true", help="move the camera's left/right partner to the mirror pose")
    search.add_argument("--no-glasses-keep-out", action="store_true", help="allow mounts where glasses frames sit")
    search.add_argument("--out", required=True, help="the rig with the best pose (.yaml/.yml/.json)")
    search.set_defaults(run=_search)


def _population(args: argparse.Namespace):  # -> tuple[FaceModel, Population]
    from egoface.face import load_face_model
    from egoface.placement import sample_population

    model = load_face_model(args.face)
    population = sample_population(model, args.population, args.donnings, args.seed, args.glasses)
    return model, population


def _with_progress(quiet: bool, description: str, total: int, job: Callable[[Callable[[int, int], None]], object]):
    with progress_bar(quiet) as bar:
        task = bar.add_task(description, total=total)
        return job(lambda done, _total: bar.update(task, completed=done))


def _evaluate(args: argparse.Namespace) -> int:
    from egoface.headset import load_rig
    from egoface.placement import evaluate_rig, write_evaluation_report

    start = time.perf_counter()
    rig = load_rig(args.headset)
    model, population = _population(args)
    metrics = _with_progress(
        args.quiet, f"evaluating {rig.name}", args.population, lambda step: evaluate_rig(rig, population, progress=step)
    )
    report = write_evaluation_report(args.out, metrics, rig, population, model) if args.out else None
    if args.json:
        print_json(metrics.to_json() | {"total_seconds": round(time.perf_counter() - start, 2),
                                        "report": str(report) if report else None})  # fmt: skip
        return 0
    table = Table("camera", "role", "V", "V std", "visible", "M (px)", "M std", title=f"{rig.name}")
    for c in metrics.cameras:
        table.add_row(
            c.camera, c.role, f"{c.visibility:.3f}", f"{c.visibility_std:.3f}", f"{c.visible_fraction:.3f}",
            f"{c.range_of_motion_px:.2f}", f"{c.range_of_motion_px_std:.2f}",
        )  # fmt: skip
    out = Console()
    out.print(table)
    out.print(f"{args.population} identities x {args.donnings} donnings of {population.model_name} in "
              f"{metrics.seconds:.1f} s" + (f"; report: {report}" if report else ""))  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    from egoface.headset import load_rig
    from egoface.placement import compare_rigs, write_comparison_report

    if len(args.rigs) < 2:
        raise ValueError(f"compare needs at least 2 rigs, got {len(args.rigs)}")
    rigs = [load_rig(name) for name in args.rigs]
    model, population = _population(args)
    comparison = _with_progress(
        args.quiet, "comparing", len(rigs) * args.population,
        lambda step: compare_rigs(rigs, population, visibility_weight=args.weight, progress=step),
    )  # fmt: skip
    report = write_comparison_report(args.out, comparison, rigs, population, model) if args.out else None
    if args.json:
        print_json(comparison.to_json() | {"report": str(report) if report else None})
        return 0
    out = Console()
    for role in comparison.roles:
        table = Table("candidate", "cameras", "V", "visible", "M (px)", "score", title=f"{role.role}")
        for label, score in role.candidates.items():
            mark = " *" if label == role.winner else ""
            table.add_row(
                label + mark, ", ".join(score.cameras), f"{score.visibility:.3f}", f"{score.visible_fraction:.3f}",
                f"{score.range_of_motion_px:.2f}", f"{score.score:.3f}",
            )  # fmt: skip
        out.print(table)
    out.print(f"* = winner; {comparison.seconds:.1f} s" + (f"; report: {report}" if report else ""))
    return 0


def _search(args: argparse.Namespace) -> int:
    from egoface.headset import load_rig, save_rig
    from egoface.placement import mount_region, search_camera

    rig = load_rig(args.headset)
    rig.camera_spec(args.camera)  # fail early on an unknown camera
    _, population = _population(args)
    region = mount_region(rig, population, glasses_keep_out=not args.no_glasses_keep_out)
    result = _with_progress(
        args.quiet, f"searching {args.camera}", args.budget,
        lambda step: search_camera(
            rig, args.camera, population, budget=args.budget, seed=args.seed, visibility_weight=args.weight,
            region=region, step_mm=args.step_mm, step_deg=args.step_deg, mirror=args.mirror, progress=step,
        ),
    )  # fmt: skip
    path = save_rig(result.rig, args.out)
    if args.json:
        print_json(result.to_json() | {"out": str(path)})
        return 0
    start, best = result.start, result.best
    out = Console()
    out.print(f"start score {start.score:.3f} (V {start.visibility:.3f}, M {start.range_of_motion_px:.2f} px) at "
                  f"{list(start.position)} mm")  # fmt: skip
    out.print(f"best score  {best.score:.3f} (V {best.visibility:.3f}, M {best.range_of_motion_px:.2f} px) at "
                  f"{list(best.position)} mm looking at {list(best.look_at)} mm")  # fmt: skip
    out.print(f"{result.evaluations} evaluations, {result.infeasible_draws} infeasible draws, "
                  f"{result.seconds:.1f} s; wrote {path}")  # fmt: skip
    return 0
