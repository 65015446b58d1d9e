"""Headset rigs: cameras, IR LEDs and occluders in the headset frame, read from and written to YAML/JSON files.

Frames (design.md): the headset frame is the head frame at the nominal donning (mm; +X the subject's left, +Y up,
+Z out of the face). A camera is placed by `position`, the point it looks at (`look_at`) and the world direction that
appears up in its image (`up`). Every dataclass checks its own fields and raises `RigError` naming the field; the file
reader adds the file name and the path of the object (`cameras[2].lens.fov_deg`). The file format is documented in
docs/headset.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from egoface.headset.pose import HeadPose
from egoface.render.cameras import Camera, FisheyeLens, PinholeLens, pinhole_for_fov
from egoface.render.scene import Mesh, uv_sphere
from egoface.render.shading import Beam, PointLight

__all__ = [
    "CAMERA_ROLES",
    "CAMERA_SIDES",
    "DEFAULT_LED_INTENSITY",
    "OCCLUDER_SHAPES",
    "CameraSpec",
    "HeadsetRig",
    "LedSpec",
    "LensSpec",
    "OccluderSpec",
    "PoseSpec",
    "RigError",
    "describe_rig",
    "read_rig_file",
    "rig_from_dict",
    "rig_to_dict",
    "save_rig",
]

CAMERA_ROLES = ("eye", "mouth", "glabella", "boom")
CAMERA_SIDES = ("left", "right", "center")
OCCLUDER_SHAPES = ("box", "sphere", "capsule", "plane")
RIG_SUFFIXES = (".yaml", ".yml", ".json")
#: PointLight intensity (on-axis irradiance at 1 mm) of an LED of power 1: irradiance 1 on a surface 40 mm away.
DEFAULT_LED_INTENSITY = 1600.0

Vec3 = tuple[float, float, float]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RigError(ValueError):
    """A rig that cannot be used. `source`: file name or preset; `path`: the field (`cameras[2].lens.fov_deg`)."""

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        located = f"{path}: {message}" if path else message
        super().__init__(f"{source}: {located}" if source else located)

    def within(self, prefix: str = "", source: str | None = None) -> RigError:
        """The same error seen from an enclosing object: `prefix` goes before the path, `source` is set."""
        path = ".".join(part for part in (prefix, self.path) if part).replace(".[", "[")
        return RigError(path, self.message, source or self.source)


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def _number(path: str, value: object, low: float = -math.inf, high: float = math.inf, what: str = "") -> float:
    """A finite number in [low, high] (open bounds: use math.nextafter); bools and strings are rejected."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise RigError(path, f"got {_describe(value)}, expected a number{what}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise RigError(path, f"got {number!r}, expected a finite number{what}")
    return number


def _positive(path: str, value: object, what: str = "") -> float:
    return _number(path, value, low=math.nextafter(0.0, 1.0), what=what or " > 0")


