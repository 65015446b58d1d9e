"""Animation of a capture script into one subject's true curves: shapes and ranges, determinism, peaks at the
scripted peak frames, departures from the art priors, speech, blinks, saccades, and gaze-consistent eyeLook."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from egoface.capture import CaptureScript, Performance, animate, build_script
from egoface.capture.visemes import VISEME_NAMES
from egoface.face.gaze import eye_look_from_gaze
from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, expression_index

PAPER_FPS = 72.0
_I = expression_index
_LIDS = ("eyeBlink", "eyeWide", "eyeSquint")


@pytest.fixture(scope="module")
def paper() -> CaptureScript:
    return build_script("paper", fps=PAPER_FPS)


@pytest.fixture(scope="module")
def paper_performance(paper: CaptureScript) -> Performance:
    return animate(paper, subject_seed=11)


@pytest.fixture(scope="module")
def small() -> CaptureScript:
    return build_script("small", fps=30.0)


@pytest.fixture(scope="module")
def small_subjects(small: CaptureScript) -> list[Performance]:
    return [animate(small, subject_seed=seed) for seed in range(8)]


def _peak(script: CaptureScript, performance: Performance, name: str) -> np.ndarray:
    frames = script.peak_frames(name)
    return performance.expression[frames.start : frames.stop]


def test_shapes_dtypes_and_ranges(paper: CaptureScript, paper_performance: Performance) -> None:
    n = paper.num_frames
    p = paper_performance
    assert p.num_frames == n
    assert p.expression.shape == (n, 53) and p.expression.dtype == np.float32
    assert p.gaze.shape == (n, 2, 2) and p.gaze.dtype == np.float32
    assert p.blink.shape == (n,) and p.segment_index.shape == (n,) and p.viseme.shape == (n,)
    assert np.isfinite(p.expression).all() and p.expression.min() >= 0.0 and p.expression.max() <= 1.0
    assert p.blink.min() >= 0.0 and p.blink.max() <= 1.0
    assert np.abs(p.gaze[..., 0]).max() <= 40.0 and np.abs(p.gaze[..., 1]).max() <= 35.0
    np.testing.assert_array_equal(p.segment_index, paper.segment_index())


def test_paper_script_animates_fast(paper: CaptureScript) -> None:
    """The ~10 min paper script at 72 Hz (~43k frames) animates in about half a second here (bound: 3 s)."""
    start = time.perf_counter()
    animate(paper, subject_seed=3)
    assert time.perf_counter() - start < 3.0


def test_deterministic_by_seed_and_subjects_differ(small: CaptureScript, small_subjects: list[Performance]) -> None:
    again = animate(small, subject_seed=0)
    for field in ("expression", "gaze", "blink", "viseme"):
        np.testing.assert_array_equal(getattr(again, field), getattr(small_subjects[0], field))
    other = small_subjects[1]
    assert np.abs(other.expression - again.expression).mean() > 0.01
    assert np.abs(other.gaze - again.gaze).mean() > 1.0
    np.testing.assert_array_equal(other.segment_index, again.segment_index)  # same script, different performer


def test_anchor_peak_frames_are_at_the_segment_peak(paper: CaptureScript, paper_performance: Performance) -> None:
    """At each anchor candidate's peak frames, every prompted shape is within 10% (+0.05 for noise) of its maximum
    over the segment, and the neutral anchor's peak frames are close to rest."""
    for anchor, name in paper.anchor_candidates().items():
        segment = paper.segment(name)
        frames = paper.frames_of(name)
        whole = paper_performance.expression[frames.start : frames.stop]
        peak = _peak(paper, paper_performance, name)
        if anchor == "neutral":
            free = [i for i, n in enumerate(EXPRESSION_NAMES) if not n.startswith(("eyeLook", "eyeBlink"))]
            assert peak[:, free].max() < 0.2
            continue
        for shape in segment.art_prior:
            column = _I(shape)
            assert peak[:, column].min() >= 0.9 * whole[:, column].max() - 0.05, (name, shape)


def test_jaw_open_max_and_closed_eyes_at_peak(small: CaptureScript, small_subjects: list[Performance]) -> None:
    """For every subject: jawOpen > 0.6 at jaw_open_max peaks; both lids > 0.9 at eyes_closed peaks; only the left
    lid closes at wink_left peaks (and only the right at wink_right)."""
    for p in small_subjects:
        assert _peak(small, p, "jaw_open_max")[:, _I("jawOpen")].min() > 0.6
        closed = _peak(small, p, "eyes_closed")
        assert closed[:, _I("eyeBlink_L")].min() > 0.9 and closed[:, _I("eyeBlink_R")].min() > 0.9
        left = _peak(small, p, "wink_left")
        assert left[:, _I("eyeBlink_L")].min() > 0.9 and left[:, _I("eyeBlink_R")].max() < 0.3
        right = _peak(small, p, "wink_right")
        assert right[:, _I("eyeBlink_R")].min() > 0.9 and right[:, _I("eyeBlink_L")].max() < 0.3


