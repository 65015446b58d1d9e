"""`egoface anchors search` and `egoface ablate calibration`: the anchor search of Universal App. A (Alg. 1) and
the calibration ablations of issue 5 (Tables 1-3, Figs. 8 and 19).

Every point of both is one experiment: train a calibrated encoder (`egoface.train.calibrated.train_calibrated`,
the preset plus the experiment's changes) into `OUT/runs/<name>`, then evaluate it, enrolled per subject from the
anchor segments, on the held-out subjects of `--split` (`egoface.eval.evaluate`). Finished experiments are reused
when the command runs again with the same settings (their `evaluation.json` records the config), so an
interrupted search or ablation resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from egoface.cli._common import console, print_json, progress_bar

if TYPE_CHECKING:
    from egoface.train import TrainConfig

#: The metrics an experiment reports (per domain, and at the top level for the primary domain).
_KEYS = ("mesh_l2_mm", "lower_face_mesh_l2_mm", "mouth_shape_l2_mm", "gaze_error_deg", "photometric_l1")
_MESH_TARGET_PCT, _LATENCY_TARGET_PCT = 15.0, 5.0  # issue 5's targets


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="dataset directory (egoface generate --out DIR)")
    parser.add_argument("--out", required=True, help="output directory (runs/, results, report); resumed")
    parser.add_argument("--preset", default="calibrated-tiny", help="training preset of every experiment",
                        choices=("calibrated-tiny", "calibrated-default", "calibrated-lite"))  # fmt: skip
    parser.add_argument("--steps", type=int, help="optimizer steps per experiment (replaces the preset's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="change a config field of every experiment, e.g. calibration.photometric=0")  # fmt: skip
    parser.add_argument("--split", default="test", help="held-out subjects scored: test (default), val, ...")
    parser.add_argument("--domains", default="synthetic,real", help="domains scored; the first one present is primary")
    parser.add_argument("--photometric-frames", type=int, default=2, help="frames per recording for photometric L1")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands: argparse._SubParsersAction) -> None:
    anchors = commands.add_parser("anchors", help="anchor expressions of the calibrated encoder")
    search = anchors.add_subparsers(dest="anchors_command", required=True).add_parser(
        "search", help="beam search (Universal Alg. 1) for the anchor set with the lowest held-out error"
    )
    _add_common(search)
    search.add_argument("--candidates", help="comma-separated anchors (default: every anchor all subjects have)")
    search.add_argument("--beam-width", type=int, default=3, help="sets kept per round (the paper: 3)")
    search.add_argument("--max-anchors", type=int, default=6, help="stop at sets of this size (the paper: 6)")
    search.add_argument("--metric", default="mesh_l2_mm", choices=_KEYS, help="held-out error to minimize")
    search.set_defaults(run=_search, split="val")
    ablate = commands.add_parser("ablate", help="ablation studies")
    calibration = ablate.add_subparsers(dest="ablate_command", required=True).add_parser(
        "calibration", help="calibration modules, losses, number of anchors and identities (issue 5 tables)"
    )
    _add_common(calibration)
    calibration.add_argument("--identities", default="8,16,32,64",
                             help="training-identity counts of the identity curve (those above the data's dropped; "
                                  "all of them always runs)")  # fmt: skip
    calibration.add_argument("--latency-frames", type=int, default=2000,
                             help="frames per latency measurement (with and without anchors alternating)")  # fmt: skip
    calibration.add_argument("--workers", type=int, default=1,
                             help="experiments trained at once, each in its own process (give each a share of the "
                                  "cores: --set threads=1 with 2 workers on 2 cores)")  # fmt: skip
    calibration.add_argument("--compare", nargs="*", default=["default", "neutral"],
                             help="Table 1's other rows: runs (trackers, flnet/flnet_detected/gt_mesh baselines), "
                                  "default, neutral; a missing model is reported, not fatal")  # fmt: skip
    calibration.add_argument("--only", metavar="NAMES",
                             help="comma-separated experiments to train and score, e.g. pooling,early_fusion (to split "
                                  "the ablation over machines or sessions): prints their results; the tables need "
                                  "every experiment")  # fmt: skip
    calibration.set_defaults(run=_ablate)


class _Experiments:
    """Train-then-evaluate experiments sharing one preset, dataset and output directory."""

    def __init__(self, args: argparse.Namespace, on_done: Callable[[str], None]) -> None:
        from egoface.train import PRESETS, apply_overrides

        base = PRESETS[args.preset]
        if args.steps is not None:
            base = apply_overrides(base, [f"steps={args.steps}"])
        self.base = apply_overrides(base, args.overrides)
        if self.base.calibration is None:
            raise ValueError(f"preset {args.preset} has no calibration settings")
        self.data, self.out, self.split = args.data, Path(args.out), args.split
        self.domains = [d.strip() for d in args.domains.split(",") if d.strip()]
        self.photometric_frames = args.photometric_frames
        self.on_done = on_done

    def run(self, name: str, config: TrainConfig) -> dict[str, Any]:
        """Train (or resume) and evaluate experiment `name`; returns its metrics (`_summary`)."""
        summary = _experiment(*self._arguments(name, config))
        self.on_done(name)
        return summary

    def run_all(self, planned: dict[str, TrainConfig], workers: int) -> dict[str, dict[str, Any]]:
        """`run` every experiment of `planned` (name -> config), `workers` at a time, each in its own process
        (one at a time in this one when `workers` is 1); returns their metrics by name. An experiment is submitted
        only when a worker is free, so after a failure or Ctrl-C no queued experiment starts: the running ones
        stop (Ctrl-C, with a checkpoint) or finish, and the error is raised. Each experiment gets a new process: a
        reused one kept most of its predecessors' memory (image cache, rigs), 6-11 GB per worker after three."""
        if workers <= 1:
            return {name: self.run(name, config) for name, config in planned.items()}
        waiting, running, done = iter(planned.items()), {}, {}
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=spawn, max_tasks_per_child=1) as pool:

            def submit_next() -> None:
                for name, config in itertools.islice(waiting, 1):
                    running[pool.submit(_experiment, *self._arguments(name, config))] = name

            for _ in range(workers):
                submit_next()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    done[name] = future.result()
                    self.on_done(name)
                    submit_next()
        return {name: done[name] for name in planned}

    def _arguments(self, name: str, config: TrainConfig) -> tuple[Any, ...]:
        """`_experiment`'s arguments for experiment `name`."""
        return self.out / "runs" / name, config, self.data, self.split, self.domains, self.photometric_frames

    def latency(self, name: str, frames: int) -> dict[str, float]:
        """The runtime's per-frame cost of experiment `name`'s anchors (`measure_anchor_overhead`: exported, one
        onnxruntime thread, against the same encoder without anchors): `calibrated_ms_p50`, `overhead_pct`."""
        from egoface.models import CalibratedEncoder, load_model
        from egoface.runtime.bench import measure_anchor_overhead

        model = load_model(self.out / "runs" / name)
        assert isinstance(model, CalibratedEncoder)
        timing = measure_anchor_overhead(model, threads=1, frames=frames)
        return {"calibrated_ms_p50": timing["with_anchors"]["latency_ms_p50"],
                "overhead_pct": 100.0 * timing["anchor_overhead"]}  # fmt: skip


