"""`egoface eval`: both papers' metrics for a model on held-out identities, with baselines beside it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from egoface.cli._common import console, print_json, progress_bar

if TYPE_CHECKING:  # the library is imported when a command runs, not when the CLI starts
    from egoface.eval.evaluate import Evaluation, LabelInputPredictor, Predictor


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("eval", help="evaluate a tracker with both papers' metrics on held-out identities")
    model_help = "a run directory, a model file, a checkpoint (RUN/checkpoints/best.pt), `default` or `neutral`"
    evaluate.add_argument("--model", default="default", help=model_help)
    evaluate.add_argument("--data", required=True, help="dataset directory (egoface generate --out DIR)")
    evaluate.add_argument("--split", default="test", help="subjects' split: test (default), val, train, a list, all")
    evaluate.add_argument("--domains", default="synthetic,real", help="comma-separated domains to score")
    evaluate.add_argument("--compare", nargs="*", default=["neutral"], help="more models (runs, default, neutral)")
    evaluate.add_argument("--photometric-frames", type=int, default=6, help="frames per recording for photometric L1")
    evaluate.add_argument("--out", default=None, help="report directory (report.md, metrics.json, plots)")
    attribution_help = "also score mesh L2 with each group of outputs set to the truth (where the error is)"
    evaluate.add_argument("--attribution", action="store_true", help=attribution_help)
    evaluate.add_argument("--json", action="store_true", help="print metrics.json")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(run=_eval)


def load_predictor(spec: str, cameras: tuple[str, ...]) -> Predictor | LabelInputPredictor:
    """A predictor from a model spec: a run directory (image model or baseline), a model file, a training checkpoint
    (the model at that step), `default`, or `neutral`."""
    from egoface.eval.baselines import is_baseline_run
    from egoface.eval.baselines import load_predictor as load_baseline
    from egoface.eval.calibrated import CalibratedPredictor
    from egoface.eval.evaluate import ModelPredictor, NeutralPredictor
    from egoface.models import CalibratedEncoder, load_model, load_shipped_model
    from egoface.train.checkpoint import is_checkpoint
    from egoface.train.trainer import model_from_checkpoint

    if spec == "neutral":
        return NeutralPredictor(cameras)
    shipped = spec == "default"
    if not shipped and is_baseline_run(spec):
        return load_baseline(spec)
    if shipped:
        model, name = load_shipped_model("default"), "default"
    elif Path(spec).is_file() and is_checkpoint(spec):  # RUN/checkpoints/best.pt: the run's best validation step
        model, name = model_from_checkpoint(spec), f"{Path(spec).parent.parent.name}/{Path(spec).stem}"
    else:
        model, name = load_model(spec), Path(spec).name
    if isinstance(model, CalibratedEncoder):  # enrolled from each test subject's anchor segments
        return CalibratedPredictor(model, name)
    return ModelPredictor(model, name)


def _eval(args: argparse.Namespace) -> int:
    from egoface.data import dataset_info
    from egoface.eval.evaluate import evaluate
    from egoface.eval.report import write_report

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"no dataset directory at {args.data}")
    cameras = tuple(dataset_info(args.data)["cameras"])
    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    specs = [args.model, *[spec for spec in args.compare if spec != args.model]]
    evaluations = []
    with progress_bar(args.quiet or args.json) as progress:
        for spec in specs:
            predictor = load_predictor(spec, cameras)
            task = progress.add_task(f"evaluating {predictor.name}", total=None)

            def advance(_subject: str, _recording: str, task: TaskID = task) -> None:
                progress.advance(task)

            evaluations.append(evaluate(predictor, args.data, args.split, domains, args.photometric_frames, advance,
                                        attribution=args.attribution and spec == specs[0]))  # fmt: skip
    main, others = evaluations[0], evaluations[1:]
    if args.out:
        write_report(main, args.out, others)
        console.print(f"wrote {Path(args.out) / 'report.md'}")
    if args.json:
        summary = main.to_json()
        summary["compared"] = {other.model: other.to_json() for other in others}
        print_json(summary)
        return 0
    print_metric_table(main, others)
    return 0


def print_metric_table(main: Evaluation, others: Sequence[Evaluation]) -> None:
    """One table per domain: the metrics of `main` and of each of `others` side by side."""
    from egoface.eval.evaluate import METRIC_KEYS

    out = Console()
    for name, domain in main.domains.items():
        table = Table(title=f"{name}: {len(domain.per_subject)} identities ({main.split})")
        table.add_column("metric", no_wrap=True)
        models = [main, *[other for other in others if name in other.domains]]
        for model in models:
            table.add_column(model.model, justify="right")
        for key in METRIC_KEYS:
            cells = []
            for model in models:
                value = model.latency_ms_p50 if key == "latency_ms_p50" else model.domains[name].dataset.get(key)
                cells.append("n/a" if value is None or value != value else f"{value:.3f}")
            table.add_row(key, *cells)
        out.print(table)