def test_truth_departs_from_art_prior(small: CaptureScript, small_subjects: list[Performance]) -> None:
    """Prompted shapes reach roughly 0.6-1.0 of the prior and differ per subject; related shapes co-activate; the
    two sides differ a little."""
    jaw = np.array([_peak(small, p, "jaw_open_max")[:, _I("jawOpen")].mean() for p in small_subjects])
    assert jaw.min() >= 0.6 and jaw.max() <= 1.0 and jaw.std() > 0.02
    lower_lip = np.array([_peak(small, p, "jaw_open_max")[:, _I("mouthLowerDown_L")].mean() for p in small_subjects])
    assert lower_lip.min() > 0.05  # jaw open pulls the lower lip down, though the prior does not say so
    brows = np.array([_peak(small, p, "eyes_wide")[:, _I("browOuterUp_L")].mean() for p in small_subjects])
    assert brows.min() > 0.05  # wide eyes lift the brows
    smile = [_peak(small, p, "smile_wide") for p in small_subjects]
    asymmetry = np.array([abs(s[:, _I("mouthSmile_L")].mean() - s[:, _I("mouthSmile_R")].mean()) for s in smile])
    assert asymmetry.max() > 0.02 and asymmetry.max() < 0.4


def test_ideal_performer_hits_the_art_prior(small: CaptureScript) -> None:
    """variation=0: at the hold frames the prompted shapes equal the prior and no other free shape is active."""
    p = animate(small, subject_seed=5, variation=0.0)
    lips = [i for i, n in enumerate(EXPRESSION_NAMES) if not n.startswith(("eyeLook",) + _LIDS)]
    for name in ("jaw_open_max", "smile_wide", "lips_pucker"):
        peak = _peak(small, p, name)
        expected = np.zeros(53, dtype=np.float32)
        for shape, value in small.segment(name).art_prior.items():
            expected[_I(shape)] = value
        np.testing.assert_allclose(peak[:, lips], np.broadcast_to(expected[lips], peak[:, lips].shape), atol=1e-6)


def test_envelopes_are_smooth(paper: CaptureScript, paper_performance: Performance) -> None:
    """Outside blinks and gaze-driven columns, no shape jumps by more than 0.25 between frames at 72 Hz."""
    smooth = [i for i, n in enumerate(EXPRESSION_NAMES) if not n.startswith(("eyeLook", "eyeBlink"))]
    steps = np.abs(np.diff(paper_performance.expression[:, smooth], axis=0))
    assert steps.max() < 0.25
    neutral = paper.frames_of("neutral")
    assert steps[neutral.start : neutral.stop - 1].max() < 0.02  # a resting face moves only a little


def test_speech_lip_motion(paper: CaptureScript, paper_performance: Performance) -> None:
    """In speech segments the jaw opens and closes several times per second (2-8 Hz dominant lip-motion frequency),
    and m/b/p frames close and press the lips."""
    p = paper_performance
    speech = [s for s in paper.segments if s.kind == "speech"]
    reversals_per_s, dominant_hz = [], []
    for segment in speech:
        frames = paper.frames_of(segment)
        jaw = p.expression[frames.start : frames.stop, _I("jawOpen")].astype(np.float64)
        slope = np.sign(np.diff(jaw))
        slope = slope[slope != 0]
        reversals_per_s.append(np.count_nonzero(np.diff(slope)) / segment.duration_s)
        window = int(PAPER_FPS / 2)  # remove the slow speaking/resting envelope (a 0.5 s moving average)
        motion = jaw - np.convolve(jaw, np.ones(window) / window, mode="same")
        spectrum = np.abs(np.fft.rfft(motion[window:-window]))
        freqs = np.fft.rfftfreq(motion[window:-window].shape[0], d=1.0 / PAPER_FPS)
        dominant_hz.append(freqs[np.argmax(spectrum)])
    assert 2.0 <= np.median(reversals_per_s) <= 16.0
    assert 2.0 <= np.median(dominant_hz) <= 8.0

    closing = p.expression[:, _I("mouthClose")] + p.expression[:, [_I("mouthPress_L"), _I("mouthPress_R")]].mean(1)
    bilabial = p.viseme == VISEME_NAMES.index("MBP")
    vowels = np.isin(p.viseme, [VISEME_NAMES.index(v) for v in ("AA", "EH", "OH")])
    assert bilabial.sum() > 100 and vowels.sum() > 100
    assert closing[bilabial].mean() > 0.25 and closing[bilabial].mean() > 3 * closing[vowels].mean()
    assert p.expression[bilabial, _I("jawOpen")].mean() < p.expression[vowels, _I("jawOpen")].mean()
    in_speech = np.isin(p.segment_index, [paper.segments.index(s) for s in speech])
    assert (p.viseme[~in_speech] == -1).all() and (p.viseme[in_speech] >= 0).all()


