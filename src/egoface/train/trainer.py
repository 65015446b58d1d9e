"""Supervised training of a tracker on the labelled frames of a dataset store, resumable to the same result.

    result = train(PRESETS["default"], "DATA", "RUN")     # RUN/config.json, metrics.jsonl, checkpoints/, model.pt
    model = load_run("RUN")

Determinism: the initial weights come from `config.seed`; the order of the frames in epoch e is a permutation
seeded by (seed, e), step s reads batch `s mod batches_per_epoch` of epoch `s div batches_per_epoch`; the
augmentations of step s (the dataset's `augment_views` per camera view, then batch CutMix) are seeded by
(seed, s). Nothing depends on how many times the process was started, so a run stopped and resumed from `last.pt`
ends with the same weights, bit for bit, as one that ran through (on the same machine and thread count).

Augmentation is drawn for the whole batch in the training process rather than per sample in the loader: the same
functions and ranges as `HeadsetDataset(augment=...)`, but one vectorized call per step instead of one per sample
(about 10x faster on CPU). Keypoints are not used here, so they are not warped.

Input normalization happens here and only here, from the model's config: `x = (pixel / 255 - mean) / std`.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from egoface.data import Batch, DatasetStore, HeadsetDataset, collate, cutmix
from egoface.data.augment import augment_views
from egoface.data.schema import is_left_camera
from egoface.face.gaze import gaze_vector
from egoface.models import ModelConfig, TrackerModel, TrackerOutput, create_model
from egoface.models.files import load_model, normalize_images, save_model
from egoface.train.checkpoint import (
    Checkpoint,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from egoface.train.config import TrainConfig
from egoface.train.logging import MetricsLog
from egoface.train.losses import GeometryLoss, LossTerms, supervised_losses

__all__ = [
    "Progress",
    "TrainResult",
    "Trainer",
    "autocast",
    "benchmark_training",
    "build_model",
    "check_bench_windows",
    "model_from_checkpoint",
    "time_steps",
    "train",
]

#: progress(steps_done, steps_total, message) — called after every step (and once at the start).
Progress = Callable[[int, int, str], None]

_ORDER, _AUGMENT, _ANCHOR_AUGMENT = 1, 2, 3  # seed streams: data order, augmentation, anchors' augmentation


def _generator(*keys: int) -> torch.Generator:
    """A torch generator seeded by a tuple of non-negative integers."""
    seed = np.random.SeedSequence(list(keys)).generate_state(2, np.uint64)[0]
    return torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)


def build_model(config: TrainConfig) -> TrackerModel:
    """The registered model `config.model` at `config.input_size`, initialized from `config.seed`, or with the
    weights of the model file `config.init`."""
    torch.manual_seed(config.seed)
    model = create_model(config.model, input_size=tuple(config.input_size))
    assert isinstance(model, TrackerModel)
    if len(model.input_shape) != 4:
        raise ValueError(f"model {config.model!r} takes input of shape {model.input_shape}, not camera images "
                         "(B, C, 1, H, W); the supervised image trainer cannot train it")  # fmt: skip
    return _initialize(model, config)


def model_from_checkpoint(path: str | os.PathLike[str]) -> TrackerModel:
    """The model of a training checkpoint (`RUN/checkpoints/best.pt` or `last.pt`) in eval mode: its architecture
    rebuilt from the checkpoint's config (image trackers and calibrated encoders), its weights at that step."""
    from egoface.train.calibrated import build_calibrated_model

    checkpoint = load_checkpoint(path)
    config = replace(TrainConfig.from_dict(checkpoint.config), init=None)  # the weights come from the checkpoint
    model = build_model(config) if config.calibration is None else build_calibrated_model(config)
    model.load_state_dict(checkpoint.model)
    return model.eval()


def _initialize(model: TrackerModel, config: TrainConfig) -> TrackerModel:
    """`model` with the weights of the model file `config.init` when set (the same architecture is required)."""
    if config.init is not None:
        start = load_model(config.init)
        if start.config != model.config:
            raise ValueError(
                f"init={config.init} holds a different architecture than {config.model!r} at {config.input_size}: "
                f"{start.config} vs {model.config}"
            )
        model.load_state_dict(start.state_dict())
    return model


