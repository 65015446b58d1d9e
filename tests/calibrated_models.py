"""Calibrated encoders for tests: `calibrated_nano` with random weights everywhere, including the concatenation
fusions, which untrained are the identity on the current map and ignore the anchors."""

from __future__ import annotations

from typing import Any

import torch

from egoface.models.calibrated import CalibratedEncoder, create_calibrated_model


def untrained_calibrated(
    module: str,
    anchors: tuple[str, ...],
    size: int,
    seed: int = 0,
    per_eye_head: bool = False,
    linear_fusion: bool = False,
    name: str = "calibrated_nano",
) -> CalibratedEncoder:
    """Calibrated encoder `name` with `module` and `anchors` (none for `none`) at size x size, as initialized, eval
    mode."""
    torch.manual_seed(seed)
    anchors = anchors if module != "none" else ()
    return create_calibrated_model(
        name, calibration=module, anchors=anchors, input_size=(size, size), per_eye_head=per_eye_head,
        linear_fusion=linear_fusion,
    ).eval()  # fmt: skip


def random_calibrated(
    module: str, anchors: tuple[str, ...], size: int, seed: int = 0, **options: Any
) -> CalibratedEncoder:
    """`untrained_calibrated` (`options`: its keyword arguments) with seeded random weights in the fusions too, so
    that the anchors matter; with `linear_fusion`, the batch norms of the block the fusion is folded into get random
    statistics and affine weights, so that their eval-mode scale matters."""
    model = untrained_calibrated(module, anchors, size, seed, **options)
    generator = torch.Generator().manual_seed(seed + 3)
    for key, parameter in model.named_parameters():
        if ".calibrate.fuse." in key:
            parameter.data.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    for key, module_ in model.named_modules():
        if ".calibrate.entry." in key and isinstance(module_, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module_.weight.data, 0.5, 1.5), (module_.running_var, 0.5, 2.0)):
                tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))
            for tensor in (module_.bias.data, module_.running_mean):
                tensor.copy_(0.2 * torch.randn(tensor.shape, generator=generator))
    return model