def test_blinks_at_natural_rate(paper: CaptureScript, small: CaptureScript) -> None:
    """10-30 blinks per minute outside lid-controlling segments, 0.1-0.35 s long, none where the lids are scripted."""
    for seed in (0, 1, 2):
        p = animate(paper, subject_seed=seed)
        controlled = np.zeros(paper.num_frames, dtype=bool)
        for segment in paper.segments:
            if any(name.startswith(_LIDS) for name in segment.art_prior):
                frames = paper.frames_of(segment)
                controlled[frames.start : frames.stop] = True
        assert p.blink[controlled].max() == 0.0
        closed = (p.blink > 0.5).astype(np.int8)
        starts = np.flatnonzero(np.diff(closed) == 1)
        free_minutes = (~controlled).sum() / PAPER_FPS / 60.0
        assert 10.0 <= starts.size / free_minutes <= 30.0
        above = np.flatnonzero(p.blink > 0.02)
        runs = np.split(above, np.flatnonzero(np.diff(above) > 1) + 1)
        lengths_s = np.array([r.size for r in runs]) / PAPER_FPS
        assert 0.08 <= np.median(lengths_s) <= 0.35
        both = p.expression[:, [_I("eyeBlink_L"), _I("eyeBlink_R")]]
        assert (both[p.blink > 0.9] > 0.9).all()  # a blink closes both eyes


def test_gaze_saccades_sweeps_and_vergence(paper: CaptureScript, paper_performance: Performance) -> None:
    """Saccades peak above 200 deg/s; sweeps cover +-15 deg or more; the eyes converge by a few degrees."""
    p = paper_performance
    cyclopean = p.gaze.mean(axis=1).astype(np.float64)  # (N, 2)
    speed = np.linalg.norm(np.diff(cyclopean, axis=0), axis=1) * PAPER_FPS  # deg/s
    fixations = paper.frames_of("gaze_fixations")
    assert speed[fixations.start : fixations.stop - 1].max() > 200.0
    assert np.median(speed) < 30.0  # most of the time the eyes fixate or pursue slowly
    horizontal = paper.frames_of("gaze_sweep_horizontal")
    yaw = cyclopean[horizontal.start : horizontal.stop, 0]
    assert yaw.max() - yaw.min() > 30.0
    settled = horizontal.start + int(0.3 * PAPER_FPS)  # after the saccade that brings the eyes to the start
    assert speed[settled : horizontal.stop - 1].max() < 200.0  # a sweep is smooth pursuit, not saccades
    vertical = paper.frames_of("gaze_sweep_vertical")
    pitch = cyclopean[vertical.start : vertical.stop, 1]
    assert pitch.max() - pitch.min() > 25.0
    vergence = p.gaze[:, 1, 0] - p.gaze[:, 0, 0]  # right-eye yaw minus left-eye yaw, > 0 when converging
    assert 0.5 < np.median(vergence) < 5.0


def test_eye_look_columns_follow_gaze(small: CaptureScript, small_subjects: list[Performance]) -> None:
    p = small_subjects[2]
    expected = eye_look_from_gaze(torch.from_numpy(p.gaze)).numpy()
    columns = [_I(n) for n in EYE_LOOK_NAMES]
    np.testing.assert_allclose(p.expression[:, columns], expected, atol=1e-6)


def test_rom_explores_upper_and_lower_face(small: CaptureScript, small_subjects: list[Performance]) -> None:
    upper = [i for i, n in enumerate(EXPRESSION_NAMES) if n.startswith(("brow", "eyeWide", "eyeSquint", "noseSneer"))]
    lower = [i for i, n in enumerate(EXPRESSION_NAMES) if n.startswith(("jaw", "mouth", "cheekPuff"))]
    frames = small.frames_of("rom_free")
    for p in small_subjects[:3]:
        rom = p.expression[frames.start : frames.stop]
        assert rom[:, upper].max() > 0.3 and rom[:, lower].max() > 0.3
        assert (rom[:, lower].max(axis=0) > 0.2).sum() >= 3  # several different lower-face shapes, not one


def test_tiny_preset_animation() -> None:
    """The tiny preset used by the data-generation tests animates with its segments' peaks in place."""
    script = build_script("tiny", fps=30.0)
    p = animate(script, subject_seed=0)
    assert p.expression.shape == (script.num_frames, 53)
    assert _peak(script, p, "jaw_open_max")[:, _I("jawOpen")].min() > 0.6
    assert _peak(script, p, "eyes_closed")[:, [_I("eyeBlink_L"), _I("eyeBlink_R")]].min() > 0.9
    assert (p.viseme[np.asarray(script.frames_of("speech_00"))] >= 0).all()


def test_animate_input_errors(small: CaptureScript) -> None:
    with pytest.raises(TypeError, match="CaptureScript"):
        animate("small", subject_seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        animate(small, subject_seed=-1)
    with pytest.raises(ValueError, match="variation"):
        animate(small, subject_seed=0, variation=3.0)
