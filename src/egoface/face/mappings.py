"""Mapping tables between the 53 canonical expressions and other standards: ARKit 52, MediaPipe Face Landmarker 52,
VRCFaceTracking Unified Expressions 88 and Meta Movement SDK v2 70 (names: `reference/expressions.md`).

Each mapping is data: a table `target name -> ((source name, weight), ...)`, turned once into a matrix `M`
(targets x sources) and applied by one function, `target = x @ M.T`, on numpy arrays or torch tensors of shape
`(..., sources)`. Targets with no source stay 0. Choices written down here:

- ARKit: `browInnerUp` and `cheekPuff` are the mean of their `_L/_R` halves; `tongueOut` is 0. `from_arkit` copies a
  merged shape to both halves, so `to_arkit(from_arkit(a)) == a` for every ARKit vector with `tongueOut = 0`, and
  `from_arkit(to_arkit(x)) == x` when the halves of the merged shapes are equal.
- MediaPipe: the ARKit names without `tongueOut`, after `_neutral`. MediaPipe's `_neutral` is a score for "no
  expression"; here it is `1 - max` of the other 51 scores (1 at rest, 0 when any shape is fully on).
- Unified Expressions (VRCFaceTracking): eye gaze and openness are per-eye data there, not shapes, so `eyeBlink`
  and `eyeLook*` have no target. `browDown` drives both `BrowLowerer` and `BrowPinch`, `mouthSmile` both
  `MouthCornerPull` and `MouthCornerSlant` (so Unified's simple `BrowDown` and `MouthSmile` equal the source);
  `mouthFunnel` / `mouthPucker` drive all four lip quarters; `mouthRollUpper/Lower` -> `LipSuckUpper/Lower*`;
  `mouthLeft/Right` -> `MouthUpperLeft/Right` and `MouthLowerLeft/Right`; `mouthShrugUpper/Lower` ->
  `MouthRaiserUpper/Lower`; `mouthClose` -> `MouthClosed`. Nasal, cheek-suck, jaw clench/backward/mandible,
  upper-deepen, corner-suck, tightener, tongue, palate, throat and neck shapes stay 0.
- Meta Movement v2: FACS-style names; `eyeBlink` -> `EyesClosed`, `eyeSquint` -> `LidTightener`, `eyeWide` ->
  `UpperLidRaiser`, `cheekSquint` -> `CheekRaiser`, `mouthSmile` -> `LipCornerPuller`, `mouthFrown` ->
  `LipCornerDepressor`, `mouthLowerDown` -> `LowerLipDepressor`, `mouthUpperUp` -> `UpperLipRaiser`, `noseSneer` ->
  `NoseWrinkler`, `mouthDimple` -> `Dimpler`, `mouthShrugLower/Upper` -> `ChinRaiserB/T`, `mouthClose` ->
  `LipsToward`, `jawOpen/Forward/Left/Right` -> `JawDrop/Thrust/SidewaysLeft/SidewaysRight`; funnel, pucker and
  rolls drive every lip quarter. Gaze directions are the subject's: `EyesLookLeftL` (left eye turning toward the
  subject's left) is `eyeLookOut_L`, `EyesLookLeftR` is `eyeLookIn_R`, and so on. `CheekSuck`, `LipTightener` and
  the tongue shapes stay 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np

from egoface.face._arrays import torch_of
from egoface.face.names import EXPRESSION_NAMES

if TYPE_CHECKING:  # torch is imported only for torch inputs: the runtime converts numpy arrays without torch
    import torch

__all__ = [
    "ARKIT_NAMES",
    "MEDIAPIPE_NAMES",
    "MOVEMENT_NAMES",
    "STANDARDS",
    "UNIFIED_NAMES",
    "Standard",
    "convert",
    "from_arkit",
    "to_arkit",
    "to_mediapipe",
    "to_movement",
    "to_unified",
]

Array = TypeVar("Array", np.ndarray, "torch.Tensor")
Table = Mapping[str, Sequence[tuple[str, float]]]

ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip

MEDIAPIPE_NAMES: tuple[str, ...] = ("_neutral", *(name for name in ARKIT_NAMES if name != "tongueOut"))

UNIFIED_NAMES: tuple[str, ...] = (
    "EyeSquintRight", "EyeSquintLeft", "EyeWideRight", "EyeWideLeft", "BrowPinchRight", "BrowPinchLeft",
    "BrowLowererRight", "BrowLowererLeft", "BrowInnerUpRight", "BrowInnerUpLeft", "BrowOuterUpRight",
    "BrowOuterUpLeft", "NasalDilationRight", "NasalDilationLeft", "NasalConstrictRight", "NasalConstrictLeft",
    "CheekSquintRight", "CheekSquintLeft", "CheekPuffRight", "CheekPuffLeft", "CheekSuckRight", "CheekSuckLeft",
    "JawOpen", "JawRight", "JawLeft", "JawForward", "JawBackward", "JawClench", "JawMandibleRaise", "MouthClosed",
    "LipSuckUpperRight", "LipSuckUpperLeft", "LipSuckLowerRight", "LipSuckLowerLeft", "LipSuckCornerRight",
    "LipSuckCornerLeft", "LipFunnelUpperRight", "LipFunnelUpperLeft", "LipFunnelLowerRight", "LipFunnelLowerLeft",
    "LipPuckerUpperRight", "LipPuckerUpperLeft", "LipPuckerLowerRight", "LipPuckerLowerLeft", "MouthUpperUpRight",
    "MouthUpperUpLeft", "MouthUpperDeepenRight", "MouthUpperDeepenLeft", "NoseSneerRight", "NoseSneerLeft",
    "MouthLowerDownRight", "MouthLowerDownLeft", "MouthUpperRight", "MouthUpperLeft", "MouthLowerRight",
    "MouthLowerLeft", "MouthCornerPullRight", "MouthCornerPullLeft", "MouthCornerSlantRight", "MouthCornerSlantLeft",
    "MouthFrownRight", "MouthFrownLeft", "MouthStretchRight", "MouthStretchLeft", "MouthDimpleRight",
    "MouthDimpleLeft", "MouthRaiserUpper", "MouthRaiserLower", "MouthPressRight", "MouthPressLeft",
    "MouthTightenerRight", "MouthTightenerLeft", "TongueOut", "TongueUp", "TongueDown", "TongueRight", "TongueLeft",
    "TongueRoll", "TongueBendDown", "TongueCurlUp", "TongueSquish", "TongueFlat", "TongueTwistRight",
    "TongueTwistLeft", "SoftPalateClose", "ThroatSwallow", "NeckFlexRight", "NeckFlexLeft",
)  # fmt: skip

MOVEMENT_NAMES: tuple[str, ...] = (
    "BrowLowererL", "BrowLowererR", "CheekPuffL", "CheekPuffR", "CheekRaiserL", "CheekRaiserR", "CheekSuckL",
    "CheekSuckR", "ChinRaiserB", "ChinRaiserT", "DimplerL", "DimplerR", "EyesClosedL", "EyesClosedR",
    "EyesLookDownL", "EyesLookDownR", "EyesLookLeftL", "EyesLookLeftR", "EyesLookRightL", "EyesLookRightR",
    "EyesLookUpL", "EyesLookUpR", "InnerBrowRaiserL", "InnerBrowRaiserR", "JawDrop", "JawSidewaysLeft",
    "JawSidewaysRight", "JawThrust", "LidTightenerL", "LidTightenerR", "LipCornerDepressorL", "LipCornerDepressorR",
    "LipCornerPullerL", "LipCornerPullerR", "LipFunnelerLB", "LipFunnelerLT", "LipFunnelerRB", "LipFunnelerRT",
    "LipPressorL", "LipPressorR", "LipPuckerL", "LipPuckerR", "LipStretcherL", "LipStretcherR", "LipSuckLB",
    "LipSuckLT", "LipSuckRB", "LipSuckRT", "LipTightenerL", "LipTightenerR", "LipsToward", "LowerLipDepressorL",
    "LowerLipDepressorR", "MouthLeft", "MouthRight", "NoseWrinklerL", "NoseWrinklerR", "OuterBrowRaiserL",
    "OuterBrowRaiserR", "UpperLidRaiserL", "UpperLidRaiserR", "UpperLipRaiserL", "UpperLipRaiserR",
    "TongueTipInterdental", "TongueTipAlveolar", "TongueFrontDorsalPalate", "TongueMidDorsalPalate",
    "TongueBackDorsalVelar", "TongueOut", "TongueRetreat",
)  # fmt: skip

_MERGED_ARKIT = ("browInnerUp", "cheekPuff")


def _arkit_source(arkit_name: str) -> str:
    """The canonical name behind an ARKit name with a side word (`eyeBlinkLeft` -> `eyeBlink_L`) or without."""
    for word, suffix in (("Left", "_L"), ("Right", "_R")):
        if arkit_name.endswith(word) and arkit_name not in EXPRESSION_NAMES:
            return arkit_name[: -len(word)] + suffix
    return arkit_name


#: ARKit name -> canonical sources. Merged shapes are the mean of their halves; tongueOut has none.
_ARKIT_TABLE: dict[str, tuple[tuple[str, float], ...]] = {
    name: (
        ((f"{name}_L", 0.5), (f"{name}_R", 0.5))
        if name in _MERGED_ARKIT
        else ()
        if name == "tongueOut"
        else ((_arkit_source(name), 1.0),)
    )
    for name in ARKIT_NAMES
}

#: MediaPipe name -> canonical sources: ARKit's without tongueOut; `_neutral` is filled by `convert`.
_MEDIAPIPE_TABLE = {name: sources for name, sources in _ARKIT_TABLE.items() if name in MEDIAPIPE_NAMES}

#: Canonical name -> ARKit sources (the inverse direction); merged shapes are copied to both halves.
_FROM_ARKIT_TABLE: dict[str, tuple[tuple[str, float], ...]] = {
    canonical: ((arkit, 1.0),) for arkit, sources in _ARKIT_TABLE.items() for canonical, _ in sources
}

#: Unified Expressions name -> canonical sources (see the module docstring).
_UNIFIED_TABLE: dict[str, tuple[tuple[str, float], ...]] = {
    **{
        f"{unified}{side}": ((f"{canonical}_{side[0]}", 1.0),)
        for side in ("Right", "Left")
        for unified, canonical in (
            ("EyeSquint", "eyeSquint"), ("EyeWide", "eyeWide"), ("BrowPinch", "browDown"),
            ("BrowLowerer", "browDown"), ("BrowInnerUp", "browInnerUp"), ("BrowOuterUp", "browOuterUp"),
            ("CheekSquint", "cheekSquint"), ("CheekPuff", "cheekPuff"), ("MouthUpperUp", "mouthUpperUp"),
            ("NoseSneer", "noseSneer"), ("MouthLowerDown", "mouthLowerDown"), ("MouthCornerPull", "mouthSmile"),
            ("MouthCornerSlant", "mouthSmile"), ("MouthFrown", "mouthFrown"), ("MouthStretch", "mouthStretch"),
            ("MouthDimple", "mouthDimple"), ("MouthPress", "mouthPress"),
        )
    },
    **{
        f"{unified}{side}": ((canonical, 1.0),)
        for side in ("Right", "Left")
        for unified, canonical in (
            ("LipSuckUpper", "mouthRollUpper"), ("LipSuckLower", "mouthRollLower"),
            ("LipFunnelUpper", "mouthFunnel"), ("LipFunnelLower", "mouthFunnel"),
            ("LipPuckerUpper", "mouthPucker"), ("LipPuckerLower", "mouthPucker"),
        )
    },
    "JawOpen": (("jawOpen", 1.0),),
    "JawRight": (("jawRight", 1.0),),
    "JawLeft": (("jawLeft", 1.0),),
    "JawForward": (("jawForward", 1.0),),
    "MouthClosed": (("mouthClose", 1.0),),
    "MouthUpperRight": (("mouthRight", 1.0),),
    "MouthUpperLeft": (("mouthLeft", 1.0),),
    "MouthLowerRight": (("mouthRight", 1.0),),
    "MouthLowerLeft": (("mouthLeft", 1.0),),
    "MouthRaiserUpper": (("mouthShrugUpper", 1.0),),
    "MouthRaiserLower": (("mouthShrugLower", 1.0),),
}  # fmt: skip

#: Meta Movement v2 name -> canonical sources (see the module docstring).
_MOVEMENT_TABLE: dict[str, tuple[tuple[str, float], ...]] = {
    **{
        f"{movement}{side}": ((f"{canonical}_{side}", 1.0),)
        for side in ("L", "R")
        for movement, canonical in (
            ("BrowLowerer", "browDown"), ("CheekPuff", "cheekPuff"), ("CheekRaiser", "cheekSquint"),
            ("Dimpler", "mouthDimple"), ("EyesClosed", "eyeBlink"), ("EyesLookDown", "eyeLookDown"),
            ("EyesLookUp", "eyeLookUp"), ("InnerBrowRaiser", "browInnerUp"), ("LidTightener", "eyeSquint"),
            ("LipCornerDepressor", "mouthFrown"), ("LipCornerPuller", "mouthSmile"), ("LipPressor", "mouthPress"),
            ("LipStretcher", "mouthStretch"), ("LowerLipDepressor", "mouthLowerDown"),
            ("NoseWrinkler", "noseSneer"), ("OuterBrowRaiser", "browOuterUp"), ("UpperLidRaiser", "eyeWide"),
            ("UpperLipRaiser", "mouthUpperUp"),
        )
    },
    **{
        f"{movement}{quarter}": ((canonical, 1.0),)
        for movement, canonical, quarters in (
            ("LipFunneler", "mouthFunnel", ("LB", "LT", "RB", "RT")),
            ("LipSuck", "mouthRollLower", ("LB", "RB")),
            ("LipSuck", "mouthRollUpper", ("LT", "RT")),
            ("LipPucker", "mouthPucker", ("L", "R")),
        )
        for quarter in quarters
    },
    "EyesLookLeftL": (("eyeLookOut_L", 1.0),),
    "EyesLookLeftR": (("eyeLookIn_R", 1.0),),
    "EyesLookRightL": (("eyeLookIn_L", 1.0),),
    "EyesLookRightR": (("eyeLookOut_R", 1.0),),
    "ChinRaiserB": (("mouthShrugLower", 1.0),),
    "ChinRaiserT": (("mouthShrugUpper", 1.0),),
    "JawDrop": (("jawOpen", 1.0),),
    "JawSidewaysLeft": (("jawLeft", 1.0),),
    "JawSidewaysRight": (("jawRight", 1.0),),
    "JawThrust": (("jawForward", 1.0),),
    "LipsToward": (("mouthClose", 1.0),),
    "MouthLeft": (("mouthLeft", 1.0),),
    "MouthRight": (("mouthRight", 1.0),),
}  # fmt: skip


def _matrix(table: Table, targets: Sequence[str], sources: Sequence[str]) -> np.ndarray:
    """(len(targets), len(sources)) float32 matrix of a table; every name in the table must be a known name."""
    unknown_targets = set(table) - set(targets)
    if unknown_targets:
        raise ValueError(f"mapping table names unknown targets {sorted(unknown_targets)}")
    column = {name: i for i, name in enumerate(sources)}
    matrix = np.zeros((len(targets), len(sources)), dtype=np.float32)
    for row, target in enumerate(targets):
        for source, weight in table.get(target, ()):
            if source not in column:
                raise ValueError(f"mapping table entry {target!r} uses unknown source {source!r}")
            matrix[row, column[source]] += weight
    return matrix


@dataclass(frozen=True)
class Standard:
    """A target standard: its names in order and the matrix (targets, 53) from the canonical vector.

    neutral_index: the column that holds a rest score `1 - max(other columns)` (MediaPipe's `_neutral`), or None.
    """

    name: str
    names: tuple[str, ...]
    matrix: np.ndarray
    neutral_index: int | None = None


STANDARDS: dict[str, Standard] = {
    "arkit": Standard("arkit", ARKIT_NAMES, _matrix(_ARKIT_TABLE, ARKIT_NAMES, EXPRESSION_NAMES)),
    "mediapipe": Standard(
        "mediapipe", MEDIAPIPE_NAMES, _matrix(_MEDIAPIPE_TABLE, MEDIAPIPE_NAMES, EXPRESSION_NAMES), neutral_index=0
    ),
    "unified": Standard("unified", UNIFIED_NAMES, _matrix(_UNIFIED_TABLE, UNIFIED_NAMES, EXPRESSION_NAMES)),
    "movement": Standard("movement", MOVEMENT_NAMES, _matrix(_MOVEMENT_TABLE, MOVEMENT_NAMES, EXPRESSION_NAMES)),
}
_FROM_ARKIT = _matrix(_FROM_ARKIT_TABLE, EXPRESSION_NAMES, ARKIT_NAMES)


def _apply(x: Array, matrix: np.ndarray, what: str) -> Array:
    """x: (..., S) numpy or torch -> (..., T) = x @ matrix.T, same library, dtype (float) and device."""
    if x.shape[-1:] != (matrix.shape[1],):
        raise ValueError(f"{what} expects an array of shape (..., {matrix.shape[1]}), got {tuple(x.shape)}")
    torch_module = torch_of(x)
    if torch_module is not None:
        tensor = cast("torch.Tensor", x)
        dtype = tensor.dtype if tensor.dtype.is_floating_point else torch_module.float32
        return cast(Array, tensor.to(dtype) @ torch_module.as_tensor(matrix, dtype=dtype, device=tensor.device).T)
    array = np.asarray(x)
    dtype = array.dtype if array.dtype.kind == "f" else np.float32
    return array.astype(dtype, copy=False) @ matrix.T.astype(dtype)


def convert(x: Array, standard: str) -> Array:
    """x: (..., 53) canonical expression weights -> (..., N) in `standard` ("arkit", "mediapipe", "unified",
    "movement"); numpy in, numpy out; torch in, torch out (differentiable)."""
    if standard not in STANDARDS:
        raise ValueError(f"unknown expression standard {standard!r}; known: {', '.join(STANDARDS)}")
    target = STANDARDS[standard]
    out = _apply(x, target.matrix, f"convert(x, {standard!r})")
    if target.neutral_index is not None:
        # The neutral row of the matrix is zero: add the rest score into that column (no in-place write).
        column = np.zeros(len(target.names), dtype=np.float32)
        column[target.neutral_index] = 1.0
        torch_module = torch_of(out)
        if torch_module is not None:
            tensor = cast("torch.Tensor", out)
            rest = (1.0 - tensor.amax(dim=-1, keepdim=True)).clamp(0.0, 1.0)
            return cast(Array, tensor + rest * torch_module.as_tensor(column, dtype=tensor.dtype, device=tensor.device))
        array = cast(np.ndarray, out)
        return cast(
            Array, array + np.clip(1.0 - array.max(axis=-1, keepdims=True), 0.0, 1.0) * column.astype(array.dtype)
        )
    return out


def to_arkit(x: Array) -> Array:
    """(..., 53) -> (..., 52) ARKit weights in `ARKIT_NAMES` order."""
    return convert(x, "arkit")


def to_mediapipe(x: Array) -> Array:
    """(..., 53) -> (..., 52) MediaPipe blendshape scores in `MEDIAPIPE_NAMES` order (`_neutral` first)."""
    return convert(x, "mediapipe")


def to_unified(x: Array) -> Array:
    """(..., 53) -> (..., 88) VRCFaceTracking Unified Expressions in `UNIFIED_NAMES` (enum) order."""
    return convert(x, "unified")


def to_movement(x: Array) -> Array:
    """(..., 53) -> (..., 70) Meta Movement SDK v2 face expressions in `MOVEMENT_NAMES` order."""
    return convert(x, "movement")


def from_arkit(x: Array) -> Array:
    """(..., 52) ARKit weights -> (..., 53) canonical; merged `browInnerUp` / `cheekPuff` go to both halves and
    `tongueOut` is dropped."""
    return _apply(x, _FROM_ARKIT, "from_arkit")
