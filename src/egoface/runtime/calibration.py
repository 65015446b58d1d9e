"""Per-user calibration: profiles on disk and the three calibration levels.

- Neutral re-centre: the user's neutral expression `n` (from the `neutral` anchor) is subtracted and the rest of
  each shape's range rescaled, `e' = clip((e - n) / (1 - n), 0, 1)`, so the user's resting face outputs zeros
  and a full expression still reaches 1.
- Running range-of-motion calibration per expression (REFA Sec. 7's RoM calibration of pseudo-labels, applied
  live): a histogram of every free shape's re-centred value over the user's confident frames gives a low
  percentile `lo` and a high percentile `hi`; once a shape has a span `hi - lo >= min_span` over at least
  `min_frames` frames, it is remapped `e'' = clip((e' - lo) / (hi - lo), 0, 1)`, so each user's comfortable range
  of motion fills [0, 1]. The histogram lives in the profile, so the calibration carries over to the next session.
- Anchor enrollment (Universal Sec. 4.3.2; six anchors, as its Fig. 9 uses, or the anchors of the model): the user
  is prompted for each anchor expression; the mean features and raw expression of the captured frames are stored
  in the profile (the `neutral` anchor drives the neutral re-centre). For an anchor-calibrated encoder the profile
  also stores its `AnchorMemory`: the output of the model's enrollment graph on the captured anchor frames, which
  the Tracker feeds to the model with every frame. It is keyed by the model's `egoface.model_id` (a hash of its
  config and weights), so one profile can hold memories for several models and a memory is never fed to a model
  it was not computed by.

The 8 `eyeLook*` shapes follow gaze and are left alone. A profile is one JSON file `<name>.json` in the profile
directory (`EGOFACE_PROFILES`, default `~/.config/egoface/profiles`), written atomically (temporary file, fsync,
rename), so a crash mid-write leaves the previous version intact. docs/runtime.md documents the format.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egoface.face.names import EXPRESSION_NAMES, FREE_EXPRESSION_NAMES

__all__ = [
    "ANCHOR_PROMPTS",
    "PROFILE_FORMAT",
    "Anchor",
    "AnchorMemory",
    "Calibrator",
    "Profile",
    "ProfileStore",
    "RomOptions",
    "default_profile_dir",
    "enroll",
    "mean_anchor",
    "rom_bounds",
]

#: Written format; format 1 (no anchor memories) is still read.
PROFILE_FORMAT = 2
_READ_FORMATS = (1, 2)
#: Anchor expressions of the guided enrollment (names as in the capture script's anchor candidates) -> prompt.
ANCHOR_PROMPTS: dict[str, str] = {
    "neutral": "Relax your face, lips together, look straight ahead.",
    "maximal_jaw_drop": "Open your mouth as wide as you can.",
    "big_smile": "Smile as widely as you can.",
    "pucker": "Pucker your lips as for a kiss.",
    "raised_brows": "Raise both eyebrows as high as you can.",
    "closed_eyes": "Close both eyes gently.",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FREE = np.array([name in FREE_EXPRESSION_NAMES for name in EXPRESSION_NAMES])


def default_profile_dir() -> Path:
    """`$EGOFACE_PROFILES`, else `~/.config/egoface/profiles`."""
    return Path(os.environ.get("EGOFACE_PROFILES", Path.home() / ".config" / "egoface" / "profiles"))


@dataclass(frozen=True)
class RomOptions:
    """Range-of-motion calibration: percentiles (0-100) of the low and high ends, the smallest span that is
    remapped, the frames needed first, and the histogram bins over [0, 1]."""

    enabled: bool = True
    low_percentile: float = 1.0
    high_percentile: float = 98.0
    min_span: float = 0.15
    min_frames: int = 300
    bins: int = 100


@dataclass
class Anchor:
    """One enrolled anchor expression: features (F,) and raw expression (53,) averaged over `frames` frames."""

    features: np.ndarray
    expression: np.ndarray
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.tolist(), "expression": self.expression.tolist(), "frames": self.frames}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anchor:
        return cls(
            np.asarray(data["features"], np.float32), np.asarray(data["expression"], np.float32), int(data["frames"])
        )


@dataclass(frozen=True)
class AnchorMemory:
    """A calibrated encoder's enrolled anchors for one user: `memory` (D,) float32, the enrollment graph's output
    (`egoface.runtime.export`), for the model `model_id` (its `egoface.model_id`; `model_name` for messages) with
    calibration `module` and `anchors` in order, from `frames` captured frames per anchor. Stored in the profile as
    base64 of the little-endian float32 bytes (the memory holds up to millions of values)."""

    model_id: str
    model_name: str
    module: str
    anchors: tuple[str, ...]
    memory: np.ndarray
    frames: int

    def to_dict(self) -> dict[str, Any]:
        data = np.ascontiguousarray(self.memory, "<f4").tobytes()
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "module": self.module,
            "anchors": list(self.anchors),
            "size": int(self.memory.size),
            "memory": base64.b64encode(data).decode("ascii"),
            "frames": self.frames,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnchorMemory:
        memory = np.frombuffer(base64.b64decode(data["memory"]), "<f4").astype(np.float32)
        if memory.size != int(data["size"]):
            raise ValueError(
                f"the anchor memory of model {data['model_id']} has {memory.size} values, not {data['size']}"
            )
        return cls(
            str(data["model_id"]),
            str(data["model_name"]),
            str(data["module"]),
            tuple(data["anchors"]),
            memory,
            int(data["frames"]),
        )


@dataclass
class Profile:
    """One user's calibration. neutral: (53,) raw expression at rest, or None; rom_histogram: (53, bins) counts of
    re-centred values over confident frames; anchors: name -> Anchor; model: the model the anchors' features come
    from (features of another model mean nothing); memories: model id -> the calibrated encoder's AnchorMemory."""

    name: str
    model: str = ""
    neutral: np.ndarray | None = None
    rom_histogram: np.ndarray = field(default_factory=lambda: np.zeros((len(EXPRESSION_NAMES), 100), np.int64))
    anchors: dict[str, Anchor] = field(default_factory=dict)
    memories: dict[str, AnchorMemory] = field(default_factory=dict)
    updated: float = 0.0

    def anchor_memory(self, model_id: str, model_name: str, size: int) -> np.ndarray:
        """The (size,) memory enrolled with the model `model_id`; raises naming `egoface enroll` when this profile
        was enrolled with other models only, or never."""
        enroll = f"run `egoface enroll --profile {self.name} --model {model_name or 'MODEL'} --source SOURCE`"
        stored = self.memories.get(model_id)
        if stored is None:
            others = ", ".join(f"{m.model_name} ({m.model_id})" for m in self.memories.values())
            where = f"it was enrolled with other models only: {others}" if others else "it has no enrolled anchors"
            raise ValueError(
                f"profile {self.name!r} has no anchor memory for model {model_name} ({model_id}); {where}. The "
                f"calibrated model needs its own: {enroll}"
            )
        if stored.memory.size != size:
            raise ValueError(
                f"profile {self.name!r} holds {stored.memory.size} anchor-memory values for model {model_id}; the "
                f"model reads {size}: {enroll} again"
            )
        return stored.memory

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PROFILE_FORMAT,
                "name": self.name,
                "model": self.model,
                "expression_names": list(EXPRESSION_NAMES),
                "neutral": None if self.neutral is None else self.neutral.tolist(),
                "rom_histogram": self.rom_histogram.tolist(),
                "anchors": {name: anchor.to_dict() for name, anchor in self.anchors.items()},
                "memories": {key: memory.to_dict() for key, memory in self.memories.items()},
                "updated": self.updated,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Profile:
        data = json.loads(text)
        if data.get("format") not in _READ_FORMATS or data.get("expression_names") != list(EXPRESSION_NAMES):
            raise ValueError(
                f"not an egoface profile of format {' or '.join(map(str, _READ_FORMATS))} with the 53 expression "
                f"names (format {data.get('format')!r})"
            )
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            neutral=None if data["neutral"] is None else np.asarray(data["neutral"], np.float32),
            rom_histogram=np.asarray(data["rom_histogram"], np.int64),
            anchors={name: Anchor.from_dict(value) for name, value in data["anchors"].items()},
            memories={key: AnchorMemory.from_dict(value) for key, value in data.get("memories", {}).items()},
            updated=float(data["updated"]),
        )


