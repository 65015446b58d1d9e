"""One subject's performance of a capture script: per-frame true expressions, gaze and blinks.

The art prior of a segment is what an artist expects; what the subject really does differs, as in REFA Fig. 6:

- **amplitude**: each prompted shape reaches 0.75-1.0 of its prior for this subject, times 0.9-1.0 for this
  segment (closing an eye is an end state: a prior eyeBlink >= 0.9 reaches 0.95-1.0);
- **co-activation**: related shapes come along (a smile squints the cheeks, an open jaw pulls the lower lip down,
  wide eyes lift the brows, ...; `COACTIVATION`), with per-subject strengths of 0.5-1.5 times the table's;
- **asymmetry**: a per-subject left/right bias (about +-6%) plus a per-segment one;
- **spill and residue**: up to two unprompted subtle shapes per segment, a resting face of a few small
  activations (<= 0.06) on every frame, and smooth noise (std 0.006-0.012);
- **timing**: the rise starts and ends a little early and is a bit faster than scripted, so that it is complete
  when the hold begins; the return starts a little late. Envelopes ease in and out (smootherstep, C2) and the
  hold wavers by at most 3%, so the hold frames (`CaptureScript.peak_frames`) are at the segment's peak.

Speech segments blend the visemes' shapes with dominance-weighted Gaussian co-articulation at the subject's own
rate (10 +- 1 visemes/s); lips close on m/b/p and touch the teeth on f/v whatever the neighbours. The
range-of-motion segment is a smooth random walk through upper- and lower-face targets every 0.8-1.6 s.

Gaze is a sequence of fixations joined by saccades (minimum-jerk profile, main-sequence duration 21 ms + 2.2 ms/deg:
30-50 ms for the common saccades under 13 degrees, 65 ms and a ~580 deg/s peak for 20 degrees), with horizontal and
vertical smooth sweeps and a 3x3 target grid in the gaze segments, a small per-subject vergence (1.5-3.5 deg) and
fixational drift. Blinks come at 15-20 per minute per subject, last 150-300 ms (fast close, slower open), close
both eyes, and are left out of segments whose art prior moves the lids (eyes closed, winks, wide eyes, squints),
where the segment controls them. The eyeLook* columns are `egoface.face.gaze.eye_look_from_gaze` of the gaze.

Everything is deterministic from (script, subject_seed). Each expression segment draws its randomness from
(subject_seed, segment name), so a subject performs `jaw_open_max` the same way in every preset.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from egoface.capture.script import CaptureScript, Segment, art_prior_vector
from egoface.capture.visemes import SPEECH_RATE_HZ, VISEME_DOMINANCE, VISEME_NAMES, VISEME_SHAPES, viseme_index
from egoface.face.gaze import eye_look_from_gaze
from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, NUM_EXPRESSIONS, expression_index, expression_vector

__all__ = ["COACTIVATION", "Performance", "animate"]

#: (source, target, fraction): the target rises by about `fraction` times the source. `*` stands for _L and _R.
COACTIVATION: tuple[tuple[str, str, float], ...] = (
    ("mouthSmile_*", "cheekSquint_*", 0.35),
    ("mouthSmile_*", "eyeSquint_*", 0.15),
    ("mouthSmile_*", "mouthDimple_*", 0.1),
    ("jawOpen", "mouthLowerDown_L", 0.25),
    ("jawOpen", "mouthLowerDown_R", 0.25),
    ("eyeWide_*", "browOuterUp_*", 0.3),
    ("eyeWide_*", "browInnerUp_*", 0.2),
    ("browDown_*", "eyeSquint_*", 0.15),
    ("browDown_*", "noseSneer_*", 0.1),
    ("noseSneer_*", "mouthUpperUp_*", 0.3),
    ("noseSneer_*", "cheekSquint_*", 0.2),
    ("noseSneer_*", "browDown_*", 0.15),
    ("browInnerUp_*", "browOuterUp_*", 0.2),
    ("browOuterUp_*", "browInnerUp_*", 0.3),
    ("mouthPucker", "mouthFunnel", 0.2),
    ("mouthFunnel", "mouthPucker", 0.2),
    ("mouthStretch_*", "mouthFrown_*", 0.1),
    ("mouthFrown_*", "mouthShrugLower", 0.1),
    ("mouthPress_*", "mouthShrugLower", 0.1),
    ("mouthShrugLower", "mouthShrugUpper", 0.3),
    ("jawLeft", "mouthLeft", 0.2),
    ("jawRight", "mouthRight", 0.2),
    ("eyeBlink_*", "eyeSquint_*", 0.1),
    ("cheekPuff_*", "mouthPucker", 0.05),
)

# Range-of-motion targets: groups of alternatives; a target picks a few groups and one alternative in each.
_ROM_UPPER: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R"), ("browOuterUp_L",), ("browOuterUp_R",),
     ("browInnerUp_L", "browInnerUp_R")),
    (("browDown_L", "browDown_R"), ("browDown_L",), ("browDown_R",)),
    (("eyeWide_L", "eyeWide_R"), ("eyeSquint_L", "eyeSquint_R"), ("cheekSquint_L", "cheekSquint_R")),
    (("noseSneer_L", "noseSneer_R"), ("noseSneer_L",), ("noseSneer_R",)),
)  # fmt: skip
_ROM_LOWER: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("jawOpen",), ("jawLeft",), ("jawRight",), ("jawForward",)),
    (("mouthPucker",), ("mouthFunnel",), ("mouthRollLower", "mouthRollUpper"), ("mouthPress_L", "mouthPress_R"),
     ("mouthShrugLower", "mouthShrugUpper")),
    (("mouthSmile_L", "mouthSmile_R"), ("mouthSmile_L",), ("mouthSmile_R",), ("mouthFrown_L", "mouthFrown_R"),
     ("mouthStretch_L", "mouthStretch_R"), ("mouthDimple_L", "mouthDimple_R")),
    (("mouthLeft",), ("mouthRight",)),
    (("mouthUpperUp_L", "mouthUpperUp_R"), ("mouthLowerDown_L", "mouthLowerDown_R")),
    (("cheekPuff_L", "cheekPuff_R"),),
)  # fmt: skip
# Subtle shapes a subject may add unprompted, and those of a resting face.
_SPILL = (
    "browInnerUp_L", "browInnerUp_R", "browDown_L", "browDown_R", "eyeSquint_L", "eyeSquint_R",
    "cheekSquint_L", "cheekSquint_R", "noseSneer_L", "noseSneer_R", "mouthDimple_L", "mouthDimple_R",
    "mouthPress_L", "mouthPress_R", "mouthShrugLower", "mouthShrugUpper", "mouthFrown_L", "mouthFrown_R",
)  # fmt: skip
_RESTING = ("browDown", "browInnerUp", "eyeSquint", "mouthFrown", "mouthPress", "mouthRollLower", "cheekSquint")
_VOWELS = frozenset({"AA", "EH", "IH", "OH", "OO"})
_LID_SHAPES = ("eyeBlink", "eyeWide", "eyeSquint")

_BLINK = np.array([expression_index("eyeBlink_L"), expression_index("eyeBlink_R")])
_EYE_LOOK = np.array([expression_index(n) for n in EYE_LOOK_NAMES])
_NOISY = np.array([i for i, n in enumerate(EXPRESSION_NAMES) if not n.startswith(("eyeLook", "eyeBlink"))])
_SIDE = np.array([1.0 if n.endswith("_L") else -1.0 if n.endswith("_R") else 0.0 for n in EXPRESSION_NAMES])
_VISEME_TARGETS = np.stack([expression_vector(VISEME_SHAPES[v]) for v in VISEME_NAMES]).astype(np.float64)
_VISEME_LOG_DOMINANCE = np.log([VISEME_DOMINANCE[v] for v in VISEME_NAMES])
_GAZE_GRID = np.array([(yaw, pitch) for pitch in (18.0, 0.0, -18.0) for yaw in (-25.0, 0.0, 25.0)])


@dataclass(frozen=True)
class Performance:
    """A subject's ground truth for every frame of a script (N = script.num_frames).

    expression: (N, 53) float32 in [0, 1], canonical order (eyeLook* derived from gaze);
    gaze: (N, 2, 2) float32 deg, eye 0 = left, (yaw, pitch) in the head frame (`egoface.face.gaze`);
    blink: (N,) float32 in [0, 1], the natural (spontaneous) blink signal, already folded into eyeBlink_L/R;
    segment_index: (N,) int32, index into `script.segments`;
    viseme: (N,) int16, index into `VISEME_NAMES` of the dominant viseme in speech segments, -1 elsewhere.
    """

    expression: np.ndarray
    gaze: np.ndarray
    blink: np.ndarray
    segment_index: np.ndarray
    viseme: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])


@dataclass(frozen=True)
class _Performer:
    """How one subject performs (sampled once per subject_seed)."""

    gain: np.ndarray  # (53,) amplitude of prompted shapes
    side: np.ndarray  # (53,) left/right gain, 1 +- asymmetry on paired shapes
    coactivation: np.ndarray  # (53, 53) C[target, source]
    resting: np.ndarray  # (53,) resting face
    noise: float  # std of the smooth expression noise
    speech_gain: float
    coarticulation: float  # Gaussian width of a viseme, as a fraction of its duration
    speech_rate_hz: float
    blink_rate_per_min: float
    blink_duration_s: float
    vergence_deg: float
    gaze_center: np.ndarray  # (2,) deg, the subject's habitual straight-ahead


def animate(script: CaptureScript, subject_seed: int, *, variation: float = 1.0) -> Performance:
    """The true per-frame expression, gaze and blinks of one subject performing `script`.

    subject_seed: a non-negative integer; the result is a deterministic function of (script, subject_seed).
    variation: how far the subject departs from the art priors and the scripted timing (1 = the ranges in the
    module docstring, 0 = an ideal performer who hits every art prior exactly, with no co-activation, asymmetry,
    noise or resting activity; up to 2). Blinks, gaze and viseme timing keep their natural variability.
    """
    if not isinstance(script, CaptureScript):
        raise TypeError(f"script must be a CaptureScript (see build_script), got {type(script).__name__}")
    if isinstance(subject_seed, bool) or not isinstance(subject_seed, int | np.integer) or subject_seed < 0:
        raise ValueError(f"subject_seed must be a non-negative integer, got {subject_seed!r}")
    if not 0.0 <= variation <= 2.0:
        raise ValueError(f"variation must be in [0, 2], got {variation}")
    seed = int(subject_seed)
    performer = _sample_performer(np.random.default_rng([seed, 0]), variation)
    times = script.frame_times()  # (N,) s
    n = times.shape[0]

    expression = np.tile(performer.resting, (n, 1))  # (N, 53)
    viseme = np.full(n, -1, dtype=np.int16)
    for segment in script.segments:
        frames = script.frames_of(segment)
        rows = slice(frames.start, frames.stop)
        rng = np.random.default_rng([seed, 1, zlib.crc32(segment.name.encode())])
        if segment.kind == "expression":
            peak = _expression_peak(segment, performer, rng, variation)
            expression[rows] += _envelope(times[rows], segment, rng, variation)[:, None] * peak[None, :]
        elif segment.kind == "speech":
            curves, viseme[rows] = _speech(times[rows], segment, performer, rng, variation)
            expression[rows] += _shape(curves, performer)
        elif segment.kind == "rom":
            expression[rows] += _shape(_rom(times[rows], segment, performer, rng), performer)
    noise = _smooth_noise(np.random.default_rng([seed, 4]), times, 0.3, NUM_EXPRESSIONS)
    expression[:, _NOISY] += performer.noise * noise[:, _NOISY]
    np.clip(expression, 0.0, 1.0, out=expression)

    blink = _blinks(script, performer, np.random.default_rng([seed, 2]))
    expression[:, _BLINK] = np.maximum(expression[:, _BLINK], blink[:, None])
    gaze = _gaze(script, performer, np.random.default_rng([seed, 3]), variation)
    expression[:, _EYE_LOOK] = eye_look_from_gaze(torch.from_numpy(gaze)).numpy()
    return Performance(
        expression=expression.astype(np.float32),
        gaze=gaze.astype(np.float32),
        blink=blink.astype(np.float32),
        segment_index=script.segment_index(),
        viseme=viseme,
    )


def _sample_performer(rng: np.random.Generator, variation: float) -> _Performer:
    v = variation
    gain = np.clip(1.0 - v * rng.uniform(0.0, 0.25, NUM_EXPRESSIONS), 0.3, 1.0)
    asymmetry = np.clip(rng.normal(0.0, 0.06), -0.15, 0.15) + rng.normal(0.0, 0.03, NUM_EXPRESSIONS)
    coactivation = np.zeros((NUM_EXPRESSIONS, NUM_EXPRESSIONS))
    for source, target, fraction in COACTIVATION:
        strength = v * fraction * rng.uniform(0.5, 1.5)
        for side in ("_L", "_R") if "*" in source else ("",):
            coactivation[
                expression_index(target.replace("_*", side)), expression_index(source.replace("_*", side))
            ] += strength
    resting = np.zeros(NUM_EXPRESSIONS)
    for stem in rng.choice(_RESTING, size=3, replace=False):
        level = rng.uniform(0.01, 0.06)
        for name in (f"{stem}_L", f"{stem}_R") if f"{stem}_L" in EXPRESSION_NAMES else (stem,):
            resting[expression_index(name)] = v * level * rng.uniform(0.8, 1.0)
    return _Performer(
        gain=gain,
        side=1.0 + v * asymmetry * _SIDE,
        coactivation=coactivation,
        resting=resting,
        noise=v * rng.uniform(0.006, 0.012),
        speech_gain=1.0 + v * (rng.uniform(0.75, 1.05) - 1.0),
        coarticulation=rng.uniform(0.45, 0.65),
        speech_rate_hz=SPEECH_RATE_HZ * (1.0 + min(v, 1.0) * rng.uniform(-0.1, 0.1)),
        blink_rate_per_min=rng.uniform(15.0, 20.0),
        blink_duration_s=rng.uniform(0.18, 0.26),
        vergence_deg=rng.uniform(1.5, 3.5),
        gaze_center=v * np.array([rng.normal(0.0, 2.0), rng.normal(-2.0, 2.0)]),
    )


def _shape(curves: np.ndarray, performer: _Performer) -> np.ndarray:
    """curves: (..., 53) prompted activations -> with the subject's gains, co-activation and asymmetry."""
    curves = curves * performer.gain
    return (curves + curves @ performer.coactivation.T) * performer.side


