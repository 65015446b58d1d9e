"""Rebuilding a recorded subject's face from what the store keeps (identity, idiosyncrasies, appearance)."""

from __future__ import annotations

import numpy as np
import torch

from egoface.capture.recording import SubjectInfo
from egoface.face import Appearance, FaceModel, FaceRig, Idiosyncrasies, shared_face_model

__all__ = ["subject_appearance", "subject_face_model", "subject_rig"]


def subject_face_model(info: SubjectInfo) -> FaceModel:
    """The face model the subject was recorded with (loaded once per process)."""
    return shared_face_model(info.face_model)


def subject_rig(info: SubjectInfo) -> FaceRig:
    """The subject's own rig (identity-adapted blendshapes plus their idiosyncrasies, if any)."""
    idiosyncrasies = None
    if info.idiosyncrasies is not None:
        stored = dict(info.idiosyncrasies)
        idiosyncrasies = Idiosyncrasies(
            amplitude=np.asarray(stored["amplitude"], np.float32),
            asymmetry=np.asarray(stored["asymmetry"], np.float32),
            perturbation=float(stored["perturbation"]),
            seed=int(stored["seed"]),
        )
    return subject_face_model(info).rig(torch.from_numpy(np.asarray(info.identity)), idiosyncrasies)


def subject_appearance(info: SubjectInfo) -> Appearance:
    stored = dict(info.appearance)
    stored["glasses_lens_mm"] = tuple(stored["glasses_lens_mm"])
    return Appearance(**stored)