def _integer(path: str, value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise RigError(path, f"got {_describe(value)}, expected {what}")
    return int(value)


def _vector(path: str, value: object, size: int = 3, nonzero: bool = False) -> tuple[float, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | np.ndarray) or len(value) != size:
        raise RigError(path, f"got {_describe(value)}, expected a list of {size} numbers")
    vector = tuple(_number(f"{path}[{i}]", item) for i, item in enumerate(value))
    if nonzero and not any(vector):
        raise RigError(path, f"got {list(vector)}, expected a non-zero direction")
    return vector


def _vec3(path: str, value: object, nonzero: bool = False) -> Vec3:
    x, y, z = _vector(path, value, 3, nonzero)
    return (x, y, z)


def _choice(path: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise RigError(path, f"got {_describe(value)}, expected one of {', '.join(map(repr, choices))}")
    return str(value)


def _name(path: str, value: object) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RigError(path, f"got {_describe(value)}, expected a lower-case name like 'eye_left' ([a-z][a-z0-9_]*)")
    return value


def _unit(vector: object) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)


@dataclass(frozen=True)
class LensSpec:
    """A lens: `type` pinhole or fisheye, given by `fov_deg` or by intrinsics `fx, fy, cx, cy` (pixels).

    pinhole: `fov_deg` is the horizontal field of view. fisheye: `projection` equidistant (r = f theta) or
    kannala_brandt (r = f (theta + k1 theta^3 + k2 theta^5 + k3 theta^7 + k4 theta^9)); `fov_deg` is the full angle
    whose image circle spans the shorter image side (the corners see further, up to 90 deg off-axis).
    """

    type: str
    fov_deg: float | None = None
    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    projection: str | None = None
    k1: float | None = None
    k2: float | None = None
    k3: float | None = None
    k4: float | None = None

    def __post_init__(self) -> None:
        kind = _choice("type", self.type, ("pinhole", "fisheye"))
        intrinsics = {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy}
        if self.fov_deg is not None:
            extra = [key for key, value in intrinsics.items() if value is not None]
            if extra:
                raise RigError(extra[0], "give either fov_deg or fx, fy, cx, cy, not both")
            high = 180.0 if kind == "fisheye" else math.nextafter(180.0, 0.0)
            span = "(0, 180]" if kind == "fisheye" else "(0, 180)"
            fov = _number("fov_deg", self.fov_deg, math.nextafter(0.0, 1.0), high, f": degrees in {span}")
            object.__setattr__(self, "fov_deg", fov)
        else:
            missing = [key for key, value in intrinsics.items() if value is None]
            if missing:
                raise RigError(missing[0], "missing: a lens needs fov_deg or all of fx, fy, cx, cy (pixels)")
            for key in ("fx", "fy"):
                object.__setattr__(self, key, _positive(key, intrinsics[key], " > 0 (focal length in pixels)"))
            for key in ("cx", "cy"):
                object.__setattr__(self, key, _number(key, intrinsics[key], what=" (principal point, pixels)"))
        distortion = {"k1": self.k1, "k2": self.k2, "k3": self.k3, "k4": self.k4}
        if kind == "pinhole":
            for key, value in {"projection": self.projection, **distortion}.items():
                if value is not None:
                    raise RigError(key, "only fisheye lenses take projection and k1..k4")
            return
        projection = _choice("projection", self.projection or "equidistant", ("equidistant", "kannala_brandt"))
        object.__setattr__(self, "projection", projection)
        for key, value in distortion.items():
            if projection == "equidistant" and value is not None:
                raise RigError(key, "an equidistant fisheye has no k1..k4; use projection: kannala_brandt")
            if projection == "kannala_brandt":
                object.__setattr__(self, key, _number(key, 0.0 if value is None else value))

    def _radius(self, theta: np.ndarray) -> np.ndarray:
        """Image radius / focal length of the fisheye projection at `theta` (rad)."""
        coefficients = (self.k1 or 0.0, self.k2 or 0.0, self.k3 or 0.0, self.k4 or 0.0)
        return theta * (1.0 + sum(k * theta ** (2 * i + 2) for i, k in enumerate(coefficients)))

    def to_lens(self, width: int, height: int, scale: tuple[float, float] = (1.0, 1.0)) -> PinholeLens | FisheyeLens:
        """The renderer's lens for a `width` x `height` image; `scale` resamples intrinsics given in pixels (the
        new size over the size they were given for; pixel centres stay centres: x' = (x + 0.5) s - 0.5)."""
        sx, sy = scale
        if self.fov_deg is None:
            fx, fy = self.fx * sx, self.fy * sy  # type: ignore[operator]
            cx, cy = (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5  # type: ignore[operator]
        if self.type == "pinhole":
            if self.fov_deg is not None:
                return pinhole_for_fov(width, height, self.fov_deg)
            return PinholeLens(fx, fy, cx, cy)
        model: Literal["equidistant", "kannala_brandt"] = (
            "kannala_brandt" if self.projection == "kannala_brandt" else "equidistant"
        )
        distortion = (self.k1 or 0.0, self.k2 or 0.0, self.k3 or 0.0, self.k4 or 0.0)
        if self.fov_deg is None:
            return FisheyeLens(fx, fy, cx, cy, distortion, model)
        focal = (min(width, height) / 2.0) / float(self._radius(np.array(math.radians(self.fov_deg / 2.0))))
        return FisheyeLens(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0, distortion, model)

    def field_of_view_deg(self, width: int, height: int) -> float:
        """The full angle seen across the image: horizontal for a pinhole, across the shorter side for a fisheye."""
        if self.fov_deg is not None:
            return self.fov_deg
        if self.type == "pinhole":
            return math.degrees(2.0 * math.atan(width / 2.0 / self.fx))  # type: ignore[operator]
        theta = np.linspace(0.0, math.pi / 2.0, 2001)
        radius = self._radius(theta) * min(self.fx, self.fy)  # type: ignore[type-var]
        return math.degrees(2.0 * float(np.interp(min(width, height) / 2.0, radius, theta)))


@dataclass(frozen=True)
class CameraSpec:
    """One camera. name says role and side (`eye_left`, `mouth_right`, `glabella`, `boom_left_gt`...);
    position, look_at: (3,) mm headset frame; up: the world direction shown up in the image; width, height: pixels;
    fps: frames per second."""

    name: str
    role: str
    side: str
    position: Vec3
    look_at: Vec3
    lens: LensSpec
    width: int
    height: int
    fps: float
    up: Vec3 = (0.0, 1.0, 0.0)

    def __post_init__(self) -> None:
        name = _name("name", self.name)
        role = _choice("role", self.role, CAMERA_ROLES)
        side = _choice("side", self.side, CAMERA_SIDES)
        stem = role if side == "center" else f"{role}_{side}"
        if not re.fullmatch(rf"{stem}(_[a-z0-9_]+)?", name):
            raise RigError(
                "name", f"got {name!r}, expected '{stem}' or '{stem}_<suffix>' for role {role!r}, side {side!r}"
            )
        position = _vec3("position", self.position)
        if (side == "left" and position[0] <= 0) or (side == "right" and position[0] >= 0):
            sign = ">" if side == "left" else "<"
            raise RigError(
                "side",
                f"side {side!r} needs position x {sign} 0 (+X is the subject's left), got x = {position[0]} mm",
            )
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "look_at", _vec3("look_at", self.look_at))
        object.__setattr__(self, "up", _vec3("up", self.up, nonzero=True))
        if not isinstance(self.lens, LensSpec):
            raise RigError("lens", f"got {_describe(self.lens)}, expected a LensSpec")
        object.__setattr__(self, "width", _integer("width", self.width, "a positive integer number of pixels"))
        object.__setattr__(self, "height", _integer("height", self.height, "a positive integer number of pixels"))
        object.__setattr__(self, "fps", _positive("fps", self.fps, " > 0 (frames per second)"))
        forward = np.subtract(self.look_at, position)
        if np.linalg.norm(forward) < 1e-6:
            raise RigError("look_at", f"got {list(self.look_at)}, expected a point different from the position")
        if np.linalg.norm(np.cross(_unit(forward), _unit(self.up))) < 1e-6:
            raise RigError("up", f"got {list(self.up)}, expected a direction not parallel to the viewing direction")

    def camera(self, resolution: tuple[int, int] | None = None) -> Camera:
        """The renderer's camera in the headset frame, at the sensor's size or resampled to `resolution`
        (width, height) pixels (intrinsics scale with the image)."""
        width, height = resolution or (self.width, self.height)
        if width < 1 or height < 1:
            raise ValueError(f"resolution must be positive (width, height) pixels, got {resolution}")
        lens = self.lens.to_lens(width, height, scale=(width / self.width, height / self.height))
        return Camera.look_at(self.position, self.look_at, self.up, lens=lens, width=width, height=height)

    @property
    def direction(self) -> np.ndarray:
        """(3,) unit viewing direction (the optical axis) in the headset frame."""
        return _unit(np.subtract(self.look_at, self.position))


@dataclass(frozen=True)
class LedSpec:
    """An IR LED: position (3,) mm, direction (3,) of its beam axis, power (relative radiant intensity, 1 = a
    typical eye-illumination LED), half_angle_deg (off-axis angle at which the intensity halves)."""

    name: str
    position: Vec3
    direction: Vec3
    power: float = 1.0
    half_angle_deg: float = 60.0

    def __post_init__(self) -> None:
        _name("name", self.name)
        object.__setattr__(self, "position", _vec3("position", self.position))
        object.__setattr__(self, "direction", _vec3("direction", self.direction, nonzero=True))
        object.__setattr__(self, "power", _number("power", self.power, 0.0, what=" >= 0 (relative radiant intensity)"))
        high = math.nextafter(90.0, 0.0)
        half = _number("half_angle_deg", self.half_angle_deg, math.nextafter(0.0, 1.0), high, " in (0, 90) degrees")
        object.__setattr__(self, "half_angle_deg", half)

    def light(self, intensity_per_power: float = DEFAULT_LED_INTENSITY) -> PointLight:
        """The renderer's light: intensity = power * intensity_per_power (on-axis irradiance at 1 mm)."""
        beam = Beam(np.asarray(self.direction), self.half_angle_deg)
        return PointLight(np.asarray(self.position), self.power * intensity_per_power, beam)


_SHAPE_FIELDS = {
    "box": ("center", "size"),
    "sphere": ("center", "radius"),
    "capsule": ("start", "end", "radius"),
    "plane": ("center", "normal", "size"),
}


@dataclass(frozen=True)
class OccluderSpec:
    """An opaque primitive in the headset frame that can block a camera's view.

    box: center (3,), size (3,) mm, axis-aligned; sphere: center, radius; capsule: the segment start-end (3,) mm
    thickened by radius; plane: a rectangle at center with unit normal `normal` and size [width, height] mm, width
    along the rectangle's horizontal axis (perpendicular to +Y; along +X for a horizontal plane), seen from both sides.
    """

    name: str
    shape: str
    center: Vec3 | None = None
    size: tuple[float, ...] | None = None
    radius: float | None = None
    start: Vec3 | None = None
    end: Vec3 | None = None
    normal: Vec3 | None = None

    def __post_init__(self) -> None:
        _name("name", self.name)
        shape = _choice("shape", self.shape, OCCLUDER_SHAPES)
        needed = _SHAPE_FIELDS[shape]
        takes = f"a {shape} takes {', '.join(needed)}"
        for key in ("center", "size", "radius", "start", "end", "normal"):
            value = getattr(self, key)
            if key not in needed and value is not None:
                raise RigError(key, f"not used by a {shape} ({takes})")
            if key in needed and value is None:
                raise RigError(key, f"missing ({takes})")
        for key in ("center", "start", "end"):
            if key in needed:
                object.__setattr__(self, key, _vec3(key, getattr(self, key)))
        if "normal" in needed:
            object.__setattr__(self, "normal", _vec3("normal", self.normal, nonzero=True))
        if "radius" in needed:
            object.__setattr__(self, "radius", _positive("radius", self.radius, " > 0 mm"))
        if "size" in needed:
            size = _vector("size", self.size, 3 if shape == "box" else 2)
            for i, value in enumerate(size):
                _positive(f"size[{i}]", value, " > 0 mm")
            object.__setattr__(self, "size", size)
        if shape == "capsule" and self.start == self.end:
            raise RigError("end", "a capsule's end must differ from its start (use a sphere)")

    def _plane_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        normal = _unit(self.normal)
        across = np.cross((0.0, 1.0, 0.0), normal)
        across = across if np.linalg.norm(across) > 1e-6 else np.array([-1.0, 0.0, 0.0])  # horizontal plane: along X
        width_axis = _unit(-across if across[0] < 0 or (across[0] == 0 and across[2] < 0) else across)
        return normal, width_axis, np.cross(normal, width_axis)

    def segment_hits(self, start: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """start: (3,) mm, ends: (N, 3) mm -> (N,) bool, True where the segment start-end[i] meets the solid."""
        direction = ends - start  # (N, 3)
        if self.shape == "sphere":
            return _segment_distance_sq(start, direction, np.asarray(self.center)) < self.radius**2  # type: ignore[operator]
        if self.shape == "capsule":
            axis_start, axis_end = np.asarray(self.start), np.asarray(self.end)
            distance_sq = _segment_segment_distance_sq(start, direction, axis_start, axis_end - axis_start)
            return distance_sq < self.radius**2  # type: ignore[operator]
        center = np.asarray(self.center)
        if self.shape == "box":
            half = np.asarray(self.size) / 2.0
            with np.errstate(divide="ignore", invalid="ignore"):
                t_low = (center - half - start) / direction  # (N, 3)
                t_high = (center + half - start) / direction
            parallel = direction == 0.0
            inside_slab = np.abs(start - center) <= half  # (3,)
            missed = (parallel & ~inside_slab).any(axis=1)  # parallel to a slab it lies outside of
            enter = np.where(parallel, -np.inf, np.minimum(t_low, t_high)).max(axis=1)
            leave = np.where(parallel, np.inf, np.maximum(t_low, t_high)).min(axis=1)
            return ~missed & (enter <= leave) & (leave >= 0.0) & (enter <= 1.0)
        normal, width_axis, height_axis = self._plane_axes()
        facing = direction @ normal
        safe = np.where(np.abs(facing) > 1e-12, facing, 1.0)
        t = ((center - start) @ normal) / safe
        offset = start + t[:, None] * direction - center
        width, height = self.size  # type: ignore[misc]
        return (
            (np.abs(facing) > 1e-12)
            & (t >= 0.0)
            & (t <= 1.0)
            & (np.abs(offset @ width_axis) <= width / 2.0)
            & (np.abs(offset @ height_axis) <= height / 2.0)
        )

    def contains(self, point: Sequence[float]) -> bool:
        """True if `point` (3,) mm lies strictly inside the solid (a plane contains nothing)."""
        point_v = np.asarray(point, dtype=np.float64)
        return bool(self.segment_hits(point_v, point_v[None])[0]) and self.shape != "plane"

    def mesh(self, albedo: float = 0.03) -> Mesh:
        """The occluder as triangles, counter-clockwise from outside (a plane gets both sides), mm headset frame."""
        if self.shape == "sphere":
            return uv_sphere(float(self.radius), 12, 24, self.center, albedo)  # type: ignore[arg-type]
        if self.shape == "capsule":
            start, end = np.asarray(self.start), np.asarray(self.end)
            unit = uv_sphere(float(self.radius), 13, 24)  # type: ignore[arg-type]  # poles on +-Y, no equator ring
            half_length = np.linalg.norm(end - start) / 2.0
            vertices = unit.vertices.astype(np.float64)
            vertices[:, 1] += np.where(vertices[:, 1] > 0, half_length, -half_length)
            rotation = _rotation_from_y(_unit(end - start))
            return _dark_mesh(vertices @ rotation.T + (start + end) / 2.0, unit.triangles, albedo)
        center = np.asarray(self.center)
        if self.shape == "box":
            half_size = np.asarray(self.size) / 2.0
            corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
            return _dark_mesh(center + corners * half_size, _BOX_TRIANGLES, albedo)
        _, width_axis, height_axis = self._plane_axes()
        width, height = self.size  # type: ignore[misc]
        corners_2d = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        quad = np.array([center + u * width / 2 * width_axis + v * height / 2 * height_axis for u, v in corners_2d])
        triangles = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6]], dtype=np.int32)
        return _dark_mesh(np.concatenate([quad, quad]), triangles, albedo)


