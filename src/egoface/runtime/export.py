"""ONNX export of a tracker, with the metadata the runtime needs to feed it, and the feature statistics that drive
out-of-distribution detection.

The exported graph is the model after its input transform: input `images` (B, C, 1, H, W) float32, already
resized, flipped and normalized (`egoface.runtime.preprocess` does that in numpy from the metadata); outputs
`expression` (B, 53), `free_expression` (B, 45), `gaze` (B, 2, 2) deg and `features` (B, F), the backbone features
that `forward_head` reads. The batch axis is dynamic.

An anchor-calibrated encoder (`egoface.models.calibrated`) exports to two standard ONNX files:

- `<stem>.enroll.onnx`, the enrollment graph: `anchor_images` (M, C, 1, H, W) normalized, anchors in the model's
  order -> `anchor_memory` (D,) float32: the user's anchors after the calibration modules' frame-independent work
  (`prepare`), per role (eye, then mouth) the (1, k, ...) memory flattened and concatenated (what a profile
  stores). Equal to `model.enroll` + `model.set_anchors` in torch.
- `<stem>.onnx`, the per-frame graph, with one more input per role, `anchor_memory_eye` and `anchor_memory_mouth`
  (1, k, ...): the parts of `anchor_memory` (separate inputs, so no frame pays for splitting it). They are the same
  for every frame, so the per-frame cost is phi_exp of the current frame, the calibration module against the
  memory, the tail and the heads.

Metadata (`metadata_props`, every value a string; JSON where noted) under the keys of `METADATA_KEYS` (every file)
and `ANCHOR_METADATA_KEYS` (calibrated encoders); docs/runtime.md lists them. Torch and onnx are needed here, at
export time only; the runtime reads the files with onnxruntime.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

import egoface
from egoface.models.calibrated import CalibratedEncoder
from egoface.models.files import normalize_images
from egoface.models.regressor import RefaRegressor, TrackerModel
from egoface.runtime.ood import OodDetector

__all__ = [
    "ANCHOR_INPUT_NAME",
    "ANCHOR_METADATA_KEYS",
    "ENROLL_INPUT_NAME",
    "FORMAT_VERSION",
    "INPUT_NAME",
    "METADATA_KEYS",
    "OPSET",
    "OUTPUT_NAMES",
    "anchor_input_name",
    "count_macs",
    "enroll_graph_path",
    "export_onnx",
    "feature_statistics",
    "model_id",
]

#: The ONNX opset written (onnxruntime 1.31 runs opsets up to 23; 17 is the TorchScript exporter's well-trodden one).
OPSET = 17
#: 2: a calibrated encoder's per-frame graph takes its anchor memory as one input per role (1: one flat input).
FORMAT_VERSION = 2
INPUT_NAME = "images"
#: The enrollment graph's output (a calibrated encoder's anchor memory, the prefix of the per-frame graph's
#: per-role memory inputs) and input.
ANCHOR_INPUT_NAME = "anchor_memory"
ENROLL_INPUT_NAME = "anchor_images"
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
    "egoface.model_id": "16 hex digits: hash of the config and weights (profiles' anchor memory is keyed by it)",
    "egoface.feature_statistics": "JSON OodDetector blocks of the training features, or absent (OOD detection off)",
}
#: Extra keys of a calibrated encoder's per-frame graph (its enrollment graph carries `egoface.model_id`,
#: `egoface.model_name` and `egoface.role` = "enroll").
ANCHOR_METADATA_KEYS: dict[str, str] = {
    "egoface.anchor_memory": "JSON {size, module, anchors, roles: [{role, shape, input}], enroll_graph, "
    "enroll_input, enroll_input_shape}: the anchor memory's layout, its per-role inputs and the enrollment graph",
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
    REFA's regressor and the calibrated encoder (their features are camera-major blocks), else over all features.
    A calibrated encoder reads each frame against its own subject's anchors (enrolled from the subject's anchor
    segments, as the runtime reads a user's frames against the user's profile)."""
    from egoface.data.dataset import HeadsetDataset

    config = model.config
    view = functools.partial(
        HeadsetDataset, root, cameras=config.cameras, resolution=config.input_size, flip_left=bool(config.flipped)
    )
    dataset = view()
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(dataset), size=min(max_frames, len(dataset)), replace=False))
    anchors = model.config.anchors if isinstance(model, CalibratedEncoder) else ()
    with_anchors = view(anchors=anchors) if anchors else None
    features, enrolled = [], None
    with torch.no_grad():
        for batch in _batches(chosen, batch_size):
            samples = [dataset[int(i)] for i in batch]
            if with_anchors is None:
                images = torch.stack([sample.images for sample in samples])
                features.append(model.eval().forward_features(normalize_images(images, config)).numpy())
                continue
            assert isinstance(model, CalibratedEncoder)
            for index, sample in zip(batch, samples, strict=True):  # batches of one subject's frames
                if sample.subject != enrolled:
                    anchor_images = with_anchors[int(index)].anchor_images
                    stacked = torch.stack([anchor_images[name] for name in anchors])  # (M, C, 1, H, W)
                    model.set_anchors(model.enroll(normalize_images(stacked, config)))
                    enrolled = sample.subject
                features.append(model.eval().forward_features(normalize_images(sample.images[None], config)).numpy())
    cameras: tuple[str, ...] | None = config.cameras if isinstance(model, RefaRegressor) else None
    if isinstance(model, CalibratedEncoder):
        model.set_anchors(None)
        cameras = model.feature_cameras
    return OodDetector.fit(np.concatenate(features), cameras)