def _expression_peak(segment: Segment, performer: _Performer, rng: np.random.Generator, v: float) -> np.ndarray:
    """(53,) the subject's true expression at the peak of an expression segment (before resting face and noise)."""
    prior = art_prior_vector(segment).astype(np.float64)
    peak = prior * (1.0 - v * rng.uniform(0.0, 0.1, NUM_EXPRESSIONS))
    spill = rng.choice(len(_SPILL), size=rng.integers(0, 3), replace=False)
    for i in spill:
        peak[expression_index(_SPILL[i])] += v * rng.uniform(0.02, 0.1)
    peak = _shape(peak, performer) * (1.0 + v * rng.normal(0.0, 0.03, NUM_EXPRESSIONS) * _SIDE)
    closed = prior[_BLINK] >= 0.9  # closing an eye is an end state, not a degree
    peak[_BLINK[closed]] = 1.0 - v * rng.uniform(0.0, 0.05, int(closed.sum()))
    return np.clip(peak, 0.0, 1.0)


def _envelope(times: np.ndarray, segment: Segment, rng: np.random.Generator, v: float) -> np.ndarray:
    """(F,) in [0, 1]: neutral -> rise -> hold (at most 3% wavering) -> return to neutral, for one segment."""
    assert segment.phases is not None and segment.hold_s is not None  # expression segments have phases
    phases, (hold_start, hold_end) = segment.phases, segment.hold_s
    vt = min(v, 1.0)
    rise_end = hold_start - vt * rng.uniform(0.0, 0.15) * phases.peak_s
    rise_start = rise_end - phases.peak_s * (1.0 - vt * rng.uniform(0.0, 0.25))
    fall_start = hold_end + vt * rng.uniform(0.0, 0.1) * phases.release_s
    fall_end = fall_start + phases.release_s * (1.0 - vt * rng.uniform(0.15, 0.4))
    period = rng.uniform(1.5, 3.0)
    waver = 1.0 - 0.03 * vt * 0.5 * (1.0 - np.cos(2 * np.pi * (times - hold_start) / period))
    return _ramp(times, rise_start, rise_end) * (1.0 - _ramp(times, fall_start, fall_end)) * waver