def _dark_mesh(vertices: np.ndarray, triangles: np.ndarray, albedo: float) -> Mesh:
    """A matte (no specular) mesh of uniform albedo."""
    return Mesh(vertices, triangles, np.full(len(vertices), albedo, np.float32), np.zeros(len(vertices), np.float32))


# Corners indexed x * 4 + y * 2 + z with 0 = low, 1 = high; two counter-clockwise triangles per face seen from outside.
_BOX_TRIANGLES = np.array(
    [
        [0, 1, 3], [0, 3, 2],  # -X
        [4, 6, 7], [4, 7, 5],  # +X
        [0, 4, 5], [0, 5, 1],  # -Y
        [2, 3, 7], [2, 7, 6],  # +Y
        [0, 2, 6], [0, 6, 4],  # -Z
        [1, 5, 7], [1, 7, 3],  # +Z
    ],
    dtype=np.int32,
)  # fmt: skip


def _rotation_from_y(axis: np.ndarray) -> np.ndarray:
    """A rotation taking +Y to the unit vector `axis`."""
    y_axis = np.array([0.0, 1.0, 0.0])
    cross, cos = np.cross(y_axis, axis), float(y_axis @ axis)
    if np.linalg.norm(cross) < 1e-12:
        return np.eye(3) if cos > 0 else np.diag([1.0, -1.0, -1.0])
    skew = np.array([[0, -cross[2], cross[1]], [cross[2], 0, -cross[0]], [-cross[1], cross[0], 0]])
    return np.eye(3) + skew + skew @ skew / (1.0 + cos)


