"""The supervised trainer end to end on a small random store: a two-step run per preset writes every run file,
the loss falls when overfitting a small batch, an interrupted run resumed ends with bit-identical weights, the
CLI trains/resumes/benchmarks, and data without labels is refused clearly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from egoface.cli.main import main
from egoface.data import DatasetStore, HeadsetDataset, collate
from egoface.train import (
    PRESETS,
    TRAIN_KEYS,
    VAL_KEYS,
    TrainConfig,
    Trainer,
    apply_overrides,
    build_model,
    load_checkpoint,
    load_run,
    read_metrics,
    train,
)
from egoface.train.trainer import _epoch_batches, _loader
from test_data_helpers import make_recording

SMALL = ["input_size=32,32", "data.val_samples=8"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two labelled training subjects (80 frames), one labelled validation subject, one real-domain subject."""
    root = tmp_path_factory.mktemp("train_store")
    store = DatasetStore(root)
    store.write_recording(make_recording(subject="s000", frames=40, seed=0))
    store.write_recording(make_recording(subject="s001", frames=40, seed=1))
    store.write_recording(make_recording(subject="v000", frames=12, seed=2, split="val"))
    store.write_recording(make_recording(subject="r000", frames=20, seed=3, domain="real"))
    return root


def _state(run: Path) -> dict[str, torch.Tensor]:
    return load_run(run).state_dict()


@pytest.mark.parametrize("preset", ["tiny", "default", "paper"])
def test_two_step_run_per_preset_writes_every_run_file(preset: str, store_root: Path, tmp_path: Path) -> None:
    config = apply_overrides(PRESETS[preset], [*SMALL, "steps=2", "log_every=1", "val_every=2"])
    result = train(config, store_root, tmp_path / "run")
    assert result.completed and result.step == 2 and result.loss > 0 and result.best_val_loss < float("inf")
    run = tmp_path / "run"
    assert TrainConfig.from_json((run / "config.json").read_text()) == config  # the resolved config, exactly
    lines = read_metrics(run / "metrics.jsonl")
    train_lines = [line for line in lines if line["kind"] == "train"]
    val_lines = [line for line in lines if line["kind"] == "val"]
    assert [line["step"] for line in train_lines] == [1, 2] and [line["step"] for line in val_lines] == [2]
    assert all(list(line) == list(TRAIN_KEYS) for line in train_lines)
    assert list(val_lines[0]) == list(VAL_KEYS) and val_lines[0]["val_samples"] == 8 and val_lines[0]["best"]
    assert train_lines[0]["lr"] == config.optim.lr * (1 / config.optim.warmup_steps if config.optim.warmup_steps else 1)
    assert train_lines[1]["samples_per_second"] > 0
    assert (train_lines[0]["loss_geometry"] is None) == (config.loss.geometry == 0)  # the default preset's rig loss
    assert load_checkpoint(run / "checkpoints" / "last.pt").step == 2
    assert load_checkpoint(run / "checkpoints" / "best.pt").step == 2
    model = load_run(run)
    assert model.config.input_size == (32, 32) and not model.training
    output = model(torch.zeros(1, *model.input_shape))
    assert torch.isfinite(output.expression).all() and output.expression.shape == (1, 53)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_loss_falls_when_overfitting_eight_samples(precision: str, store_root: Path) -> None:
    """Also under bfloat16 autocast: its convolutions then compute in bfloat16, its weights stay float32."""
    config = apply_overrides(
        PRESETS["tiny"],
        ["input_size=32,32", "batch_size=8", "cutmix=false", "augment=none", "optim.schedule=constant",
         f"precision={precision}"],
    )  # fmt: skip
    dataset = HeadsetDataset(store_root, resolution=(32, 32))
    batch = collate([dataset[i] for i in range(0, 80, 10)])  # 8 samples from both training subjects
    trainer = Trainer(config, build_model(config))
    conv_dtypes: list[torch.dtype] = []
    first_conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda module, inputs, output: conv_dtypes.append(output.dtype))
    losses = [float(trainer.train_step(batch).total) for _ in range(80)]
    assert losses[-1] < 0.5 * losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"
    assert set(conv_dtypes) == {getattr(torch, precision)}
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}


