"""How each domain looks: the stand-ins for "synthetic training data" and "real captures" (design.md, "Domains").

- `synthetic`: the generic appearance model, the subject's identity-adapted rig without idiosyncrasies, the
  synthetic sensor. Labels are exact and may train.
- `real`: a shifted appearance distribution (more facial hair and blemishes, a wider skin range), person-specific
  rigs with idiosyncrasies (per-shape gain, asymmetry, perturbed shapes), the noisier `REAL_SENSOR`, stronger
  ambient IR and motion blur, and ICT-FaceKit faces when a path is given. True labels are withheld from training.
- `unlabeled`: looks like `real` (it stands for real captures at scale), recorded without labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from egoface.face.appearance import Appearance, sample_appearance
from egoface.render.sensor import REAL_SENSOR, SYNTHETIC_SENSOR, SensorModel

__all__ = ["DOMAIN_LOOKS", "DomainLook", "real_appearance"]


def real_appearance(rng: np.random.Generator) -> Appearance:
    """The real domain's appearance: the generic one pushed toward what synthetic training rarely shows."""
    base = sample_appearance(rng)
    return dataclasses.replace(
        base,
        skin_albedo=float(np.clip(base.skin_albedo + rng.normal(0.0, 0.08), 0.3, 0.8)),
        skin_variation=float(np.clip(base.skin_variation * 1.6, 0.0, 0.3)),
        pores=float(np.clip(base.pores * 1.8, 0.0, 0.15)),
        stubble=float(max(base.stubble, rng.uniform(0.0, 0.6) if rng.random() < 0.3 else 0.0)),
        oiliness=float(np.clip(base.oiliness * 1.5, 0.0, 0.35)),
    )


@dataclass(frozen=True)
class DomainLook:
    """name; appearance: rng -> Appearance; idiosyncrasy_strength: 0 = the generic adapted rig; sensor;
    ambient_max: the largest ambient IR level (fraction of LED-lit skin radiance); motion_blur: blend weight of the
    previous frame; labelled: whether true labels are recorded (the store decides where they go)."""

    name: str
    appearance: Callable[[np.random.Generator], Appearance]
    idiosyncrasy_strength: float
    sensor: SensorModel
    ambient_max: float
    motion_blur: float
    labelled: bool


DOMAIN_LOOKS: dict[str, DomainLook] = {
    "synthetic": DomainLook("synthetic", sample_appearance, 0.0, SYNTHETIC_SENSOR, 0.03, 0.1, True),
    "real": DomainLook("real", real_appearance, 1.0, REAL_SENSOR, 0.15, 0.25, True),
    "unlabeled": DomainLook("unlabeled", real_appearance, 1.0, REAL_SENSOR, 0.15, 0.25, False),
}