def _batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


class _CalibratedExportWrapper(nn.Module):
    """The per-frame graph of a calibrated encoder: (images (1, C, 1, H, W), anchor memory per role (1, k, ...))
    -> (expression, free_expression, gaze, features)."""

    def __init__(self, model: CalibratedEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, *memories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # `features_with_memory` is the calibrated encoder's per-frame path with a given memory (what `forward`
        # runs after `set_anchors`); the graph takes the memory as inputs instead of the model's stored one
        features = self.model.features_with_memory(x, dict(zip(self.model.branches, memories, strict=True)))
        out = self.model.forward_head(features)
        return out.expression, out.free_expression, out.gaze, features


class _EnrollWrapper(nn.Module):
    """The enrollment graph: anchor_images (M, C, 1, H, W) normalized -> anchor_memory (D,), what `model.enroll`
    then `model.set_anchors` compute (phi_exp of the anchors, then each role's calibration `prepare`)."""

    def __init__(self, model: CalibratedEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, anchor_images: torch.Tensor) -> torch.Tensor:
        maps = self.model.encode_anchors(anchor_images[None])  # per role (1, k, M, c, h, w)
        return torch.cat([self.model.prepare_memory(role, maps[role]).reshape(-1) for role in self.model.branches])


def anchor_input_name(role: str) -> str:
    """The per-frame graph's anchor-memory input of `role` (eye, mouth)."""
    return f"{ANCHOR_INPUT_NAME}_{role}"


def model_id(model: TrackerModel) -> str:
    """16 hex digits of SHA-256 over the model's config JSON and its weights (state_dict tensors in key order):
    equal for equal weights, whichever file or export they come from."""
    digest = hashlib.sha256(model.config.to_json().encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def enroll_graph_path(path: str | os.PathLike[str]) -> Path:
    """The enrollment graph written beside a calibrated encoder's `path`: `model.onnx` -> `model.enroll.onnx`."""
    out = Path(path)
    return out.with_name(f"{out.stem}.enroll.onnx")


def export_onnx(
    model: TrackerModel,
    path: str | os.PathLike[str],
    model_name: str,
    ood: OodDetector | None = None,
) -> Path:
    """Export `model` to `path` (written atomically) with its metadata; returns the path. An anchor-calibrated
    encoder also writes its enrollment graph to `enroll_graph_path(path)` (first, so a crash between the two
    leaves a pair whose `egoface.model_id` differ, which the runtime refuses).

    Uses the TorchScript-based exporter (`dynamo=False`) at opset `OPSET` with a dynamic batch axis (a batch of 1
    for calibrated encoders); image models only (a keypoint model's input is not an image).
    """
    if len(model.input_shape) != 4:
        raise ValueError(
            f"only image models export to the runtime; {model.config.arch} takes input of shape {model.input_shape}"
        )
    config = model.config
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    identity = model_id(model)
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
        "egoface.model_id": identity,
    }
    if ood is not None:
        metadata["egoface.feature_statistics"] = ood.to_json()
    if not isinstance(model, CalibratedEncoder):
        dynamic = {name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
        example = (torch.zeros(2, *model.input_shape),)
        _export_graph(_ExportWrapper(model), example, [INPUT_NAME], list(OUTPUT_NAMES), dynamic, metadata, out)
        return out
    # a calibrated encoder's graphs have a batch of 1 (one frame per call, as the Tracker runs): its per-camera
    # `unflatten` by the batch size traces to a constant shape
    example = (torch.zeros(1, *model.input_shape),)
    if not model.config.anchors:  # the `none` module: the images alone
        _export_graph(_ExportWrapper(model), example, [INPUT_NAME], list(OUTPUT_NAMES), {}, metadata, out)
        return out
    # calibrated: the enrollment graph first, then the per-frame graph that names it
    enroll = _EnrollWrapper(model)
    anchor_shape = (len(model.config.anchors), *model.input_shape)  # (M, C, 1, H, W)
    with torch.no_grad():
        maps = model.eval().encode_anchors(torch.zeros(1, *anchor_shape))
        roles = [(role, tuple(model.prepare_memory(role, maps[role]).shape[1:])) for role in model.branches]
    size = sum(math.prod(shape) for _, shape in roles)
    enroll_path = enroll_graph_path(out)
    enroll_metadata = {"egoface.model_id": identity, "egoface.model_name": model_name, "egoface.role": "enroll"}
    _export_graph(
        enroll, (torch.zeros(anchor_shape),), [ENROLL_INPUT_NAME], [ANCHOR_INPUT_NAME], {}, enroll_metadata, enroll_path
    )
    metadata["egoface.anchor_memory"] = json.dumps(
        {
            "size": size,
            "module": model.config.calibration,
            "anchors": list(model.config.anchors),
            "roles": [{"role": role, "shape": list(shape), "input": anchor_input_name(role)} for role, shape in roles],
            "enroll_graph": enroll_path.name,
            "enroll_input": ENROLL_INPUT_NAME,
            "enroll_input_shape": list(anchor_shape),
        }
    )
    inputs = [INPUT_NAME, *(anchor_input_name(role) for role, _ in roles)]
    memories = tuple(torch.zeros(1, *shape) for _, shape in roles)
    _export_graph(_CalibratedExportWrapper(model), (*example, *memories), inputs, list(OUTPUT_NAMES), {}, metadata, out)
    return out


def _export_graph(
    wrapper: nn.Module,
    example: tuple[torch.Tensor, ...],
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    metadata: dict[str, str],
    out: Path,
) -> None:
    """Trace `wrapper` on `example` to ONNX, set `metadata`, check the graph and write it to `out` atomically."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    wrapper.eval()  # the exporter restores the wrapper's mode, so it must be eval itself
    with torch.no_grad(), warnings.catch_warnings():
        # the models' input checks compare shapes in Python (constants in the trace: the input shape is fixed), and
        # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            example,
            str(tmp),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(tmp))
    onnx.helper.set_model_props(graph, metadata)
    graph.producer_name = "egoface"
    onnx.checker.check_model(graph)
    with open(tmp, "wb") as handle:
        handle.write(graph.SerializeToString())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)


def count_macs(model: TrackerModel) -> int:
    """Multiply-accumulates of one frame through `model` (batch 1 at its input shape), counted by forward hooks:
    Conv2d (output elements times input channels per group times kernel area) and Linear (output elements times
    input features). Elementwise work is not counted (memory-bound, a few percent of the arithmetic), nor are
    functional convolutions and attention products. A calibrated encoder is counted per frame, its anchors enrolled
    beforehand (zero images when it has none: the cost does not depend on their content)."""
    total = 0
    enrolled = model.enrolled_anchors if isinstance(model, CalibratedEncoder) else None
    if isinstance(model, CalibratedEncoder) and model.config.anchors and enrolled is None:
        model.set_anchors(model.enroll(torch.zeros(len(model.config.anchors), *model.input_shape)))

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
        if isinstance(model, CalibratedEncoder) and enrolled is None:
            model.set_anchors(None)
    return total
