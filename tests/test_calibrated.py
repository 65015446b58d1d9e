"""The anchor-calibrated encoder's guarantees: cached anchors give the outputs of recomputing them (and survive the
profile's flat vectors and a model file), pooling and attention modules ignore anchor order while late fusion does
not, the WGAN-GP penalty has its known value on toy critics, the beam search finds a known best set, and inputs are
checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from calibrated_models import random_calibrated, untrained_calibrated
from egoface.models import (
    CALIBRATION_MODULES,
    AnchorCache,
    CalibratedEncoder,
    CalibratedModelConfig,
    create_calibrated_model,
    list_calibrated_models,
    load_model,
    save_model,
)
from egoface.train.anchors import beam_search
from egoface.train.calibrated import gradient_penalty

SIZE = (32, 32)
ANCHORS = ("neutral", "maximal_jaw_drop", "closed_eyes")
WITH_ANCHORS = [m for m in CALIBRATION_MODULES if m != "none"]


def _untrained(module: str, seed: int = 0) -> CalibratedEncoder:
    return untrained_calibrated(module, ANCHORS, SIZE[0], seed)


def _model(module: str, seed: int = 0) -> CalibratedEncoder:
    return random_calibrated(module, ANCHORS, SIZE[0], seed)


def _inputs(model: CalibratedEncoder, batch: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized frames (B, C, 1, H, W) and one user's anchors (M, C, 1, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *model.input_shape, generator=generator)
    return x, torch.randn(len(model.config.anchors), *model.input_shape, generator=generator)


def _fusion_inputs(
    model: CalibratedEncoder, module: str, draw: Callable[..., torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eye-branch maps of 4 frames `(4, c, h, w)` and of their anchors `(4, M, c, h, w)` drawn by `draw` (seeded),
    and the anchors' summary the fusion concatenates: every map, or their maximum for `pooling`."""
    generator = torch.Generator().manual_seed(7)
    channels, height, width = model.anchor_feature_shape("eye")[1:]
    current = draw(4, channels, height, width, generator=generator)
    anchors = draw(4, len(ANCHORS), channels, height, width, generator=generator)
    return current, anchors, anchors.amax(dim=1) if module == "pooling" else anchors.flatten(1, 2)


