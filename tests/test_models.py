"""egoface.models: every registered backbone and tracker keeps the common interface, gives finite outputs of the
documented shapes and ranges, passes gradients to every parameter, and round-trips its config through JSON;
the registry refuses unknown names and fields with the list of valid ones."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from egoface.face.gaze import eye_look_from_gaze
from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, FREE_EXPRESSION_NAMES
from egoface.models import (
    Backbone,
    MobileNetV3,
    ModelConfig,
    RefaRegressor,
    ResNetConfig,
    TrackerModel,
    camera_role,
    camera_side,
    create_backbone,
    create_model,
    get_backbone_config,
    get_model_config,
    list_backbones,
    list_models,
    model_from_config,
)
from egoface.models.layers import make_divisible
from egoface.models.registry import Registry

MODELS = list_models()
BACKBONES = list_backbones()
SMALL = (64, 64)  # tracker input size in these tests: keeps the paper-sized models fast (backbones run at 192/224)


def small_model(name: str) -> TrackerModel:
    """The registered model at a small input size (image models) or as registered (keypoint models)."""
    model = create_model(name, input_size=SMALL) if get_model_config(name).backbone else create_model(name)
    assert isinstance(model, TrackerModel)
    return model


def example_input(model: TrackerModel, batch: int = 2, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """Random images (B, C, 1, H, W) or keypoint displacements (B, C, L, 2) px for `model`."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *model.input_shape, generator=generator)
    return x * scale * (model.config.keypoint_scale_px if model.config.arch == "flnet" else 1.0)


def test_the_registries_hold_the_documented_configurations() -> None:
    assert {"resnet_tiny", "resnet18_like", "mobilenetv3_small", "mobilenetv3_tiny"} <= set(BACKBONES)
    assert {"refa_tiny", "refa_resnet18", "refa_mobilenetv3_small", "necknet", "flnet"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_tracker_outputs_have_documented_shapes_ranges_and_eye_look(name: str) -> None:
    """Eval mode; large inputs saturate the heads and must still stay in range."""
    model = small_model(name).eval()
    assert isinstance(model, TrackerModel) and isinstance(model.config, ModelConfig)
    for scale in (1.0, 100.0):
        x = example_input(model, batch=2, scale=scale)
        with torch.no_grad():
            features = model.forward_features(x)
            out = model.forward_head(features)
            tensors = model.forward_tensors(x)
        assert features.shape == (2, model.num_features)
        assert out.expression.shape == (2, 53) and out.free_expression.shape == (2, 45) and out.gaze.shape == (2, 2, 2)
        for value, again in zip(out, tensors, strict=True):
            assert torch.isfinite(value).all()
            torch.testing.assert_close(value, again)  # forward == forward_head(forward_features) == forward_tensors
        assert out.free_expression.min() >= 0 and out.free_expression.max() <= 1
        assert out.expression.min() >= 0 and out.expression.max() <= 1
        assert out.gaze.abs().max() <= model.config.gaze_limit_deg
        free_columns = [EXPRESSION_NAMES.index(n) for n in FREE_EXPRESSION_NAMES]
        look_columns = [EXPRESSION_NAMES.index(n) for n in EYE_LOOK_NAMES]
        assert torch.equal(out.expression[:, free_columns], out.free_expression)
        torch.testing.assert_close(out.expression[:, look_columns], eye_look_from_gaze(out.gaze))


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_tracker_parameter(name: str) -> None:
    model = small_model(name).train()  # batch statistics: BatchNorm parameters get gradients too
    out = model(example_input(model))
    generator = torch.Generator().manual_seed(1)
    loss = sum((value * torch.randn(value.shape, generator=generator)).sum() for value in out)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}: no gradient reaches {param_name}"
        assert torch.isfinite(param.grad).all(), f"{name}: non-finite gradient for {param_name}"
        assert param.grad.abs().max() > 0, f"{name}: zero gradient for {param_name}"


@pytest.mark.parametrize("name", MODELS)
def test_config_round_trips_through_json_and_rebuilds_the_same_model(name: str) -> None:
    model = small_model(name).eval()
    text = model.config.to_json()
    loaded = ModelConfig.from_json(text)
    assert loaded == model.config
    assert json.loads(text)["arch"] == model.config.arch
    rebuilt = model_from_config(loaded).eval()
    rebuilt.load_state_dict(model.state_dict())  # strict: same parameter names and shapes
    x = example_input(model)
    with torch.no_grad():
        for a, b in zip(model(x), rebuilt(x), strict=True):
            torch.testing.assert_close(a, b)


