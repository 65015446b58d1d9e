"""Checkpoints and the final model file of a run, written atomically (temporary file, then rename).

A training checkpoint (`RUN/checkpoints/last.pt`, `best.pt`) holds everything resuming needs to continue exactly
as if never stopped: the step, model, optimizer and scheduler states, the best validation loss so far and the
global RNG states (torch, numpy, python). The data order and every augmentation are functions of (seed, epoch,
step), so they need no saved state. `RUN/model.pt` holds only the weights and the model config (JSON) and is
what `load_run` reads for evaluation and export.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoface.models import ModelConfig, TrackerModel, model_from_config

__all__ = [
    "Checkpoint",
    "capture_rng_state",
    "load_checkpoint",
    "load_run",
    "restore_rng_state",
    "save_checkpoint",
    "save_model",
]


@dataclass
class Checkpoint:
    """step: optimizer steps done; best_val_loss: lowest validation loss so far (inf without validation)."""

    step: int
    model: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    best_val_loss: float
    config: dict[str, Any]


def _atomic_save(value: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Write `checkpoint` to `path` atomically: a reader sees the old file or the new one, never half of one."""
    _atomic_save(dict(vars(checkpoint)), Path(path))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain types only: `weights_only` loading)."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    missing = sorted(set(Checkpoint.__dataclass_fields__) - set(data))
    if missing:
        raise ValueError(f"{path} is not an egoface training checkpoint (lacks {missing})")
    return Checkpoint(**{key: data[key] for key in Checkpoint.__dataclass_fields__})


def capture_rng_state() -> dict[str, Any]:
    """The global torch, numpy and python RNG states, as tensors and plain types."""
    numpy_state = np.random.get_state(legacy=False)
    assert isinstance(numpy_state, dict)
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": saved["bit_generator"],
            "state": {"key": saved["key"].numpy().astype(np.uint32), "pos": saved["pos"]},
            "has_gauss": saved["has_gauss"],
            "gauss": saved["gauss"],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_model(model: TrackerModel, path: str | os.PathLike[str], step: int) -> None:
    """The final artifact: `{"model_config": JSON text, "state_dict": ..., "step": int}`, written atomically."""
    _atomic_save({"model_config": model.config.to_json(), "state_dict": model.state_dict(), "step": step}, Path(path))


def load_run(run: str | os.PathLike[str]) -> TrackerModel:
    """The trained model of a run directory (its `model.pt`) or of a `model.pt` file, in eval mode on the CPU.

    The architecture is rebuilt from the saved model config, so it need not be registered any more.
    """
    path = Path(run)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no trained model at {path}; train one with `egoface train --out RUN` first")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or not {"model_config", "state_dict"} <= set(data):
        raise ValueError(f"{path} is not an egoface model file (expected model_config and state_dict)")
    model = model_from_config(ModelConfig.from_json(data["model_config"]))
    assert isinstance(model, TrackerModel)
    model.load_state_dict(data["state_dict"])
    return model.eval()
