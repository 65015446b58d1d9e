"""REFA's regressor (Sec. 7.1, Fig. 7): left and right cameras of a role run through one encoder, the shared eye
MLP makes mirrored faces give exactly mirrored per-eye outputs, each eye's outputs depend on its own camera only
(winks are possible), and configurations that cannot share weights are refused. Also: no data-dependent control
flow (`torch.export` traces it)."""

from __future__ import annotations

import pytest
import torch

from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, mirror_name
from egoface.models import (
    ModelConfig,
    RefaRegressor,
    TrackerOutput,
    camera_role,
    camera_side,
    create_model,
    get_model_config,
    list_models,
)

SMALL = (64, 64)
REFA_MODELS = [name for name in list_models() if get_model_config(name).arch == "refa"]


def refa(name: str = "refa_tiny") -> RefaRegressor:
    """The model at a small input size in eval mode, with BatchNorm statistics of a few random batches (like a
    trained model: an untrained one's default statistics shrink the hard-swish networks' features to ~constants)."""
    model = create_model(name, input_size=SMALL)
    assert isinstance(model, RefaRegressor)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average
    with torch.no_grad():
        model(random_images(model, batch=4, seed=100))
    return model.eval()


def random_images(model: RefaRegressor, batch: int, seed: int) -> torch.Tensor:
    """(B, C, 1, H, W) smooth random patterns with per-image brightness: unlike white noise, their differences
    survive the encoders' global pooling even before training."""
    generator = torch.Generator().manual_seed(seed)
    cameras = len(model.config.cameras)
    coarse = torch.randn(batch * cameras, 1, 4, 4, generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=model.config.input_size, mode="bilinear")
    return images.unflatten(0, (batch, cameras)) + torch.randn(batch, cameras, 1, 1, 1, generator=generator)


