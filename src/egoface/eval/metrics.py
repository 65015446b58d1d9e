"""The metrics of Universal Sec. 5.2: mesh L2, lower-face mesh L2, mouth-shape L2 (mm), gaze error (deg) and the
photometric L1 between frontal renders of the predicted and the true face.

Exact definitions: `docs/metrics.md`. In short, for a recording of N frames posed through the subject's own rig:

- mesh L2: per frame the mean over the vertices of `metric_regions(...)["face"]` (the face region without the
  eyeballs, mouth interior, teeth and tongue) of the Euclidean distance between predicted and true vertices, mm;
- lower-face mesh L2: the same over `metric_regions(...)["lower_face"]`;
- mouth-shape L2: per frame |w_pred - w_true| + |h_pred - h_true|, where w = |corner_L - corner_R| and
  h = |upper_center - lower_center| are the `LipPairs` distances (the two distances compared and summed), mm;
- gaze error: per frame the mean over both eyes of the angle between predicted and true gaze directions, deg;
- photometric L1: per frame the mean absolute difference of the two tone-mapped [0, 1] frontal renders inside the
  union of their face masks, with one exposure per subject (from its neutral face);

each recording-level value is the mean over frames. Latency is measured by the eval command, not here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from egoface.eval.visualize import FrontalFace
from egoface.face.gaze import gaze_vector
from egoface.face.model import FaceRig, FaceTopology
from egoface.face.names import NUM_EXPRESSIONS
from egoface.render.raster import Fragments
from egoface.render.scene import Mesh, render_scene

__all__ = [
    "FaceTrack",
    "FrameErrors",
    "FrontalRender",
    "frame_errors",
    "frontal_render",
    "gaze_angles_deg",
    "geometry_metrics",
    "metric_regions",
    "neutral_exposure",
    "photometric_l1",
    "vertex_errors_mm",
]

#: Regions that are not skin: left out of the mesh metrics (gaze has its own metric), kept in the photometric mask.
_NOT_SKIN = ("eyeballs", "mouth_interior", "teeth", "tongue")


@dataclass(frozen=True)
class FaceTrack:
    """Expressions and gaze over the N frames of one recording, predicted or true.

    expression: (N, 53) float32 in the canonical order; gaze: (N, 2, 2) float32 deg, eye 0 = left, (yaw, pitch).
    The rig drives the 8 `eyeLook*` shapes from `gaze`, so their columns in `expression` do not move the mesh.
    """

    expression: np.ndarray
    gaze: np.ndarray

    def __post_init__(self) -> None:
        expression = np.ascontiguousarray(self.expression, dtype=np.float32)
        gaze = np.ascontiguousarray(self.gaze, dtype=np.float32)
        if expression.ndim != 2 or expression.shape[1] != NUM_EXPRESSIONS:
            raise ValueError(f"expression must have shape (N, {NUM_EXPRESSIONS}), got {expression.shape}")
        if gaze.shape != (len(expression), 2, 2):
            raise ValueError(f"gaze must have shape ({len(expression)}, 2, 2) to match expression, got {gaze.shape}")
        if not (np.isfinite(expression).all() and np.isfinite(gaze).all()):
            raise ValueError("expression and gaze must be finite")
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "gaze", gaze)

    def __len__(self) -> int:
        return len(self.expression)

    def take(self, frames: Sequence[int] | np.ndarray | slice) -> FaceTrack:
        """The track restricted to `frames` (indices, a boolean mask or a slice)."""
        return FaceTrack(self.expression[frames], self.gaze[frames])


def _check_pair(pred: FaceTrack, true: FaceTrack) -> None:
    if len(pred) != len(true):
        raise ValueError(f"prediction has {len(pred)} frames but the truth has {len(true)}")
    if len(pred) == 0:
        raise ValueError("a recording needs at least one frame to be scored")


def metric_regions(topology: FaceTopology) -> dict[str, np.ndarray]:
    """Vertex ids the metrics use -> {"face", "lower_face", "photometric"} sorted int64 arrays.

    face: the `face` region without eyeballs, mouth interior, teeth and tongue (Universal: "the facial region,
    excluding vertices on the eyes, hair, neck and shoulder"); lower_face: `face` here intersected with the model's
    `lower_face` region; photometric: `face` plus eyeballs, mouth interior, teeth and tongue (what a frontal render
    of the face shows).
    """
    regions = topology.regions
    not_skin = [regions[name] for name in _NOT_SKIN if name in regions]
    face = np.setdiff1d(regions["face"], np.concatenate(not_skin))
    return {
        "face": face,
        "lower_face": np.intersect1d(face, regions["lower_face"]),
        "photometric": np.union1d(regions["face"], np.concatenate(not_skin)),
    }


def _posed(rig: FaceRig, track: FaceTrack, batch: int) -> Iterator[torch.Tensor]:
    """Vertices (b, V, 3) mm of `track`, `batch` frames at a time. The no-grad block must not span a `yield`: two of
    these generators interleaved by `zip` would otherwise restore each other's grad mode and leave it off."""
    for start in range(0, len(track), batch):
        part = slice(start, start + batch)
        with torch.no_grad():
            vertices = rig(torch.from_numpy(track.expression[part]), torch.from_numpy(track.gaze[part])).vertices
        yield vertices


def vertex_errors_mm(pred: FaceTrack, true: FaceTrack, rig: FaceRig, batch: int = 256) -> np.ndarray:
    """Per-vertex Euclidean distance between predicted and true posed meshes -> (N, V) float32 mm."""
    _check_pair(pred, true)
    posed = zip(_posed(rig, pred, batch), _posed(rig, true, batch), strict=True)
    parts = [(p - t).norm(dim=-1).numpy() for p, t in posed]
    return np.concatenate(parts)


def gaze_angles_deg(pred_gaze: np.ndarray, true_gaze: np.ndarray) -> np.ndarray:
    """Angle between predicted and true gaze directions: (N, 2, 2) deg, (N, 2, 2) deg -> (N, 2) deg per eye.

    atan2(|a x b|, a . b) of the `gaze_vector` unit directions (exact near 0, unlike acos).
    """
    a = gaze_vector(torch.as_tensor(np.asarray(pred_gaze), dtype=torch.float64))
    b = gaze_vector(torch.as_tensor(np.asarray(true_gaze), dtype=torch.float64))
    return torch.rad2deg(torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))).numpy()


