"""The capture script: a timed list of segments with art priors, closure flags and anchor candidates.

The script follows the papers' HMC capture sessions (Universal Sec. 5 "Data Collection", REFA Sec. 6.2):

- expression segments: the subject starts at neutral, moves to a prompted expression, holds it and returns to
  neutral. Each carries an **art prior**: the sparse set of expression coefficients an artist expects at the peak
  (REFA Sec. 6.2, Fig. 6); it is not the subject's true expression (see `egoface.capture.animation`);
- speech segments: sentences read aloud, stored as text and as a viseme sequence (`egoface.capture.visemes`);
- a free range-of-motion segment for the upper and lower face;
- gaze segments: horizontal and vertical sweeps and fixations on a grid of targets;
- a neutral segment, which serves the "neutral" anchor and REFA's Neutralness metric.

Segments tile the timeline: segment i+1 starts where segment i ends; frame k is at time k / fps seconds and belongs
to the segment whose [start_s, start_s + duration_s) holds that time. Universal App. A picks its calibration anchors
from 15 unambiguous candidates among these segments ("neutral", "maximal jaw dropping", "wide eyes", "closed eyes",
...): `CaptureScript.anchor_candidates()` names the segment of each, and `peak_frames` the frames to take.

`build_script("tiny" | "small" | "paper", fps)` makes the presets; `docs/capture_script.md` lists them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from egoface.capture.visemes import SPEECH_RATE_HZ, text_to_visemes, viseme_index
from egoface.face.names import expression_index, expression_vector

__all__ = [
    "ANCHOR_CANDIDATES",
    "EXPRESSION_PRIORS",
    "GAZE_PATTERNS",
    "MAX_PRIOR_SIZE",
    "PRESETS",
    "SEGMENT_KINDS",
    "CaptureScript",
    "Phases",
    "Segment",
    "art_prior_vector",
    "build_script",
    "peak_mask",
]

SEGMENT_KINDS = ("expression", "speech", "rom", "gaze", "neutral")
GAZE_PATTERNS = ("sweep_horizontal", "sweep_vertical", "fixations")
PRESETS = ("tiny", "small", "paper")
#: An art prior names at most this many shapes (REFA Fig. 6: art priors are sparse).
MAX_PRIOR_SIZE = 6
_TIME_TOLERANCE_S = 1e-6


def _both(stem: str, value: float) -> dict[str, float]:
    return {f"{stem}_L": value, f"{stem}_R": value}


@dataclass(frozen=True)
class _Expression:
    """A row of the expression library: the art prior at the peak and what the peak means for REFA's metrics."""

    prior: Mapping[str, float]
    eyes_closed: bool = False
    mouth_closed: bool = False
    anchor: str | None = None