def _experiment(
    run: Path, config: TrainConfig, data: str, split: str, domains: list[str], photometric_frames: int
) -> dict[str, Any]:
    """Train (or resume) the calibrated encoder of `config` into `run`, evaluate it on `split` of `domains` and
    store the metrics in `run/evaluation.json`; a stored result with the same settings is returned untouched."""
    from egoface.eval.calibrated import CalibratedPredictor
    from egoface.eval.evaluate import evaluate
    from egoface.models import CalibratedEncoder, load_model
    from egoface.train.calibrated import train_calibrated

    result_path = run / "evaluation.json"
    settings = {"config": config.to_dict(), "split": split, "domains": domains}
    if result_path.exists():
        stored = json.loads(result_path.read_text())
        if stored["settings"] == settings:
            return dict(stored["summary"])
    result = train_calibrated(config, data, run, tensorboard=False)
    if not result.completed:
        raise ValueError(f"training of {run.name} stopped at step {result.step}; run the command again to resume")
    model = load_model(run)
    assert isinstance(model, CalibratedEncoder)
    evaluation = evaluate(CalibratedPredictor(model, run.name), data, split, domains, photometric_frames)
    per_domain = {d: {k: _finite(e.dataset.get(k)) for k in _KEYS} for d, e in evaluation.domains.items()}
    primary = next(d for d in domains if d in per_domain)
    summary = {"name": run.name, "domain": primary, **per_domain[primary], "per_domain": per_domain,
               "anchors": list(model.config.anchors), "run_dir": str(run)}  # fmt: skip
    _write_json(result_path, {"settings": settings, "summary": summary})
    return summary


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(partial, path)


