"""Small exported models for the runtime tests: registered trackers with random weights at a small input size
(the registry's factory; the shipped weights are not needed), exported once per test session."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from egoface.models import TrackerModel, create_model, get_model_config
from egoface.runtime.export import export_onnx
from egoface.runtime.ood import FeatureStatistics

_DIR = Path(tempfile.mkdtemp(prefix="egoface-runtime-tests-"))


def small_model(name: str = "refa_nano", size: int = 48, width: float = 1.0, seed: int = 0) -> TrackerModel:
    """A registered tracker at `size` x `size`, its backbone's width multiplied by `width`, with seeded random
    weights, in eval mode."""
    torch.manual_seed(seed)
    backbone = get_model_config(name).backbone
    assert backbone is not None
    narrow = replace(backbone, width_mult=backbone.width_mult * width)
    model = create_model(name, input_size=(size, size), backbone=narrow)
    assert isinstance(model, TrackerModel)
    return model.eval()


@functools.cache
def exported(name: str = "refa_nano", size: int = 48, statistics: FeatureStatistics | None = None) -> Path:
    """The path of `small_model(name, size)` exported to ONNX (cached per test session)."""
    return export_onnx(small_model(name, size), _DIR / f"{name}-{size}-{id(statistics)}.onnx", name, statistics)
