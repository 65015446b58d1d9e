"""Searching one camera's pose inside the headset for the best weighted V/M score.

The feasible mount region (`MountRegion`, headset frame, mm) is where a camera centre may go:

- inside the *envelope*: x and y within the bounding box of the rig's occluders grown by `margin_mm`; z from the
  depth of the eye centres (no camera sits behind the eyes) up to the face side of the shell, the rig's largest
  occluder by bounding-box volume (the display body): cameras sit between the face and the display;
- outside every occluder grown by `clearance_mm` (lens cups, shell, boom arms; planes are thin and only block views);
- outside the *glasses keep-out box*, where glasses frames sit: across both eyes, |x| < |eye x| + 32 mm,
  |y - eye y| < 24 mm, z within 5 mm of the lens plane 26 mm in front of the eye centres (egoface glasses geometry);
- at least `face_clearance_mm` from the mean neutral face of the population and on its outer side;
- on the camera's own side (x > 0 for a left camera, x < 0 for a right one).

The pose is 5 numbers: the centre (3, mm) and the viewing direction as azimuth and elevation (degrees; azimuth about
+Y from +Z toward +X, elevation toward +Y); the aim distance (position to look_at) and `up` keep their start values.
The search is a (1+1) evolution strategy with the 1/5th success rule (Rechenberg): a Gaussian step of
`step_mm` / `step_deg` times a global factor around the best pose so far, x1.5 after a success and x1.5^-1/4 after a
failure; infeasible draws are redrawn and not evaluated. The score is `placement_score` with the start pose's V and
M as references (so the start scores 1.0). Deterministic given the population and `seed`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from egoface.headset.rig import CameraSpec, HeadsetRig, LedSpec, OccluderSpec, RigError
from egoface.placement.compare import placement_score
from egoface.placement.metrics import DEPTH_RESOLUTION, evaluate_cameras
from egoface.placement.population import Population

__all__ = ["CameraPose", "MountRegion", "SearchResult", "mount_region", "search_camera"]

_GLASSES_LENS_AHEAD_MM = 26.0  # the glasses' lens plane in front of the eye centres (egoface.face.appearance)
_GLASSES_HALF_WIDTH_BEYOND_EYE_MM = 32.0
_GLASSES_HALF_HEIGHT_MM = 24.0
_GLASSES_HALF_DEPTH_MM = 5.0
_MAX_REDRAWS = 200
_GROW, _SHRINK = 1.5, 1.5**-0.25


@dataclass(frozen=True)
class MountRegion:
    """Where a camera centre may go (see the module docstring). envelope: ((3,), (3,)) min and max corners, mm;
    keep_out: solids it may not be inside; face_points, face_normals: (F, 3) the face surface to stay clear of."""

    envelope: tuple[tuple[float, float, float], tuple[float, float, float]]
    keep_out: tuple[OccluderSpec, ...]
    face_points: np.ndarray
    face_normals: np.ndarray
    face_clearance_mm: float
    tree: cKDTree = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", cKDTree(self.face_points))

    def violation(self, position: object, side: str = "center") -> str | None:
        """Why a camera of `side` cannot sit at `position` (3,) mm, or None if it can."""
        point = np.asarray(position, dtype=np.float64)
        low, high = np.asarray(self.envelope[0]), np.asarray(self.envelope[1])
        if (point < low).any() or (point > high).any():
            corners = [[round(float(v), 1) for v in corner] for corner in (low, high)]
            return f"outside the mount envelope {corners} mm"
        if (side == "left" and point[0] <= 0) or (side == "right" and point[0] >= 0):
            return f"a {side} camera must stay on the subject's {side} (x {'>' if side == 'left' else '<'} 0)"
        for solid in self.keep_out:
            if solid.contains(tuple(point)):
                return f"inside the keep-out {solid.name!r}"
        distance, nearest = self.tree.query(point)
        if (point - self.face_points[nearest]) @ self.face_normals[nearest] <= 0.0:
            return "inside the face"
        if distance < self.face_clearance_mm:
            return f"{distance:.1f} mm from the face (needs {self.face_clearance_mm} mm)"
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "envelope_mm": [list(self.envelope[0]), list(self.envelope[1])],
            "keep_out": [solid.name for solid in self.keep_out],
            "face_clearance_mm": self.face_clearance_mm,
        }


def _grown(solid: OccluderSpec, clearance: float) -> OccluderSpec | None:
    if solid.shape == "box":
        return dataclasses.replace(solid, size=tuple(s + 2 * clearance for s in solid.size))  # type: ignore[union-attr]
    if solid.shape in ("sphere", "capsule"):
        return dataclasses.replace(solid, radius=solid.radius + clearance)  # type: ignore[operator]
    return None  # a plane has no inside


def _bounds(solid: OccluderSpec) -> tuple[np.ndarray, np.ndarray]:
    vertices = solid.mesh().vertices
    return vertices.min(axis=0).astype(np.float64), vertices.max(axis=0).astype(np.float64)


def mount_region(
    rig: HeadsetRig,
    population: Population,
    margin_mm: float = 10.0,
    clearance_mm: float = 2.0,
    face_clearance_mm: float = 8.0,
    glasses_keep_out: bool = True,
    envelope: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
) -> MountRegion:
    """The feasible mount region of `rig` for the faces of `population` (module docstring); `envelope` overrides the
    one derived from the occluders ((min x, y, z), (max x, y, z) mm)."""
    if envelope is None:
        if not rig.occluders:
            raise ValueError(f"rig {rig.name!r} has no occluders to derive a mount envelope from; give one")
        bounds = [_bounds(solid) for solid in rig.occluders]
        low = np.min([b[0] for b in bounds], axis=0) - margin_mm
        high = np.max([b[1] for b in bounds], axis=0) + margin_mm
        shell = max(range(len(bounds)), key=lambda k: float(np.prod(bounds[k][1] - bounds[k][0])))
        low[2] = float(population.eyeball_centers[..., 2].mean())  # in front of the eye centres
        high[2] = bounds[shell][0][2]  # behind the display body's face side
        envelope = (_point(low, 2), _point(high, 2))
    keep_out = [grown for solid in rig.occluders if (grown := _grown(solid, clearance_mm)) is not None]
    if glasses_keep_out:
        eyes = population.eyeball_centers.mean(axis=0)  # (2, 3)
        half_width = float(np.abs(eyes[:, 0]).max()) + _GLASSES_HALF_WIDTH_BEYOND_EYE_MM
        centre = (0.0, float(eyes[:, 1].mean()), float(eyes[:, 2].mean()) + _GLASSES_LENS_AHEAD_MM)
        size = (2 * half_width, 2 * _GLASSES_HALF_HEIGHT_MM, 2 * _GLASSES_HALF_DEPTH_MM)
        keep_out.append(OccluderSpec("glasses_zone", "box", center=centre, size=size))
    face = population.topology.regions["face"]
    points = population.mean_neutral[face].astype(np.float64)
    normals = population.normals[:, face].mean(axis=0).astype(np.float64)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
    return MountRegion(envelope, tuple(keep_out), points, normals, face_clearance_mm)


@dataclass(frozen=True)
class CameraPose:
    """A camera pose with its figures: position, look_at (3,) mm; V, M (px) and the score."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float]
    visibility: float
    range_of_motion_px: float
    score: float

    def to_json(self) -> dict[str, object]:
        return {
            "position_mm": [round(v, 2) for v in self.position],
            "look_at_mm": [round(v, 2) for v in self.look_at],
            "visibility": round(self.visibility, 4),
            "range_of_motion_px": round(self.range_of_motion_px, 3),
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class SearchResult:
    """The start and best pose of `camera`, the rig with the best pose (`rig`), how many poses were evaluated and
    how many draws were infeasible, the score after each evaluation (`history`), the region and the wall time."""

    camera: str
    start: CameraPose
    best: CameraPose
    rig: HeadsetRig
    evaluations: int
    infeasible_draws: int
    history: tuple[float, ...]
    region: MountRegion
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "camera": self.camera,
            "start": self.start.to_json(),
            "best": self.best.to_json(),
            "improvement": round(self.best.score - self.start.score, 4),
            "evaluations": self.evaluations,
            "infeasible_draws": self.infeasible_draws,
            "history": [round(score, 4) for score in self.history],
            "region": self.region.to_json(),
            "seconds": round(self.seconds, 2),
        }