def _assert_outputs_close(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> None:
    for left, right in zip(a, b, strict=True):
        torch.testing.assert_close(left, right, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("module", WITH_ANCHORS)
def test_cached_anchors_give_the_outputs_of_recomputing_them(module: str) -> None:
    model = _model(module)
    x, anchors = _inputs(model)
    with torch.no_grad():
        recomputed = model.forward_with_anchor_images(x, anchors[None].expand(len(x), *anchors.shape))
        cache = model.enroll(anchors)
        model.set_anchors(cache)
        cached = model(x)
        model.set_anchors(AnchorCache.from_per_anchor(model, cache.per_anchor()))  # via a profile's vectors
        from_profile = model(x)
    _assert_outputs_close(tuple(cached), tuple(recomputed))
    _assert_outputs_close(tuple(from_profile), tuple(recomputed))
    assert set(cache.per_anchor()) == set(ANCHORS)


@pytest.mark.parametrize("module", ["late_fusion", "pooling"])
def test_concat_fusion_splits_its_conv_exactly_in_both_modes(module: str) -> None:
    """The per-user memory (anchor part of the conv, plus its bias) and the per-frame current part add up to the
    unsplit ReLU(conv([current, summary of the anchors])), in training and in eval mode (the layout conv)."""
    model = _model(module)
    fusion = model.branches["eye"].calibrate
    current, anchors, summary = _fusion_inputs(model, module, torch.randn)
    with torch.no_grad():
        unsplit = torch.relu(fusion.fuse(torch.cat([current, summary], dim=1)))
        for mode in (False, True):
            fusion.train(mode)
            torch.testing.assert_close(fusion(current, fusion.prepare(anchors)), unsplit, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["calibrated_nano", "calibrated_mobilenetv3_tiny"])  # a ResNet and a MobileNetV3
@pytest.mark.parametrize("module", ["late_fusion", "pooling"])
def test_linear_fusion_folds_exactly_into_the_tails_first_block(module: str, name: str) -> None:
    """The folded fusion (composed weights on the current map, the anchors' part through the block's reading convs
    once per user) gives the block's output on the unfolded linear fusion conv([current, summary of the anchors]),
    in training mode (batch statistics of the whole sum) and in eval mode (the norms' scale on the memory)."""
    model = random_calibrated(module, ANCHORS, 64, linear_fusion=True, name=name)
    fusion = model.branches["eye"].calibrate
    current, anchors, summary = _fusion_inputs(model, module, torch.rand)  # phi_exp maps are ReLU outputs, >= 0
    with torch.no_grad():
        for mode in (True, False):
            fusion.train(mode)
            unfolded = fusion.entry(fusion.fuse(torch.cat([current, summary], dim=1)))
            torch.testing.assert_close(fusion(current, fusion.prepare(anchors)), unfolded, rtol=1e-4, atol=1e-4)
    assert unfolded.abs().max() > 0.1  # the block's output is not trivially zero


def test_linear_fusion_applies_to_the_concatenation_modules_only() -> None:
    with pytest.raises(ValueError, match="linear_fusion applies to the late_fusion and pooling modules"):
        CalibratedModelConfig(arch="calibrated", calibration="cross_attention", linear_fusion=True)


@pytest.mark.parametrize("linear_fusion", [False, True])
@pytest.mark.parametrize("module", ["late_fusion", "pooling"])
def test_concat_fusion_starts_as_the_encoder_without_anchors(module: str, linear_fusion: bool) -> None:
    """Untrained, the fusion is the identity on phi_exp's (non-negative) maps and ignores the anchors: the encoder
    gives the outputs of the same weights without anchors, whatever the anchors."""
    model = untrained_calibrated(module, ANCHORS, SIZE[0], linear_fusion=linear_fusion)
    bare = create_calibrated_model("calibrated_nano", input_size=SIZE, calibration="none", anchors=()).eval()
    # the folded fusion holds the tail's first block (resnet_nano's tail is that one block)
    bare.load_state_dict({k.replace(".calibrate.entry.", ".tail.0."): v for k, v in model.state_dict().items()
                          if "calibrate.fuse" not in k})  # fmt: skip
    x, anchors = _inputs(model)
    with torch.no_grad():
        model.set_anchors(model.enroll(anchors))
        first = model(x)
        model.set_anchors(model.enroll(torch.randn_like(anchors)))
        second = model(x)
        reference = bare(x)
    _assert_outputs_close(tuple(first), tuple(reference))
    _assert_outputs_close(tuple(second), tuple(reference))


@pytest.mark.parametrize("module", ["pooling", "cross_attention", "self_attention"])
def test_order_of_anchors_does_not_matter_for_pooling_and_attention(module: str) -> None:
    model = _model(module)
    x, anchors = _inputs(model)
    order = torch.tensor([2, 0, 1])
    batch = anchors[None].expand(len(x), *anchors.shape)
    with torch.no_grad():
        original = model.forward_with_anchor_images(x, batch)
        permuted = model.forward_with_anchor_images(x, batch[:, order])
    _assert_outputs_close(tuple(original), tuple(permuted))


@pytest.mark.parametrize("module", ["late_fusion", "early_fusion"])
def test_order_of_anchors_matters_for_fusion_modules(module: str) -> None:
    """Each anchor has a fixed meaning for concatenation; the invariance above is a property, not a given."""
    model = _model(module)
    x, anchors = _inputs(model)
    batch = anchors[None].expand(len(x), *anchors.shape)
    with torch.no_grad():
        a = model.forward_with_anchor_images(x, batch).free_expression
        b = model.forward_with_anchor_images(x, batch[:, torch.tensor([2, 0, 1])]).free_expression
    assert (a - b).abs().max() > 1e-4


def test_anchors_change_the_output_and_are_required_until_enrolled() -> None:
    model = _model("late_fusion")
    x, anchors = _inputs(model)
    with pytest.raises(RuntimeError, match="set_anchors"):
        model(x)
    with pytest.raises(ValueError, match=r"anchor_images must have shape \(B, 3, 4, 1, 32, 32\)"):
        model.forward_with_anchor_images(x, anchors[None, :2].expand(3, 2, *anchors.shape[1:]))
    with torch.no_grad():
        model.set_anchors(model.enroll(anchors))
        first = model(x).free_expression
        model.set_anchors(model.enroll(anchors.flip(0)))
        second = model(x).free_expression
    assert (first - second).abs().max() > 1e-4
    with pytest.raises(ValueError, match=r"cached eye features have shape \(2, 3, 1, 32, 32\), expected"):
        model.set_anchors(_model("early_fusion").enroll(anchors))  # images, not phi_exp maps
    with pytest.raises(ValueError, match="the profile lacks anchors"):
        AnchorCache.from_per_anchor(model, {"neutral": model.enroll(anchors).per_anchor()["neutral"]})


def test_uncalibrated_reference_runs_without_anchors() -> None:
    model = _model("none")
    x, _ = _inputs(model)
    assert model.config.anchors == ()
    with torch.no_grad():
        out = model(x)
    assert out.expression.shape == (3, 53) and out.gaze.shape == (3, 2, 2)


def test_model_file_round_trips_with_module_and_anchors(tmp_path: Path) -> None:
    model = _model("cross_attention")
    save_model(model, tmp_path / "model.pt", step=2)
    loaded = load_model(tmp_path)
    assert isinstance(loaded, CalibratedEncoder) and loaded.config == model.config
    assert isinstance(loaded.config, CalibratedModelConfig) and loaded.config.calibration == "cross_attention"
    x, anchors = _inputs(model)
    with torch.no_grad():
        model.set_anchors(model.enroll(anchors))
        loaded.set_anchors(loaded.enroll(anchors))
        _assert_outputs_close(tuple(model(x)), tuple(loaded(x)))
    assert {"calibrated_nano", "calibrated_lite", "calibrated_lite_192", "calibrated_mobilenetv3_tiny"} <= set(
        list_calibrated_models()
    )


@pytest.mark.parametrize("module", ["late_fusion", "pooling"])
def test_per_eye_heads_mirror_exactly_and_keep_each_eye_to_its_camera(module: str) -> None:
    """REFA's per-eye heads on the calibrated encoder: the mirrored face (and mirrored anchors) gives the mirrored
    eye outputs, and changing one eye's frame moves only that eye's shapes and gaze (a wink stays possible)."""
    from test_models_refa import column, mirrored_scene, preprocess

    model = random_calibrated(module, ANCHORS, SIZE[0], per_eye_head=True)
    assert model.head.eye_mlp is not None and not hasattr(model, "fuse")
    generator = torch.Generator().manual_seed(5)
    raw = torch.nn.functional.interpolate(torch.randn(4 * 4, 1, 4, 4, generator=generator), size=SIZE, mode="bilinear")
    raw = raw.unflatten(0, (4, 4)) + torch.randn(4, 4, 1, 1, 1, generator=generator)  # 1 frame + 3 anchors
    config = model.config
    with torch.no_grad():
        model.set_anchors(model.enroll(preprocess(raw[1:], config)))
        out = model(preprocess(raw[:1], config))
        model.set_anchors(model.enroll(preprocess(mirrored_scene(raw[1:], config), config)))
        mirrored = model(preprocess(mirrored_scene(raw[:1], config), config))
    assert (out.gaze[:, 0] - out.gaze[:, 1]).abs().max() > 1e-3  # the two eyes differ: the check is not trivial
    for shape in config.eye_shapes:
        for side, other in (("_L", "_R"), ("_R", "_L")):
            torch.testing.assert_close(column(mirrored, shape + side), column(out, shape + other), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mirrored.gaze, out.gaze.flip(1) * torch.tensor([-1.0, 1.0]), rtol=1e-5, atol=1e-5)
    images = preprocess(raw[:1], config)
    changed = images.clone()
    changed[:, config.cameras.index("eye_left")] += 1.0
    with torch.no_grad():
        before, after = model(images), model(changed)
    torch.testing.assert_close(after.gaze[:, 1], before.gaze[:, 1], rtol=0, atol=1e-5)
    assert (after.gaze[:, 0] - before.gaze[:, 0]).abs().max() > 1e-4
    for shape in config.eye_shapes:
        torch.testing.assert_close(column(after, shape + "_R"), column(before, shape + "_R"), rtol=0, atol=1e-6)


def test_config_rejects_unknown_modules_and_missing_anchors() -> None:
    with pytest.raises(ValueError, match="calibration must be one of"):
        create_calibrated_model("calibrated_nano", calibration="transformer")
    with pytest.raises(ValueError, match="needs at least one anchor"):
        create_calibrated_model("calibrated_nano", anchors=())


# ------------------------------------------------------------------------------------------------ WGAN-GP penalty


def test_gradient_penalty_is_exact_on_a_linear_critic() -> None:
    """h(e) = w . e has gradient w everywhere: the penalty is (|w| - 1)^2 whatever the samples."""
    w = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)  # |w| = 5
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(5, 3, dtype=torch.float64, generator=generator)
    fake = torch.rand(5, 3, dtype=torch.float64, generator=generator)
    penalty = gradient_penalty(lambda e: e @ w, real, fake)
    assert penalty.item() == pytest.approx(16.0, abs=1e-12)


def test_gradient_penalty_samples_uniform_interpolations_on_a_quadratic_critic() -> None:
    """h(e) = |e|^2 / 2 has gradient e: the penalty is the mean of (|u r + (1 - u) f| - 1)^2 with the drawn u."""
    generator = torch.Generator().manual_seed(3)
    real = torch.randn(6, 4, dtype=torch.float64, generator=generator)
    fake = torch.randn(6, 4, dtype=torch.float64, generator=generator)
    u = torch.rand(6, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = ((u * real + (1 - u) * fake).norm(dim=1) - 1).square().mean()

    def critic(e: torch.Tensor) -> torch.Tensor:
        return 0.5 * e.square().sum(dim=1)

    penalty = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(7))
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-12)
    fake.requires_grad_(True)  # the penalty is differentiable w.r.t. the critic, not the encoder's codes
    assert gradient_penalty(critic, real, fake).requires_grad


