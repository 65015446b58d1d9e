"""The preset headset rigs, as Python data building the same dataclasses a rig file does.

Geometry (headset frame = head frame at the nominal donning, mm) is laid out around `REFERENCE_FACE`: landmarks of
an average adult face in the head frame of the procedural face model (origin between the eyes in the plane of the
corneal apices, eyeball centres 12.6 mm behind it); ICT-FaceKit's neutral agrees within a few mm once placed in the
same frame. Each HMD lens sits about 17 mm in front of the cornea; the lens cups are boxes in front of the eyes and the
display body (`shell`) is in front of them; the shell's floor reaches down to about the nose. Eye cameras sit just
behind the lens plane at the bottom edge of the cups and look up and back at the eyes; consumer mouth cameras sit
under the shell floor beside the nose and look down along the face at the mouth (oblique by placement); boom cameras
hang about 70 mm in front of the mouth and look at it frontally. Write a preset to a file to see the format:
`save_rig(load_rig("quest-pro-4"), "quest.yaml")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from egoface.headset.rig import (
    RIG_SUFFIXES,
    CameraSpec,
    HeadsetRig,
    LedSpec,
    LensSpec,
    OccluderSpec,
    RigError,
    read_rig_file,
)

__all__ = ["PRESET_NAMES", "REFERENCE_FACE", "load_rig", "preset"]

#: Landmarks of the reference face (head frame, mm; the procedural model's eye centres and mouth, the rest from
#: ICT-FaceKit's neutral moved into the same frame): the preset cameras aim at these; `_L` is the subject's left (+X).
REFERENCE_FACE: dict[str, tuple[float, float, float]] = {
    "eye_center_L": (31.5, 0.0, -12.6),
    "eye_center_R": (-31.5, 0.0, -12.6),
    "cornea_L": (31.5, 0.0, 0.0),
    "cornea_R": (-31.5, 0.0, 0.0),
    "glabella": (0.0, 18.0, 11.5),
    "nose_tip": (0.0, -32.0, 30.0),
    "mouth_center": (0.0, -69.0, 15.0),
    "mouth_corner_L": (25.0, -70.0, 6.0),
    "mouth_corner_R": (-25.0, -70.0, 6.0),
    "chin": (0.0, -112.0, 8.0),
}

_CUP_CENTER_Z = 27.5  # lens cups span z 17.5..37.5: the lens plane is ~17 mm in front of the cornea
_LENS_PLANE_Z = 17.5
_SHELL_FRONT_Z = 39.5  # the display body starts here
_MOUTH_AIM = (0.0, -72.0, 13.5)  # just behind the lips' front, between them
_MOUTH_AIM_LEFT = (6.0, -72.0, 13.5)  # a side camera aims a little to its own side of the mouth
#: Eye cameras aim at the eye opening a little above the cornea's centre (not at the eyeball's centre, which a camera
#: below the eye sees through the lower lid), so the lids and the brow's lower edge are in view.
_EYE_AIM_LEFT = (31.5, 1.5, -3.0)


def _mirror(point: tuple[float, float, float], side: str) -> tuple[float, float, float]:
    """A point given for the subject's left (+X), placed on `side`."""
    x, y, z = point
    return (x if side == "left" else -x, y, z)


def _fisheye(fov_deg: float) -> LensSpec:
    return LensSpec(type="fisheye", projection="equidistant", fov_deg=fov_deg)


def _pinhole(fov_deg: float) -> LensSpec:
    return LensSpec(type="pinhole", fov_deg=fov_deg)


def _pair(
    role: str,
    position_left: tuple[float, float, float],
    target_left: tuple[float, float, float],
    lens: LensSpec,
    size: int,
    fps: float,
    suffix: str = "",
) -> list[CameraSpec]:
    """A left/right pair of cameras mirrored across the face's midplane."""
    return [
        CameraSpec(
            name=f"{role}_{side}{suffix}",
            role=role,
            side=side,
            position=_mirror(position_left, side),
            look_at=_mirror(target_left, side),
            lens=lens,
            width=size,
            height=size,
            fps=fps,
        )
        for side in ("left", "right")
    ]


def _eye_pairs(position_left: tuple[float, float, float], lens: LensSpec, size: int, fps: float, suffix: str = ""):
    return _pair("eye", position_left, _EYE_AIM_LEFT, lens, size, fps, suffix)


def _cup_ring_leds(count: int = 6, radius: float = 23.0) -> list[LedSpec]:
    """`count` LEDs on a ring around each lens (just behind the lens plane), aimed at the eye centre."""
    leds = []
    for side in ("left", "right"):
        eye = np.asarray(_mirror(REFERENCE_FACE["eye_center_L"], side))
        for k in range(count):
            angle = 2.0 * math.pi * (k + 0.5) / count
            position = (eye[0] + radius * math.cos(angle), eye[1] + radius * math.sin(angle), _LENS_PLANE_Z - 2.0)
            leds.append(_led(f"cup_{side}_{k}", position, eye, power=1.0, half_angle_deg=_NARROW_LED_DEG))
    return leds


