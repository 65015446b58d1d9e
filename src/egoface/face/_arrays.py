"""numpy-or-torch dispatch without importing torch: the runtime uses the face room's names, gaze conventions and
mappings with numpy and onnxruntime only."""

from __future__ import annotations

import sys
from types import ModuleType


def torch_of(x: object) -> ModuleType | None:
    """The torch module when `x` is a torch tensor (torch is then already imported), else None."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None
