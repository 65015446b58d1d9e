"""Checkpoints and the final model file of a run, written atomically (temporary file, then rename).

A training checkpoint (`RUN/checkpoints/last.pt`, `best.pt`) holds everything resuming needs to continue exactly
as if never stopped: the step, model, optimizer and scheduler states, the best validation loss so far and the
global RNG states (torch, numpy, python). The data order and every augmentation are functions of (seed, epoch,
step), so they need no saved state. `RUN/model.pt` holds only the weights and the model config (JSON) and is
what `load_run` reads for evaluation and export.
"""

from __future__ import annotations

import os
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egoface.models.files import atomic_torch_save

__all__ = [
    "Checkpoint",
    "capture_rng_state",
    "is_checkpoint",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
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


def save_checkpoint(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Write `checkpoint` to `path` atomically: a reader sees the old file or the new one, never half of one."""
    atomic_torch_save(dict(vars(checkpoint)), Path(path))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain types only: `weights_only` loading)."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    missing = sorted(set(Checkpoint.__dataclass_fields__) - set(data))
    if missing:
        raise ValueError(f"{path} is not an egoface training checkpoint (lacks {missing})")
    return Checkpoint(**{key: data[key] for key in Checkpoint.__dataclass_fields__})


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a file written by `save_checkpoint` (not a model file, not something else). Memory-maps the
    file's tensors instead of reading them: only its keys are looked at."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return False
    return isinstance(data, dict) and set(Checkpoint.__dataclass_fields__) <= set(data)


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
