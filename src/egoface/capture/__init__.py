"""egoface.capture — the capture script of the papers and its animation into per-frame ground truth.

`build_script(preset, fps)` gives a `CaptureScript` (segments with art priors, phases, anchors, closure flags);
`animate(script, subject_seed)` gives one subject's `Performance` (true expressions, gaze, blinks per frame).
"""

from egoface.capture.animation import Performance, animate
from egoface.capture.script import (
    ANCHOR_CANDIDATES,
    EXPRESSION_PRIORS,
    GAZE_PATTERNS,
    PRESETS,
    SEGMENT_KINDS,
    CaptureScript,
    Phases,
    Segment,
    art_prior_vector,
    build_script,
    peak_mask,
)
from egoface.capture.visemes import VISEME_NAMES, VISEME_SHAPES, text_to_visemes

__all__ = [
    "ANCHOR_CANDIDATES",
    "EXPRESSION_PRIORS",
    "GAZE_PATTERNS",
    "PRESETS",
    "SEGMENT_KINDS",
    "VISEME_NAMES",
    "VISEME_SHAPES",
    "CaptureScript",
    "Performance",
    "Phases",
    "Segment",
    "animate",
    "art_prior_vector",
    "build_script",
    "peak_mask",
    "text_to_visemes",
]