def _common_anchors(data: str, domains: list[str]) -> list[str]:
    """Anchors that every subject of `domains` in the store has a segment for, in the capture script's order."""
    from egoface.capture import ANCHOR_CANDIDATES
    from egoface.data import DatasetStore
    from egoface.data.schema import anchor_frames

    store = DatasetStore(data)
    per_subject: dict[str, set[str]] = {}
    for ref in store.recordings(tuple(domains)):
        segments = store.read_recording(ref.subject, ref.recording, slice(0, 1)).segments or []
        per_subject.setdefault(ref.subject, set()).update(anchor_frames(segments))
    if not per_subject:
        raise ValueError(f"no recordings of the domains {domains} in {data}")
    common = set.intersection(*per_subject.values())
    return [name for name in ANCHOR_CANDIDATES if name in common] + sorted(common - set(ANCHOR_CANDIDATES))


def _search(args: argparse.Namespace) -> int:
    from egoface.train.anchors import beam_search

    with progress_bar(args.quiet or args.json) as bar:
        task = bar.add_task("anchor search: training and scoring anchor sets", total=None)
        experiments = _Experiments(args, lambda name: bar.update(task, advance=1, description=f"scored {name}"))
        candidates = (
            [c.strip() for c in args.candidates.split(",") if c.strip()]
            if args.candidates
            else _common_anchors(args.data, list(experiments.base.data.domains))
        )
        max_anchors = min(args.max_anchors, len(candidates))
        if max_anchors < args.max_anchors:
            console.print(f"only {len(candidates)} candidate anchors; searching sets of up to {max_anchors}")

        def score(anchors: tuple[str, ...]) -> float:
            summary = experiments.run("+".join(anchors), _with_calibration(experiments.base, anchors=anchors))
            value = summary[args.metric]
            if value is None:
                raise ValueError(f"{args.metric} is undefined on {args.split} of {experiments.domains}")
            return float(value)

        found = beam_search(candidates, score, args.beam_width, max_anchors)
    result = {
        "metric": args.metric, "split": args.split, "domains": experiments.domains, "candidates": candidates,
        "beam_width": args.beam_width, "max_anchors": max_anchors, "best": list(found.best),
        "best_error": found.scores[found.best], "beam": [list(b) for b in found.beam],
        "rounds": [[list(b) for b in beam] for beam in found.rounds],
        "scores": [{"anchors": list(a), "error": e} for a, e in sorted(found.scores.items(), key=lambda x: x[1])],
        "by_size": [{"anchors": n, "error": e} for n, e in found.by_size.items()],
    }  # fmt: skip
    _write_json(Path(args.out) / "search.json", result)
    if args.json:
        print_json(result)
    else:
        Console().print(f"best anchors ({args.metric} {result['best_error']:.3f} on {args.split}): "
                        f"{', '.join(found.best)}; lowest error by number of anchors: "
                        + ", ".join(f"{n}: {e:.3f}" for n, e in found.by_size.items()))  # fmt: skip
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from egoface.cli.eval import load_predictor
    from egoface.data import dataset_info
    from egoface.eval.calibrated import write_ablation_report
    from egoface.eval.evaluate import evaluate
    from egoface.models import CALIBRATION_MODULES

    with progress_bar(args.quiet or args.json) as bar:
        task = bar.add_task("calibration ablation", total=None)
        experiments = _Experiments(args, lambda name: bar.update(task, advance=1, description=f"done {name}"))
        base = experiments.base.calibration
        assert base is not None
        main_module, other_loss = _main_module_and_other_loss(experiments.base)
        available = _training_subjects(experiments.base, args.data)
        counts = sorted({n for n in _counts(args.identities) if n < available} | {available})
        planned = _ablation_plan(experiments.base, counts[:-1])
        if args.only:
            return _ablate_only(planned, args.only, experiments, args)
        bar.update(task, total=len(planned) + len(args.compare))
        done = experiments.run_all(planned, args.workers)
        modules: dict[str, dict[str, Any]] = {}
        for module in CALIBRATION_MODULES:  # measured one at a time, after every training has finished
            latency = experiments.latency(module, args.latency_frames)
            modules[module] = done[module] | {"latency_ms_p50": latency["calibrated_ms_p50"],
                                              "overhead_pct": latency["overhead_pct"]}  # fmt: skip
        main = modules[main_module]
        losses = sorted([main | {"name": f"{main_module}_{base.loss}"}, done[f"{main_module}_{other_loss}"]],
                        key=lambda row: str(row["name"]))  # fmt: skip
        curve = [(0, modules["none"])] + [(n, done[f"{main_module}_{n}_anchors"]) for n in range(1, len(base.anchors))]
        curve.append((len(base.anchors), main))
        identities = [(n, done[f"{main_module}_{n}_identities"], done[f"none_{n}_identities"]) for n in counts[:-1]]
        identities.append((available, main, modules["none"]))
        table1 = [
            _entry(main | {"name": f"calibrated ({main['name']})"}),
            _entry(modules["none"] | {"name": "uncalibrated"}),
        ]
        cameras = tuple(dataset_info(args.data)["cameras"])
        for spec in args.compare:  # Table 1's other rows: the tracker issue's models and baselines
            try:
                predictor = load_predictor(spec, cameras)
            except FileNotFoundError as error:
                table1.append({"name": spec, "error": str(error)})
                continue
            evaluation = evaluate(predictor, args.data, args.split, experiments.domains, args.photometric_frames)
            domain = next(d for d in experiments.domains if d in evaluation.domains)
            metrics = {k: _finite(evaluation.domains[domain].dataset.get(k)) for k in _KEYS}
            table1.append({"name": predictor.name, **metrics, "latency_ms_p50": evaluation.latency_ms_p50})
            bar.update(task, advance=1, description=f"evaluated {predictor.name}")
    reduction = _reduction(main["mesh_l2_mm"], modules["none"]["mesh_l2_mm"])
    result = {
        "data": args.data, "preset": args.preset, "steps": experiments.base.steps, "split": args.split,
        "domain": main["domain"],
        "uncalibrated": _entry(modules["none"]),
        "modules": [_entry(modules[m]) for m in CALIBRATION_MODULES if m != "none"],
        "losses": [_entry(row) for row in losses],
        "anchors_curve": [{"anchors": n, **_entry(row)} for n, row in curve],
        "identities_curve": [{"identities": n, "calibrated": _entry(calibrated), "uncalibrated": _entry(uncalibrated)}
                             for n, calibrated, uncalibrated in identities],
        "table1": table1,
        "targets": {
            "mesh_reduction_pct": reduction, "mesh_target_pct": _MESH_TARGET_PCT,
            "mesh_target_met": reduction is not None and reduction >= _MESH_TARGET_PCT,
            "latency_overhead_pct": main["overhead_pct"], "latency_target_pct": _LATENCY_TARGET_PCT,
            "latency_target_met": main["overhead_pct"] <= _LATENCY_TARGET_PCT,
        },
    }  # fmt: skip
    out = Path(args.out)
    _write_json(out / "ablation.json", result)
    write_ablation_report(result, out)
    if args.json:
        print_json(result)
    else:
        console.print(f"wrote {out / 'ablation.json'} and {out / 'report.md'}")
        Console().print((out / "report.md").read_text())
    return 0


