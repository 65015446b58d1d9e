"""Model files: a trained tracker's weights with its own small config, the input transform that config defines,
and the models shipped inside the package.

A model file is `{"model_config": ModelConfig JSON, "state_dict": ..., "step": int}` (torch.save, weights only).
The input transform lives here, with the model, and nowhere else: images (B, C, 1, H, W) in [0, 1], cameras in
`config.cameras` order, `config.flipped_cameras` mirrored, resized to `config.input_size`, then normalized by
`normalize_images`.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from egoface.models.calibrated import CalibratedModelConfig
from egoface.models.config import ModelConfig
from egoface.models.registry import model_from_config
from egoface.models.regressor import TrackerModel

__all__ = [
    "SHIPPED_MODELS",
    "atomic_torch_save",
    "load_model",
    "load_shipped_model",
    "normalize_images",
    "save_model",
    "shipped_model_path",
]

_SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
#: Models that ship inside the package (weights + model card in `egoface/models/shipped/<name>/`).
SHIPPED_MODELS: tuple[str, ...] = ("default",)


def normalize_images(images: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """images: (B, C, 1, H, W) in [0, 1] (pixel / 255) -> the model's input, `(images - mean) / std`."""
    return (images - config.pixel_mean) / config.pixel_std


def atomic_torch_save(value: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, rename: the file appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_model(model: TrackerModel, path: str | os.PathLike[str], step: int) -> None:
    """Write a model file (weights + model config JSON + the step it was trained to), atomically."""
    atomic_torch_save(
        {"model_config": model.config.to_json(), "state_dict": model.state_dict(), "step": step}, Path(path)
    )


def load_model(path: str | os.PathLike[str]) -> TrackerModel:
    """A model file, or a run directory holding `model.pt`, as a model in eval mode on the CPU. The architecture is
    rebuilt from the saved config, so it need not be registered."""
    file = Path(path)
    if file.is_dir():
        file = file / "model.pt"
    if not file.is_file():
        raise FileNotFoundError(f"no trained model at {file}; train one with `egoface train --out RUN` first")
    if file.suffix == ".onnx":
        raise ValueError(f"{file} is an exported ONNX graph; this needs the torch model it came from (a run directory "
                         "or its model.pt, or `default`)")  # fmt: skip
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(f"{file} is not an egoface model file (a torch file from `egoface train`): {error}") from None
    if not isinstance(data, dict) or not {"model_config", "state_dict"} <= set(data):
        raise ValueError(f"{file} is not an egoface model file (expected model_config and state_dict)")
    calibrated = '"arch": "calibrated"' in data["model_config"]  # its config has the calibration fields too
    model = model_from_config((CalibratedModelConfig if calibrated else ModelConfig).from_json(data["model_config"]))
    if not isinstance(model, TrackerModel):
        raise ValueError(f"{file} holds a {type(model).__name__}, not a tracker")
    model.load_state_dict(data["state_dict"])
    return model.eval()


def shipped_model_path(name: str = "default") -> Path:
    """The directory of a shipped model (`model.pt`, `MODEL_CARD.md`)."""
    if name not in SHIPPED_MODELS:
        raise KeyError(f"unknown shipped model {name!r}; the package ships {', '.join(SHIPPED_MODELS)}")
    return _SHIPPED_DIR / name


def load_shipped_model(name: str = "default") -> TrackerModel:
    """A model shipped inside the package (no download: the weights are package data)."""
    return load_model(shipped_model_path(name))