@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors of one recording, each (N,) float64: mesh_l2_mm, lower_face_mesh_l2_mm, mouth_shape_l2_mm
    (mm) and gaze_error_deg (mean of both eyes, deg). `mean(frames)` gives the recording (or a segment) figures."""

    mesh_l2_mm: np.ndarray
    lower_face_mesh_l2_mm: np.ndarray
    mouth_shape_l2_mm: np.ndarray
    gaze_error_deg: np.ndarray

    def __len__(self) -> int:
        return len(self.mesh_l2_mm)

    def mean(self, frames: slice | np.ndarray | None = None) -> dict[str, float]:
        """Metric name -> mean over `frames` (default all; NaN for an empty selection)."""
        selection = slice(None) if frames is None else frames
        out = {}
        for field in fields(self):
            values = getattr(self, field.name)[selection]
            out[field.name] = float(values.mean()) if values.size else float("nan")
        return out


def _lip_distances(vertices: torch.Tensor, rig: FaceRig) -> torch.Tensor:
    """(b, V, 3) mm -> (b, 2) mm: mouth width |corner_L - corner_R| and opening |upper_center - lower_center|."""
    pairs = rig.topology.lip_pairs
    width = (vertices[:, pairs.corner_L] - vertices[:, pairs.corner_R]).norm(dim=-1)
    opening = (vertices[:, pairs.upper_center] - vertices[:, pairs.lower_center]).norm(dim=-1)
    return torch.stack([width, opening], dim=1)


def frame_errors(pred: FaceTrack, true: FaceTrack, rig: FaceRig, batch: int = 256) -> FrameErrors:
    """Per-frame geometry and gaze errors of a prediction against the truth, both posed through `rig` (the
    subject's own rig). batch: frames posed at once (memory ~ 2 * batch * V * 12 bytes)."""
    _check_pair(pred, true)
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    regions = metric_regions(rig.topology)
    face_ids, lower_ids = torch.from_numpy(regions["face"]), torch.from_numpy(regions["lower_face"])
    mesh, lower, mouth = [], [], []
    for p, t in zip(_posed(rig, pred, batch), _posed(rig, true, batch), strict=True):
        distance = (p - t).norm(dim=-1).double()  # (b, V)
        mesh.append(distance[:, face_ids].mean(dim=1))
        lower.append(distance[:, lower_ids].mean(dim=1))
        mouth.append((_lip_distances(p, rig) - _lip_distances(t, rig)).abs().double().sum(dim=1))
    return FrameErrors(
        mesh_l2_mm=torch.cat(mesh).numpy(),
        lower_face_mesh_l2_mm=torch.cat(lower).numpy(),
        mouth_shape_l2_mm=torch.cat(mouth).numpy(),
        gaze_error_deg=gaze_angles_deg(pred.gaze, true.gaze).mean(axis=1),
    )


def geometry_metrics(pred: FaceTrack, true: FaceTrack, rig: FaceRig, batch: int = 256) -> dict[str, float]:
    """Recording-level mesh_l2_mm, lower_face_mesh_l2_mm, mouth_shape_l2_mm and gaze_error_deg (means over frames)."""
    return frame_errors(pred, true, rig, batch).mean()


@dataclass(frozen=True)
class FrontalRender:
    """One frontal render for the photometric metric. image: (H, W) float32 display values in [0, 1];
    mask: (H, W) bool, pixels showing a triangle of the face (`metric_regions(...)["photometric"]`); fragments: what
    the rasterizer saw (triangle ids, barycentrics, depth)."""

    image: np.ndarray
    mask: np.ndarray
    fragments: Fragments


def _face_triangles(face: FrontalFace) -> np.ndarray:
    """(T,) bool: triangles whose three vertices are all in the photometric face region."""
    inside = np.isin(face.rig.triangles, metric_regions(face.rig.topology)["photometric"])  # (T, 3)
    return np.asarray(inside.all(axis=1))


def _radiance(face: FrontalFace, expression: np.ndarray, gaze: np.ndarray) -> tuple[np.ndarray, Fragments]:
    with torch.no_grad():
        vertices = face.rig(torch.from_numpy(expression[None]), torch.from_numpy(gaze[None])).vertices[0]
    mesh = Mesh(vertices.numpy(), face.rig.triangles, face.albedo, face.specular)
    view = render_scene(mesh, face.camera, face.lights)
    return view.radiance, view.fragments


def neutral_exposure(face: FrontalFace) -> float:
    """The subject's fixed exposure: 0.9 / the 99.5th percentile of the radiance of its neutral face (expression 0,
    gaze straight ahead) - `FrontalFace`'s rule, anchored on neutral so that it does not depend on the frames."""
    radiance, _ = _radiance(face, np.zeros(NUM_EXPRESSIONS, np.float32), np.zeros((2, 2), np.float32))
    return 0.9 / float(np.percentile(radiance[radiance > 0], 99.5))


def frontal_render(face: FrontalFace, expression: np.ndarray, gaze: np.ndarray, exposure: float) -> FrontalRender:
    """expression (53,), gaze (2, 2) deg -> the face seen by `face.camera` under `face.lights`, tone-mapped with
    `exposure` and display gamma 2.2 (the curve of `egoface.render.sheets.tone_map`, without 8-bit rounding)."""
    if not exposure > 0:
        raise ValueError(f"exposure must be positive, got {exposure}")
    expression = np.asarray(expression, np.float32)
    gaze = np.asarray(gaze, np.float32)
    if expression.shape != (NUM_EXPRESSIONS,) or gaze.shape != (2, 2):
        raise ValueError(f"expected expression (53,) and gaze (2, 2), got {expression.shape} and {gaze.shape}")
    radiance, fragments = _radiance(face, expression, gaze)
    image = (np.clip(radiance * exposure, 0.0, 1.0) ** (1 / 2.2)).astype(np.float32)
    covered = fragments.triangle_id >= 0
    mask = covered & _face_triangles(face)[np.where(covered, fragments.triangle_id, 0)]
    return FrontalRender(image=image, mask=mask, fragments=fragments)


def photometric_l1(
    pred: FaceTrack, true: FaceTrack, face: FrontalFace, frames: Sequence[int] | np.ndarray | None = None
) -> float:
    """Mean over `frames` (default all) of the mean |I_pred - I_true| inside the union of both face masks, I the
    [0, 1] frontal renders of `face` (the subject: `FrontalFace(info, size)`; size 128 is plenty) with one exposure
    per subject (`neutral_exposure`). A frame whose masks are both empty counts 0."""
    _check_pair(pred, true)
    selected = np.arange(len(pred)) if frames is None else np.asarray(frames, dtype=np.int64).reshape(-1)
    if selected.size == 0 or selected.min() < -len(pred) or selected.max() >= len(pred):
        raise ValueError(f"frames must be a non-empty selection of indices in [0, {len(pred)}), got {selected}")
    exposure = neutral_exposure(face)
    per_frame = []
    for frame in selected:
        a = frontal_render(face, pred.expression[frame], pred.gaze[frame], exposure)
        b = frontal_render(face, true.expression[frame], true.gaze[frame], exposure)
        union = a.mask | b.mask
        per_frame.append(float(np.abs(a.image - b.image)[union].mean()) if union.any() else 0.0)
    return float(np.mean(per_frame))