def test_model_config_records_input_layout_and_rejects_bad_values() -> None:
    config = get_model_config("refa_tiny")
    assert config.cameras == ("eye_left", "eye_right", "mouth_left", "mouth_right")
    assert config.flipped_cameras == ("eye_left", "mouth_left")  # default: the subject's left cameras
    assert config.input_size == (192, 192) and config.expression_names == EXPRESSION_NAMES
    with pytest.raises(ValueError, match="not among cameras"):
        replace(config, cameras=("eye_left", "eye_right"))
    assert [(camera_role(c), camera_side(c)) for c in ("eye_left", "mouth_right_aug", "glabella", "glabella_gt")] == [
        ("eye", "left"),
        ("mouth", "right"),
        ("glabella", None),
        ("glabella", None),
    ]
    with pytest.raises(ValueError, match="<role>"):
        replace(config, cameras=("eye__left",), flipped_cameras=())
    with pytest.raises(ValueError, match="eyeLook"):
        replace(config, free_expression_names=EXPRESSION_NAMES)
    with pytest.raises(ValueError, match="valid fields are"):
        ModelConfig.from_dict({**config.to_dict(), "widht": 3})


def test_registry_errors_list_the_registered_names_and_fields() -> None:
    with pytest.raises(KeyError, match=r"registered: .*refa_tiny"):
        create_model("refa_tinny")
    with pytest.raises(KeyError, match=r"registered: .*resnet_tiny"):
        create_backbone("resnet_tinny")
    with pytest.raises(TypeError, match=r"valid fields: .*hidden_features"):
        create_model("refa_tiny", hiden_features=3)


def test_a_variant_is_a_registered_configuration() -> None:
    registry: Registry[ModelConfig] = Registry("model", "arch")
    registry.register_class("refa")(RefaRegressor)
    registry.register("narrow", replace(get_model_config("refa_tiny"), hidden_features=32))
    assert registry.names() == ["narrow"]
    model = registry.create("narrow", input_size=SMALL)
    assert isinstance(model, RefaRegressor) and model.config.hidden_features == 32
    with pytest.raises(ValueError, match="already registered"):
        registry.register("narrow", get_model_config("refa_tiny"))
    with pytest.raises(ValueError, match="no class for arch='flnet'"):
        registry.register("keypoints", get_model_config("flnet"))
    # the global factory swaps backbones by name
    swapped = create_model("refa_tiny", backbone="mobilenetv3_tiny", input_size=SMALL)
    assert isinstance(swapped, RefaRegressor) and isinstance(swapped.encoder_for("eye_left"), MobileNetV3)


def test_trackers_check_their_input_shape_and_dtype() -> None:
    model = create_model("refa_tiny")
    with pytest.raises(ValueError, match=r"\(B, 4, 1, 192, 192\).*got \(1, 3, 1, 192, 192\)"):
        model(torch.zeros(1, 3, 1, 192, 192))
    with pytest.raises(TypeError, match="float tensor"):
        model(torch.zeros(1, 4, 1, 192, 192, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"keypoints must have shape \(B, 4, 20, 2\)"):
        create_model("flnet")(torch.zeros(1, 4, 2, 20))


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_interface_resolution_and_width(name: str) -> None:
    backbone = create_backbone(name).eval()
    assert isinstance(backbone, Backbone) and backbone.config == get_backbone_config(name)
    size = 224 if name == "resnet18_like" else 192  # REFA: 224 -> 7x7; the others: 192 -> 6x6 (stride 32)
    stride = 16 if name == "resnet_lite" else 32  # resnet_lite: 3x3/2 stem, no pool -> 12x12
    x = torch.randn(1, 1, size, size)
    with torch.no_grad():
        feature_map = backbone.forward_feature_map(x)
        features = backbone.forward_features(x)
        assert feature_map.shape == (1, backbone.num_features, size // stride, size // stride)
        torch.testing.assert_close(features, feature_map.mean((2, 3)))
        torch.testing.assert_close(backbone(x), features)
        assert backbone.forward_feature_map(torch.randn(1, 1, 96, 128)).shape[2:] == (96 // stride, 128 // stride)
    narrow = create_backbone(name, width_mult=backbone.config.width_mult / 2, in_chans=3)
    assert narrow.num_features == make_divisible(backbone.num_features * 0.5)
    assert narrow(torch.randn(1, 3, 64, 64)).shape == (1, narrow.num_features)


@pytest.mark.parametrize("name", BACKBONES)
def test_gradients_reach_every_backbone_parameter(name: str) -> None:
    backbone = create_backbone(name).train()
    backbone(torch.randn(2, 1, *SMALL)).square().sum().backward()
    for param_name, param in backbone.named_parameters():
        assert param.grad is not None and param.grad.abs().max() > 0, f"{name}: no gradient for {param_name}"


def test_backbone_configs_round_trip_through_model_json() -> None:
    config = replace(get_model_config("refa_tiny"), backbone=get_backbone_config("mobilenetv3_small"))
    assert ModelConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="one depth per stage"):
        ResNetConfig(channels=(8, 16), depths=(1,))