def _segment_distance_sq(start: np.ndarray, direction: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Squared distance from `point` (3,) to the segments start + s * direction, s in [0, 1]; direction (N, 3)."""
    length_sq = np.maximum(np.einsum("ni,ni->n", direction, direction), 1e-30)
    s = np.clip(((point - start) @ direction.T) / length_sq, 0.0, 1.0)
    closest = start + s[:, None] * direction
    return np.einsum("ni,ni->n", closest - point, closest - point)


def _segment_segment_distance_sq(
    start: np.ndarray, direction: np.ndarray, other_start: np.ndarray, other_direction: np.ndarray
) -> np.ndarray:
    """Squared distance between the segments start + s * direction[i] (N of them) and one segment other_start +
    t * other_direction (non-degenerate), s, t in [0, 1] (closest points by clamping, as in Ericson's RTCD 5.1.9)."""
    a = np.maximum(np.einsum("ni,ni->n", direction, direction), 1e-30)
    e = float(other_direction @ other_direction)
    r = start - other_start
    b = direction @ other_direction
    c = direction @ r
    f = float(other_direction @ r)
    denominator = a * e - b * b
    s = np.where(denominator > 1e-12 * a * e, np.clip((b * f - c * e) / np.maximum(denominator, 1e-30), 0.0, 1.0), 0.0)
    t = (b * s + f) / e
    below, above = t < 0.0, t > 1.0
    s = np.where(below, np.clip(-c / a, 0.0, 1.0), np.where(above, np.clip((b - c) / a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    gap = start + s[:, None] * direction - (other_start + t[:, None] * other_direction)
    return np.einsum("ni,ni->n", gap, gap)


@dataclass(frozen=True)
class PoseSpec:
    """The nominal head pose in the headset frame: translation_mm (3,), rotation_deg (3,) axis-angle degrees."""

    translation_mm: Vec3 = (0.0, 0.0, 0.0)
    rotation_deg: Vec3 = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "translation_mm", _vec3("translation_mm", self.translation_mm))
        object.__setattr__(self, "rotation_deg", _vec3("rotation_deg", self.rotation_deg))

    def head_pose(self) -> HeadPose:
        return HeadPose.from_axis_angle(self.rotation_deg, self.translation_mm)


@dataclass(frozen=True)
class HeadsetRig:
    """A headset: cameras, IR LEDs, occluders (all in the headset frame, mm) and the nominal head pose."""

    name: str
    cameras: tuple[CameraSpec, ...]
    description: str = ""
    nominal_head_pose: PoseSpec = field(default_factory=PoseSpec)
    leds: tuple[LedSpec, ...] = ()
    occluders: tuple[OccluderSpec, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise RigError("name", f"got {_describe(self.name)}, expected a non-empty string")
        if not isinstance(self.description, str):
            raise RigError("description", f"got {_describe(self.description)}, expected a string")
        if not isinstance(self.nominal_head_pose, PoseSpec):
            raise RigError("nominal_head_pose", f"got {_describe(self.nominal_head_pose)}, expected a PoseSpec")
        for key, kind in (("cameras", CameraSpec), ("leds", LedSpec), ("occluders", OccluderSpec)):
            items = getattr(self, key)
            if isinstance(items, str | Mapping) or not isinstance(items, Sequence):
                raise RigError(key, f"got {_describe(items)}, expected a list")
            items = tuple(items)
            seen: set[str] = set()
            for i, item in enumerate(items):
                if not isinstance(item, kind):
                    raise RigError(f"{key}[{i}]", f"got {_describe(item)}, expected a {kind.__name__}")
                if item.name in seen:
                    raise RigError(f"{key}[{i}].name", f"duplicate name {item.name!r}; names must be unique")
                seen.add(item.name)
            object.__setattr__(self, key, items)
        if not self.cameras:
            raise RigError("cameras", "got an empty list, expected at least one camera")
        for i, camera in enumerate(self.cameras):
            for occluder in self.occluders:
                if occluder.contains(camera.position):
                    raise RigError(
                        f"cameras[{i}].position",
                        f"camera {camera.name!r} at {list(camera.position)} is inside occluder {occluder.name!r}",
                    )

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(camera.name for camera in self.cameras)

    def camera_spec(self, name: str) -> CameraSpec:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise KeyError(f"rig {self.name!r} has no camera {name!r}; it has {', '.join(self.camera_names)}")

    def camera(self, name: str, resolution: tuple[int, int] | None = None) -> Camera:
        """The renderer's `Camera` for camera `name`, in the headset frame (see `CameraSpec.camera`)."""
        return self.camera_spec(name).camera(resolution)

    def cameras_by_role(self, role: str) -> tuple[CameraSpec, ...]:
        """The cameras of one role (eye, mouth, glabella, boom), in file order."""
        _choice("role", role, CAMERA_ROLES)
        return tuple(camera for camera in self.cameras if camera.role == role)

    @property
    def head_pose(self) -> HeadPose:
        """The nominal head pose (the identity for every preset)."""
        return self.nominal_head_pose.head_pose()

    def lights(self, intensity_per_power: float = DEFAULT_LED_INTENSITY) -> list[PointLight]:
        """All LEDs as the renderer's near-field lights (intensity = power * intensity_per_power)."""
        return [led.light(intensity_per_power) for led in self.leds]

    def occluded(self, camera_name: str, points: object) -> np.ndarray:
        """points: (N, 3) mm headset frame -> (N,) bool, True where the segment from the camera centre to the point
        passes through an occluder. The face's own occlusion is the renderer's depth test, not this."""
        array = np.asarray(points, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 3 or not np.isfinite(array).all():
            raise ValueError(f"points must be a finite (N, 3) array in mm, got shape {array.shape}")
        start = np.asarray(self.camera_spec(camera_name).position)
        blocked = np.zeros(len(array), dtype=bool)
        for occluder in self.occluders:
            blocked |= occluder.segment_hits(start, array)
        return blocked

    def occluder_meshes(self, albedo: float = 0.03) -> dict[str, Mesh]:
        """Each occluder triangulated (name -> Mesh, headset frame), to draw as dark geometry;
        `Mesh.concatenate(list(...values()))` gives one mesh."""
        return {occluder.name: occluder.mesh(albedo) for occluder in self.occluders}


# ---------------------------------------------------------------------------------------------------------------
# Files


def _build(kind: type, data: object, path: str) -> Any:
    """Build dataclass `kind` from a mapping: unknown and missing keys are errors; nested objects built in turn."""
    fields = {f.name: f for f in dataclasses.fields(kind)}
    if not isinstance(data, Mapping):
        raise RigError(path, f"got {_describe(data)}, expected a mapping with keys {', '.join(fields)}")
    for key in data:
        if key not in fields:
            raise RigError(f"{path}.{key}".lstrip("."), f"unknown key; expected one of {', '.join(fields)}")
    for name, spec in fields.items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required and name not in data:
            raise RigError(f"{path}.{name}".lstrip("."), f"missing (a {kind.__name__} needs {name})")
    values = {}
    for key, value in data.items():
        key_path = f"{path}.{key}".lstrip(".")
        nested = _NESTED.get((kind, key))
        if nested is None:
            values[key] = value
        elif nested is PoseSpec or nested is LensSpec:
            values[key] = _build(nested, value, key_path)
        else:
            if not isinstance(value, list):
                raise RigError(key_path, f"got {_describe(value)}, expected a list")
            values[key] = tuple(_build(nested, item, f"{key_path}[{i}]") for i, item in enumerate(value))
    try:
        return kind(**values)
    except RigError as error:
        raise error.within(path) from None


_NESTED: dict[tuple[type, str], type] = {
    (HeadsetRig, "cameras"): CameraSpec,
    (HeadsetRig, "leds"): LedSpec,
    (HeadsetRig, "occluders"): OccluderSpec,
    (HeadsetRig, "nominal_head_pose"): PoseSpec,
    (CameraSpec, "lens"): LensSpec,
}


def rig_from_dict(data: object, source: str = "<dict>") -> HeadsetRig:
    """A rig from parsed file content; errors name `source` and the field path."""
    try:
        return _build(HeadsetRig, data, "")
    except RigError as error:
        raise error.within(source=source) from None


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


_TOP_LEVEL_ORDER = ("name", "description", "nominal_head_pose", "cameras", "leds", "occluders")


def rig_to_dict(rig: HeadsetRig) -> dict[str, object]:
    """The rig as plain lists and dicts (the file format), fields in a readable order; None fields left out."""
    plain = _plain(rig)
    assert isinstance(plain, dict)
    return {key: plain[key] for key in _TOP_LEVEL_ORDER}


def read_rig_file(path: str | Path) -> HeadsetRig:
    """A rig from a .yaml/.yml/.json file; every error names the file and the field."""
    path = Path(path)
    if path.suffix.lower() not in RIG_SUFFIXES:
        raise RigError("", f"expected a rig file ending in {', '.join(RIG_SUFFIXES)}", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RigError("", f"cannot read the rig file: {error.strerror or error}", str(path)) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise RigError("", f"not valid {path.suffix[1:].upper()}: {error}", str(path)) from None
    return rig_from_dict(data, str(path))


def save_rig(rig: HeadsetRig, path: str | Path) -> Path:
    """Write `rig` as YAML (or JSON for a .json path) atomically: a temporary file in the same folder, then a
    rename, so readers never see a half-written rig. Returns the path."""
    path = Path(path)
    if path.suffix.lower() not in RIG_SUFFIXES:
        raise ValueError(f"rig files end in {', '.join(RIG_SUFFIXES)}, got {path}")
    data = rig_to_dict(rig)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2) + "\n"
    else:
        header = f"# egoface headset rig {rig.name!r}: mm and degrees, headset frame (see docs/headset.md)\n"
        text = header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private (0600); a rig file is for sharing
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def describe_rig(rig: HeadsetRig) -> dict[str, object]:
    """A JSON-ready summary: per camera role, side, position (mm), look direction (unit), fov (deg), resolution
    [width, height], fps and lens type; the number of LEDs and the occluder names."""
    cameras = []
    for camera in rig.cameras:
        lens = camera.lens
        cameras.append(
            {
                "name": camera.name,
                "role": camera.role,
                "side": camera.side,
                "position_mm": list(camera.position),
                "look_direction": [round(float(v), 4) for v in camera.direction],
                "fov_deg": round(lens.field_of_view_deg(camera.width, camera.height), 2),
                "lens": lens.type if lens.type == "pinhole" else f"fisheye/{lens.projection}",
                "resolution": [camera.width, camera.height],
                "fps": camera.fps,
            }
        )
    return {
        "name": rig.name,
        "description": rig.description,
        "cameras": cameras,
        "leds": len(rig.leds),
        "occluders": [occluder.name for occluder in rig.occluders],
    }