def _speech(
    times: np.ndarray, segment: Segment, performer: _Performer, rng: np.random.Generator, v: float
) -> tuple[np.ndarray, np.ndarray]:
    """Co-articulated viseme curves of a speech segment: ((F, 53) activations, (F,) dominant viseme index)."""
    ids = np.array([viseme_index(name) for name in segment.visemes])  # (K,)
    weight = np.array([1.5 if name == "SIL" else 1.3 if name in _VOWELS else 0.8 for name in segment.visemes])
    durations = weight * (1.0 + min(v, 1.0) * rng.uniform(-0.25, 0.25, ids.shape[0]))
    speaking_s = min(ids.shape[0] / performer.speech_rate_hz, 0.95 * segment.duration_s)
    durations *= speaking_s / durations.sum()
    start = segment.start_s + (segment.duration_s - speaking_s) * rng.uniform(0.3, 0.7)
    centres = start + np.cumsum(durations) - 0.5 * durations  # (K,) s
    # One kernel width for all sounds of the segment: with equal widths the log-ratio of two neighbours is linear in
    # time, so the blend passes smoothly from each sound to the next and, far from every centre, the nearest wins.
    sigma = performer.coarticulation * speaking_s / ids.shape[0]
    logits = _VISEME_LOG_DOMINANCE[ids][None, :] - 0.5 * ((times[:, None] - centres[None, :]) / sigma) ** 2
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))  # (F, K); the nearest sounds dominate
    weights /= weights.sum(axis=1, keepdims=True)
    curves = performer.speech_gain * (weights @ _VISEME_TARGETS[ids])  # (F, 53)
    return curves, ids[weights.argmax(axis=1)].astype(np.int16)


