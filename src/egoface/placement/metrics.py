"""Visibility V (REFA Eq. 1) and range of motion M (REFA Eq. 2) of a headset's cameras over a population.

For one sample s (identity i worn at donning j) and camera c with optical axis o_c (unit, pointing into the scene)
and centre p_c, on the neutral face in the headset frame:

- a key-region vertex v (position x_v, unit outward normal n_v) is *seen* when it projects inside the image, faces
  the camera (n_v . (p_c - x_v) > 0), is not hidden by the face itself or by glasses frames (its distance from the
  camera is at most the depth buffer's, rendered at `depth_resolution`^2 from c, plus 1.5 mm + 3 % of the distance)
  and the segment from the camera to it meets no headset occluder (`HeadsetRig.occluded`);
- facing_v = max(0, -n_v . o_c): the paper's n_r^T o_C with the axis turned around, so that a surface looking straight
  back along the optical axis scores 1 and one seen edge-on or from behind 0;
- V_r(s) = sum_v a_v facing_v seen_v / sum_v a_v over the vertices of key region r (a_v: vertex area on the mean
  face, so the mean is over the region's surface); F_r(s) = the same with facing_v = 1 (the visible fraction);
- V_c(s) = mean over the camera's key regions of V_r(s) (Eq. 1), F_c(s) likewise;
- M_c(s) = mean over the camera's key expressions e of || P(K_e) - P(K_neutral) ||_F (Eq. 2): P projects with the
  camera's own lens and resolution (pixels), K are the camera's keypoints; a keypoint that is not seen at neutral or
  falls outside the image at e contributes nothing.

`visibility_ray` is V with the unit ray from the camera to each vertex in place of o_c (what a wide lens really sees
off-axis). Means, standard deviations and 5th percentiles are over the N x D samples. Occlusion is tested on the
neutral face only (one depth buffer per camera, identity and donning).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from egoface.headset.pose import HeadPose
from egoface.headset.rig import CameraSpec, HeadsetRig
from egoface.placement.keys import CameraKeys
from egoface.placement.population import Population
from egoface.render.cameras import Camera
from egoface.render.raster import rasterize

__all__ = [
    "DEPTH_RESOLUTION",
    "CameraMetrics",
    "RegionMetrics",
    "RigMetrics",
    "evaluate_cameras",
    "evaluate_rig",
    "single_threaded",
]

#: Side of the square depth buffer used for occlusion tests, pixels.
DEPTH_RESOLUTION = 96
_DEPTH_TOLERANCE_MM = 1.5
_DEPTH_TOLERANCE_FRACTION = 0.03

Progress = Callable[[int, int], None]


def _stats(values: np.ndarray) -> tuple[float, float, float]:
    """mean, standard deviation and 5th percentile of a 1-D array."""
    return float(values.mean()), float(values.std()), float(np.percentile(values, 5.0))


@dataclass(frozen=True)
class RegionMetrics:
    """One key region seen by one camera: V_r, its spread, F_r and M restricted to the region's keypoints (px)."""

    visibility: float
    visibility_std: float
    visible_fraction: float
    range_of_motion_px: float
    num_vertices: int
    num_keypoints: int

    def to_json(self) -> dict[str, float | int]:
        return {
            "visibility": round(self.visibility, 4),
            "visibility_std": round(self.visibility_std, 4),
            "visible_fraction": round(self.visible_fraction, 4),
            "range_of_motion_px": round(self.range_of_motion_px, 3),
            "num_vertices": self.num_vertices,
            "num_keypoints": self.num_keypoints,
        }


@dataclass(frozen=True)
class CameraMetrics:
    """One camera over the population: means, standard deviations (`_std`) and 5th percentiles (`_p05`, the worst
    5 % of samples) of V, F (visible fraction) and M (pixels); per key region and per key expression; and the
    per-sample values `sample_visibility`, `sample_range_of_motion_px` (N * D,), identity-major."""

    camera: str
    role: str
    side: str
    visibility: float
    visibility_std: float
    visibility_p05: float
    visibility_ray: float
    visible_fraction: float
    visible_fraction_std: float
    range_of_motion_px: float
    range_of_motion_px_std: float
    range_of_motion_px_p05: float
    num_keypoints: int
    regions: dict[str, RegionMetrics]
    expressions: dict[str, float]
    sample_visibility: np.ndarray = field(repr=False)
    sample_range_of_motion_px: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, object]:
        return {
            "camera": self.camera,
            "role": self.role,
            "visibility": round(self.visibility, 4),
            "visible_fraction": round(self.visible_fraction, 4),
            "range_of_motion_px": round(self.range_of_motion_px, 3),
            "side": self.side,
            "visibility_std": round(self.visibility_std, 4),
            "visibility_p05": round(self.visibility_p05, 4),
            "visibility_ray": round(self.visibility_ray, 4),
            "visible_fraction_std": round(self.visible_fraction_std, 4),
            "range_of_motion_px_std": round(self.range_of_motion_px_std, 3),
            "range_of_motion_px_p05": round(self.range_of_motion_px_p05, 3),
            "num_keypoints": self.num_keypoints,
            "regions": {name: region.to_json() for name, region in self.regions.items()},
            "expressions": {name: round(value, 3) for name, value in self.expressions.items()},
        }