#: Half-intensity angles of the presets' 850 nm SMD LEDs: common parts, and whole exponents of the cos^m beam
#: pattern (45 deg -> m = 2, 60 deg -> m = 1, Lambertian), which the shader raises by multiplication.
_NARROW_LED_DEG = 45.0
_WIDE_LED_DEG = 60.0


def _led(name: str, position: object, target: object, power: float, half_angle_deg: float) -> LedSpec:
    position_v = np.round(np.asarray(position, dtype=np.float64), 3)
    offset = np.asarray(target, dtype=np.float64) - position_v
    direction = np.round(offset / np.linalg.norm(offset), 4)
    x, y, z = position_v.tolist()
    dx, dy, dz = direction.tolist()
    return LedSpec(name, (x, y, z), (dx, dy, dz), power, half_angle_deg)


def _camera_leds(camera: CameraSpec, power: float, half_angle_deg: float, spacing: float = 12.0) -> list[LedSpec]:
    """Two LEDs beside a camera (along its image x axis), aimed at what it looks at."""
    right = camera.camera().rotation[0]
    return [
        _led(f"{camera.name}_{k}", np.asarray(camera.position) + side * spacing / 2.0 * right, camera.look_at, power,
             half_angle_deg)
        for k, side in enumerate((-1.0, 1.0))
    ]  # fmt: skip


def _consumer_occluders() -> list[OccluderSpec]:
    """Lens cups, the display body (z 39.5..63.5 mm) and the shell floor beside the nose (the nose cut-out is
    |x| < 29 mm)."""
    cups = [
        OccluderSpec(
            f"lens_cup_{side}", "box", center=_mirror((31.2, 0.0, _CUP_CENTER_Z), side), size=(40.0, 40.0, 20.0)
        )
        for side in ("left", "right")
    ]
    floors = [
        OccluderSpec(f"shell_floor_{side}", "plane", center=_mirror((57.0, -38.0, 23.5), side), normal=(0.0, 1.0, 0.0),
                     size=(56.0, 32.0))
        for side in ("left", "right")
    ]  # fmt: skip
    shell = OccluderSpec("shell", "box", center=(0.0, 8.0, _SHELL_FRONT_Z + 12.0), size=(180.0, 96.0, 24.0))
    return [shell, *cups, *floors]


def _boom_arms() -> list[OccluderSpec]:
    return [
        OccluderSpec(f"boom_arm_{side}", "capsule", start=_mirror((45.0, -38.0, 53.5), side),
                     end=_mirror((22.0, -68.0, 86.5), side), radius=3.0)
        for side in ("left", "right")
    ]  # fmt: skip


def _glabella(position: tuple[float, float, float], fps: float, name: str = "glabella") -> CameraSpec:
    return CameraSpec(name, "glabella", "center", position, REFERENCE_FACE["glabella"], _pinhole(90.0), 400, 400, fps)


def _boom_pair(fps: float) -> list[CameraSpec]:
    return _pair("boom", (22.0, -74.0, 83.5), _MOUTH_AIM_LEFT, _pinhole(80.0), 400, fps)


def _refa_embedded() -> list[CameraSpec]:
    fps = 30.0
    return [
        *_eye_pairs((24.0, -25.0, 15.5), _pinhole(90.0), 400, fps),
        *_pair("mouth", (34.0, -44.0, 33.5), _MOUTH_AIM_LEFT, _fisheye(140.0), 400, fps),
        _glabella((0.0, -4.0, 29.5), fps),
    ]


def _quest_embedded() -> list[CameraSpec]:
    fps = 72.0
    return [
        *_eye_pairs((30.0, -26.0, 15.5), _pinhole(85.0), 400, fps),
        *_pair("mouth", (40.0, -43.0, 27.5), _MOUTH_AIM_LEFT, _fisheye(120.0), 400, fps),
    ]


def _rig(name: str, description: str, cameras: list[CameraSpec], occluders: list[OccluderSpec]) -> HeadsetRig:
    leds = _cup_ring_leds()
    for camera in cameras:
        if camera.role == "mouth":
            leds += _camera_leds(camera, power=3.0, half_angle_deg=_WIDE_LED_DEG)
        elif camera.role == "boom":
            leds += _camera_leds(camera, power=4.0, half_angle_deg=_NARROW_LED_DEG)
        elif camera.role == "glabella":
            leds += _camera_leds(camera, power=0.5, half_angle_deg=_NARROW_LED_DEG, spacing=8.0)
    return HeadsetRig(name=name, description=description, cameras=tuple(cameras), leds=tuple(leds),
                      occluders=tuple(occluders))  # fmt: skip


