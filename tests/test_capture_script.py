"""The capture script: preset contents and timing, art priors, phases, anchor candidates, the stored segment table,
and the errors that keep malformed scripts out of recordings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from egoface.capture import (
    ANCHOR_CANDIDATES,
    EXPRESSION_PRIORS,
    CaptureScript,
    Phases,
    Segment,
    art_prior_vector,
    build_script,
    peak_mask,
    text_to_visemes,
)
from egoface.capture.script import MAX_PRIOR_SIZE
from egoface.face.names import EXPRESSION_NAMES, expression_index


def _kinds(script: CaptureScript) -> dict[str, int]:
    counts: dict[str, int] = {}
    for segment in script.segments:
        counts[segment.kind] = counts.get(segment.kind, 0) + 1
    return counts


def test_paper_preset_follows_universal_sec5() -> None:
    """43 expression segments of 8 s, 21 speech segments of ~180 s in total, one ROM segment of 40 s, gaze and
    neutral segments: about ten minutes, ~40k frames at 72 Hz as in the paper."""
    script = build_script("paper", fps=72.0)
    assert _kinds(script) == {"neutral": 1, "expression": 43, "speech": 21, "rom": 1, "gaze": 3}
    expressions = [s for s in script.segments if s.kind == "expression"]
    assert all(s.duration_s == pytest.approx(8.0) for s in expressions)
    speech_s = sum(s.duration_s for s in script.segments if s.kind == "speech")
    assert 165.0 <= speech_s <= 195.0
    assert script.segment("rom_free").duration_s == pytest.approx(40.0)
    assert 8 * 60 <= script.duration_s <= 12 * 60
    assert 35_000 <= script.num_frames <= 50_000
    for name in ("jaw_open_max", "jaw_open_slight", "cheek_puff", "brows_lowered_eyes_wide", "eyes_closed",
                 "wink_left", "smile_wide", "lips_pucker"):  # fmt: skip
        assert script.segment(name).kind == "expression"


def test_small_and_tiny_presets_are_shorter_versions() -> None:
    """small keeps every kind of segment and all 15 anchor candidates in about a minute; tiny is 60-120 frames at
    30 fps with neutral, jaw_open_max, eyes_closed, a wink, a smile and one sentence."""
    small = build_script("small", fps=30.0)
    assert set(_kinds(small)) == {"neutral", "expression", "speech", "rom", "gaze"}
    assert 30.0 <= small.duration_s <= 120.0
    assert len(small.anchor_candidates()) == 15

    tiny = build_script("tiny", fps=30.0)
    assert 60 <= tiny.num_frames <= 120
    names = set(tiny.names)
    assert {"neutral", "jaw_open_max", "eyes_closed"} <= names
    assert any(n.startswith("wink_") for n in names) and any(n.startswith("smile_") for n in names)
    assert _kinds(tiny)["speech"] == 1


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_segments_tile_the_timeline_with_unique_names(preset: str) -> None:
    """Frames are partitioned by the segments; phases of expression/neutral segments sum to their durations."""
    script = build_script(preset, fps=30.0)
    assert len(set(script.names)) == len(script.names)
    covered = np.concatenate([np.arange(r.start, r.stop) for r in map(script.frames_of, script.segments)])
    np.testing.assert_array_equal(covered, np.arange(script.num_frames))
    for segment in script.segments:
        if segment.kind in ("expression", "neutral"):
            assert segment.phases is not None
            assert segment.phases.total_s == pytest.approx(segment.duration_s)
            assert len(script.peak_frames(segment.name)) > 0
        else:
            assert segment.phases is None
    index = script.segment_index()
    assert index.shape == (script.num_frames,) and index[0] == 0 and index[-1] == len(script.segments) - 1
    assert np.all(np.diff(index) >= 0)


def test_art_priors_are_sparse_valid_and_only_on_expressions() -> None:
    """Every prior names 1..6 canonical, non-eye-following shapes with values in (0, 1]."""
    assert len(EXPRESSION_PRIORS) == 43
    for name, prior in EXPRESSION_PRIORS.items():
        assert 1 <= len(prior) <= MAX_PRIOR_SIZE, name
        for shape, value in prior.items():
            assert shape in EXPRESSION_NAMES and not shape.startswith("eyeLook"), (name, shape)
            assert 0.0 < value <= 1.0
    script = build_script("paper", fps=30.0)
    for segment in script.segments:
        vector = art_prior_vector(segment)
        assert vector.shape == (53,) and vector.dtype == np.float32
        assert (np.count_nonzero(vector) > 0) == (segment.kind == "expression")
        for shape, value in segment.art_prior.items():
            assert vector[expression_index(shape)] == pytest.approx(value)
    assert script.segment("jaw_open_max").art_prior["jawOpen"] == 1.0


def test_closure_flags_for_refa_metrics() -> None:
    """eyes_closed marks the closed-eye and wink peaks; mouth_closed marks lips-together peaks (neutral included),
    not open mouths."""
    script = build_script("paper", fps=30.0)
    closed_eyes = {s.name for s in script.segments if s.eyes_closed}
    assert closed_eyes == {"eyes_closed", "eyes_closed_tight", "wink_left", "wink_right"}
    assert script.segment("lips_pressed").mouth_closed and script.segment("neutral").mouth_closed
    assert not script.segment("jaw_open_max").mouth_closed and not script.segment("laugh").mouth_closed


@pytest.mark.parametrize("preset", ["small", "paper"])
def test_anchor_candidates_have_peak_frames(preset: str) -> None:
    """The 15 candidates of Universal App. A map to segments of the script with non-empty peak ranges."""
    script = build_script(preset, fps=72.0)
    anchors = script.anchor_candidates()
    assert anchors == dict(ANCHOR_CANDIDATES)
    assert len(anchors) >= 15
    assert {"neutral", "maximal_jaw_drop", "wide_eyes", "closed_eyes"} <= set(anchors)
    for anchor, name in anchors.items():
        segment = script.segment(name)
        assert segment.anchor == anchor
        peak = script.peak_frames(name)
        frames = script.frames_of(name)
        assert len(peak) > 0 and frames.start <= peak.start and peak.stop <= frames.stop


def test_tiny_anchor_candidates_are_the_present_subset() -> None:
    tiny = build_script("tiny", fps=30.0)
    assert tiny.anchor_candidates() == {
        "neutral": "neutral",
        "maximal_jaw_drop": "jaw_open_max",
        "closed_eyes": "eyes_closed",
        "left_wink": "wink_left",
        "big_smile": "smile_wide",
    }


def test_peak_frames_are_the_hold_phase() -> None:
    """peak_frames = the frames whose time lies in [hold start, hold end); peak_mask = their union over expressions."""
    script = build_script("small", fps=30.0)
    segment = script.segment("jaw_open_max")
    assert segment.phases is not None and segment.hold_s is not None
    hold_start, hold_end = segment.hold_s
    assert hold_start == pytest.approx(segment.start_s + segment.phases.onset_s + segment.phases.peak_s)
    times = script.frame_times()
    expected = np.flatnonzero((times >= hold_start - 1e-9) & (times < hold_end - 1e-9))
    np.testing.assert_array_equal(np.asarray(script.peak_frames("jaw_open_max")), expected)

    mask = peak_mask(script)
    expected_mask = np.zeros(script.num_frames, dtype=bool)
    for s in script.segments:
        if s.kind == "expression":
            r = script.peak_frames(s.name)
            expected_mask[r.start : r.stop] = True
    np.testing.assert_array_equal(mask, expected_mask)
    assert not mask[np.asarray(script.peak_frames("neutral"))].any()


def test_segment_table_is_json_and_round_trips() -> None:
    """The stored table is plain JSON and rebuilds an identical script."""
    script = build_script("small", fps=72.0)
    table = script.segment_table()
    text = json.dumps(table)
    rows = json.loads(text)
    assert len(rows) == len(script.segments)
    row = next(r for r in rows if r["name"] == "eyes_closed")
    assert row["eyes_closed"] is True and row["art_prior"] == {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0}
    assert (row["peak_start_frame"], row["peak_stop_frame"]) == (
        script.peak_frames("eyes_closed").start,
        script.peak_frames("eyes_closed").stop,
    )
    speech = next(r for r in rows if r["kind"] == "speech")
    assert speech["text"] and speech["visemes"][0] == "SIL" and speech["peak_start_frame"] is None
    rebuilt = CaptureScript.from_segment_table(rows, fps=72.0)
    assert rebuilt == script


def test_build_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="preset"):
        build_script("huge", fps=30.0)
    with pytest.raises(ValueError, match="fps"):
        build_script("tiny", fps=0.0)
    with pytest.raises(ValueError, match="holds no frame"):
        build_script("tiny", fps=2.0)  # a 0.2 s hold between two frames 0.5 s apart


def test_segment_validation() -> None:
    """Unknown shape names, dense priors, inconsistent phases and flags are refused at construction."""
    phases = Phases(0.5, 0.5, 1.0, 0.5)
    with pytest.raises(KeyError, match="jawOpenn"):
        Segment("bad", "expression", 0.0, 2.5, phases=phases, art_prior={"jawOpenn": 1.0})
    dense = {name: 0.5 for name in EXPRESSION_NAMES[:8]}
    with pytest.raises(ValueError, match="sparse"):
        Segment("bad", "expression", 0.0, 2.5, phases=phases, art_prior=dense)
    with pytest.raises(ValueError, match="eye-following"):
        Segment("bad", "expression", 0.0, 2.5, phases=phases, art_prior={"eyeLookUp_L": 1.0})
    with pytest.raises(ValueError, match="sum to"):
        Segment("bad", "expression", 0.0, 3.0, phases=phases, art_prior={"jawOpen": 1.0})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        Segment("bad", "expression", 0.0, 2.5, phases=phases, art_prior={"jawOpen": 1.5})
    with pytest.raises(ValueError, match="eyeBlink"):
        Segment("bad", "expression", 0.0, 2.5, phases=phases, art_prior={"jawOpen": 1.0}, eyes_closed=True)
    with pytest.raises(ValueError, match="kind"):
        Segment("bad", "dance", 0.0, 2.5)
    with pytest.raises(ValueError, match="gaze_pattern"):
        Segment("bad", "gaze", 0.0, 2.5)
    with pytest.raises(KeyError, match="XX"):
        Segment("bad", "speech", 0.0, 2.5, text="hi", visemes=("SIL", "XX"))


def test_script_validation_and_lookups() -> None:
    a = Segment("neutral", "neutral", 0.0, 1.0, phases=Phases(0.2, 0.0, 0.6, 0.2))
    b = Segment("rom_free", "rom", 1.0, 2.0)
    with pytest.raises(ValueError, match="unique"):
        CaptureScript((a, Segment("neutral", "rom", 1.0, 2.0)), fps=30.0, duration_s=3.0)
    with pytest.raises(ValueError, match="tile"):
        CaptureScript((a, Segment("rom_free", "rom", 1.5, 2.0)), fps=30.0, duration_s=3.5)
    with pytest.raises(ValueError, match="duration_s"):
        CaptureScript((a, b), fps=30.0, duration_s=4.0)
    script = CaptureScript((a, b), fps=30.0, duration_s=3.0)
    assert script.num_frames == 90 and script.frames_of(b) == range(30, 90)
    with pytest.raises(ValueError, match="no peak"):
        script.peak_frames("rom_free")
    with pytest.raises(KeyError, match="rom_free"):
        script.segment("jaw_open_max")


def test_text_to_visemes() -> None:
    """Letters and digraphs map to visemes, punctuation pauses, repeats merge, the mouth rests at both ends."""
    assert text_to_visemes("Bob") == ("SIL", "MBP", "OH", "MBP", "SIL")
    assert text_to_visemes("the fish, moo") == ("SIL", "TH", "EH", "FV", "IH", "CH", "SIL", "MBP", "OO", "SIL")
    assert text_to_visemes("made") == ("SIL", "MBP", "AA", "DD", "SIL")  # silent final e
    visemes = build_script("paper", fps=30.0).segment("speech_00").visemes
    assert {"MBP", "FV", "AA", "OO"} <= set(visemes)