# The 43 expression segments of the paper script (Universal Sec. 5: "43 segments of facial expressions or their
# combinations (e.g., jaw open max, jaw open slightly, cheek puff, brows lowered with widened eyes, ...)").
# eyes_closed: at least one eye is fully closed at the peak (the prior's eyeBlink_* say which: winks count, as in
# REFA's Eye Closure); mouth_closed: the lips touch at the peak (REFA's Mouth Closure).
_LIBRARY: dict[str, _Expression] = {
    # jaw
    "jaw_open_max": _Expression({"jawOpen": 1.0}, anchor="maximal_jaw_drop"),
    "jaw_open_half": _Expression({"jawOpen": 0.55}),
    "jaw_open_slight": _Expression({"jawOpen": 0.25}),
    "jaw_left": _Expression({"jawLeft": 0.8}, anchor="jaw_left"),
    "jaw_right": _Expression({"jawRight": 0.8}),
    "jaw_forward": _Expression({"jawForward": 0.8}),
    "jaw_open_lips_closed": _Expression({"jawOpen": 0.35, "mouthClose": 0.35}, mouth_closed=True),
    # lips
    "lips_pucker": _Expression({"mouthPucker": 1.0}, anchor="pucker"),
    "lips_funnel": _Expression({"mouthFunnel": 0.9, "jawOpen": 0.15}, anchor="funnel"),
    "lips_pressed": _Expression(_both("mouthPress", 0.9), mouth_closed=True, anchor="pressed_lips"),
    "lips_rolled_in": _Expression({"mouthRollLower": 0.9, "mouthRollUpper": 0.8}, mouth_closed=True),
    "lips_stretched": _Expression(_both("mouthStretch", 0.9), anchor="stretched_lips"),
    "mouth_left": _Expression({"mouthLeft": 0.9}, mouth_closed=True),
    "mouth_right": _Expression({"mouthRight": 0.9}, mouth_closed=True),
    "upper_lip_raised": _Expression(_both("mouthUpperUp", 0.8)),
    "lower_lip_down": _Expression(_both("mouthLowerDown", 0.8) | {"jawOpen": 0.1}),
    "chin_raised": _Expression({"mouthShrugLower": 0.8, "mouthShrugUpper": 0.3}, mouth_closed=True),
    "mouth_frown": _Expression(_both("mouthFrown", 0.9), mouth_closed=True),
    "dimples": _Expression(_both("mouthDimple", 0.8), mouth_closed=True),
    # smiles
    "smile_wide": _Expression(
        _both("mouthSmile", 1.0) | _both("cheekSquint", 0.5) | {"jawOpen": 0.15}, anchor="big_smile"
    ),
    "smile_closed": _Expression(_both("mouthSmile", 0.7), mouth_closed=True),
    "smile_left": _Expression({"mouthSmile_L": 0.8}, mouth_closed=True),
    "smile_right": _Expression({"mouthSmile_R": 0.8}, mouth_closed=True),
    # cheeks and nose
    "cheek_puff": _Expression(_both("cheekPuff", 0.9), mouth_closed=True, anchor="cheek_puff"),
    "nose_wrinkle": _Expression(_both("noseSneer", 0.9) | _both("cheekSquint", 0.3), mouth_closed=True),
    "sneer_left": _Expression({"noseSneer_L": 0.8, "mouthUpperUp_L": 0.5}),
    "sneer_right": _Expression({"noseSneer_R": 0.8, "mouthUpperUp_R": 0.5}),
    # brows
    "brows_raised": _Expression(
        _both("browInnerUp", 0.9) | _both("browOuterUp", 0.9), mouth_closed=True, anchor="raised_brows"
    ),
    "brows_inner_raised": _Expression(_both("browInnerUp", 0.9), mouth_closed=True),
    "brows_lowered": _Expression(_both("browDown", 0.9), mouth_closed=True, anchor="lowered_brows"),
    "brow_raised_left": _Expression({"browOuterUp_L": 0.8, "browInnerUp_L": 0.5}, mouth_closed=True),
    "brow_raised_right": _Expression({"browOuterUp_R": 0.8, "browInnerUp_R": 0.5}, mouth_closed=True),
    # eyes
    "eyes_wide": _Expression(_both("eyeWide", 1.0), mouth_closed=True, anchor="wide_eyes"),
    "eyes_closed": _Expression(_both("eyeBlink", 1.0), eyes_closed=True, mouth_closed=True, anchor="closed_eyes"),
    "eyes_closed_tight": _Expression(
        _both("eyeBlink", 1.0) | _both("eyeSquint", 0.7) | _both("cheekSquint", 0.4),
        eyes_closed=True,
        mouth_closed=True,
    ),
    "eyes_squint": _Expression(_both("eyeSquint", 0.8), mouth_closed=True),
    "wink_left": _Expression(
        {"eyeBlink_L": 1.0, "eyeSquint_L": 0.3, "cheekSquint_L": 0.3},
        eyes_closed=True,
        mouth_closed=True,
        anchor="left_wink",
    ),
    "wink_right": _Expression(
        {"eyeBlink_R": 1.0, "eyeSquint_R": 0.3, "cheekSquint_R": 0.3},
        eyes_closed=True,
        mouth_closed=True,
        anchor="right_wink",
    ),
    # combinations
    "brows_lowered_eyes_wide": _Expression(_both("browDown", 0.8) | _both("eyeWide", 0.8), mouth_closed=True),
    "surprise": _Expression({"jawOpen": 0.5} | _both("eyeWide", 0.8) | _both("browOuterUp", 0.8)),
    "anger": _Expression(
        _both("browDown", 0.8) | _both("noseSneer", 0.4) | _both("mouthPress", 0.5), mouth_closed=True
    ),
    "sadness": _Expression(
        _both("browInnerUp", 0.8) | _both("mouthFrown", 0.7) | {"mouthShrugLower": 0.4}, mouth_closed=True
    ),
    "laugh": _Expression({"jawOpen": 0.5} | _both("mouthSmile", 0.9) | _both("cheekSquint", 0.6)),
}