def _ablate_only(
    planned: dict[str, TrainConfig], names: str, experiments: _Experiments, args: argparse.Namespace
) -> int:
    """Train and score the experiments `names` (comma-separated) of `planned`; print their metrics."""
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in planned]
    if unknown or not chosen:
        raise ValueError(f"--only names experiments of the ablation; unknown: {unknown or names!r}; "
                         f"the ablation's experiments: {', '.join(planned)}")  # fmt: skip
    done = experiments.run_all({name: planned[name] for name in chosen}, args.workers)
    rows = [_entry(done[name]) | {"per_domain": done[name]["per_domain"]} for name in chosen]
    if args.json:
        print_json({"data": args.data, "preset": args.preset, "steps": experiments.base.steps, "experiments": rows})
    else:
        for row in rows:
            Console().print(f"{row['name']}: " + ", ".join(f"{k} {row[k]:.3f}" for k in _KEYS if row[k] is not None))
    return 0


def _with_calibration(base: TrainConfig, **changes: Any) -> TrainConfig:
    """`base` with `changes` to its calibration settings (e.g. module="pooling"); a module without a fusion conv
    drops `linear_fusion`."""
    from egoface.models import FUSION_CONV_MODULES

    assert base.calibration is not None
    if changes.get("module", base.calibration.module) not in FUSION_CONV_MODULES:
        changes.setdefault("linear_fusion", False)
    return dataclasses.replace(base, calibration=dataclasses.replace(base.calibration, **changes))


