"""egoface.eval.refa_metrics: REFA Sec. 8.1 heuristic metrics on constructed predictions with known scores.

Guarantees, on the `tiny` capture script (neutral, jaw_open_max, eyes_closed, wink_left, smile_wide, one sentence):
a neutral predictor scores 0 semantic accuracy and 0 eye closure, the art-prior predictor 1; an everything-at-once
predictor, a too-weak one and a frown-for-a-smile one score 0 while key shapes at 60% of the prior score 1;
neutralness is 1 for zeros, the fraction of frames below the threshold otherwise, and ignores blinks; smoothness
is 0 for constant and linear curves and equals the analytic second difference of a sampled sine (coefficient /
s^2); eye closure handles winks (the open eye must stay open); mouth closure follows the rig's lip gap (2 mm
above neutral) with jawOpen compensated by mouthClose; the true curves of the animation score 1 on every [0, 1]
metric on the `small` script; the fast lip gap equals the full rig's; NaN where no segment applies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from egoface.capture import animate, build_script
from egoface.eval.refa_metrics import REFA_METRICS, lip_gap_mm, refa_metrics, refa_segment_scores, smoothness
from egoface.face import FaceModel, load_face_model
from egoface.face.names import expression_index, expression_vector
from toy_face import toy_face_data

FPS = 30.0
SCRIPT = build_script("tiny", FPS)
ROWS = SCRIPT.segment_table()
N = SCRIPT.num_frames
JAW, CLOSE, SMILE_L, FROWN_L = (expression_index(n) for n in ("jawOpen", "mouthClose", "mouthSmile_L", "mouthFrown_L"))
BLINK_L, BLINK_R = expression_index("eyeBlink_L"), expression_index("eyeBlink_R")


@pytest.fixture(scope="module")
def rig():
    """Toy rig whose lips open 10 mm with jawOpen (lower lip centre down) and close again with mouthClose."""
    data = toy_face_data()
    data.expression_deltas[JAW, 10, 1] = -10.0
    data.expression_deltas[CLOSE, 10, 1] = 10.0
    return FaceModel(data).rig()


def peaks(*, kind: str | None = None, names: tuple[str, ...] | None = None):
    for row in ROWS:
        wanted = (kind is None or row["kind"] == kind) and (names is None or row["name"] in names)
        if row["peak_start_frame"] is not None and wanted:
            yield row, slice(row["peak_start_frame"], row["peak_stop_frame"])


def prior_predictor(scale: float = 1.0) -> np.ndarray:
    """Zeros, with `scale` x the art prior on each expression segment's peak frames."""
    expression = np.zeros((N, 53), np.float32)
    for row, frames in peaks(kind="expression"):
        expression[frames] = scale * expression_vector(row["art_prior"])
    return expression


def test_neutral_and_art_prior_predictors(rig):
    neutral = refa_metrics(np.zeros((N, 53)), ROWS, FPS, rig)
    assert list(neutral) == list(REFA_METRICS)
    assert neutral["semantic_accuracy"] == 0.0
    assert neutral["eye_closure"] == 0.0
    assert neutral["neutralness"] == neutral["mouth_closure"] == 1.0
    assert neutral["smoothness"] == 0.0
    prior = refa_metrics(prior_predictor(), ROWS, FPS, rig)
    assert prior["semantic_accuracy"] == prior["eye_closure"] == prior["neutralness"] == 1.0
    per_segment = refa_segment_scores(prior_predictor(), ROWS, rig)
    assert set(per_segment["semantic_accuracy"]) == {"jaw_open_max", "eyes_closed", "wink_left", "smile_wide"}
    assert set(per_segment["eye_closure"]) == {"eyes_closed", "wink_left"}
    assert set(per_segment["mouth_closure"]) == {"neutral", "eyes_closed", "wink_left"}


