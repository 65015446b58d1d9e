"""The Tracker: the numpy input transform equals the data pipeline's (`prepare_views` + `normalize_images`), so the
tracker's raw output equals eager torch on the same images; inputs are checked with clear errors; timestamps must
increase; the context manager closes the session; names come out in every standard; failures hold then ease to
neutral; a quick re-centre makes the user's resting face zero."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egoface.data.dataset import prepare_views
from egoface.models import normalize_images
from egoface.runtime.calibration import ProfileStore
from egoface.runtime.export import export_onnx
from egoface.runtime.failure import FailureOptions
from egoface.runtime.filters import Smoothing
from egoface.runtime.ood import OodDetector
from egoface.runtime.preprocess import InputSpec, resize_weights
from egoface.runtime.tracker import Tracker, TrackerOptions
from runtime_models import exported, small_model

CAMERAS = ("eye_left", "eye_right", "mouth_left", "mouth_right")


def textured(rng: np.random.Generator, shape: tuple[int, int] = (72, 80)) -> np.ndarray:
    """A plausible IR-like frame: a smooth gradient with texture and noise, uint8."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = 90 + 40 * np.sin(x / 7.0) * np.cos(y / 9.0) + 0.4 * x
    return np.clip(base + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)


def frames(rng: np.random.Generator, shape: tuple[int, int] = (72, 80)) -> dict[str, np.ndarray]:
    return {camera: textured(rng, shape) for camera in CAMERAS}


@pytest.mark.parametrize(("source", "target"), [((400, 400), (48, 48)), ((37, 250), (64, 96)), ((40, 30), (96, 96))])
def test_numpy_transform_matches_prepare_views(source: tuple[int, int], target: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, source, dtype=np.uint8) for _ in CAMERAS]
    expected = prepare_views(images, CAMERAS, target).numpy()[:, 0]  # (C, H, W)
    spec = InputSpec(CAMERAS, frozenset({"eye_left", "mouth_left"}), target, 1 / 255, 0.5, 0.25)
    got = np.stack([spec.view(image, camera) for image, camera in zip(images, CAMERAS, strict=True)])
    assert np.abs(got - expected).max() < 2e-5
    assert np.allclose(resize_weights(source[1], target[1]).sum(1), 1.0)


def test_raw_output_equals_eager_torch() -> None:
    rng = np.random.default_rng(1)
    images = frames(rng, (100, 90))
    model = small_model("refa_nano", 48)
    with Tracker.create(TrackerOptions(exported("refa_nano", 48))) as tracker:
        got = tracker.infer(images)
    with Tracker.create(TrackerOptions(exported("refa_nano", 48), threads=2, spin=False)) as idle_workers:
        np.testing.assert_allclose(idle_workers.infer(images).expression, got.expression, atol=1e-6)
    x = prepare_views([images[c] for c in CAMERAS], CAMERAS, (48, 48))[None]
    with torch.no_grad():
        features = model.forward_features(normalize_images(x, model.config))
        out = model.forward_head(features)
    assert np.abs(got.expression - out.expression[0].numpy()).max() < 1e-4
    assert np.abs(got.gaze - out.gaze[0].numpy()).max() < 1e-3  # degrees
    assert np.abs(got.features - features[0].numpy()).max() < 1e-4


def test_track_returns_a_typed_result_in_every_standard() -> None:
    rng = np.random.default_rng(2)
    with Tracker.create(TrackerOptions(exported(), smoothing=Smoothing.off())) as tracker:
        raw = tracker.infer(frames(rng)).expression
        result = tracker.track([textured(rng) for _ in CAMERAS], 0.0)  # a sequence in camera order works too
        second = tracker.track(frames(rng), 1 / 72)
    assert result.expression.shape == (53,) and result.expression.dtype == np.float32
    assert result.gaze.shape == (2, 2) and result.frame_index == 0 and second.frame_index == 1
    assert set(result.confidence) == {"eyes", "upper_face", "lower_face"}
    assert result.failures == {} and not result.held and result.latency_ms > 0
    assert set(result.expressions("arkit")) >= {"jawOpen", "eyeBlinkLeft"}
    assert "JawOpen" in result.expressions("unified") and "JawDrop" in result.expressions("movement")
    assert result.expressions()["jawOpen"] == pytest.approx(float(result.expression[26]))
    assert raw.shape == (53,)