#: expression segment name -> art prior (canonical names, values in (0, 1]); the 43 of the paper script.
EXPRESSION_PRIORS: Mapping[str, Mapping[str, float]] = MappingProxyType(
    {name: MappingProxyType(dict(row.prior)) for name, row in _LIBRARY.items()}
)
#: The 15 anchor candidates of Universal App. A: anchor name -> the segment that serves it.
ANCHOR_CANDIDATES: Mapping[str, str] = MappingProxyType(
    {"neutral": "neutral"} | {row.anchor: name for name, row in _LIBRARY.items() if row.anchor is not None}
)

# Sentences read in the speech segments: 21 for the paper script (about 180 s at 10 visemes/s, Universal Sec. 5),
# short ones for the smaller presets. Written for this project; rich in lip-closing (m, b, p), lip-teeth (f, v)
# and rounded (o, u, w) sounds so that all visemes occur.
_PAPER_SENTENCES = (
    "My brother bought a blue map of the old harbour before the big storm came from the west.",
    "Five of the veterans waved from the ferry while a few boys played by the muddy river bank.",
    "Please put the paper bag of plums beside the bowl, then open the window for some fresh air.",
    "We watched the moon rise over the foggy valley and talked about the movies we had seen.",
    "Even a small puppy can pull a heavy rope if it has enough patience and a very good reason.",
    "The baker mixed butter, maple syrup and warm milk, and the whole shop smelled of cinnamon.",
    "Would you move those boxes of books to the back room before the movers arrive at noon?",
    "A violin played softly in the museum while people wandered between the marble columns.",
    "Bob thinks the purple van parked by the fountain belongs to the new music teacher.",
    "Of all the fruit on the farm, the deep red apples from the far orchard were the sweetest.",
    "Maybe we should buy a bigger umbrella before the monsoon season begins in the mountains.",
    "The pilot flew low over the bay so the passengers could photograph the famous white bridge.",
    "Show me how you fold the map, because mine always ends up crumpled in my pocket.",
    "Every morning the fisherman rowed his boat past the lighthouse and over the smooth water.",
    "Vivid blue flowers bloom beneath the old oak tree by the pond in the middle of May.",
    "Whoever wins the chess match will move on to play the champion from the southern province.",
    "Paul promised to bring the photographs of the wedding to our family dinner on Sunday.",
    "Soft wool mittens keep the cold wind off your fingers when you walk home through the snow.",
    "The mayor opened the meeting with a joke about the pothole in front of the post office.",
    "We might go for a swim at the beach, but only if the waves are calm and the sun is warm.",
    "Before bed, my mother used to hum a simple melody that her own mother had taught her.",
)
_SHORT_SENTENCES = (
    "Bob bought a blue map.",
    "Five wolves move over the hill.",
    "Please pass me the warm bread.",
    "Who wants soup for lunch?",
)
_TINY_SENTENCE = "Mom bought pie."