def test_an_interrupted_run_resumes_to_bit_identical_weights(store_root: Path, tmp_path: Path) -> None:
    # batch 16 over 80 frames: 5 steps per epoch, so the runs cross an epoch boundary; augmentation and CutMix on.
    config = apply_overrides(PRESETS["tiny"], ["input_size=32,32", "batch_size=16", "steps=8", "checkpoint_every=2"])
    assert config.augment is not None and config.cutmix
    whole = train(config, store_root, tmp_path / "whole")
    stopped = train(config, store_root, tmp_path / "resumed", stop_after=3)
    assert not stopped.completed and stopped.step == 3 and not (tmp_path / "resumed" / "model.pt").exists()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt").step == 3
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as handle:  # a line the stopped process wrote late
        handle.write(json.dumps({"kind": "train", "step": 4, "time_s": 1.0, "loss": 99.0}) + "\n")
    resumed = train(config, store_root, tmp_path / "resumed")
    assert resumed.completed and resumed.step == 8
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole_lines = [(x["kind"], x["step"], x.get("loss")) for x in read_metrics(tmp_path / "whole" / "metrics.jsonl")]
    resumed_lines = [
        (x["kind"], x["step"], x.get("loss")) for x in read_metrics(tmp_path / "resumed" / "metrics.jsonl")
    ]
    assert resumed_lines == whole_lines  # same losses at every step, the stale line dropped
    assert whole.loss == resumed.loss


def test_cached_images_in_forked_loader_workers_train_the_same_weights(store_root: Path, tmp_path: Path) -> None:
    """data.cache_images with 2 loader workers (forked, so that they share the cache, also where the process default
    is spawn) gives the weights of a run reading every frame from disk in this process (at the stored 24 x 32, where
    the cache holds the stored pixels)."""
    config = apply_overrides(PRESETS["tiny"], ["input_size=24,32", "batch_size=16", "steps=3"])
    cached = apply_overrides(config, ["data.cache_images=true", "data.num_workers=2"])
    loader = _loader(HeadsetDataset(store_root, resolution=(24, 32)), [[0, 1]], cached)
    assert isinstance(loader, DataLoader) and loader.multiprocessing_context.get_start_method() == "fork"
    train(config, store_root, tmp_path / "disk")
    train(cached, store_root, tmp_path / "cached")
    a, b = _state(tmp_path / "disk"), _state(tmp_path / "cached")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_subject_grouped_batches_hold_runs_of_one_subject_and_differ_per_epoch(store_root: Path) -> None:
    """data.subjects_per_batch = 2, batch 8: each batch is two runs of 4 frames, each run of one subject; an epoch
    uses every frame at most once; the order is fixed by (seed, epoch)."""
    config = apply_overrides(PRESETS["tiny"], [*SMALL, "batch_size=8", "data.subjects_per_batch=2"])
    dataset = HeadsetDataset(store_root, splits=("train",), resolution=(32, 32))
    subject_of = [ref.subject for ref in dataset.recordings for _ in range(ref.frames)]
    batches = _epoch_batches(dataset, config, epoch=0)
    assert len(batches) == 10  # 2 subjects x 40 frames / 8
    for batch in batches:
        assert len(batch) == 8
        for run in (batch[:4], batch[4:]):
            assert len({subject_of[i] for i in run}) == 1
    flat = [i for batch in batches for i in batch]
    assert len(flat) == len(set(flat)) == len(dataset)
    assert batches == _epoch_batches(dataset, config, epoch=0) and batches != _epoch_batches(dataset, config, 1)
    with pytest.raises(ValueError, match=r"multiple of data\.subjects_per_batch"):
        apply_overrides(config, ["batch_size=6", "data.subjects_per_batch=4"])


def test_resuming_with_another_config_is_refused(store_root: Path, tmp_path: Path) -> None:
    config = apply_overrides(PRESETS["tiny"], SMALL)
    train(config, store_root, tmp_path / "run")
    changed = dataclasses.replace(config, steps=3, optim=dataclasses.replace(config.optim, lr=0.01))
    with pytest.raises(ValueError, match=r"another config \(differs in optim.lr, steps\)"):
        train(changed, store_root, tmp_path / "run")