class ProfileStore:
    """Profiles as `<root>/<name>.json`; names are letters, digits, `_`, `-` and `.` (at most 64)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_profile_dir()

    def path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"profile name {name!r} must be 1-64 letters, digits, '_', '-' or '.', not starting '.'")
        return self.root / f"{name}.json"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json")) if self.root.is_dir() else []

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def load(self, name: str) -> Profile:
        path = self.path(name)
        if not path.is_file():
            known = ", ".join(self.names()) or "none"
            raise FileNotFoundError(f"no profile {name!r} in {self.root} (profiles: {known}); run `egoface enroll`")
        try:
            return Profile.from_json(path.read_text())
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"profile file {path} is damaged or not a profile: {error}") from None

    def load_or_new(self, name: str) -> Profile:
        return self.load(name) if self.exists(name) else Profile(name)

    def save(self, profile: Profile) -> Path:
        """Write atomically: a temporary file in the same directory, fsync, rename over the old one, fsync the
        directory. A crash at any point leaves either the old or the new file, complete."""
        path = self.path(profile.name)
        self.root.mkdir(parents=True, exist_ok=True)
        profile.updated = time.time()
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "w") as handle:
            handle.write(profile.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return path


class Calibrator:
    """Applies a profile's neutral re-centre and range-of-motion remap to raw expressions, and (with
    `update(expression)` on confident frames) grows the profile's range-of-motion histogram."""

    def __init__(self, profile: Profile | None, options: RomOptions) -> None:
        self.profile = profile
        self.options = options
        self._bounds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # lo, span, remapped mask
        self._since_bounds = 0

    def recentre(self, expression: np.ndarray) -> np.ndarray:
        """(53,) raw -> (53,) with the user's neutral subtracted and rescaled (free shapes only)."""
        neutral = None if self.profile is None else self.profile.neutral
        if neutral is None:
            return expression
        out = expression.copy()
        scaled = (expression - neutral) / np.maximum(1.0 - neutral, 1e-3)
        out[_FREE] = np.clip(scaled[_FREE], 0.0, 1.0)
        return out

    def __call__(self, expression: np.ndarray) -> np.ndarray:
        """(53,) raw -> (53,) calibrated."""
        centred = self.recentre(expression)
        if self.profile is None or not self.options.enabled:
            return centred
        lo, span, mask = self._current_bounds()
        out = centred.copy()
        out[mask] = np.clip((centred[mask] - lo[mask]) / span[mask], 0.0, 1.0)
        return out

    def update(self, expression: np.ndarray) -> None:
        """Count a confident frame's raw (53,) expression in the range-of-motion histogram."""
        if self.profile is None or not self.options.enabled:
            return
        histogram = self.profile.rom_histogram
        bins = histogram.shape[1]
        index = np.clip((self.recentre(expression) * bins).astype(np.int64), 0, bins - 1)
        histogram[np.arange(len(index)), index] += 1
        self._since_bounds += 1

    def _current_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Percentiles from the histogram, recomputed every 30 updates (they move slowly)."""
        if self._bounds is None or self._since_bounds >= 30:
            assert self.profile is not None
            self._bounds = rom_bounds(self.profile.rom_histogram, self.options)
            self._since_bounds = 0
        return self._bounds


def rom_bounds(histogram: np.ndarray, options: RomOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """histogram: (53, bins) -> (lo (53,), span (53,), remapped (53,) bool) in [0, 1] units; only free shapes with
    enough frames and span are remapped."""
    bins = histogram.shape[1]
    counts = histogram.sum(1)
    cumulative = np.cumsum(histogram, axis=1) / np.maximum(counts, 1)[:, None]  # (53, bins)
    lo = np.array([np.searchsorted(row, options.low_percentile / 100.0) for row in cumulative]) / bins
    hi = (np.array([np.searchsorted(row, options.high_percentile / 100.0) for row in cumulative]) + 1) / bins
    span = hi - lo
    mask = _FREE & (counts >= options.min_frames) & (span >= options.min_span)
    return lo.astype(np.float32), np.maximum(span, 1e-3).astype(np.float32), mask


def mean_anchor(samples: Iterable[tuple[np.ndarray, np.ndarray]]) -> Anchor:
    """(features (F,), raw expression (53,)) per captured frame -> their mean as an Anchor."""
    captured = list(samples)
    if not captured:
        raise ValueError("an anchor needs at least one captured frame")
    features, expressions = zip(*captured, strict=True)
    return Anchor(np.mean(features, 0).astype(np.float32), np.mean(expressions, 0).astype(np.float32), len(features))


def enroll(
    profile: Profile,
    capture: Callable[[str], list[tuple[np.ndarray, np.ndarray]]],
    anchors: Iterable[str] = tuple(ANCHOR_PROMPTS),
) -> Profile:
    """Guided enrollment: for each anchor name, `capture(name)` prompts the user and returns the captured frames'
    (features, raw expression); their means become the profile's anchors, and the `neutral` anchor's expression its
    neutral. Returns the updated profile (not yet saved)."""
    for name in anchors:
        if name not in ANCHOR_PROMPTS:
            raise KeyError(f"unknown anchor {name!r}; anchors are {', '.join(ANCHOR_PROMPTS)}")
        anchor = mean_anchor(capture(name))
        profile.anchors[name] = anchor
        if name == "neutral":
            profile.neutral = anchor.expression.copy()
    return profile