def _refa_5() -> HeadsetRig:
    return _rig(
        "refa-5",
        "REFA Sec. 4: 5 IR cameras (2 eye, 2 mouth, 1 glabella), 400x400 at 30 Hz, inside a consumer form factor.",
        _refa_embedded(),
        _consumer_occluders(),
    )


def _quest_pro_4() -> HeadsetRig:
    return _rig(
        "quest-pro-4",
        "Universal Sec. 4.1: an off-the-shelf headset with 4 IR cameras (2 eye, 2 very oblique mouth), 400x400 at "
        "72 Hz.",
        _quest_embedded(),
        _consumer_occluders(),
    )


def _quest_pro_train_8() -> HeadsetRig:
    fps = 72.0
    augmented = [
        *_eye_pairs((50.0, 21.0, 14.5), _pinhole(90.0), 400, fps, suffix="_aug"),
        *_boom_pair(fps),
    ]
    return _rig(
        "quest-pro-train-8",
        "Universal's training headset: the 4 quest-pro-4 cameras plus 4 augmented ones (2 upper-temporal eye views, "
        "2 frontal lower-face boom cameras), 400x400 at 72 Hz.",
        _quest_embedded() + augmented,
        _consumer_occluders() + _boom_arms(),
    )


def _refa_collect_10() -> HeadsetRig:
    fps = 30.0
    ground_truth = [
        *_boom_pair(fps),
        *_eye_pairs((46.0, -24.0, 13.5), _fisheye(110.0), 400, fps, suffix="_gt"),
        _glabella((0.0, 32.0, 29.5), fps, name="glabella_gt"),
    ]
    return _rig(
        "refa-collect-10",
        "REFA Sec. 6.1.1 data collection headset: the 5 refa-5 cameras plus 5 ground-truth cameras (2 frontal "
        "lower-face boom cameras, 2 eye, 1 glabella), 400x400 at 30 Hz.",
        _refa_embedded() + ground_truth,
        _consumer_occluders() + _boom_arms(),
    )


def _diy_babble_etvr() -> HeadsetRig:
    aim = (0.0, -67.0, 12.0)
    mouth = CameraSpec("mouth", "mouth", "center", (0.0, -90.0, 48.0), aim, _fisheye(160.0), 256, 256, 60.0)
    eyes = _eye_pairs((46.0, -22.0, 13.5), _pinhole(100.0), 240, 60.0)
    mount = OccluderSpec("babble_mount", "capsule", start=(0.0, -42.0, 62.0), end=(0.0, -85.0, 50.0), radius=3.0)
    leds = _cup_ring_leds(count=4) + [
        _led(f"mouth_{k}", np.asarray(mouth.position) + offset, aim, power=1.5, half_angle_deg=_WIDE_LED_DEG)
        for k, offset in enumerate(((-10.0, 0.0, 0.0), (10.0, 0.0, 0.0)))
    ]
    return HeadsetRig(
        name="diy-babble-etvr",
        description="A DIY setup: a Project Babble style 160-degree mouth camera on a mount hanging from the shell, "
        "about 9 cm below eye level and 4 cm in front of the lips, looking up at the mouth, and two EyeTrackVR style "
        "eye cameras at the bottom-temporal edge of the lenses.",
        cameras=(mouth, *eyes),
        leds=tuple(leds),
        occluders=(*_consumer_occluders(), mount),
    )


_PRESETS: dict[str, Callable[[], HeadsetRig]] = {
    "refa-5": _refa_5,
    "quest-pro-4": _quest_pro_4,
    "quest-pro-train-8": _quest_pro_train_8,
    "refa-collect-10": _refa_collect_10,
    "diy-babble-etvr": _diy_babble_etvr,
}
PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def preset(name: str) -> HeadsetRig:
    """A preset rig by name (see PRESET_NAMES)."""
    if name not in _PRESETS:
        raise KeyError(f"unknown headset preset {name!r}; presets: {', '.join(PRESET_NAMES)}")
    try:
        return _PRESETS[name]()
    except RigError as error:
        raise error.within(source=f"<preset {name}>") from None


def load_rig(name_or_path: str | Path) -> HeadsetRig:
    """A preset name (`quest-pro-4`) or a rig file path (.yaml, .yml, .json)."""
    if isinstance(name_or_path, str) and name_or_path in _PRESETS:
        return preset(name_or_path)
    path = Path(name_or_path)
    if path.suffix.lower() not in RIG_SUFFIXES:
        raise RigError(
            "", f"neither a preset ({', '.join(PRESET_NAMES)}) nor a rig file ({', '.join(RIG_SUFFIXES)})", str(path)
        )
    return read_rig_file(path)