def test_training_refuses_data_without_labels(store_root: Path, tmp_path: Path) -> None:
    config = apply_overrides(PRESETS["tiny"], [*SMALL, "data.domains=real", "data.val_splits="])
    with pytest.raises(ValueError, match=r"no labelled frames .* domains \('real',\) and splits \('train',\)"):
        train(config, store_root, tmp_path / "run")
    config = apply_overrides(PRESETS["tiny"], [*SMALL, "data.domains=unlabeled"])
    with pytest.raises(ValueError, match="no complete recordings"):
        train(config, store_root, tmp_path / "run")
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        train(apply_overrides(config, ["model=nope"]), store_root, tmp_path / "run")
    with pytest.raises(ValueError, match="fewer than batch_size=128"):
        train(apply_overrides(PRESETS["tiny"], [*SMALL, "batch_size=128"]), store_root, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no trained model"):
        load_run(tmp_path / "run")


def test_loading_a_model_from_a_file_of_another_kind_says_what_it_needs(tmp_path: Path) -> None:
    from egoface.models import load_model

    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ValueError, match="exported ONNX graph; this needs the torch model"):
        load_model(tmp_path / "model.onnx")
    (tmp_path / "notes.pt").write_text("not a torch file")
    with pytest.raises(ValueError, match="not an egoface model file"):
        load_model(tmp_path / "notes.pt")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cli_trains_resumes_and_benchmarks(store_root: Path, tmp_path: Path, capsys) -> None:
    argv = ["train", "--preset", "tiny", "--data", str(store_root), "--out", str(tmp_path / "run")]
    argv += ["--set", "input_size=32,32", "--steps", "3", "--model", "refa_nano", "--quiet", "--json"]
    code, out = _cli(capsys, *argv)
    summary = json.loads(out)
    assert code == 0 and summary["completed"] and summary["step"] == 3 and summary["best_val_loss"] is not None
    assert {"run_dir", "step", "steps", "completed", "loss", "best_val_loss", "samples_per_second"} == summary.keys()
    code, out = _cli(capsys, *argv)  # the same command again: already complete, nothing more is trained
    assert code == 0 and json.loads(out)["step"] == 3
    assert [x["step"] for x in read_metrics(tmp_path / "run" / "metrics.jsonl") if x["kind"] == "train"] == [1, 2, 3]
    code, out = _cli(
        capsys, "bench", "train", "--set", "input_size=32,32", "--set", "batch_size=4",
        "--windows", "2", "--window-steps", "1", "--warmup-steps", "1", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert code == 0 and result["samples_per_second"] > 0 and len(result["windows"]) == 2
    assert result["source"] == "random tensors" and result["preset"] == "default" and result["batch_size"] == 4
    code = main(
        ["train", "--preset", "tiny", "--data", str(store_root), "--out", str(tmp_path / "bad"), "--set", "optim.lrr=1"]
    )
    assert code == 2 and "unknown config key 'optim.lrr'" in capsys.readouterr().err.replace("\n", "")
    code = main(["train", "--preset", "default-finetune", "--data", str(store_root), "--out", str(tmp_path / "ft")])
    assert code == 2 and "add --set init=RUN" in capsys.readouterr().err.replace("\n", " ")
    assert not (tmp_path / "ft").exists()  # refused before anything was written


def test_init_starts_from_a_model_files_weights_and_refuses_another_architecture(tmp_path) -> None:
    from egoface.models.files import save_model
    from egoface.train.trainer import build_model

    tiny = PRESETS["tiny"]
    trained = build_model(dataclasses.replace(tiny, seed=7))
    save_model(trained, tmp_path / "model.pt", step=2)
    started = build_model(dataclasses.replace(tiny, seed=0, init=str(tmp_path / "model.pt")))
    fresh = build_model(dataclasses.replace(tiny, seed=0))
    for name, value in trained.state_dict().items():
        assert torch.equal(started.state_dict()[name], value), name
    assert any(not torch.equal(fresh.state_dict()[n], v) for n, v in trained.state_dict().items())
    with pytest.raises(ValueError, match="different architecture"):
        build_model(dataclasses.replace(tiny, input_size=(48, 48), init=str(tmp_path / "model.pt")))