def _main_module_and_other_loss(base: TrainConfig) -> tuple[str, str]:
    """The ablation's main calibration module (the preset's; late fusion if it has none) and Table 2's other loss."""
    assert base.calibration is not None
    main_module = base.calibration.module if base.calibration.module != "none" else "late_fusion"
    return main_module, "perceptual" if base.calibration.loss == "code" else "code"


def _ablation_plan(base: TrainConfig, identity_counts: list[int]) -> dict[str, TrainConfig]:
    """Every experiment of `egoface ablate calibration` but the preset's own, by name, in training order: the main
    module and the uncalibrated reference first, the other modules (Table 3), the main module with the other loss
    (Table 2) and with the preset's first n anchors (Fig. 8), both reference modules with each of `identity_counts`
    training identities (Fig. 19)."""
    from egoface.models import CALIBRATION_MODULES

    assert base.calibration is not None
    calibration = base.calibration
    main_module, other_loss = _main_module_and_other_loss(base)

    config = functools.partial(_with_calibration, base)
    reference_pair_first = sorted(CALIBRATION_MODULES, key=lambda m: (m != main_module, m != "none"))
    planned = {module: config(module=module) for module in reference_pair_first}
    planned[f"{main_module}_{other_loss}"] = config(module=main_module, loss=other_loss)
    for n in range(1, len(calibration.anchors)):
        planned[f"{main_module}_{n}_anchors"] = config(module=main_module, anchors=calibration.anchors[:n])
    for n in identity_counts:
        for module in (main_module, "none"):
            planned[f"{module}_{n}_identities"] = config(module=module, train_subjects=n)
    return planned


def _entry(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's keys (plus the other metrics) of one experiment."""
    keys = ("name", *_KEYS, "latency_ms_p50", "overhead_pct", "run_dir")
    return {key: summary.get(key) for key in keys} | {"anchor_names": summary.get("anchors")}


def _reduction(calibrated: float | None, uncalibrated: float | None) -> float | None:
    """How much lower (%) the calibrated error is than the uncalibrated one."""
    if calibrated is None or uncalibrated is None or uncalibrated <= 0:
        return None
    return 100.0 * (1.0 - calibrated / uncalibrated)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--identities must be comma-separated integers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--identities must be positive integers, got {text!r}")
    return counts


def _training_subjects(config: TrainConfig, data: str) -> int:
    from egoface.data import DatasetStore

    subjects = DatasetStore(data).subjects(config.data.domains, config.data.train_splits)
    if not subjects:
        raise ValueError(f"no training subjects of {config.data.domains} in {data}")
    return len(subjects)
