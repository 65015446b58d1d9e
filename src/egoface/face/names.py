"""The canonical 53 expression names (ICT-FaceKit order) and helpers to build expression vectors."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "EXPRESSION_NAMES",
    "EYE_LOOK_NAMES",
    "FREE_EXPRESSION_NAMES",
    "NUM_EXPRESSIONS",
    "expression_index",
    "expression_vector",
    "mirror_name",
]

EXPRESSION_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
    "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R",
    "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)  # fmt: skip
NUM_EXPRESSIONS = len(EXPRESSION_NAMES)

#: The eye-following shapes; a function of per-eye gaze (`egoface.face.gaze`), never free model outputs.
EYE_LOOK_NAMES: tuple[str, ...] = tuple(n for n in EXPRESSION_NAMES if n.startswith("eyeLook"))
#: The 45 shapes a tracker predicts freely (all but the eye-following ones), in canonical order.
FREE_EXPRESSION_NAMES: tuple[str, ...] = tuple(n for n in EXPRESSION_NAMES if not n.startswith("eyeLook"))

_INDEX = {name: i for i, name in enumerate(EXPRESSION_NAMES)}
_MIRRORED_WORDS = (("Left", "Right"), ("_L", "_R"))


def expression_index(name: str) -> int:
    """Index of `name` in the 53-vector; unknown names raise with the list of valid ones."""
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(f"unknown expression name {name!r}; valid names are: {', '.join(EXPRESSION_NAMES)}") from None


def expression_vector(values: Mapping[str, float] | None = None) -> np.ndarray:
    """A (53,) float32 vector, zero except for the named entries. Values must be finite and in [0, 1]."""
    vector = np.zeros(NUM_EXPRESSIONS, dtype=np.float32)
    for name, value in (values or {}).items():
        if not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"expression {name!r} has value {value!r}; expected a number in [0, 1]")
        vector[expression_index(name)] = value
    return vector


def mirror_name(name: str) -> str:
    """The expression that mirrors `name` across the face's midline (`jawLeft` <-> `jawRight`, `_L` <-> `_R`).

    Unpaired shapes (`jawOpen`, `mouthPucker`, ...) mirror to themselves.
    """
    expression_index(name)
    for left, right in _MIRRORED_WORDS:
        if name.endswith(left):
            return name[: -len(left)] + right
        if name.endswith(right):
            return name[: -len(right)] + left
    return name
