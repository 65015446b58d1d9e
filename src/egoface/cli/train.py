"""`egoface train` and `egoface bench train`.

`egoface train --model flnet|flnet_detected|gt_mesh` trains the non-image baselines (`egoface.train.baselines`) with
the same preset (optimizer, schedule, losses, steps); their run directories also hold `baseline.json`, and
`flnet_detected`'s its keypoint detector, trained first (`detector.pt`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.console import Console

from egoface.cli._common import console, print_json, progress_bar

if TYPE_CHECKING:
    from egoface.train import TrainConfig


#: `egoface.train.PRESETS`' names, here so that `--help` does not import torch (a test keeps them equal).
TRAIN_PRESETS = (
    "tiny", "default", "default-finetune", "paper", "calibrated-tiny", "calibrated-default", "calibrated-lite",
    "calibrated-lite-finetune",
)  # fmt: skip


def _add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None) -> None:
    parser.add_argument(
        "--preset",
        required=default_preset is None,
        default=default_preset,
        choices=TRAIN_PRESETS,
        help="named training config (egoface.train.PRESETS)",
    )
    parser.add_argument(
        "--model",
        help="registered model name (replaces the preset's); flnet (perfect keypoints), flnet_detected (keypoints of "
        "a detector it trains first) and gt_mesh train the non-image baselines",
    )
    parser.add_argument("--steps", type=int, help="optimizer steps (replaces the preset's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one config field, e.g. optim.lr=3e-4, input_size=128,128, loss.geometry=0.5, augment=none",
    )


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train a tracker on a dataset store (resumes RUN when interrupted)")
    _add_config_arguments(train, default_preset=None)
    train.add_argument("--data", required=True, help="dataset directory (egoface generate --out DIR)")
    train.add_argument("--out", required=True, help="run directory (created, or resumed when it holds last.pt)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(run=_train)


def register_bench(bench: argparse._SubParsersAction) -> None:
    """Adds `bench train` to the `bench` subcommand group (created in `egoface.cli.bench`)."""
    parser = bench.add_parser("train", help="training samples per second of a preset (default: the default preset)")
    _add_config_arguments(parser, default_preset="default")
    parser.add_argument("--data", help="time the real data path on this dataset store (default: random tensors)")
    parser.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported")
    parser.add_argument("--window-steps", type=int, default=5, help="optimizer steps per window")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--compare-precision", action="store_true",
                        help="also time the other precision (float32 / bfloat16) as the reference")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=_bench)


def _config(args: argparse.Namespace) -> TrainConfig:
    from egoface.train import PRESETS, apply_overrides

    config = PRESETS[args.preset]
    if args.model is not None:
        config = apply_overrides(config, [f"model={args.model}"])
    if args.steps is not None:
        config = apply_overrides(config, [f"steps={args.steps}"])
    return apply_overrides(config, args.overrides)


def _train(args: argparse.Namespace) -> int:
    from egoface.models import list_models
    from egoface.train import train
    from egoface.train.baselines import BASELINE_MODELS, train_baseline  # also registers gt_mesh, flnet_detected
    from egoface.train.calibrated import train_calibrated
    from egoface.train.config import FINETUNE_PRESETS

    config = _config(args)
    if args.preset in FINETUNE_PRESETS and config.init is None:
        raise ValueError(f"the {args.preset} preset fine-tunes a trained run: add --set init=RUN (e.g. the run of "
                         "`egoface train --preset default`)")  # fmt: skip
    if config.calibration is None and config.model not in list_models():  # calibrated: train_calibrated checks
        raise ValueError(f"unknown model {config.model!r}; registered: {', '.join(list_models())}")
    console.print(f"training {config.model} at {config.input_size[0]}x{config.input_size[1]}, batch "
                  f"{config.batch_size}, {config.steps} steps on {args.data} into {args.out}")  # fmt: skip
    with progress_bar(args.quiet) as bar:
        task = bar.add_task("training", total=config.steps)
        trainer = train_calibrated if config.calibration is not None else train
        result = (train_baseline if config.model in BASELINE_MODELS else trainer)(
            config, args.data, args.out,
            progress=lambda done, total, message: bar.update(task, completed=done, total=total, description=message),
        )  # fmt: skip
    summary = {
        "run_dir": str(result.run_dir),
        "step": result.step,
        "steps": config.steps,
        "completed": result.completed,
        "loss": None if math.isnan(result.loss) else result.loss,
        "best_val_loss": None if math.isinf(result.best_val_loss) else result.best_val_loss,
        "samples_per_second": result.samples_per_second,
    }
    if args.json:
        print_json(summary)
    elif result.completed:
        Console().print(f"done: {result.step} steps, loss {result.loss:.4f}, best val loss "
                        f"{summary['best_val_loss']}; model in {result.run_dir / 'model.pt'}")  # fmt: skip
    else:
        console.print(f"stopped at step {result.step}/{config.steps}; run the same command again to resume")
    return 0 if result.completed else 130


def _bench(args: argparse.Namespace) -> int:
    from egoface.train.config import PRECISIONS

    config = _config(args)
    if config.calibration is not None and args.data is None:
        raise ValueError(f"the {args.preset} preset trains on anchors of real subjects: pass --data DIR (a store "
                         "whose subjects have the anchor segments)")  # fmt: skip
    result = _bench_one(config, args)
    if args.compare_precision:
        other = next(p for p in PRECISIONS if p != config.precision)
        reference = _bench_one(replace(config, precision=other), args)
        result["reference"] = reference
        result["speedup_vs_reference"] = result["samples_per_second"] / reference["samples_per_second"]
    if args.json:
        print_json(result)
        return 0
    console = Console()
    for row in [result, result.get("reference")]:
        if row is not None:
            console.print(
                f"{row['samples_per_second']:.1f} training samples/s in {row['precision']} (median of "
                f"{args.windows} windows of {args.window_steps} steps; {config.model}, {config.input_size[0]}x"
                f"{config.input_size[1]}, batch {config.batch_size}, {row['source']}, {row['threads']} threads); "
                f"{config.steps} steps of the {args.preset} preset take about {row['expected_train_minutes']:.1f} min"
            )
    if "reference" in result:
        console.print(f"{result['precision']} is {result['speedup_vs_reference']:.2f}x as fast as "
                      f"{result['reference']['precision']}")  # fmt: skip
    return 0


def _bench_one(config: TrainConfig, args: argparse.Namespace) -> dict[str, Any]:
    """One `bench train` measurement of `config` with the command's windows, plus the preset and expected minutes."""
    from egoface.train import benchmark_training
    from egoface.train.calibrated import benchmark_calibrated_training

    windows = {"windows": args.windows, "window_steps": args.window_steps, "warmup_steps": args.warmup_steps}
    if config.calibration is not None:
        result = benchmark_calibrated_training(config, args.data, **windows)
    else:
        result = benchmark_training(config, args.data, **windows)
    result["preset"] = args.preset
    result["expected_train_minutes"] = config.steps * config.batch_size / result["samples_per_second"] / 60
    result["config"] = config.to_dict()
    return result