def test_semantic_accuracy_needs_the_key_shapes_and_no_stronger_stranger(rig):
    def score(expression):
        return refa_metrics(expression, ROWS, FPS, rig)["semantic_accuracy"]

    assert score(np.ones((N, 53))) == 0.0  # everything at once: unnamed shapes are as strong as the named ones
    assert score(prior_predictor(0.4)) == 0.0  # below half the prior
    assert score(prior_predictor(0.6)) == 1.0
    ((_, smile),) = peaks(names=("smile_wide",))
    frown = prior_predictor()
    frown[smile, FROWN_L] = 1.0  # a frown as strong as the smile: not a smile
    assert refa_segment_scores(frown, ROWS, rig)["semantic_accuracy"]["smile_wide"] == 0.0
    frown[smile, FROWN_L] = 0.3  # a little frown beside a full smile is still a smile
    assert refa_segment_scores(frown, ROWS, rig)["semantic_accuracy"]["smile_wide"] == 1.0
    half = prior_predictor()
    count = smile.stop - smile.start
    half[smile.start : smile.start + count // 2, SMILE_L] = 0.0  # the key shape missing on the first half
    assert refa_segment_scores(half, ROWS, rig)["semantic_accuracy"]["smile_wide"] == pytest.approx(
        1 - (count // 2) / count
    )


def test_neutralness_counts_frames_below_the_threshold(rig):
    ((_, hold),) = peaks(kind="neutral")
    expression = np.zeros((N, 53))
    expression[hold, BLINK_L] = expression[hold, BLINK_R] = 1.0  # blinking is neutral
    assert refa_metrics(expression, ROWS, FPS, rig)["neutralness"] == 1.0
    frames = np.arange(hold.start, hold.stop)
    expression[frames[::2], expression_index("browDown_L")] = 0.3
    expected = 1 - len(frames[::2]) / len(frames)
    assert refa_metrics(expression, ROWS, FPS, rig)["neutralness"] == pytest.approx(expected)


def test_smoothness_of_constant_linear_and_sine_curves():
    assert smoothness(np.full((50, 53), 0.3), FPS) == 0.0
    ramp = np.tile(np.linspace(0, 1, 50)[:, None], (1, 53))
    assert smoothness(ramp, FPS) == pytest.approx(0.0, abs=1e-9)
    frequency, amplitude, frames = 2.0, 0.4, 150  # 10 whole periods at 30 fps
    t = np.arange(frames) / FPS
    expression = np.zeros((frames, 53))
    expression[:, JAW] = 0.5 + amplitude * np.sin(2 * np.pi * frequency * t)
    # x[t+1] - 2x[t] + x[t-1] = -4 sin^2(pi f / fps) (x[t] - 0.5) exactly; one of the 45 free shapes moves.
    factor = 4 * math.sin(math.pi * frequency / FPS) ** 2 * FPS**2
    expected = factor * np.abs(expression[1:-1, JAW] - 0.5).mean() / 45
    assert smoothness(expression, FPS) == pytest.approx(expected, rel=1e-9)
    continuous = (2 * np.pi * frequency) ** 2 * amplitude * 2 / np.pi / 45  # mean |x''| of the continuous sine
    assert smoothness(expression, FPS) == pytest.approx(continuous, rel=0.05)
    assert smoothness(expression, 2 * FPS) == pytest.approx(4 * smoothness(expression, FPS))  # per s^2
    assert math.isnan(smoothness(np.zeros((2, 53)), FPS))


def test_eye_closure_handles_winks(rig):
    def eye(expression):
        return refa_segment_scores(expression, ROWS, rig)["eye_closure"]

    expression = np.zeros((N, 53))
    ((_, both),) = peaks(names=("eyes_closed",))
    ((_, wink),) = peaks(names=("wink_left",))
    expression[both, BLINK_L] = expression[both, BLINK_R] = 0.9
    expression[wink, BLINK_L] = 0.9
    assert eye(expression) == {"eyes_closed": 1.0, "wink_left": 1.0}
    expression[wink, BLINK_R] = 0.9  # both eyes shut for a wink
    assert eye(expression) == {"eyes_closed": 1.0, "wink_left": 0.0}
    expression[wink, BLINK_L] = 0.0  # the wrong eye
    assert refa_metrics(expression, ROWS, FPS, rig)["eye_closure"] == 0.5
    expression[both, BLINK_R] = 0.5  # half-closed is not closed
    assert eye(expression)["eyes_closed"] == 0.0


def test_mouth_closure_follows_the_lip_gap(rig):
    def mouth(values):
        return refa_metrics(np.tile(expression_vector(values), (N, 1)), ROWS, FPS, rig)["mouth_closure"]

    assert mouth({}) == 1.0
    assert mouth({"jawOpen": 1.0}) == 0.0
    assert mouth({"jawOpen": 1.0, "mouthClose": 1.0}) == 1.0  # jaw open, lips held together
    assert mouth({"jawOpen": 0.15}) == 1.0  # 1.5 mm apart: within the 2 mm
    assert mouth({"jawOpen": 0.25}) == 0.0  # 2.5 mm apart
    np.testing.assert_allclose(lip_gap_mm(rig, np.tile(expression_vector({"jawOpen": 0.5}), (2, 1))), 25.0)


def test_true_animation_scores_one_and_lip_gap_matches_the_rig():
    """The definitions agree with how the capture stage animates subjects: the truth passes every check."""
    rig = load_face_model("procedural").rig()
    script = build_script("small", FPS)
    rows = script.segment_table()
    for seed in (3, 4):
        expression = animate(script, subject_seed=seed).expression
        metrics = refa_metrics(expression, rows, FPS, rig)
        assert {k: metrics[k] for k in REFA_METRICS if k != "smoothness"} == dict.fromkeys(
            ("semantic_accuracy", "neutralness", "eye_closure", "mouth_closure"), 1.0
        )
        assert 0.0 < metrics["smoothness"] < 10.0
    sample = torch.from_numpy(expression[::40])
    with torch.no_grad():
        vertices = rig(sample).vertices
    pairs = rig.topology.lip_pairs
    full = (vertices[:, pairs.upper_center, 1] - vertices[:, pairs.lower_center, 1]).numpy()
    np.testing.assert_allclose(lip_gap_mm(rig, sample.numpy()), full, atol=1e-4)


def test_undefined_metrics_are_nan_and_bad_tables_fail(rig):
    speech_only = [row for row in ROWS if row["kind"] == "speech"]
    metrics = refa_metrics(np.zeros((N, 53)), speech_only, FPS, rig)
    assert all(math.isnan(metrics[k]) for k in ("semantic_accuracy", "neutralness", "eye_closure", "mouth_closure"))
    with pytest.raises(ValueError, match="outside"):
        refa_metrics(np.zeros((N - 1, 53)), ROWS, FPS, rig)
    with pytest.raises(ValueError, match="lacks"):
        refa_metrics(np.zeros((N, 53)), [{"name": "x", "kind": "neutral"}], FPS, rig)
    with pytest.raises(ValueError, match=r"\(N, 53\)"):
        refa_metrics(np.zeros((N, 45)), ROWS, FPS, rig)