def preprocess(raw: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """What the data pipeline does: raw images (B, C, 1, H, W) as captured -> mirror the config's flipped cameras."""
    return torch.stack(
        [raw[:, i].flip(-1) if c in config.flipped else raw[:, i] for i, c in enumerate(config.cameras)], dim=1
    )


def mirrored_scene(raw: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """The captures of the horizontally mirrored face: each camera sees its partner's image, mirrored."""
    partner = {"left": "right", "right": "left"}
    images = []
    for camera in config.cameras:
        side = camera_side(camera)
        source = camera if side is None else f"{camera_role(camera)}_{partner[side]}"
        images.append(raw[:, config.cameras.index(source)].flip(-1))
    return torch.stack(images, dim=1)


def per_eye_names(model: RefaRegressor) -> list[str]:
    return [s + side for s in model.config.eye_shapes for side in ("_L", "_R")] + list(EYE_LOOK_NAMES)


def column(out: TrackerOutput, name: str) -> torch.Tensor:
    return out.expression[:, EXPRESSION_NAMES.index(name)]


@pytest.mark.parametrize("name", REFA_MODELS)
def test_left_and_right_cameras_share_one_encoder_per_role(name: str) -> None:
    model = create_model(name)
    assert isinstance(model, RefaRegressor)
    assert model.encoder_for("eye_left") is model.encoder_for("eye_right")
    assert model.encoder_for("mouth_left") is model.encoder_for("mouth_right")
    assert model.encoder_for("eye_left") is not model.encoder_for("mouth_left")
    roles = {camera_role(c) for c in model.config.cameras}
    assert set(model.encoders) == roles  # one encoder per role, not per camera
    encoder_params = sum(p.numel() for p in model.encoders.parameters())
    assert encoder_params == len(roles) * sum(p.numel() for p in model.encoder_for("eye_left").parameters())


@pytest.mark.parametrize("name", REFA_MODELS)
def test_a_mirrored_face_gives_exactly_mirrored_eye_outputs(name: str) -> None:
    model = refa(name)
    raw = random_images(model, batch=2, seed=0)
    with torch.no_grad():
        out = model(preprocess(raw, model.config))
        mirrored = model(preprocess(mirrored_scene(raw, model.config), model.config))
    # the check is not trivially satisfied: the two eyes of the original face differ
    eye_difference = [(column(out, s + "_L") - column(out, s + "_R")).abs().max() for s in model.config.eye_shapes]
    assert max(eye_difference) > 1e-4
    assert (out.gaze[:, 0] - out.gaze[:, 1]).abs().max() > 1e-3
    for shape in per_eye_names(model):
        torch.testing.assert_close(column(mirrored, shape), column(out, mirror_name(shape)), rtol=1e-5, atol=1e-6)
    expected_gaze = out.gaze.flip(1) * torch.tensor([-1.0, 1.0])  # swap eyes, negate yaw
    torch.testing.assert_close(mirrored.gaze, expected_gaze, rtol=1e-5, atol=1e-5)


def test_model_files_from_before_the_shared_head_module_load_with_their_weights() -> None:
    model = refa()
    old_names = {key.removeprefix("head."): value for key, value in model.state_dict().items()}
    assert "eye_mlp.0.weight" in old_names and "face_mlp.2.bias" in old_names  # the names files held until 2026-11-21
    loaded = create_model("refa_tiny", input_size=SMALL).eval()
    loaded.load_state_dict(old_names)
    images = random_images(model, batch=2, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images).expression, model(images).expression, rtol=0, atol=0)


def test_each_eye_depends_only_on_its_own_camera() -> None:
    """A wink is representable: changing the left eye image moves only the left eye's outputs."""
    model = refa()
    images = random_images(model, batch=2, seed=0)
    changed = images.clone()
    changed[:, model.config.cameras.index("eye_left")] += 1.0
    with torch.no_grad():
        before, after = model(images), model(changed)
    for shape in model.config.eye_shapes:
        torch.testing.assert_close(column(after, shape + "_R"), column(before, shape + "_R"), rtol=0, atol=1e-6)
    moved = [(column(after, s + "_L") - column(before, s + "_L")).abs().max() for s in model.config.eye_shapes]
    assert max(moved) > 1e-6
    torch.testing.assert_close(after.gaze[:, 1], before.gaze[:, 1], rtol=0, atol=1e-5)
    assert (after.gaze[:, 0] - before.gaze[:, 0]).abs().max() > 1e-4


def test_the_flipped_side_may_be_the_right_one() -> None:
    """Flipping the right cameras instead makes the left side canonical; mirroring still holds."""
    model = create_model("refa_tiny", input_size=SMALL, flipped_cameras=("eye_right", "mouth_right")).eval()
    assert isinstance(model, RefaRegressor)
    raw = random_images(model, batch=2, seed=3)
    with torch.no_grad():
        out = model(preprocess(raw, model.config))
        mirrored = model(preprocess(mirrored_scene(raw, model.config), model.config))
    torch.testing.assert_close(mirrored.gaze, out.gaze.flip(1) * torch.tensor([-1.0, 1.0]), rtol=1e-5, atol=1e-5)


def test_features_are_camera_major_whatever_the_camera_order() -> None:
    """The encoders run role by role; with cameras interleaved across roles the features are put back in camera
    order: camera i's slice is its own encoder's features of its own image."""
    cameras = ("eye_left", "mouth_left", "eye_right", "mouth_right")
    model = create_model("refa_nano", input_size=(32, 32), cameras=cameras).eval()
    x = torch.randn(2, *model.input_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        features = model.forward_features(x).unflatten(1, (len(cameras), model.feature_dim))
        for i, camera in enumerate(cameras):
            torch.testing.assert_close(features[:, i], model.encoder_for(camera).forward_features(x[:, i]))


def test_configurations_that_cannot_share_weights_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one side of them must be in flipped_cameras"):
        create_model("refa_tiny", flipped_cameras=())
    with pytest.raises(ValueError, match="exactly one side of them must be in flipped_cameras"):
        create_model("refa_tiny", flipped_cameras=("eye_left", "eye_right", "mouth_left"))
    with pytest.raises(ValueError, match="exactly one side of them must be in flipped_cameras"):
        create_model(
            "refa_tiny",
            cameras=("eye_left", "eye_right", "eye_left_aug", "mouth_left", "mouth_right"),
            flipped_cameras=("eye_left", "mouth_left"),
        )
    with pytest.raises(ValueError, match="needs one left and one right eye camera"):
        create_model("refa_tiny", cameras=("eye_left", "mouth_left", "mouth_right"), flipped_cameras=None)
    with pytest.raises(ValueError, match="not free expression names"):
        create_model("refa_tiny", eye_shapes=("eyeLookUp",))


def test_the_regressor_traces_without_data_dependent_control_flow() -> None:
    model = refa()
    x = torch.randn(2, *model.input_shape)
    exported = torch.export.export(model, (x,), strict=False)
    with torch.no_grad():
        for a, b in zip(exported.module()(x), model(x), strict=True):
            torch.testing.assert_close(a, b)