def autocast(precision: str) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's dtype context for `TrainConfig.precision`: CPU autocast to bfloat16, or nothing."""
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Trainer:
    """The model, its optimizer (AdamW), learning-rate schedule and losses; `train_step` is one optimizer step."""

    def __init__(self, config: TrainConfig, model: TrackerModel, geometry: GeometryLoss | None = None) -> None:
        if config.loss.geometry > 0 and geometry is None:
            raise ValueError("loss.geometry > 0 needs a GeometryLoss (GeometryLoss.from_store(data_root, ...))")
        self.config, self.model, self.geometry = config, model, geometry
        optim = config.optim
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.step = 0  # optimizer steps done

    def lr_factor(self, step: int) -> float:
        """Learning rate at `step` relative to `optim.lr`: linear warm-up, then cosine (or constant)."""
        optim = self.config.optim
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        if optim.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - optim.warmup_steps) / max(1, self.config.steps - optim.warmup_steps))
        return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def _forward(self, images: torch.Tensor, batch: Batch) -> TrackerOutput:
        """images (B, C, 1, H, W) in [0, 1] (the batch's, possibly augmented) -> the model's output."""
        return self.model(normalize_images(images, self.model.config))

    def _supervised(self, output: TrackerOutput, batch: Batch) -> LossTerms:
        return supervised_losses(
            output, batch.expression, batch.gaze, batch.label_mask, self.model.config, self.config.loss,
            self.geometry, batch.subjects,
        )  # fmt: skip

    def train_step(self, batch: Batch) -> LossTerms:
        """batch -> model -> losses -> optimizer step. Returns the losses (before the step, detached)."""
        self.model.train()
        images = batch.images  # (B, C, 1, H, W) in [0, 1], left cameras flipped
        augment, generator = self.config.augment, _generator(self.config.seed, _AUGMENT, self.step)
        if augment is not None:  # every view its own rotation, scale, brightness and gamma
            images = augment_views(images.flatten(0, 1), augment, generator)[0].unflatten(0, images.shape[:2])
        if augment is not None and self.config.cutmix:
            images = cutmix(images, augment, generator)[0]
        with autocast(self.config.precision):
            output = self._forward(images, batch)  # TrackerOutput, (B, 45) / (B, 2, 2)
        losses = self._supervised(TrackerOutput(*(t.float() for t in output)), batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        if self.config.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        geometry = None if losses.geometry is None else losses.geometry.detach()
        return LossTerms(losses.total.detach(), losses.expression.detach(), losses.gaze.detach(), geometry)

    @torch.no_grad()
    def evaluate(self, batches: Iterator[Batch]) -> dict[str, float] | None:
        """Mean losses (and angular gaze error, deg) over the labelled samples of `batches`, without augmentation;
        None when no sample has labels."""
        self.model.eval()
        sums: dict[str, float] = {"loss": 0.0, "loss_expression": 0.0, "loss_gaze": 0.0, "loss_geometry": 0.0}
        gaze_error, count = 0.0, 0
        for batch in batches:
            labelled = int(batch.label_mask.sum())
            if labelled == 0 or batch.gaze is None:
                continue
            output = self._forward(batch.images, batch)
            terms = self._supervised(output, batch)
            for key, value in zip(sums, (terms.total, terms.expression, terms.gaze, terms.geometry), strict=True):
                sums[key] += 0.0 if value is None else float(value) * labelled
            cosine = (gaze_vector(output.gaze) * gaze_vector(batch.gaze)).sum(-1).clamp(-1.0, 1.0)  # (B, 2)
            gaze_error += float(torch.rad2deg(torch.acos(cosine)).mean(dim=1)[batch.label_mask].sum())
            count += labelled
        if count == 0:
            return None
        result = {key: value / count for key, value in sums.items()}
        result["gaze_error_deg"] = gaze_error / count
        result["samples"] = float(count)
        return result

    def checkpoint(self, best_val_loss: float) -> Checkpoint:
        return Checkpoint(
            step=self.step,
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            rng=capture_rng_state(),
            best_val_loss=best_val_loss,
            config=self.config.to_dict(),
        )

    def restore(self, checkpoint: Checkpoint) -> None:
        self.model.load_state_dict(checkpoint.model)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.scheduler.load_state_dict(checkpoint.scheduler)
        restore_rng_state(checkpoint.rng)
        self.step = checkpoint.step


@dataclass(frozen=True)
class TrainResult:
    """step: steps done; completed: step == config.steps (False when stopped early); loss: the last logged training
    loss; best_val_loss: inf without validation; samples_per_second: over this process's steps."""

    run_dir: Path
    step: int
    completed: bool
    loss: float
    best_val_loss: float
    samples_per_second: float


def _check_flips(config: ModelConfig) -> bool:
    """The dataset flips `*_left` cameras or nothing; the model must expect the same. Returns flip_left."""
    left = {c for c in config.cameras if is_left_camera(c)}
    if set(config.flipped) == left:
        return True
    if not config.flipped:
        return False
    raise ValueError(f"model flips {config.flipped}, but the dataset can flip only the left cameras {sorted(left)} "
                     "or none; set ModelConfig.flipped_cameras accordingly")  # fmt: skip


def _datasets(
    config: TrainConfig,
    root: Path,
    model_config: ModelConfig,
    progress: Progress | None = None,
    train_subjects: list[str] | None = None,
) -> tuple[HeadsetDataset, HeadsetDataset | None]:
    """The training (of `train_subjects` only, when given) and (when the store has such subjects) validation
    datasets; refuses unlabelled training data. With `data.cache_images`, `progress` first says that the images are
    being read into memory."""
    flip_left = _check_flips(model_config)
    if config.data.cache_images and progress is not None:
        progress(0, config.steps, "reading the images into memory (data.cache_images)")
    common: dict[str, Any] = {
        "domains": config.data.domains,
        "cameras": model_config.cameras,
        "resolution": model_config.input_size,
        "flip_left": flip_left,
        "augment": None,  # drawn per batch in `Trainer.train_step`, seeded by (seed, step)
        "cache_images": config.data.cache_images,
    }
    train_set = HeadsetDataset(root, splits=config.data.train_splits, subjects=train_subjects, **common)
    store = DatasetStore(root)
    labelled = sum(
        ref.frames
        for ref in train_set.recordings
        if store.read_recording(ref.subject, ref.recording, slice(0, 1)).labels is not None
    )
    if labelled == 0:
        raise ValueError(
            f"no labelled frames in {root} for domains {config.data.domains} and splits {config.data.train_splits} "
            f"({len(train_set)} frames, none with labels; real-domain true labels are withheld from training): "
            "generate synthetic data or select data.domains=synthetic"
        )
    if len(train_set) < config.batch_size:
        raise ValueError(f"the training split has {len(train_set)} frames, fewer than batch_size={config.batch_size}")
    val_set = None
    if config.data.val_splits:
        try:
            val_set = HeadsetDataset(root, splits=config.data.val_splits, **common)
        except ValueError as error:
            if "no complete recordings" not in str(error):
                raise
    return train_set, val_set


#: How DataLoader workers start: forked where the platform has fork (see `_loader`), else its default.
_LOADER_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def _train_batches(dataset: HeadsetDataset, config: TrainConfig, start: int, stop: int) -> Iterator[Batch]:
    """The batches of steps [start, stop) (`_epoch_batches`), loaded in order."""
    per_epoch = len(_epoch_batches(dataset, config, 0))  # the same count every epoch
    step = start
    while step < stop:
        epoch, first = divmod(step, per_epoch)
        last = min(per_epoch, first + stop - step)
        yield from _loader(dataset, _epoch_batches(dataset, config, epoch)[first:last], config)
        step += last - first


def _epoch_batches(dataset: HeadsetDataset, config: TrainConfig, epoch: int) -> list[list[int]]:
    """Epoch e's batches (lists of dataset indices), from generators seeded by (seed, e): a permutation of all
    frames cut into batches, or with `data.subjects_per_batch` = n, each recording's frames permuted and cut into
    runs of batch_size / n, the runs permuted and taken n at a time. Incomplete batches and runs are dropped."""
    generator = _generator(config.seed, _ORDER, epoch)
    size = config.batch_size
    if not config.data.subjects_per_batch:
        order = torch.randperm(len(dataset), generator=generator).tolist()
        return [order[i * size : (i + 1) * size] for i in range(len(dataset) // size)]
    run = size // config.data.subjects_per_batch
    runs, first = [], 0
    for ref in dataset.recordings:
        frames = (first + torch.randperm(ref.frames, generator=generator)).tolist()
        runs += [frames[i * run : (i + 1) * run] for i in range(ref.frames // run)]
        first += ref.frames
    shuffled = [runs[i] for i in torch.randperm(len(runs), generator=generator).tolist()]
    per_batch = config.data.subjects_per_batch
    groups = [shuffled[i * per_batch : (i + 1) * per_batch] for i in range(len(shuffled) // per_batch)]
    return [[index for run in group for index in run] for group in groups]


def _val_batches(dataset: HeadsetDataset, config: TrainConfig) -> Iterator[Batch]:
    """At most `data.val_samples` frames evenly spaced over the validation dataset, in order."""
    count = min(len(dataset), config.data.val_samples)
    indices = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(int)).tolist()
    batches = [indices[i : i + config.batch_size] for i in range(0, len(indices), config.batch_size)]
    yield from _loader(dataset, batches, config)


def _loader(dataset: HeadsetDataset, batches: list[list[int]], config: TrainConfig) -> Iterable[Batch]:
    """Loads `batches` (lists of indices) in order.

    In this process (`data.num_workers=0`), one batch at a time on one thread: reading and resizing are many small
    tensor operations, which on 2 cores shared with other jobs run several times slower on 2 threads than on 1.
    With workers, a DataLoader (whose workers use one thread each) with its own generator, which keeps the global
    RNG untouched (a DataLoader otherwise draws worker seeds from it, and resuming mid-epoch would then leave the
    global RNG elsewhere than an uninterrupted run does). Its workers are forked where the platform can, also when
    this process was itself spawned (the ablation's experiments; a spawned process spawns by default), so that
    they share `data.cache_images`' memory instead of each reading its own copy.
    """
    if config.data.num_workers > 0:
        return DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=collate,
            num_workers=config.data.num_workers,
            generator=torch.Generator().manual_seed(config.seed),
            multiprocessing_context=_LOADER_START_METHOD,
        )
    return (_load_single_threaded(dataset, indices) for indices in batches)


def _load_single_threaded(dataset: HeadsetDataset, indices: list[int]) -> Batch:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return collate([dataset[i] for i in indices])
    finally:
        torch.set_num_threads(threads)


class _StopRequest:
    """Turns SIGINT (Ctrl-C) into a request to stop after the current step and save, while training runs."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _resume_or_start(trainer: Trainer, run: Path) -> float:
    """Write (or check) RUN/config.json and restore last.pt if present. Returns the best validation loss so far."""
    config_path, last = run / "config.json", run / "checkpoints" / "last.pt"
    if config_path.exists():
        _check_same_config(TrainConfig.from_json(config_path.read_text()), trainer.config, run)
    else:
        tmp = config_path.with_name(f".config.json.tmp-{os.getpid()}")
        tmp.write_text(trainer.config.to_json() + "\n")
        os.replace(tmp, config_path)
    if not last.exists():
        return math.inf
    checkpoint = load_checkpoint(last)
    _check_same_config(TrainConfig.from_dict(checkpoint.config), trainer.config, run)
    trainer.restore(checkpoint)
    return checkpoint.best_val_loss


def _check_same_config(before: TrainConfig, config: TrainConfig, run: Path) -> None:
    if before != config:
        old, new = _flatten(before.to_dict()), _flatten(config.to_dict())
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise ValueError(
            f"{run} holds a run with another config (differs in {', '.join(changed)}); resume it with the same "
            "settings or choose a new --out"
        )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run with `threads` torch threads (0: leave as is), then restore the previous count."""
    previous = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(
    config: TrainConfig,
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    stop_after: int | None = None,
    tensorboard: bool = True,
) -> TrainResult:
    """Train `config` on the dataset store at `data` into the run directory `out` (created or resumed).

    Resuming: when `out/checkpoints/last.pt` exists the run continues from it (the config must be the same). The
    run stops early, saving last.pt, after step `stop_after` or at Ctrl-C. At the end, `out/model.pt` holds the
    final weights (`load_run`). Raises ValueError for data without labels or settings that do not fit it.
    """
    with _torch_threads(config.threads):
        return _train(config, Path(data), Path(out), progress, stop_after, tensorboard)


def _train(
    config: TrainConfig, root: Path, run: Path, progress: Progress | None, stop_after: int | None, tensorboard: bool
) -> TrainResult:
    model = build_model(config)
    train_set, val_set = _datasets(config, root, model.config, progress)
    geometry = GeometryLoss.from_store(root, config.loss) if config.loss.geometry > 0 else None
    trainer = Trainer(config, model, geometry)
    run.mkdir(parents=True, exist_ok=True)
    best_val = _resume_or_start(trainer, run)
    stop = config.steps if stop_after is None else min(config.steps, max(stop_after, trainer.step))
    evaluate = None if val_set is None else (lambda: trainer.evaluate(_val_batches(val_set, config)))
    return run_loop(
        trainer, run, config, _train_batches(train_set, config, trainer.step, stop), trainer.train_step, evaluate,
        len(train_set), stop, best_val, geometry is not None, progress, tensorboard,
    )  # fmt: skip


def run_loop(
    trainer: Trainer,
    run: Path,
    config: TrainConfig,
    steps: Iterable[Any],
    step_fn: Callable[[Any], LossTerms],
    evaluate: Callable[[], dict[str, float] | None] | None,
    num_samples: int,
    stop: int,
    best_val: float,
    geometry_on: bool,
    progress: Progress | None,
    tensorboard: bool,
) -> TrainResult:
    """The loop every trainer shares: one `step_fn(item)` per item of `steps`, then metrics lines (train every
    `log_every` steps, validation by `evaluate()` every `val_every`), `best.pt` / `last.pt` checkpoints, progress,
    Ctrl-C handling, and `model.pt` once `config.steps` are done. num_samples: training-set size (for the epoch)."""
    model = trainer.model
    log = MetricsLog(run, resume_step=trainer.step, tensorboard=tensorboard)
    per_epoch = max(1, num_samples // config.batch_size)
    start_time, start_step = time.perf_counter(), trainer.step
    window_time, window_terms, loss = time.perf_counter(), [], math.nan

    def save(path: str, best: float) -> None:
        save_checkpoint(trainer.checkpoint(best), run / "checkpoints" / path)

    if progress is not None:
        progress(trainer.step, config.steps, "training")
    with _StopRequest() as interrupt:
        for item in steps:
            terms = step_fn(item)
            window_terms.append([float(t) if t is not None else math.nan for t in terms])
            step = trainer.step
            if step % config.log_every == 0 or step == stop:
                now = time.perf_counter()
                mean = np.mean(window_terms, axis=0).tolist()
                loss = mean[0]
                log.write("train", {
                    "step": step, "time_s": now - start_time, "epoch": (step - 1) // per_epoch,
                    "loss": mean[0], "loss_expression": mean[1], "loss_gaze": mean[2], "loss_geometry": mean[3],
                    "lr": config.optim.lr * trainer.lr_factor(step - 1),
                    "samples_per_second": len(window_terms) * config.batch_size / max(now - window_time, 1e-9),
                })  # fmt: skip
                window_time, window_terms = now, []
            if evaluate is not None and (step % config.val_every == 0 or step == config.steps):
                val = evaluate()
                if val is not None and val["loss"] < best_val:
                    best_val = val["loss"]
                    save("best.pt", best_val)
                if val is not None:
                    log.write("val", {
                        "step": step, "time_s": time.perf_counter() - start_time, "val_loss": val["loss"],
                        "val_loss_expression": val["loss_expression"], "val_loss_gaze": val["loss_gaze"],
                        "val_loss_geometry": val["loss_geometry"] if geometry_on else None,
                        "val_gaze_error_deg": val["gaze_error_deg"], "val_samples": int(val["samples"]),
                        "best": val["loss"] == best_val,
                    })  # fmt: skip
            if step % config.checkpoint_every == 0 or step == stop or interrupt.requested:
                save("last.pt", best_val)
            if progress is not None:
                progress(step, config.steps, f"training (loss {float(terms.total):.4f})")
            if interrupt.requested:
                break
    log.close()
    completed = trainer.step >= config.steps
    if completed:
        assert isinstance(model, TrackerModel)
        save_model(model, run / "model.pt", trainer.step)
    elapsed = time.perf_counter() - start_time
    return TrainResult(
        run_dir=run,
        step=trainer.step,
        completed=completed,
        loss=loss,
        best_val_loss=best_val,
        samples_per_second=(trainer.step - start_step) * config.batch_size / elapsed if elapsed > 0 else 0.0,
    )


def _random_batch(config: TrainConfig, model_config: ModelConfig, generator: torch.Generator) -> Batch:
    """A labelled batch of uniform-noise images and random labels, shaped like the dataset's."""
    size = config.batch_size
    cameras = model_config.cameras
    return Batch(
        images=torch.rand((size, len(cameras), 1, *model_config.input_size), generator=generator),
        camera_names=cameras,
        label_mask=torch.ones(size, dtype=torch.bool),
        expression=torch.rand((size, len(model_config.expression_names)), generator=generator),
        gaze=(torch.rand((size, 2, 2), generator=generator) - 0.5) * 40.0,
        head_rotation=None,
        head_translation=None,
        keypoints=None,
        keypoint_visibility=None,
        ood=torch.zeros(size, dtype=torch.bool),
        subjects=["random"] * size,
        recordings=["random"] * size,
        frames=torch.arange(size),
        domains=["synthetic"] * size,
        anchor_frames=[{} for _ in range(size)],
        anchor_images={},
    )


def benchmark_training(
    config: TrainConfig,
    data: str | os.PathLike[str] | None = None,
    *,
    windows: int = 5,
    window_steps: int = 5,
    warmup_steps: int = 3,
) -> dict[str, Any]:
    """Training throughput of `config`: the median samples/s of `windows` timed windows of `window_steps` steps,
    after `warmup_steps` untimed ones, with `config.threads` torch threads; `samples_per_cpu_second` divides by the
    CPU time of this process (not of loader processes) instead.

    With `data`, batches come from that store through the training data path (reading, resizing, collating, with
    `data.num_workers` loader processes; every training subject's rig is built before the first step, as a
    training run has built them all after its first epoch); without, from random tensors of the right shapes,
    which times the rest of a step: augmentation, CutMix, model, losses, backward and optimizer. The geometry loss
    is left out in the random-tensor mode (it needs real subjects).
    """
    check_bench_windows(windows, window_steps, warmup_steps)
    with _torch_threads(config.threads):
        return _benchmark(config, data, windows, window_steps, warmup_steps)


def check_bench_windows(windows: int, window_steps: int, warmup_steps: int) -> None:
    """Refuses bench settings that time nothing."""
    if windows < 1 or window_steps < 1 or warmup_steps < 0:
        raise ValueError(f"need windows >= 1, window_steps >= 1, warmup_steps >= 0; got {windows}, "
                         f"{window_steps}, {warmup_steps}")  # fmt: skip


def _benchmark(
    config: TrainConfig, data: str | os.PathLike[str] | None, windows: int, window_steps: int, warmup_steps: int
) -> dict[str, Any]:
    total = warmup_steps + windows * window_steps
    model = build_model(config)
    if data is None:
        config = _without_geometry(config)
        generator = torch.Generator().manual_seed(config.seed)
        fixed = [_random_batch(config, model.config, generator) for _ in range(min(total, 4))]
        batches: Iterator[Batch] = (fixed[i % len(fixed)] for i in range(total))
        geometry = None
    else:
        train_set, _ = _datasets(config, Path(data), model.config)
        batches = _train_batches(train_set, config, 0, total)
        geometry = GeometryLoss.from_store(data, config.loss) if config.loss.geometry > 0 else None
        if geometry is not None:
            geometry.preload(sorted({ref.subject for ref in train_set.recordings}))
    source = "random tensors" if data is None else f"dataset {data}"
    return time_steps(Trainer(config, model, geometry), batches, windows, window_steps, warmup_steps, source)


def time_steps(
    trainer: Trainer, batches: Iterator[Batch], windows: int, window_steps: int, warmup_steps: int, source: str
) -> dict[str, Any]:
    """`benchmark_training`'s measurement of `trainer.train_step` on `batches` (at least warmup_steps + windows x
    window_steps of them); `source` says where the batches come from."""
    config = trainer.config
    rates, cpu_rates = [], []
    for _ in range(warmup_steps):
        trainer.train_step(next(batches))
    for _ in range(windows):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        for _ in range(window_steps):
            trainer.train_step(next(batches))
        rates.append(window_steps * config.batch_size / (time.perf_counter() - begin))
        cpu_rates.append(window_steps * config.batch_size / (time.process_time() - begin_cpu))
    return {
        "samples_per_second": statistics.median(rates),
        "samples_per_cpu_second": statistics.median(cpu_rates),
        "windows": rates,
        "window_steps": window_steps,
        "warmup_steps": warmup_steps,
        "batch_size": config.batch_size,
        "model": config.model,
        "input_size": list(config.input_size),
        "precision": config.precision,
        "cameras": len(trainer.model.config.cameras),
        "source": source,
        "threads": torch.get_num_threads(),
    }


def _without_geometry(config: TrainConfig) -> TrainConfig:
    return replace(config, loss=replace(config.loss, geometry=0.0)) if config.loss.geometry > 0 else config