def _point(values: np.ndarray, decimals: int = 3) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in np.round(values, decimals))
    return (x, y, z)


def _angles(direction: np.ndarray) -> tuple[float, float]:
    """Unit direction -> (azimuth, elevation) degrees."""
    return math.degrees(math.atan2(direction[0], direction[2])), math.degrees(math.asin(np.clip(direction[1], -1, 1)))


def _direction(azimuth: float, elevation: float) -> np.ndarray:
    a, e = math.radians(azimuth), math.radians(elevation)
    return np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])


def _posed_spec(spec: CameraSpec, params: np.ndarray, aim_mm: float) -> CameraSpec:
    position = params[:3]
    look_at = position + aim_mm * _direction(params[3], params[4])
    return dataclasses.replace(
        spec,
        position=_point(position),
        look_at=_point(look_at),
    )


def _carried_leds(rig: HeadsetRig, old: CameraSpec, new: CameraSpec) -> tuple[LedSpec, ...]:
    """The rig's LEDs, those named `<camera>_<k>` (mounted beside the camera) moved rigidly with it."""
    before, after = old.camera(), new.camera()
    turn = after.rotation.T @ before.rotation  # old camera frame -> new, in world coordinates
    leds = []
    for led in rig.leds:
        prefix, _, index = led.name.rpartition("_")
        if prefix == old.name and index.isdigit():
            position = after.center + turn @ (np.asarray(led.position) - before.center)
            direction = turn @ np.asarray(led.direction)
            led = dataclasses.replace(
                led,
                position=_point(position),
                direction=_point(direction, 4),
            )
        leds.append(led)
    return tuple(leds)


