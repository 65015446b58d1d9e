"""egoface.headset: headset rigs (cameras, IR LEDs, occluders) from presets or files, and the donning model.

`load_rig("quest-pro-4" | "my_rig.yaml")` -> `HeadsetRig`; `rig.camera("mouth_left")` -> the renderer's `Camera`
in the headset frame; `DonningModel` samples per-session head poses and their slip within a session (`HeadPose`:
`x_headset = rotation @ x_head + translation`). File format: docs/headset.md.
"""

from egoface.headset.donning import DonningModel, expression_drive
from egoface.headset.pose import HeadPose
from egoface.headset.presets import PRESET_NAMES, REFERENCE_FACE, load_rig, preset
from egoface.headset.rig import (
    CAMERA_ROLES,
    CAMERA_SIDES,
    OCCLUDER_SHAPES,
    CameraSpec,
    HeadsetRig,
    LedSpec,
    LensSpec,
    OccluderSpec,
    PoseSpec,
    RigError,
    describe_rig,
    read_rig_file,
    rig_from_dict,
    rig_to_dict,
    save_rig,
)

__all__ = [
    "CAMERA_ROLES",
    "CAMERA_SIDES",
    "OCCLUDER_SHAPES",
    "PRESET_NAMES",
    "REFERENCE_FACE",
    "CameraSpec",
    "DonningModel",
    "HeadPose",
    "HeadsetRig",
    "LedSpec",
    "LensSpec",
    "OccluderSpec",
    "PoseSpec",
    "RigError",
    "describe_rig",
    "expression_drive",
    "load_rig",
    "preset",
    "read_rig_file",
    "rig_from_dict",
    "rig_to_dict",
    "save_rig",
]