def _rom(times: np.ndarray, segment: Segment, performer: _Performer, rng: np.random.Generator) -> np.ndarray:
    """(F, 53) a smooth random tour of upper- and lower-face shapes, from neutral back to neutral."""
    knots = [segment.start_s]
    while knots[-1] + 2.0 < segment.end_s:
        knots.append(knots[-1] + rng.uniform(0.8, 1.6))
    knots.append(segment.end_s)
    targets = np.zeros((len(knots), NUM_EXPRESSIONS))
    for k in range(1, len(knots) - 1):
        for groups, count in ((_ROM_UPPER, rng.integers(1, 3)), (_ROM_LOWER, rng.integers(1, 4))):
            for g in rng.choice(len(groups), size=count, replace=False):
                alternative = groups[g][rng.integers(len(groups[g]))]
                value = rng.uniform(0.3, 1.0)
                for name in alternative:
                    targets[k, expression_index(name)] = value
    return _interpolate(times, np.asarray(knots), targets)


def _gaze(script: CaptureScript, performer: _Performer, rng: np.random.Generator, v: float) -> np.ndarray:
    """(N, 2, 2) deg: fixations joined by saccades, sweeps and target grids in gaze segments, vergence, drift."""
    times = script.frame_times()
    onsets: list[float] = []
    targets: list[np.ndarray] = [performer.gaze_center]
    sweep = np.zeros((times.shape[0], 2))
    for segment in script.segments:
        if segment.gaze_pattern is None:  # natural looking around: fixations of 0.25-3 s near straight ahead
            t = segment.start_s + rng.uniform(0.0, 0.5)
            while t < segment.end_s:
                offset = np.clip(rng.normal(0.0, (8.0, 5.0)), (-20.0, -15.0), (20.0, 15.0))
                onsets.append(t)
                targets.append(performer.gaze_center + offset)
                t += 0.25 + rng.gamma(2.0, 0.6)
        elif segment.gaze_pattern == "fixations":  # a 3x3 grid of targets in random order, 0.7-1.3 s each
            t = segment.start_s + 0.1
            order = rng.permutation(len(_GAZE_GRID))
            i = 0
            while t < segment.end_s:
                onsets.append(t)
                targets.append(_GAZE_GRID[order[i % len(order)]] + rng.normal(0.0, 1.5, 2))
                t += rng.uniform(0.7, 1.3)
                i += 1
        else:  # smooth pursuit of a target swinging through whole cycles around straight ahead
            onsets.append(segment.start_s)
            targets.append(performer.gaze_center.copy())
            frames = script.frames_of(segment)
            local = times[frames.start : frames.stop] - segment.start_s
            cycles = max(1, round(segment.duration_s * rng.uniform(0.15, 0.25)))
            axis, amplitude = (0, rng.uniform(20.0, 28.0)) if segment.gaze_pattern == "sweep_horizontal" else (1, 18.0)
            sweep[frames.start : frames.stop, axis] = amplitude * np.sin(
                2 * np.pi * cycles * local / segment.duration_s
            )
    gaze = _saccades(times, np.asarray(onsets), np.stack(targets)) + sweep  # (N, 2) yaw, pitch
    both = np.repeat(gaze[:, None, :], 2, axis=1)  # (N, 2 eyes, 2)
    both[:, 0, 0] -= 0.5 * performer.vergence_deg  # the left eye turns toward -X (the nose), the right toward +X
    both[:, 1, 0] += 0.5 * performer.vergence_deg
    both += 0.3 * max(v, 0.3) * _smooth_noise(rng, times, 0.4, 4).reshape(-1, 2, 2)
    return np.clip(both, (-40.0, -35.0), (40.0, 35.0))