# -------------------------------------------------------------------------------------------------- beam search


def _counting(score: Callable[[tuple[str, ...]], float]) -> tuple[Callable[[tuple[str, ...]], float], list]:
    calls: list[tuple[str, ...]] = []

    def wrapped(anchors: tuple[str, ...]) -> float:
        calls.append(anchors)
        return score(anchors)

    return wrapped, calls


def test_beam_search_finds_a_pair_that_greedy_search_misses_and_stops_when_adding_stops_helping() -> None:
    """Singles rank a < b < c < d < ...; the pair {c, d} works far better than any pair with a (greedy, width 1,
    would keep a); a third anchor always costs. Width 3 keeps c, finds {c, d}, then the beam stops changing."""
    single = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0, "f": 6.0}

    def score(anchors: tuple[str, ...]) -> float:
        if set(anchors) == {"c", "d"}:
            return 0.1
        return 10.0 - 1.0 / min(single[x] for x in anchors) if len(anchors) > 1 else 10.0 - 1.0 / single[anchors[0]]

    counted, calls = _counting(score)
    result = beam_search(list(single), counted, beam_width=3, max_anchors=6)
    assert result.best == ("c", "d") and result.scores[("c", "d")] == 0.1
    assert len(calls) == len(set(calls))  # every set scored once
    assert max(len(s) for s in calls) == 3  # one round past the best pair, then the beam stayed
    assert result.by_size[2] == 0.1
    greedy = beam_search(list(single), score, beam_width=1, max_anchors=6)
    assert greedy.best != ("c", "d")


def test_beam_search_stops_at_max_anchors_and_orders_sets_like_the_candidates() -> None:
    """Every anchor helps, the later candidates most: the best set of 4 is the last four, in candidate order."""
    weights = {"n": 1.0, "j": 2.0, "w": 3.0, "e": 4.0, "s": 5.0, "p": 6.0, "b": 7.0}
    result = beam_search(list(weights), lambda s: 100.0 - sum(weights[x] for x in s), beam_width=3, max_anchors=4)
    assert result.best == ("e", "s", "p", "b")
    assert all(len(b) == 4 for b in result.beam) and list(result.by_size) == [1, 2, 3, 4]
    assert [len(r[0]) for r in result.rounds] == [1, 2, 3, 4]


def test_beam_search_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="distinct"):
        beam_search(["a", "a"], lambda s: 0.0)
    with pytest.raises(ValueError, match="max_anchors"):
        beam_search(["a", "b"], lambda s: 0.0, max_anchors=3)