@dataclass(frozen=True)
class RigMetrics:
    """All cameras of a rig over one population; `seconds` is the wall time of the evaluation."""

    rig: str
    face_model: str
    num_identities: int
    num_donnings: int
    seed: int
    depth_resolution: int
    cameras: tuple[CameraMetrics, ...]
    seconds: float

    def camera(self, name: str) -> CameraMetrics:
        for camera in self.cameras:
            if camera.camera == name:
                return camera
        raise KeyError(f"no camera {name!r} in the metrics of {self.rig!r}; it has {[c.camera for c in self.cameras]}")

    def roles(self) -> dict[str, dict[str, float]]:
        """Per camera role, the mean over its cameras of visibility, visible_fraction and range_of_motion_px."""
        result: dict[str, dict[str, float]] = {}
        for role in dict.fromkeys(camera.role for camera in self.cameras):
            members = [camera for camera in self.cameras if camera.role == role]
            result[role] = {
                key: round(float(np.mean([getattr(camera, key) for camera in members])), 4)
                for key in ("visibility", "visible_fraction", "range_of_motion_px")
            }
        return result

    def to_json(self) -> dict[str, object]:
        return {
            "headset": self.rig,
            "face_model": self.face_model,
            "population": self.num_identities,
            "donnings": self.num_donnings,
            "seed": self.seed,
            "depth_resolution": self.depth_resolution,
            "cameras": [camera.to_json() for camera in self.cameras],
            "roles": self.roles(),
            "seconds": round(self.seconds, 2),
        }


