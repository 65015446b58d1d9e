"""egoface.face — face models behind one interface.

`load_face_model("procedural" | "ict:PATH" | "objdir:PATH")` returns a `FaceModel`; calling it with
(identity, expression, gaze) poses a batch of faces (`FaceMesh.vertices: (B, V, 3)` mm, head frame).
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from egoface.face.gaze import eye_look_from_gaze, gaze_from_eye_look, gaze_vector
from egoface.face.names import (
    EXPRESSION_NAMES,
    EYE_LOOK_NAMES,
    FREE_EXPRESSION_NAMES,
    NUM_EXPRESSIONS,
    expression_index,
    expression_vector,
    mirror_name,
)

if TYPE_CHECKING:
    from egoface.face.appearance import (
        Appearance,
        Glasses,
        glasses_geometry,
        sample_appearance,
        surface_reflectance,
    )
    from egoface.face.model import (
        REQUIRED_REGIONS,
        FaceMesh,
        FaceModel,
        FaceModelData,
        FaceRig,
        FaceTopology,
        Landmarks,
        LipPairs,
    )
    from egoface.face.rig import Idiosyncrasies, sample_idiosyncrasies

_MODEL_NAMES = ("REQUIRED_REGIONS", "FaceMesh", "FaceModel", "FaceModelData", "FaceRig", "FaceTopology", "Landmarks",
                "LipPairs")  # fmt: skip
#: Names loaded on first use (they need torch); names, gaze conventions and mappings do not, so the runtime imports
#: them with numpy and onnxruntime only.
_LAZY = {
    **dict.fromkeys(
        ("Appearance", "Glasses", "glasses_geometry", "sample_appearance", "surface_reflectance"), "appearance"
    ),
    **dict.fromkeys(_MODEL_NAMES, "model"),
    **dict.fromkeys(("Idiosyncrasies", "sample_idiosyncrasies"), "rig"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"egoface.face.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'egoface.face' has no attribute {name!r}")


__all__ = [
    "EXPRESSION_NAMES",
    "EYE_LOOK_NAMES",
    "FREE_EXPRESSION_NAMES",
    "MODEL_KINDS",
    "NUM_EXPRESSIONS",
    "REQUIRED_REGIONS",
    "Appearance",
    "FaceMesh",
    "FaceModel",
    "FaceModelData",
    "FaceRig",
    "FaceTopology",
    "Glasses",
    "Idiosyncrasies",
    "Landmarks",
    "LipPairs",
    "expression_index",
    "expression_vector",
    "eye_look_from_gaze",
    "gaze_from_eye_look",
    "gaze_vector",
    "glasses_geometry",
    "load_face_model",
    "mirror_name",
    "sample_appearance",
    "sample_idiosyncrasies",
    "shared_face_model",
    "surface_reflectance",
]

#: The face-model specs `load_face_model` understands.
MODEL_KINDS = ("procedural", "ict:PATH", "objdir:PATH")


@functools.cache
def shared_face_model(spec: str) -> FaceModel:
    """`load_face_model(spec)` loaded once per process and shared (face models are stateless: read, never changed)."""
    return load_face_model(spec)


def load_face_model(spec: str = "procedural") -> FaceModel:
    """A face model from a spec: `procedural` (the embedded default), `ict:PATH` (an ICT-FaceKit npz or
    `FaceXModel/` folder) or `objdir:PATH` (a folder of OBJ blendshapes, mm)."""
    kind, _, path = spec.partition(":")
    if kind == "procedural" and not path:
        from egoface.face.procedural import ProceduralFaceModel

        return ProceduralFaceModel()
    if kind == "ict" and path:
        from egoface.face.ict import load_ict_facekit

        return load_ict_facekit(path)
    if kind == "objdir" and path:
        from egoface.face.objdir import load_obj_folder

        return load_obj_folder(path)
    raise ValueError(f"unknown face model {spec!r}; expected one of {', '.join(MODEL_KINDS)}")
