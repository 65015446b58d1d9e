"""Failure detection on constructed inputs: black, saturated, frozen, blurred and covered frames are flagged for the
camera that has them (and only it), a disconnected camera is flagged, every camera blind means the headset is off
the face; confidence drops for the regions that camera sees; out-of-distribution features are flagged."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from egoface.runtime.failure import FailureDetector, FailureOptions, camera_regions, shape_regions
from egoface.runtime.ood import OodDetector

CAMERAS = ("eye_left", "eye_right", "mouth_left", "mouth_right")


def textured(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[:64, :64]
    base = 100 + 50 * np.sin(x / 3.0) * np.cos(y / 4.0)
    return np.clip(base + rng.normal(0, 5, (64, 64)), 0, 255).astype(np.uint8)


def warmed_up(ood: OodDetector | None = None) -> tuple[FailureDetector, np.random.Generator]:
    rng = np.random.default_rng(0)
    detector = FailureDetector(CAMERAS, FailureOptions(), ood)
    for _ in range(20):
        check(detector, [textured(rng) for _ in CAMERAS])
    return detector, rng


def check(detector: FailureDetector, images: list[np.ndarray | None], features: np.ndarray | None = None):
    views = [None if image is None else image.astype(np.float32) / 255 for image in images]
    return detector.check(views, images, features)


def test_healthy_frames_have_no_failures() -> None:
    detector, rng = warmed_up()
    failures, confidence = check(detector, [textured(rng) for _ in CAMERAS])
    assert failures == {}
    assert confidence == {"eyes": 1.0, "upper_face": 1.0, "lower_face": 1.0}


def test_each_failure_is_flagged_on_its_camera() -> None:
    detector, rng = warmed_up()
    good = textured(rng)
    cases = {
        "black": np.full((64, 64), 3, np.uint8),
        "saturated": np.full((64, 64), 255, np.uint8),
        "blurred": gaussian_filter(good.astype(np.float32), 3).astype(np.uint8),
        "covered": (gaussian_filter(good.astype(np.float32), 3) * 0.25).astype(np.uint8),
    }
    for name, image in cases.items():
        failures, confidence = check(detector, [textured(rng), textured(rng), image, textured(rng)])
        assert failures == {"mouth_left": [name]}, name
        assert confidence["eyes"] == 1.0
        assert confidence["lower_face"] == (0.75 if name == "blurred" else 0.5), name


def test_frozen_after_identical_frames() -> None:
    detector, rng = warmed_up()
    still = textured(rng)
    results = [check(detector, [still, textured(rng), textured(rng), textured(rng)])[0] for _ in range(7)]
    # identical to the previous frame for frozen_frames = 5 frames in a row
    assert [r.get("eye_left", []) for r in results] == [[], [], [], [], [], ["frozen"], ["frozen"]]
    failures, _ = check(detector, [textured(rng) for _ in CAMERAS])
    assert "eye_left" not in failures


def test_disconnected_and_off_face() -> None:
    detector, rng = warmed_up()
    failures, confidence = check(detector, [None, textured(rng), textured(rng), textured(rng)])
    assert failures == {"eye_left": ["disconnected"]} and confidence["eyes"] == 0.5
    dark = np.full((64, 64), 2, np.uint8)
    failures, confidence = check(detector, [None, dark, dark, dark])
    assert failures["headset"] == ["off_face"]
    assert confidence == {"eyes": 0.0, "upper_face": 0.0, "lower_face": 0.0}


def test_out_of_distribution_features() -> None:
    rng = np.random.default_rng(1)
    training = rng.standard_normal((400, 8))
    detector, rng = warmed_up(OodDetector.fit(training, components=4))  # one block over all features
    failures, _ = check(detector, [textured(rng) for _ in CAMERAS], rng.standard_normal(8))
    assert "ood" not in failures and detector.ood_scores["all"] < 1.0
    failures, confidence = check(detector, [textured(rng) for _ in CAMERAS], 10 + rng.standard_normal(8))
    assert failures == {"ood": ["out_of_distribution"]}
    assert confidence["eyes"] == FailureOptions().ood_confidence
    detector, rng = warmed_up(OodDetector.fit(training, CAMERAS, components=1))  # per camera: 2 features each
    features = rng.standard_normal(8)
    features[4:6] += 10  # mouth_left's block
    failures, confidence = check(detector, [textured(rng) for _ in CAMERAS], features)
    assert failures == {"mouth_left": ["out_of_distribution"]}
    assert confidence["eyes"] == 1.0 and confidence["lower_face"] == (1 + FailureOptions().ood_confidence) / 2


def test_regions() -> None:
    assert camera_regions(("eye_left", "eye_right", "mouth_left", "glabella")) == {
        "eyes": [0, 1],
        "upper_face": [0, 1, 3],
        "lower_face": [2],
    }
    masks = shape_regions(("eyeBlink_L", "browDown_L", "jawOpen"))
    assert [m.tolist() for m in masks.values()] == [[True, False, False], [False, True, False], [False, False, True]]