@dataclass(frozen=True)
class Phases:
    """Durations (s) of the four phases of an expression (or neutral) segment, in order; they sum to its duration.

    onset_s: the lead-in at neutral (the prompt is shown); peak_s: the rise from neutral to the peak; hold_s: the
    hold at the peak (the "peak frames" of the segment); release_s: the return to neutral, reached at the
    segment's end. A neutral segment has peak_s = 0 and its hold is the stretch used as the neutral anchor.
    """

    onset_s: float
    peak_s: float
    hold_s: float
    release_s: float

    def __post_init__(self) -> None:
        values = self.as_tuple()
        if not all(math.isfinite(v) and v >= 0.0 for v in values):
            raise ValueError(f"Phases must be finite and non-negative, got {values}")
        if self.hold_s <= 0.0:
            raise ValueError(f"Phases.hold_s must be positive (it holds the peak frames), got {self.hold_s}")

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(onset_s, peak_s, hold_s, release_s)."""
        return (self.onset_s, self.peak_s, self.hold_s, self.release_s)

    @property
    def total_s(self) -> float:
        return sum(self.as_tuple())


@dataclass(frozen=True)
class Segment:
    """One segment of the capture script. Times in seconds from the start of the recording.

    name: unique in its script (`jaw_open_max`, `speech_03`, ...); kind: one of `SEGMENT_KINDS`;
    phases: required for "expression" and "neutral" segments, None otherwise;
    art_prior: canonical expression name -> expected value at the peak, in (0, 1], at most `MAX_PRIOR_SIZE`
    entries, no eye-following shapes (they come from gaze); non-empty exactly for expression segments;
    anchor: the Universal App. A anchor candidate this segment serves, or None;
    eyes_closed / mouth_closed: the peak has an eye fully closed / the lips touching (REFA's closure metrics);
    text / visemes: what a speech segment reads and its viseme sequence (`egoface.capture.visemes`);
    gaze_pattern: one of `GAZE_PATTERNS` for gaze segments.
    """

    name: str
    kind: str
    start_s: float
    duration_s: float
    phases: Phases | None = None
    art_prior: Mapping[str, float] = field(default_factory=dict)
    anchor: str | None = None
    eyes_closed: bool = False
    mouth_closed: bool = False
    text: str | None = None
    visemes: tuple[str, ...] = ()
    gaze_pattern: str | None = None

    def __post_init__(self) -> None:
        where = f"segment {self.name!r}"
        if not self.name:
            raise ValueError("a segment needs a non-empty name")
        if self.kind not in SEGMENT_KINDS:
            raise ValueError(f"{where}: kind must be one of {SEGMENT_KINDS}, got {self.kind!r}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0.0):
            raise ValueError(f"{where}: start_s must be finite and >= 0, got {self.start_s}")
        if not (math.isfinite(self.duration_s) and self.duration_s > 0.0):
            raise ValueError(f"{where}: duration_s must be finite and > 0, got {self.duration_s}")
        self._check_phases(where)
        prior = self._checked_prior(where)
        object.__setattr__(self, "art_prior", MappingProxyType(prior))
        if self.eyes_closed and max(prior.get("eyeBlink_L", 0.0), prior.get("eyeBlink_R", 0.0)) < 0.9:
            raise ValueError(f"{where}: eyes_closed needs an eyeBlink_L/R >= 0.9 in the art prior, got {prior}")
        if self.kind == "speech":
            if not self.text or not self.visemes:
                raise ValueError(f"{where}: a speech segment needs text and visemes")
            for viseme in self.visemes:
                viseme_index(viseme)
        elif self.text is not None or self.visemes:
            raise ValueError(f"{where}: only speech segments have text and visemes")
        if (self.kind == "gaze") != (self.gaze_pattern is not None):
            raise ValueError(f"{where}: gaze segments (and only they) need a gaze_pattern, got {self.gaze_pattern!r}")
        if self.gaze_pattern is not None and self.gaze_pattern not in GAZE_PATTERNS:
            raise ValueError(f"{where}: gaze_pattern must be one of {GAZE_PATTERNS}, got {self.gaze_pattern!r}")

    def _check_phases(self, where: str) -> None:
        needs_phases = self.kind in ("expression", "neutral")
        if needs_phases != (self.phases is not None):
            raise ValueError(f"{where}: expression and neutral segments (and only they) have phases, kind={self.kind}")
        if self.phases is not None and abs(self.phases.total_s - self.duration_s) > _TIME_TOLERANCE_S:
            raise ValueError(
                f"{where}: phases {self.phases.as_tuple()} sum to {self.phases.total_s} s, "
                f"expected the duration {self.duration_s} s"
            )

    def _checked_prior(self, where: str) -> dict[str, float]:
        prior = {str(k): float(v) for k, v in self.art_prior.items()}
        for name, value in prior.items():
            expression_index(name)
            if name.startswith("eyeLook"):
                raise ValueError(f"{where}: art priors cannot name eye-following shapes (driven by gaze), got {name}")
            if not (math.isfinite(value) and 0.0 < value <= 1.0):
                raise ValueError(f"{where}: art prior {name}={value} must be in (0, 1]")
        if len(prior) > MAX_PRIOR_SIZE:
            raise ValueError(f"{where}: an art prior is sparse (<= {MAX_PRIOR_SIZE} shapes), got {len(prior)}")
        if (self.kind == "expression") != bool(prior):
            raise ValueError(f"{where}: expression segments (and only they) have an art prior, kind={self.kind}")
        return dict(sorted(prior.items(), key=lambda item: expression_index(item[0])))

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def hold_s(self) -> tuple[float, float] | None:
        """(start, end) in seconds of the hold phase, or None for segments without phases."""
        if self.phases is None:
            return None
        start = self.start_s + self.phases.onset_s + self.phases.peak_s
        return (start, start + self.phases.hold_s)


@dataclass(frozen=True)
class CaptureScript:
    """A timed capture script: `segments` tile [0, duration_s); frames are sampled at `fps` (frame k at k / fps s).

    Every expression and neutral segment has at least one frame in its hold phase (checked here).
    """

    segments: tuple[Segment, ...]
    fps: float
    duration_s: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if not self.segments:
            raise ValueError("a capture script needs at least one segment")
        names = [s.name for s in self.segments]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"segment names must be unique; repeated: {duplicates}")
        expected_start = 0.0
        for segment in self.segments:
            if abs(segment.start_s - expected_start) > _TIME_TOLERANCE_S:
                raise ValueError(
                    f"segments must tile the timeline: {segment.name!r} starts at {segment.start_s} s, "
                    f"expected {expected_start} s"
                )
            expected_start = segment.end_s
        if abs(expected_start - self.duration_s) > _TIME_TOLERANCE_S:
            raise ValueError(f"duration_s={self.duration_s} but the segments end at {expected_start} s")
        for segment in self.segments:
            if segment.phases is not None and len(self.peak_frames(segment.name)) == 0:
                raise ValueError(f"segment {segment.name!r}: its hold phase holds no frame at {self.fps} fps")

    @property
    def num_frames(self) -> int:
        """N, the number of frames (those at times k / fps < duration_s)."""
        return self._frame_at(self.duration_s)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.segments)

    def frame_times(self) -> np.ndarray:
        """(N,) float64 seconds."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def segment(self, name: str) -> Segment:
        """The segment called `name`; unknown names raise with the valid ones."""
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise KeyError(f"no segment {name!r} in this script; segments are: {', '.join(self.names)}")

    def frames_of(self, segment: Segment | str) -> range:
        """Frame indices of a segment (by object or name): those with start_s <= k / fps < end_s."""
        seg = self.segment(segment if isinstance(segment, str) else segment.name)
        return range(self._frame_at(seg.start_s), self._frame_at(seg.end_s))

    def peak_frames(self, segment_name: str) -> range:
        """Frame indices of the hold phase of an expression or neutral segment (the frames to take as its peak)."""
        seg = self.segment(segment_name)
        if seg.hold_s is None:
            raise ValueError(f"segment {segment_name!r} is a {seg.kind} segment and has no peak")
        start, end = seg.hold_s
        return range(self._frame_at(start), self._frame_at(end))

    def segment_index(self) -> np.ndarray:
        """(N,) int32: the index in `segments` of the segment each frame belongs to."""
        index = np.empty(self.num_frames, dtype=np.int32)
        for i, segment in enumerate(self.segments):
            frames = self.frames_of(segment)
            index[frames.start : frames.stop] = i
        return index

    def anchor_candidates(self) -> dict[str, str]:
        """Anchor name (Universal App. A candidates) -> segment name, for the candidates this script contains."""
        return {s.anchor: s.name for s in self.segments if s.anchor is not None}

    def segment_table(self) -> list[dict[str, Any]]:
        """The script as a JSON-able list of dicts (one per segment), stored with every recording.

        Keys: index, name, kind, start_s, duration_s, start_frame, stop_frame, phases ({onset_s, peak_s, hold_s,
        release_s} or None), peak_start_frame / peak_stop_frame (the hold frames, or None), art_prior, anchor,
        eyes_closed, mouth_closed, text, visemes, gaze_pattern. Frame ranges are half-open.
        """
        rows = []
        for i, s in enumerate(self.segments):
            frames = self.frames_of(s)
            peak = self.peak_frames(s.name) if s.phases is not None else None
            rows.append(
                {
                    "index": i,
                    "name": s.name,
                    "kind": s.kind,
                    "start_s": s.start_s,
                    "duration_s": s.duration_s,
                    "start_frame": frames.start,
                    "stop_frame": frames.stop,
                    "phases": None
                    if s.phases is None
                    else dict(zip(("onset_s", "peak_s", "hold_s", "release_s"), s.phases.as_tuple(), strict=True)),
                    "peak_start_frame": None if peak is None else peak.start,
                    "peak_stop_frame": None if peak is None else peak.stop,
                    "art_prior": dict(s.art_prior),
                    "anchor": s.anchor,
                    "eyes_closed": s.eyes_closed,
                    "mouth_closed": s.mouth_closed,
                    "text": s.text,
                    "visemes": list(s.visemes),
                    "gaze_pattern": s.gaze_pattern,
                }
            )
        return rows

    @classmethod
    def from_segment_table(cls, rows: list[dict[str, Any]], fps: float) -> CaptureScript:
        """Rebuild a script from `segment_table()` rows (e.g. read back from a recording); derived keys are ignored."""
        segments = []
        for row in rows:
            phases = row.get("phases")
            segments.append(
                Segment(
                    name=row["name"],
                    kind=row["kind"],
                    start_s=float(row["start_s"]),
                    duration_s=float(row["duration_s"]),
                    phases=None if phases is None else Phases(**phases),
                    art_prior=row.get("art_prior") or {},
                    anchor=row.get("anchor"),
                    eyes_closed=bool(row.get("eyes_closed", False)),
                    mouth_closed=bool(row.get("mouth_closed", False)),
                    text=row.get("text"),
                    visemes=tuple(row.get("visemes") or ()),
                    gaze_pattern=row.get("gaze_pattern"),
                )
            )
        duration = segments[-1].end_s if segments else 0.0
        return cls(tuple(segments), fps=float(fps), duration_s=duration)

    def _frame_at(self, time_s: float) -> int:
        """Index of the first frame at or after `time_s`."""
        return max(0, math.ceil(time_s * self.fps - 1e-6))


def art_prior_vector(segment: Segment) -> np.ndarray:
    """(53,) float32: the segment's art prior as an expression vector (zeros where the prior is silent)."""
    return expression_vector(segment.art_prior)


def peak_mask(script: CaptureScript) -> np.ndarray:
    """(N,) bool: True on the frames in the hold phase of the expression segments (where art priors apply)."""
    mask = np.zeros(script.num_frames, dtype=bool)
    for segment in script.segments:
        if segment.kind == "expression":
            frames = script.peak_frames(segment.name)
            mask[frames.start : frames.stop] = True
    return mask


@dataclass(frozen=True)
class _Preset:
    neutral: Phases
    expression: Phases
    expressions: tuple[str, ...]
    sentences: tuple[str, ...]
    speech_margin_s: float  # rest before and after each sentence
    rom_s: float
    gaze_s: float  # duration of each gaze segment (0: none)


_SMALL_EXPRESSIONS = tuple(n for n in _LIBRARY if _LIBRARY[n].anchor is not None) + ("jaw_open_slight", "smile_closed")
_PRESET_SPECS = {
    "tiny": _Preset(
        neutral=Phases(0.1, 0.0, 0.2, 0.1),
        expression=Phases(0.1, 0.15, 0.2, 0.1),
        expressions=("jaw_open_max", "eyes_closed", "wink_left", "smile_wide"),
        sentences=(_TINY_SENTENCE,),
        speech_margin_s=0.0,
        rom_s=0.0,
        gaze_s=0.0,
    ),
    "small": _Preset(
        neutral=Phases(0.5, 0.0, 2.0, 0.5),
        expression=Phases(0.5, 0.5, 1.0, 0.5),
        expressions=_SMALL_EXPRESSIONS,
        sentences=_SHORT_SENTENCES,
        speech_margin_s=0.3,
        rom_s=6.0,
        gaze_s=3.0,
    ),
    "paper": _Preset(  # Universal Sec. 5: 8 s per expression segment, 21 speech segments, a 40 s ROM segment
        neutral=Phases(1.0, 0.0, 8.0, 1.0),
        expression=Phases(1.5, 1.0, 4.0, 1.5),
        expressions=tuple(_LIBRARY),
        sentences=_PAPER_SENTENCES,
        speech_margin_s=1.25,
        rom_s=40.0,
        gaze_s=10.0,
    ),
}


def build_script(preset: str, fps: float) -> CaptureScript:
    """The capture script of a preset, sampled at `fps` frames per second.

    - "paper": neutral (10 s), the 43 expression segments (8 s each), 21 speech segments (about 180 s), a 40 s
      range-of-motion segment and three 10 s gaze segments: about 10 minutes, ~44k frames at 72 Hz;
    - "small": the same structure shortened: neutral, the 14 anchor-candidate expressions and 2 more (2.5 s each),
      4 short sentences, 6 s of ROM, three 3 s gaze segments: about 1 minute;
    - "tiny": neutral, jaw_open_max, eyes_closed, wink_left, smile_wide and one short sentence: under 4 s
      (about 110 frames at 30 fps), for tests.
    """
    if preset not in _PRESET_SPECS:
        raise ValueError(f"unknown capture script preset {preset!r}; choose one of {PRESETS}")
    if not (isinstance(fps, numbers.Real) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    spec = _PRESET_SPECS[preset]
    rows: list[dict[str, Any]] = [
        dict(name="neutral", kind="neutral", phases=spec.neutral, anchor="neutral", mouth_closed=True)
    ]
    for name in spec.expressions:
        entry = _LIBRARY[name]
        rows.append(
            dict(
                name=name,
                kind="expression",
                phases=spec.expression,
                art_prior=entry.prior,
                anchor=entry.anchor,
                eyes_closed=entry.eyes_closed,
                mouth_closed=entry.mouth_closed,
            )
        )
    for i, text in enumerate(spec.sentences):
        visemes = text_to_visemes(text)
        duration = round(len(visemes) / SPEECH_RATE_HZ + 2 * spec.speech_margin_s, 1)
        rows.append(dict(name=f"speech_{i:02d}", kind="speech", duration_s=duration, text=text, visemes=visemes))
    if spec.rom_s > 0:
        rows.append(dict(name="rom_free", kind="rom", duration_s=spec.rom_s))
    if spec.gaze_s > 0:
        for pattern in GAZE_PATTERNS:
            rows.append(dict(name=f"gaze_{pattern}", kind="gaze", duration_s=spec.gaze_s, gaze_pattern=pattern))
    segments = []
    start = 0.0
    for row in rows:
        phases = row.get("phases")
        duration = phases.total_s if phases is not None else row.pop("duration_s")
        segments.append(Segment(start_s=round(start, 6), duration_s=duration, **row))
        start += duration
    return CaptureScript(tuple(segments), fps=float(fps), duration_s=round(start, 6))
