"""ONNX export: every registered image tracker exports, and ONNX Runtime agrees with eager torch (max abs difference
<= 1e-4 on every output, the features included); the file carries the metadata the runtime reads (its
`egoface.model_id` follows the weights); keypoint models are refused; MACs are counted; feature statistics score
training-like features near 1 and outliers far above, and split into per-camera blocks."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from egoface.face.names import EXPRESSION_NAMES
from egoface.models import create_model, get_model_config, list_models
from egoface.runtime.export import METADATA_KEYS, OUTPUT_NAMES, count_macs, export_onnx, model_id
from egoface.runtime.ood import FeatureStatistics, OodDetector
from runtime_models import small_model

# flnet and gt_mesh (registered once egoface.train.baselines is imported) read keypoints or meshes, not images: they
# have no backbone; anchor-calibrated encoders have their own registry and tests (test_runtime_calibrated.py)
IMAGE_MODELS = [name for name in list_models() if get_model_config(name).backbone is not None]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_onnx_matches_eager_torch(name: str, tmp_path) -> None:
    model = small_model(name, size=40, width=0.25)
    path = export_onnx(model, tmp_path / "model.onnx", name)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, *model.input_shape, generator=torch.Generator().manual_seed(1))  # batch 3: dynamic axis
    got = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        features = model.forward_features(x)
        out = model.forward_head(features)
    expected = [out.expression, out.free_expression, out.gaze, features]
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    for name_, a, b in zip(OUTPUT_NAMES, got, expected, strict=True):
        assert a.shape == tuple(b.shape), name_
        assert np.abs(a - b.numpy()).max() <= 1e-4, name_


def test_the_refa_graph_computes_no_shapes_and_few_small_ops(tmp_path) -> None:
    """Per frame every node costs scheduling time: the REFA graph reshapes by constants (no `Shape` arithmetic for
    the dynamic batch) and the heads are a handful of nodes (gaze -> eye-look is one product and a clamp)."""
    model = small_model("refa_lite", size=40)
    graph = onnx.load(str(export_onnx(model, tmp_path / "model.onnx", "refa_lite"))).graph
    ops = Counter(node.op_type for node in graph.node)
    assert ops["Shape"] == 0 and ops["Unsqueeze"] == 0 and ops["Squeeze"] == 0, ops
    indexing = ops["Gather"] + ops["Slice"] + ops["Split"] + ops["Concat"]
    assert indexing <= 12, ops  # was 49 (and 5 Shape, 16 (Un)Squeeze) with per-camera stacks and a per-name eye-look


def test_metadata_describes_the_input(tmp_path) -> None:
    model = small_model("refa_nano", size=40)
    ood = OodDetector.fit(np.random.default_rng(0).standard_normal((50, model.num_features)), model.config.cameras)
    path = export_onnx(model, tmp_path / "m.onnx", "refa_nano", ood)
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert set(meta) == set(METADATA_KEYS)
    assert json.loads(meta["egoface.input_size"]) == [40, 40]
    assert json.loads(meta["egoface.cameras"]) == list(model.config.cameras)
    assert json.loads(meta["egoface.flipped_cameras"]) == ["eye_left", "mouth_left"]
    assert json.loads(meta["egoface.normalization"]) == {"scale": 1 / 255, "mean": 0.5, "std": 0.25}
    assert json.loads(meta["egoface.outputs"]) == list(OUTPUT_NAMES)
    assert json.loads(meta["egoface.expression_names"]) == list(EXPRESSION_NAMES)
    assert meta["egoface.model_name"] == "refa_nano"
    assert meta["egoface.model_id"] == model_id(model) != model_id(small_model("refa_nano", size=40, seed=1))
    restored = OodDetector.from_json(meta["egoface.feature_statistics"])
    assert [(b.name, b.start, b.stop) for b in restored.blocks] == [
        (camera, i * model.feature_dim, (i + 1) * model.feature_dim) for i, camera in enumerate(model.config.cameras)
    ]
    np.testing.assert_allclose(restored.blocks[2].statistics.mean, ood.blocks[2].statistics.mean)
    assert restored.blocks[0].statistics.threshold == ood.blocks[0].statistics.threshold
    assert not list(tmp_path.glob(".*tmp*")), "the temporary export file was left behind"


def test_keypoint_models_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="only image models"):
        export_onnx(create_model("flnet"), tmp_path / "f.onnx", "flnet")  # type: ignore[arg-type]


def test_count_macs_counts_convolutions_and_linear_layers() -> None:
    model = small_model("necknet", size=32)
    macs = count_macs(model)
    # by hand: every Conv2d and Linear, from their output sizes
    expected = 0
    hooks = []

    def hook(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal expected
        if isinstance(module, torch.nn.Conv2d):
            expected += output.numel() * module.weight[0].numel()
        else:
            assert isinstance(module, torch.nn.Linear)
            expected += output.numel() * module.weight.shape[1]

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, *model.input_shape))
    assert macs == expected > 100_000
    # MACs grow with the pixel count for a convolutional backbone
    assert count_macs(small_model("necknet", size=64)) > 3 * macs


def test_necknet_costs_what_the_multi_branch_encoders_cost() -> None:
    """The raw-image baseline is compared at the shipped encoders' compute, not as a smaller network."""
    necknet = count_macs(create_model("necknet", input_size=(160, 160)))
    multi_branch = count_macs(create_model("refa_lite_192", input_size=(160, 160)))
    assert abs(necknet / multi_branch - 1) < 0.05


def test_feature_statistics_separate_outliers() -> None:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((6, 40))
    train = rng.standard_normal((500, 6)) @ basis + 0.05 * rng.standard_normal((500, 40))
    stats = FeatureStatistics.fit(train, components=6)
    inside = rng.standard_normal((200, 6)) @ basis + 0.05 * rng.standard_normal((200, 40))
    outside = inside + 2.0 * rng.standard_normal((200, 40))  # off the training subspace
    assert np.mean(stats.score(inside) > stats.threshold) < 0.02
    assert np.all(stats.score(outside) > stats.threshold)
    assert 0.5 < np.median(stats.score(inside)) < 2.0
    with pytest.raises(ValueError, match="do not split into 3 camera blocks"):
        OodDetector.fit(train, ("a", "b", "c"))
