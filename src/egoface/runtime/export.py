"""ONNX export of a tracker, with the metadata the runtime needs to feed it, and the feature statistics that drive
out-of-distribution detection.

The exported graph is the model after its input transform: input `images` (B, C, 1, H, W) float32, already
resized, flipped and normalized (`egoface.runtime.preprocess` does that in numpy from the metadata); outputs
`expression` (B, 53), `free_expression` (B, 45), `gaze` (B, 2, 2) deg and `features` (B, F), the backbone features
that `forward_head` reads. The batch axis is dynamic.

Metadata (`metadata_props`, every value a string; JSON where noted) under the keys of `METADATA_KEYS`; docs/runtime.md
lists them. Torch and onnx are needed here, at export time only; the runtime reads the file with onnxruntime.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import egoface
from egoface.models.files import normalize_images
from egoface.models.regressor import RefaRegressor, TrackerModel
from egoface.runtime.ood import OodDetector

__all__ = [
    "FORMAT_VERSION",
    "INPUT_NAME",
    "METADATA_KEYS",
    "OPSET",
    "OUTPUT_NAMES",
    "count_macs",
    "export_onnx",
    "feature_statistics",
]

#: The ONNX opset written (onnxruntime 1.31 runs opsets up to 23; 17 is the TorchScript exporter's well-trodden one).
OPSET = 17
FORMAT_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAMES = ("expression", "free_expression", "gaze", "features")
#: Metadata keys -> meaning (values are strings; JSON where the meaning says so).
METADATA_KEYS: dict[str, str] = {
    "egoface.format": "integer: version of this metadata layout",
    "egoface.version": "the egoface version that exported the file",
    "egoface.model_name": "the model's name (registered name, run directory or 'default')",
    "egoface.input_size": "JSON [H, W]: pixels of every camera view fed to the graph",
    "egoface.normalization": "JSON {scale, mean, std}: input = (pixel * scale - mean) / std",
    "egoface.cameras": "JSON list: camera names in input order",
    "egoface.flipped_cameras": "JSON list: cameras mirrored horizontally before the graph",
    "egoface.outputs": "JSON list: output names in graph order",
    "egoface.expression_names": "JSON list: the 53 names of the `expression` output",
    "egoface.model_config": "JSON: the full ModelConfig the weights belong to",
    "egoface.feature_statistics": "JSON OodDetector blocks of the training features, or absent (OOD detection off)",
}


class _ExportWrapper(nn.Module):
    """forward_tensors plus the features: (B, C, 1, H, W) -> (expression, free_expression, gaze, features)."""

    def __init__(self, model: TrackerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.model.forward_features(x)
        out = self.model.forward_head(features)
        return out.expression, out.free_expression, out.gaze, features


def feature_statistics(
    model: TrackerModel, root: str | os.PathLike[str], max_frames: int = 2000, batch_size: int = 32, seed: int = 0
) -> OodDetector:
    """Summarize the model's features over up to `max_frames` random training frames of the synthetic domain in the
    dataset store at `root` (fed exactly as in training: `prepare_views` then `normalize_images`): per camera for
    REFA's regressor (its features are camera-major blocks), else over all features."""
    from egoface.data.dataset import HeadsetDataset

    config = model.config
    dataset = HeadsetDataset(root, cameras=config.cameras, resolution=config.input_size, flip_left=bool(config.flipped))
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(dataset), size=min(max_frames, len(dataset)), replace=False))
    features = []
    with torch.no_grad():
        for batch in _batches(chosen, batch_size):
            images = torch.stack([dataset[int(i)].images for i in batch])
            features.append(model.eval().forward_features(normalize_images(images, config)).numpy())
    cameras = config.cameras if isinstance(model, RefaRegressor) else None
    return OodDetector.fit(np.concatenate(features), cameras)


def _batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def export_onnx(
    model: TrackerModel,
    path: str | os.PathLike[str],
    model_name: str,
    ood: OodDetector | None = None,
) -> Path:
    """Export `model` to `path` (written atomically) with its metadata; returns the path.

    Uses the TorchScript-based exporter (`dynamo=False`) at opset `OPSET` with a dynamic batch axis; image models
    without anchors only (a keypoint model's input is not an image; an anchor-calibrated encoder would need its
    user's anchor features as a second input).
    """
    if len(model.input_shape) != 4:
        raise ValueError(
            f"only image models export to the runtime; {model.config.arch} takes input of shape {model.input_shape}"
        )
    anchors = getattr(model.config, "anchors", ())  # anchor-calibrated encoders (egoface.models.calibrated)
    if anchors:
        raise ValueError(
            f"the {model.config.arch} model reads its user's enrolled anchors {anchors}; exporting "
            "anchor-calibrated encoders (anchor features as a second graph input) is not supported yet"
        )
    config = model.config
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    example = torch.zeros(2, *model.input_shape)
    wrapper = _ExportWrapper(model).eval()  # the exporter restores the wrapper's mode, so it must be eval itself
    with torch.no_grad(), warnings.catch_warnings():
        # the models' input checks compare shapes in Python (constants in the trace: the input shape is fixed), and
        # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(tmp))
    metadata = {
        "egoface.format": str(FORMAT_VERSION),
        "egoface.version": egoface.__version__,
        "egoface.model_name": model_name,
        "egoface.input_size": json.dumps(list(config.input_size)),
        "egoface.normalization": json.dumps({"scale": 1.0 / 255.0, "mean": config.pixel_mean, "std": config.pixel_std}),
        "egoface.cameras": json.dumps(list(config.cameras)),
        "egoface.flipped_cameras": json.dumps(list(config.flipped)),
        "egoface.outputs": json.dumps(list(OUTPUT_NAMES)),
        "egoface.expression_names": json.dumps(list(config.expression_names)),
        "egoface.model_config": config.to_json(),
    }
    if ood is not None:
        metadata["egoface.feature_statistics"] = ood.to_json()
    onnx.helper.set_model_props(graph, metadata)
    graph.producer_name = "egoface"
    onnx.checker.check_model(graph)
    with open(tmp, "wb") as handle:
        handle.write(graph.SerializeToString())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)
    return out


def count_macs(model: TrackerModel) -> int:
    """Multiply-accumulates of one frame through `model` (batch 1 at its input shape), counted by forward hooks:
    Conv2d (output elements times input channels per group times kernel area) and Linear (output elements times
    input features). Elementwise work is not counted (memory-bound, a few percent of the arithmetic)."""
    total = 0

    def conv(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * (module.in_channels // module.groups) * kernel

    def linear(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += output.numel() * module.in_features

    hooks = [
        module.register_forward_hook(conv if isinstance(module, nn.Conv2d) else linear)
        for module in model.modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *model.input_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return total
