"""Calibrated encoders for tests: `calibrated_nano` with random weights everywhere, including the concatenation
fusions, which untrained are the identity on the current map and ignore the anchors."""

from __future__ import annotations

import torch

from egoface.models.calibrated import CalibratedEncoder, create_calibrated_model


def untrained_calibrated(
    module: str, anchors: tuple[str, ...], size: int, seed: int = 0, per_eye_head: bool = False
) -> CalibratedEncoder:
    """calibrated_nano with `module` and `anchors` (none for `none`) at size x size, as initialized, eval mode."""
    torch.manual_seed(seed)
    anchors = anchors if module != "none" else ()
    return create_calibrated_model(
        "calibrated_nano", calibration=module, anchors=anchors, input_size=(size, size), per_eye_head=per_eye_head
    ).eval()


def random_calibrated(
    module: str, anchors: tuple[str, ...], size: int, seed: int = 0, per_eye_head: bool = False
) -> CalibratedEncoder:
    """`untrained_calibrated` with seeded random weights in the fusions too, so that the anchors matter."""
    model = untrained_calibrated(module, anchors, size, seed, per_eye_head)
    generator = torch.Generator().manual_seed(seed + 3)
    for name, parameter in model.named_parameters():
        if ".calibrate.fuse." in name:
            parameter.data.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model