def _saccades(times: np.ndarray, onsets: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, 2): gaze at `times` for saccades starting at `onsets` (M,) from targets[i] to targets[i + 1] (M+1, 2).

    Minimum-jerk profile of duration 21 ms + 2.2 ms/deg (main sequence), so the peak velocity is 1.875 A / D.
    """
    if onsets.size == 0:
        return np.repeat(targets[:1], times.shape[0], axis=0)
    order = np.argsort(onsets, kind="stable")
    onsets, targets = onsets[order], np.concatenate([targets[:1], targets[1:][order]])
    amplitude = np.linalg.norm(np.diff(targets, axis=0), axis=1)  # (M,) deg
    duration = 0.021 + 0.0022 * amplitude
    k = np.searchsorted(onsets, times, side="right") - 1  # (N,) the last saccade started, -1 before the first
    started = k >= 0
    kk = np.maximum(k, 0)
    progress = np.where(started, _smootherstep((times - onsets[kk]) / duration[kk]), 0.0)
    return targets[kk + started] * progress[:, None] + targets[np.where(started, kk, 0)] * (1 - progress[:, None])


def _blinks(script: CaptureScript, performer: _Performer, rng: np.random.Generator) -> np.ndarray:
    """(N,) spontaneous blinks (both eyes), none in segments whose art prior moves the lids."""
    times = script.frame_times()
    lids = [(s.start_s, s.end_s) for s in script.segments if any(name.startswith(_LID_SHAPES) for name in s.art_prior)]
    mean_interval = 60.0 / performer.blink_rate_per_min
    blink = np.zeros_like(times)
    t = rng.uniform(0.2, mean_interval)
    while t < script.duration_s:
        duration = float(np.clip(performer.blink_duration_s + rng.normal(0.0, 0.03), 0.15, 0.3))
        depth = rng.uniform(0.92, 1.0)
        if not any(t < end and t + duration > start for start, end in lids):
            closing = 0.35 * duration  # lids close fast and open more slowly
            i0, i1 = np.searchsorted(times, [t, t + duration])
            local = times[i0:i1] - t
            shape = np.where(
                local < closing,
                _smootherstep(local / closing),
                1.0 - _smootherstep((local - closing) / (duration - closing)),
            )
            blink[i0:i1] = np.maximum(blink[i0:i1], depth * shape)
        t += max(duration + 0.3, rng.gamma(3.0, mean_interval / 3.0))
    return blink


def _smootherstep(x: np.ndarray) -> np.ndarray:
    """C2 ease-in/out on [0, 1] (clamped outside); also the minimum-jerk position profile."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def _ramp(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 before `start`, 1 after `end`, smootherstep in between (a step if end <= start)."""
    return _smootherstep((times - start) / max(end - start, 1e-9))


def _interpolate(times: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(F, C): smootherstep interpolation of `values` (K, C) given at increasing `knots` (K,) s."""
    k = np.clip(np.searchsorted(knots, times, side="right") - 1, 0, len(knots) - 2)
    w = _smootherstep((times - knots[k]) / (knots[k + 1] - knots[k]))[:, None]
    return values[k] * (1.0 - w) + values[k + 1] * w


def _smooth_noise(rng: np.random.Generator, times: np.ndarray, interval_s: float, channels: int) -> np.ndarray:
    """(N, channels) smooth noise of about unit std: normal values every `interval_s`, eased between."""
    end = float(times[-1]) if times.size else 0.0
    knots = np.arange(0.0, end + 2 * interval_s, interval_s)
    return _interpolate(times, knots, rng.standard_normal((knots.shape[0], channels)))