def _with_camera(rig: HeadsetRig, spec: CameraSpec) -> HeadsetRig:
    old = rig.camera_spec(spec.name)
    cameras = tuple(spec if camera.name == spec.name else camera for camera in rig.cameras)
    return dataclasses.replace(rig, cameras=cameras, leds=_carried_leds(rig, old, spec))


def _mirrored(spec: CameraSpec, partner: CameraSpec) -> CameraSpec:
    def flip(point: tuple[float, float, float]) -> tuple[float, float, float]:
        return (-point[0], point[1], point[2])

    return dataclasses.replace(partner, position=flip(spec.position), look_at=flip(spec.look_at), up=flip(spec.up))


def _partner_name(name: str) -> str | None:
    for a, b in (("_left", "_right"), ("_right", "_left")):
        if f"{a}_" in f"{name}_":
            return f"{name}_".replace(f"{a}_", f"{b}_", 1)[:-1]
    return None


def search_camera(
    rig: HeadsetRig,
    camera: str,
    population: Population,
    budget: int = 40,
    seed: int = 0,
    visibility_weight: float = 0.5,
    region: MountRegion | None = None,
    step_mm: float = 6.0,
    step_deg: float = 6.0,
    mirror: bool = False,
    depth_resolution: int = DEPTH_RESOLUTION,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Search the pose of `camera` for the best `placement_score` (relative to its start pose) within `region`
    (default `mount_region(rig, population)`), spending `budget` evaluations including the start.

    mirror: also move the camera's mirror partner (`_left` <-> `_right`) to the mirrored best pose in the returned
    rig (only `camera` is evaluated). progress: called with (evaluations done, budget).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 2:
        raise ValueError(
            f"budget must be an integer >= 2 evaluations (the start and at least one more), got {budget!r}"
        )
    for name, value in (("step_mm", step_mm), ("step_deg", step_deg)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    start_time = time.perf_counter()
    spec = rig.camera_spec(camera)  # KeyError naming the rig's cameras
    partner = None
    if mirror:
        partner_name = _partner_name(camera)
        if partner_name is None or partner_name not in rig.camera_names:
            raise ValueError(f"--mirror: camera {camera!r} has no mirror partner in rig {rig.name!r}")
        partner = rig.camera_spec(partner_name)
    region = region or mount_region(rig, population)
    problem = region.violation(spec.position, spec.side)
    if problem is not None:
        raise ValueError(f"the start pose of {camera!r} at {list(spec.position)} mm is not feasible: {problem}")
    placement_score(0.0, 0.0, 1.0, 1.0, visibility_weight)  # checks the weight
    aim = float(np.linalg.norm(np.subtract(spec.look_at, spec.position)))
    scale = np.array([step_mm] * 3 + [step_deg] * 2)
    rng = np.random.default_rng(seed)

    def measure(candidate: CameraSpec) -> tuple[float, float]:
        (metrics,) = evaluate_cameras(_with_camera(rig, candidate), [camera], population, depth_resolution)
        return metrics.visibility, metrics.range_of_motion_px

    start_v, start_m = measure(spec)

    def score(visibility: float, motion: float) -> float:
        return placement_score(visibility, motion, start_v, start_m, visibility_weight)

    current = np.concatenate([np.asarray(spec.position), _angles(spec.direction)])
    best_spec, best = spec, (start_v, start_m, score(start_v, start_m))
    history = [best[2]]
    sigma, infeasible = 1.0, 0
    if progress is not None:
        progress(1, budget)
    while len(history) < budget:
        for _ in range(_MAX_REDRAWS):
            params = current + sigma * scale * rng.standard_normal(5)
            try:
                candidate = _posed_spec(spec, params, aim)
            except RigError:  # e.g. looking along `up`
                infeasible += 1
                continue
            if region.violation(candidate.position, spec.side) is None:
                break
            infeasible += 1
        else:
            raise ValueError(
                f"no feasible pose found near {list(current[:3].round(1))} mm in {_MAX_REDRAWS} draws; the mount "
                "region may be too tight (try smaller steps or a larger envelope)"
            )
        v, m = measure(candidate)
        value = score(v, m)
        if value > best[2]:
            current, best_spec, best = params, candidate, (v, m, value)
            sigma *= _GROW
        else:
            sigma *= _SHRINK
        history.append(best[2])
        if progress is not None:
            progress(len(history), budget)
    best_rig = _with_camera(rig, best_spec)
    if partner is not None:
        best_rig = _with_camera(best_rig, _mirrored(best_spec, partner))
    best_rig = dataclasses.replace(
        best_rig,
        name=f"{rig.name}-placed",
        description=(f"{rig.description} Camera {camera!r} placed by `egoface placement search` (seed {seed}, "
                     f"{budget} evaluations, score {best[2]:.3f} vs 1.000 at the start).").strip(),
    )  # fmt: skip

    def pose(camera_spec: CameraSpec, figures: tuple[float, float, float]) -> CameraPose:
        return CameraPose(camera_spec.position, camera_spec.look_at, *figures)

    return SearchResult(
        camera=camera,
        start=pose(spec, (start_v, start_m, score(start_v, start_m))),
        best=pose(best_spec, best),
        rig=best_rig,
        evaluations=len(history),
        infeasible_draws=infeasible,
        history=tuple(history),
        region=region,
        seconds=time.perf_counter() - start_time,
    )
