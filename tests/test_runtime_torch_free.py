"""design.md: the runtime runs from an exported .onnx file with numpy and onnxruntime; torch is needed only to export.
Importing the per-frame modules (and the face room's names, gaze conventions and mappings they use) must not
import torch."""

import subprocess
import sys

PER_FRAME_MODULES = (
    "egoface.runtime.tracker",
    "egoface.runtime.result",
    "egoface.runtime.osc",
    "egoface.runtime.record",
    "egoface.face.mappings",
    "egoface.face.gaze",
)


def test_the_per_frame_runtime_imports_without_torch() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in PER_FRAME_MODULES)
        + "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout[:500]


def test_the_face_room_still_loads_its_torch_names_on_first_use() -> None:
    import egoface.face as face

    assert face.FaceModel.__name__ == "FaceModel" and callable(face.sample_idiosyncrasies)