class _CameraPass:
    """The arrays one camera needs, and its per-sample accumulators (S samples, R regions, L keypoints)."""

    def __init__(self, spec: CameraSpec, keys: CameraKeys, population: Population, resolution: int) -> None:
        self.spec = spec
        self.keys = keys
        self.low = spec.camera((resolution, resolution))
        self.full: Camera = spec.camera()
        self.axis = self.full.optical_axis
        self.centre = self.full.center
        self.key_ids = keys.vertex_ids  # (K,)
        self.region_names = tuple(keys.regions)
        members = np.stack([np.isin(self.key_ids, ids) for ids in keys.regions.values()])  # (R, K)
        area = population.vertex_area[self.key_ids]
        weights = members * area
        totals = weights.sum(axis=1, keepdims=True)
        # A region of zero area (vertices outside every triangle) falls back to a plain mean over its vertices.
        self.weights = np.where(
            totals > 0, weights / np.maximum(totals, 1e-30), members / members.sum(1, keepdims=True)
        )
        self.members = members
        self.keypoint_index = np.searchsorted(self.key_ids, keys.keypoints)  # (L,) into key_ids
        self.keypoint_columns = population.tracked_columns(keys.keypoints)  # (L,) into population.tracked
        self.keypoint_regions = members[:, self.keypoint_index]  # (R, L)
        self.expression_rows = np.array([1 + population.expressions.index(name) for name in keys.expressions])
        samples, regions = population.num_identities * population.num_donnings, len(self.region_names)
        self.visibility = np.zeros((samples, regions))
        self.visibility_ray = np.zeros((samples, regions))
        self.fraction = np.zeros((samples, regions))
        self.motion = np.zeros((samples, len(self.expression_rows)))
        self.motion_regions = np.zeros((samples, len(self.expression_rows), regions))

    def seen(
        self, rig: HeadsetRig, render_vertices: np.ndarray, triangles: np.ndarray, key_vertices: np.ndarray,
        key_normals: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """render_vertices: (D, P, 3) occluding surface; key_vertices, key_normals: (D, K, 3), headset frame ->
        (D, K) bool seen (in view, front-facing, not hidden by the face, glasses or the headset)."""
        size = self.low.width
        pixels, depth, valid = (t.numpy() for t in self.low.project_unchecked(torch.from_numpy(render_vertices)))
        buffers = np.stack(
            [rasterize(pixels[j], depth[j], valid[j], triangles, size, size).depth for j in range(len(pixels))]
        )  # (D, size, size) mm, inf = background
        key_pixels, key_depth, key_valid = (
            t.numpy() for t in self.low.project_unchecked(torch.from_numpy(key_vertices))
        )
        column, row = np.rint(key_pixels[..., 0]).astype(np.int64), np.rint(key_pixels[..., 1]).astype(np.int64)
        inside = key_valid & (column >= 0) & (column < size) & (row >= 0) & (row < size)
        donning = np.arange(len(buffers))[:, None]
        surface = buffers[donning, np.clip(row, 0, size - 1), np.clip(column, 0, size - 1)]  # (D, K)
        unhidden = key_depth <= surface + _DEPTH_TOLERANCE_MM + _DEPTH_TOLERANCE_FRACTION * key_depth
        front = np.einsum("dki,dki->dk", key_normals, self.centre - key_vertices) > 0.0
        blocked = rig.occluded(self.spec.name, key_vertices.reshape(-1, 3)).reshape(key_depth.shape)
        return inside & unhidden & front & ~blocked

    def accumulate(self, samples: slice, seen: np.ndarray, key_vertices: np.ndarray, key_normals: np.ndarray,
                   tracked: np.ndarray) -> None:  # fmt: skip
        """Add V, F and M of D samples. seen: (D, K); key_vertices, key_normals: (D, K, 3); tracked: (D, 1 + E, P, 3)
        the tracked keypoints under each key expression, headset frame."""
        facing = np.clip(-(key_normals @ self.axis), 0.0, None)  # (D, K)
        rays = key_vertices - self.centre
        rays /= np.maximum(np.linalg.norm(rays, axis=-1, keepdims=True), 1e-9)
        facing_ray = np.clip(-np.einsum("dki,dki->dk", key_normals, rays), 0.0, None)
        self.visibility[samples] = (facing * seen) @ self.weights.T
        self.visibility_ray[samples] = (facing_ray * seen) @ self.weights.T
        self.fraction[samples] = seen.astype(np.float64) @ self.weights.T

        points = np.ascontiguousarray(tracked[:, :, self.keypoint_columns], dtype=np.float64)  # (D, 1 + E, L, 3)
        pixels, _, valid = (t.numpy() for t in self.full.project_unchecked(torch.from_numpy(points)))
        u, v = pixels[..., 0], pixels[..., 1]
        in_image = valid & (u >= -0.5) & (u <= self.full.width - 0.5) & (v >= -0.5) & (v <= self.full.height - 0.5)
        usable = seen[:, None, self.keypoint_index] & in_image[:, :1] & in_image[:, self.expression_rows]  # (D, Er, L)
        moved = pixels[:, self.expression_rows] - pixels[:, :1]  # (D, Er, L, 2)
        squared = np.where(usable, (moved**2).sum(axis=-1), 0.0)  # (D, Er, L)
        self.motion[samples] = np.sqrt(squared.sum(axis=-1))
        self.motion_regions[samples] = np.sqrt(squared @ self.keypoint_regions.T)

    def result(self) -> CameraMetrics:
        visibility = self.visibility.mean(axis=1)  # (S,) Eq. 1 per sample
        fraction = self.fraction.mean(axis=1)
        motion = self.motion.mean(axis=1)  # (S,) Eq. 2 per sample
        v_mean, v_std, v_p05 = _stats(visibility)
        m_mean, m_std, m_p05 = _stats(motion)
        regions = {
            name: RegionMetrics(
                visibility=float(self.visibility[:, r].mean()),
                visibility_std=float(self.visibility[:, r].std()),
                visible_fraction=float(self.fraction[:, r].mean()),
                range_of_motion_px=float(self.motion_regions[:, :, r].mean()),
                num_vertices=int(self.members[r].sum()),
                num_keypoints=int(self.keypoint_regions[r].sum()),
            )
            for r, name in enumerate(self.region_names)
        }
        return CameraMetrics(
            camera=self.spec.name,
            role=self.spec.role,
            side=self.spec.side,
            visibility=v_mean,
            visibility_std=v_std,
            visibility_p05=v_p05,
            visibility_ray=float(self.visibility_ray.mean()),
            visible_fraction=float(fraction.mean()),
            visible_fraction_std=float(fraction.std()),
            range_of_motion_px=m_mean,
            range_of_motion_px_std=m_std,
            range_of_motion_px_p05=m_p05,
            num_keypoints=len(self.keypoint_index),
            regions=regions,
            expressions={name: float(self.motion[:, e].mean()) for e, name in enumerate(self.keys.expressions)},
            sample_visibility=visibility,
            sample_range_of_motion_px=motion,
        )


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and numba on one thread inside the block, restoring their settings after it. The per-sample work of
    an evaluation (a 96 x 96 raster, projections of ~10^4 points) is far too small to share: with 2 threads on a busy
    2-core machine the same work measured 15 to 100 times slower."""
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)


def _camera_keys(spec: CameraSpec, population: Population) -> CameraKeys:
    keys = population.keys.get((spec.role, spec.side))
    if keys is None:
        raise ValueError(
            f"camera {spec.name!r}: the face model {population.model_name!r} names none of the key regions of a "
            f"{spec.role} camera"
        )
    return keys


def _identity_in_headset(
    population: Population, i: int, nominal: HeadPose, key_ids: np.ndarray, render_ids: np.ndarray,
    render_triangles: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Identity i at each of its D donnings, headset frame: render vertices (D, P, 3) float32 and triangles (T, 3)
    of the occluding surface (skin, eyeballs, glasses frame); key vertices and normals (D, K, 3); tracked keypoints
    (D, 1 + E, P', 3)."""
    # Head pose of each donning: the rig's nominal pose, then the donning offset (x -> R x + t).
    rotation = population.donning_rotation[i] @ nominal.rotation  # (D, 3, 3)
    translation = population.donning_translation[i] + population.donning_rotation[i] @ nominal.translation  # (D, 3)

    def place(points: np.ndarray) -> np.ndarray:
        """(..., 3) head frame -> (D, ..., 3), one copy per donning."""
        moved = np.einsum("dij,...j->d...i", rotation, points.astype(np.float64))
        return moved + translation.reshape((len(rotation),) + (1,) * (points.ndim - 1) + (3,))

    surface, triangles = population.neutral[i, render_ids], render_triangles
    glasses = population.glasses[i]
    if glasses is not None:
        triangles = np.concatenate([triangles, glasses.triangles + len(surface)]).astype(np.int32)
        surface = np.concatenate([surface, glasses.vertices])
    key_normals = np.einsum("dij,kj->dki", rotation, population.normals[i, key_ids])
    return (
        place(surface).astype(np.float32),
        triangles,
        place(population.neutral[i, key_ids]),
        key_normals,
        place(population.tracked[i]),
    )


def evaluate_cameras(
    rig: HeadsetRig,
    camera_names: Sequence[str],
    population: Population,
    depth_resolution: int = DEPTH_RESOLUTION,
    progress: Progress | None = None,
) -> list[CameraMetrics]:
    """V, F and M of the named cameras of `rig` over `population` (see the module docstring).

    progress: called with (identities done, identities in all) after each identity.
    """
    if isinstance(depth_resolution, bool) or not isinstance(depth_resolution, int) or depth_resolution < 8:
        raise ValueError(f"depth_resolution must be an integer >= 8 pixels, got {depth_resolution!r}")
    if not camera_names:
        raise ValueError("no cameras to evaluate")
    specs = [rig.camera_spec(name) for name in camera_names]  # KeyError names the missing camera and the rig's
    passes = [_CameraPass(spec, _camera_keys(spec, population), population, depth_resolution) for spec in specs]
    key_ids = np.unique(np.concatenate([camera.key_ids for camera in passes]))
    key_columns = [np.searchsorted(key_ids, camera.key_ids) for camera in passes]
    render_ids, render_triangles = np.unique(population.render_triangles, return_inverse=True)
    render_triangles = render_triangles.reshape(-1, 3).astype(np.int32)
    donnings = population.num_donnings
    with single_threaded():
        for i in range(population.num_identities):
            render_vertices, triangles, key_vertices, key_normals, tracked = _identity_in_headset(
                population, i, rig.head_pose, key_ids, render_ids, render_triangles
            )
            samples = slice(i * donnings, (i + 1) * donnings)
            for camera, columns in zip(passes, key_columns, strict=True):
                vertices, normals = key_vertices[:, columns], key_normals[:, columns]
                seen = camera.seen(rig, render_vertices, triangles, vertices, normals)
                camera.accumulate(samples, seen, vertices, normals, tracked)
            if progress is not None:
                progress(i + 1, population.num_identities)
    return [camera.result() for camera in passes]


def evaluate_rig(
    rig: HeadsetRig,
    population: Population,
    cameras: Sequence[str] | None = None,
    depth_resolution: int = DEPTH_RESOLUTION,
    progress: Progress | None = None,
) -> RigMetrics:
    """V, F and M of every camera of `rig` (or of `cameras`) over `population`, timed."""
    start = time.perf_counter()
    results = evaluate_cameras(rig, cameras or rig.camera_names, population, depth_resolution, progress)
    return RigMetrics(
        rig=rig.name,
        face_model=population.model_name,
        num_identities=population.num_identities,
        num_donnings=population.num_donnings,
        seed=population.seed,
        depth_resolution=depth_resolution,
        cameras=tuple(results),
        seconds=time.perf_counter() - start,
    )