def test_bad_inputs_fail_with_clear_errors() -> None:
    rng = np.random.default_rng(3)
    good = frames(rng)
    with Tracker.create(TrackerOptions(exported())) as tracker:
        with pytest.raises(ValueError, match=r"expected 4 uint8 \(H, W\) images .* got 3 images"):
            tracker.track(list(good.values())[:3], 0.0)
        with pytest.raises(ValueError, match=r"unknown cameras \['mouth'\], missing \['mouth_right'\]"):
            tracker.track({**{c: good[c] for c in CAMERAS[:3]}, "mouth": good["mouth_right"]}, 0.0)
        with pytest.raises(TypeError, match=r"camera 'eye_right': expected a uint8 .* got dtype float32"):
            tracker.track(good | {"eye_right": good["eye_right"].astype(np.float32)}, 0.0)
        with pytest.raises(ValueError, match=r"camera 'eye_left': .* got shape \(72, 80, 3\)"):
            tracker.track(good | {"eye_left": np.zeros((72, 80, 3), np.uint8)}, 0.0)
        tracker.track(good, 1.0)
        with pytest.raises(ValueError, match=r"strictly increasing: got 1\.0 s after 1\.0 s"):
            tracker.track(good, 1.0)
        with pytest.raises(ValueError, match="strictly increasing"):
            tracker.track(good, 0.5)
        assert tracker.frame_index == 0  # refused frames are not counted
    with pytest.raises(RuntimeError, match="closed"):
        tracker.track(good, 2.0)
    with pytest.raises(FileNotFoundError, match="egoface export"):
        Tracker.create(TrackerOptions("no-such-model.onnx"))


def test_failure_holds_then_eases_to_neutral() -> None:
    rng = np.random.default_rng(4)
    options = TrackerOptions(exported(), smoothing=Smoothing.off(), failure=FailureOptions(hold_s=0.2, ease_s=0.5))
    with Tracker.create(options) as tracker:
        t = 0.0
        for _ in range(15):
            good = tracker.track(frames(rng), t)
            t += 0.05
        black = {c: np.zeros((72, 80), np.uint8) for c in CAMERAS}
        held = [tracker.track(black, t + i * 0.05) for i in range(30)]
    assert held[0].failures["headset"] == ["off_face"] and held[0].held
    assert all(r.confidence["lower_face"] == 0.0 for r in held)
    np.testing.assert_allclose(held[0].expression, good.expression, atol=1e-6)  # the last good value, held
    np.testing.assert_allclose(held[3].expression, good.expression, atol=1e-6)  # still within hold_s = 0.2 s
    middle = held[8]  # 0.4 s in: 0.2 s into the 0.5 s ease
    assert 0.0 < np.abs(middle.expression).sum() < np.abs(good.expression).sum()
    np.testing.assert_allclose(held[-1].expression, 0.0, atol=1e-6)  # 1.45 s in: neutral
    np.testing.assert_allclose(held[-1].gaze, 0.0, atol=1e-6)


def test_recenter_makes_the_resting_face_neutral() -> None:
    rng = np.random.default_rng(5)
    rest = frames(rng)
    options = TrackerOptions(exported(), smoothing=Smoothing.off())
    with Tracker.create(options) as tracker:
        before = tracker.track(rest, 0.0).expression
        tracker.recenter(seconds=0.1)
        for i in range(1, 5):
            tracker.track(rest | {"eye_left": textured(rng)}, i * 0.05)  # not frozen: one camera changes
        after = tracker.track(rest | {"eye_left": textured(rng)}, 0.3).expression
        assert tracker.profile is not None and tracker.profile.neutral is not None
    free = np.array([not n.startswith("eyeLook") for n in tracker.expression_names])
    assert np.abs(before[free]).max() > 0.05
    assert np.abs(after[free]).max() < 0.02


def test_out_of_distribution_frames_are_flagged_per_camera(tmp_path) -> None:
    rng = np.random.default_rng(6)
    with Tracker.create(TrackerOptions(exported())) as plain:
        assert plain.ood is None and "export with --data" in (plain.ood_note or "")
        training = np.stack([plain.infer(frames(rng)).features for _ in range(120)])
    path = export_onnx(small_model(), tmp_path / "ood.onnx", "refa_nano", OodDetector.fit(training, CAMERAS, 8))
    y, x = np.mgrid[:72, :80]
    hand = np.where((x - 40) ** 2 + (y - 50) ** 2 < 30**2, 235, 20).astype(np.uint8)  # a bright blob fills the view
    with Tracker.create(TrackerOptions(path, smoothing=Smoothing.off())) as tracker:
        inside = [tracker.track(frames(rng), i / 72) for i in range(20)]
        outside = tracker.track(frames(rng) | {"mouth_left": hand}, 1.0)
    assert sum(bool(r.failures) for r in inside) <= 1
    assert outside.failures == {"mouth_left": ["out_of_distribution"]}
    assert outside.confidence["eyes"] == 1.0
    assert outside.confidence["lower_face"] == pytest.approx((1 + FailureOptions().ood_confidence) / 2)


def test_named_profile_is_saved_on_close(tmp_path) -> None:
    rng = np.random.default_rng(7)
    options = TrackerOptions(exported(), profile="alice", profile_dir=tmp_path)
    with Tracker.create(options) as tracker:
        for i in range(10):
            tracker.track(frames(rng), i / 72)
    saved = ProfileStore(tmp_path).load("alice")
    assert saved.rom_histogram.sum(1).max() == 10  # every healthy frame counted once per shape
    with Tracker.create(options) as again:  # reused in the next session
        assert again.profile is not None and again.profile.rom_histogram.sum(1).max() == 10
