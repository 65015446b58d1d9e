"""The training `Dataset`: one typed `Sample` per frame of the training tree, read lazily, plus `collate`.

Training path guarantee: `HeadsetDataset` reads only `root/<domain>/<subject>/<recording>` for the three domain
names, after checking that `root` is a dataset store (role `dataset`). Real-domain true labels are never stored
there, so its samples carry images, segment-table information and OOD flags only. This module does not import,
name or reach the evaluation-only label tree; `tests/test_data_withheld.py` proves both statically and at run time.

Input transform: every camera image becomes float in [0, 1], cameras named `*_left` are flipped horizontally (so
both sides look alike to a shared encoder; keypoint x coordinates are flipped with them: `x -> W - 1 - x`), then
resized to `resolution` with antialiased bilinear interpolation (keypoints scale as `(x + 0.5) * W'/W - 0.5`).
"""

from __future__ import annotations

import bisect
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import zarr
from torch.utils.data import Dataset

from egoface.data._tree import (
    RecordingRef,
    array_paths,
    open_array,
    read_array,
    read_attrs,
    read_labels,
    read_ood,
    require_role,
    scan_recordings,
)
from egoface.data.augment import AugmentConfig, augment_views, sensor_jitter_per_camera
from egoface.data.schema import DOMAINS, SPLITS, anchor_frames, is_left_camera

__all__ = ["Batch", "HeadsetDataset", "Sample", "collate", "prepare_keypoints", "prepare_views"]

#: Per worker: zarr handles and label arrays (about 0.7 MB per 700-frame recording) of the most recent recordings.
#: Training samples frames at random across all recordings, so this must cover a whole training set to avoid
#: re-reading a recording's labels for nearly every sample.
_OPEN_RECORDINGS = 512


@dataclass(frozen=True)
class Sample:
    """One frame. `images: (C, 1, H, W)` float32 in [0, 1] after the input transform (left cameras flipped).

    Labels are None where the domain has none in the training tree (`real`, `unlabeled`): `expression (53,)`,
    `gaze (2, 2)` deg, `head_rotation (3, 3)`, `head_translation (3,)` mm, `keypoints (C, L, 2)` px in the
    transformed images, `keypoint_visibility (C, L)` bool. `ood` is the sensing-event flag when stored.
    `anchor_frames[name] = (recording, frame)` for the subject's anchor segments; `anchor_images[name]:
    (C, 1, H, W)` for the anchors the dataset was asked to load (input transform; of the augmentations only the
    sensor jitter).
    """

    images: torch.Tensor
    camera_names: tuple[str, ...]
    subject: str
    recording: str
    frame: int
    domain: str
    split: str
    expression: torch.Tensor | None = None
    gaze: torch.Tensor | None = None
    head_rotation: torch.Tensor | None = None
    head_translation: torch.Tensor | None = None
    keypoints: torch.Tensor | None = None
    keypoint_visibility: torch.Tensor | None = None
    ood: bool | None = None
    anchor_frames: dict[str, tuple[str, int]] = field(default_factory=dict)
    anchor_images: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Samples stacked batch-first. `images: (B, C, 1, H, W)`; `label_mask: (B,)` True where a sample has true
    labels; label tensors are None when no sample has them, else zero-filled where `label_mask` is False
    (`keypoint_visibility` False there). `ood: (B,)` (False where unknown), `anchor_images[name]: (B, C, 1, H, W)`
    for anchors every sample carries."""

    images: torch.Tensor
    camera_names: tuple[str, ...]
    label_mask: torch.Tensor
    expression: torch.Tensor | None
    gaze: torch.Tensor | None
    head_rotation: torch.Tensor | None
    head_translation: torch.Tensor | None
    keypoints: torch.Tensor | None
    keypoint_visibility: torch.Tensor | None
    ood: torch.Tensor
    subjects: list[str]
    recordings: list[str]
    frames: torch.Tensor
    domains: list[str]
    anchor_frames: list[dict[str, tuple[str, int]]]
    anchor_images: dict[str, torch.Tensor]


def _prepare_camera(frames: np.ndarray, camera: str, resolution: tuple[int, int], flip_left: bool) -> torch.Tensor:
    """One camera's uint8 `(T, H_c, W_c)` frames -> `(T, 1, H, W)` float32 in [0, 1]: flipped if a left camera
    (and `flip_left`), resized."""
    view = torch.from_numpy(np.ascontiguousarray(frames)).to(torch.float32).div_(255.0)[:, None]
    if flip_left and is_left_camera(camera):
        view = torch.flip(view, dims=[-1])
    if tuple(view.shape[-2:]) != tuple(resolution):
        view = F.interpolate(view, size=resolution, mode="bilinear", align_corners=False, antialias=True)
    return view


def prepare_views(
    images: Sequence[np.ndarray], cameras: Sequence[str], resolution: tuple[int, int], flip_left: bool = True
) -> torch.Tensor:
    """Per-camera uint8 `(H_c, W_c)` images -> `(C, 1, H, W)` float32 in [0, 1]: left cameras flipped, resized."""
    views = [
        _prepare_camera(image[None], camera, resolution, flip_left)[0]
        for image, camera in zip(images, cameras, strict=True)
    ]
    return torch.stack(views)


def prepare_keypoints(
    keypoints: Sequence[np.ndarray],
    cameras: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    resolution: tuple[int, int],
    flip_left: bool = True,
) -> torch.Tensor:
    """Per-camera `(L, 2)` px in the stored images (of (H_c, W_c) `sizes`) -> `(C, L, 2)` px after `prepare_views`."""
    out = []
    for points, camera, (height, width) in zip(keypoints, cameras, sizes, strict=True):
        p = torch.from_numpy(np.array(points, dtype=np.float32))
        if flip_left and is_left_camera(camera):
            p[:, 0] = width - 1 - p[:, 0]
        p[:, 0] = (p[:, 0] + 0.5) * resolution[1] / width - 0.5
        p[:, 1] = (p[:, 1] + 0.5) * resolution[0] / height - 0.5
        out.append(p)
    return torch.stack(out)


class _OpenRecording:
    """Per-worker handles of one recording: lazy zarr image arrays; labels read whole. With `cache`, also its frames
    as `prepare_views` gives them, read in one bulk call per camera (about 4x less time per frame than frame by frame)
    and prepared once: `views` (T, C, 1, H, W) uint8, flipped and resized to `resolution` (rounded to 8 bits, so at
    the stored size exactly the stored pixels), so that loader workers do not resize the same frames every epoch."""

    def __init__(
        self, ref: RecordingRef, cameras: tuple[str, ...], cache: bool, resolution: tuple[int, int], flip_left: bool
    ) -> None:
        group = zarr.open_group(ref.path, mode="r")
        paths = set(array_paths(group))
        self.images: list[Any] = [open_array(group, f"images/{c}") for c in cameras]
        self.sizes = [(int(a.shape[1]), int(a.shape[2])) for a in self.images]
        self.views: torch.Tensor | None = None
        if cache:
            prepared = [
                _prepare_camera(a[:], c, resolution, flip_left) for a, c in zip(self.images, cameras, strict=True)
            ]
            self.views = torch.stack(prepared, dim=1).mul_(255.0).round_().to(torch.uint8)
        self.labels = read_labels(ref.path, cameras, slice(None)) if "labels/expression" in paths else None
        self.ood = read_array(group, "labels/ood") if "labels/ood" in paths else None


class HeadsetDataset(Dataset[Sample]):
    """Frames of the training tree of the store at `root`, filtered by domain, split and subject.

    `cameras` defaults to the cameras of the selected recordings (which must then agree); `resolution (H, W)`;
    `augment` enables `augment_views` per sample and its sensor jitter on the anchors (CutMix is batch-level:
    `egoface.data.augment.cutmix`);
    augmentation is deterministic in (`seed`, epoch, index) — call `set_epoch` each epoch; `anchors` names the
    anchor segments whose images each sample carries. `cache_images` reads every recording's images into memory
    here, in bulk, already flipped and resized to `resolution` as 8-bit pixels (H x W bytes per camera and frame,
    e.g. ~1.4 GB for the 128 training subjects of the `many` preset at 128x128), instead of each frame from disk
    and through the resize each time it is sampled; DataLoader workers forked from this process share that memory.
    At the stored resolution its samples equal those read from disk; resized, they differ by the 8-bit rounding
    (at most 0.5 / 255).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        domains: Sequence[str] = ("synthetic",),
        splits: Sequence[str] = ("train",),
        subjects: Sequence[str] | None = None,
        cameras: Sequence[str] | None = None,
        resolution: tuple[int, int] = (192, 192),
        flip_left: bool = True,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        anchors: Sequence[str] = (),
        cache_images: bool = False,
    ) -> None:
        self.root = Path(root)
        require_role(self.root, "dataset")
        for name, values, allowed in (("domains", domains, DOMAINS), ("splits", splits, SPLITS)):
            unknown = [v for v in values if v not in allowed]
            if unknown or not values:
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {tuple(values)}")
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.flip_left, self.augment, self.seed, self.epoch = flip_left, augment, seed, 0
        self.anchors, self.cache_images = tuple(anchors), cache_images
        self._subjects: dict[str, dict[str, Any]] = {}
        refs = []
        for ref in scan_recordings(self.root, tuple(domains)):
            if ref.subject not in self._subjects:
                self._subjects[ref.subject] = read_attrs(ref.path.parent)
            if self._subjects[ref.subject]["split"] in splits and (subjects is None or ref.subject in subjects):
                refs.append(ref)
        if not refs:
            raise ValueError(f"no complete recordings in {self.root} for domains {tuple(domains)}, "
                             f"splits {tuple(splits)}, subjects {subjects}")  # fmt: skip
        self.recordings: list[RecordingRef] = refs
        self.cameras = self._resolve_cameras(cameras)
        self._anchor_frames = self._find_anchors()
        self._starts = np.cumsum([0] + [r.frames for r in refs]).tolist()
        self._open: OrderedDict[Path, _OpenRecording] = OrderedDict()
        if cache_images:
            for ref in refs:
                self._recording(ref)

    def _resolve_cameras(self, cameras: Sequence[str] | None) -> tuple[str, ...]:
        have = {r.subject: tuple(self._subjects[r.subject]["cameras"]) for r in self.recordings}
        if cameras is None:
            distinct = sorted(set(have.values()))
            if len(distinct) > 1:
                raise ValueError(f"the selected subjects have different cameras {distinct}; pass cameras=[...]")
            return distinct[0]
        lacking = sorted(s for s, cams in have.items() if not set(cameras) <= set(cams))
        if lacking:
            raise ValueError(f"subjects {lacking} lack some of the cameras {tuple(cameras)}")
        return tuple(cameras)

    def _find_anchors(self) -> dict[str, dict[str, tuple[str, int]]]:
        out: dict[str, dict[str, tuple[str, int]]] = {}
        for ref in self.recordings:
            found = anchor_frames(read_attrs(ref.path).get("segments") or [], read_ood(ref.path))
            subject = out.setdefault(ref.subject, {})
            for name, frame in found.items():
                subject.setdefault(name, (ref.recording, frame))
        missing = {s: set(self.anchors) - set(found) for s, found in out.items()}
        lacking = sorted(s for s, names in missing.items() if names)
        if lacking:
            raise ValueError(
                f"subjects {lacking} have no segment for some of the anchors {self.anchors} (missing: "
                f"{', '.join(sorted(set().union(*missing.values())))}); an anchor-calibrated "
                "model needs recordings of its anchor expressions: the `small` and `paper` capture scripts record them"
            )
        return out

    def set_epoch(self, epoch: int) -> None:
        """Draw new augmentations for the next epoch (deterministic in seed, epoch and index)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()  # every worker opens its own handles
        return state

    def _recording(self, ref: RecordingRef) -> _OpenRecording:
        handle = self._open.pop(ref.path, None) or _OpenRecording(
            ref, self.cameras, self.cache_images, self.resolution, self.flip_left
        )
        self._open[ref.path] = handle
        while len(self._open) > _OPEN_RECORDINGS and not self.cache_images:
            self._open.popitem(last=False)
        return handle

    def _ref(self, subject: str, recording: str) -> RecordingRef:
        for ref in self.recordings:
            if ref.subject == subject and ref.recording == recording:
                return ref
        raise KeyError(f"{subject}/{recording} is not in this dataset")

    def _views(self, handle: _OpenRecording, frame: int) -> torch.Tensor:
        if handle.views is not None:
            return handle.views[frame].to(torch.float32).div_(255.0)
        raw = [np.asarray(array[frame]) for array in handle.images]
        return prepare_views(raw, self.cameras, self.resolution, self.flip_left)

    def _jitter_anchors(self, anchor_images: dict[str, torch.Tensor], index: int) -> dict[str, torch.Tensor]:
        """The sensor jitter of the augmentations on a sample's anchors (C, 1, H, W) each: one draw per camera for
        all anchors (enrollment is one session of one headset), independent of the current frame's draw."""
        assert self.augment is not None
        names = list(anchor_images)
        stacked = torch.stack([anchor_images[name] for name in names])  # (M, C, 1, H, W)
        seed = np.random.SeedSequence([self.seed, self.epoch, index, 1]).generate_state(1)[0]
        jittered = sensor_jitter_per_camera(stacked, self.augment, torch.Generator().manual_seed(int(seed)))
        return dict(zip(names, jittered, strict=True))

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} frames")
        which = bisect.bisect_right(self._starts, index) - 1
        ref, frame = self.recordings[which], index - self._starts[which]
        handle = self._recording(ref)
        images = self._views(handle, frame)
        labels: dict[str, Any] = {}
        keypoints = visibility = None
        if handle.labels is not None:
            true = handle.labels
            labels = {
                "expression": torch.tensor(true.expression[frame]),
                "gaze": torch.tensor(true.gaze[frame]),
                "head_rotation": torch.tensor(true.head_rotation[frame]),
                "head_translation": torch.tensor(true.head_translation[frame]),
            }
            keypoints = prepare_keypoints(
                [true.keypoints[c][frame] for c in self.cameras],
                self.cameras,
                handle.sizes,
                self.resolution,
                self.flip_left,
            )
            visibility = torch.as_tensor(np.stack([true.keypoint_visibility[c][frame] for c in self.cameras]))
        if self.augment is not None:
            seed = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0]
            generator = torch.Generator().manual_seed(int(seed))
            images, keypoints, visibility = augment_views(images, self.augment, generator, keypoints, visibility)
        subject_anchors = self._anchor_frames.get(ref.subject, {})
        anchor_images = {}
        for name in self.anchors:
            recording, anchor_frame = subject_anchors[name]
            anchor_images[name] = self._views(self._recording(self._ref(ref.subject, recording)), anchor_frame)
        if anchor_images and self.augment is not None and self.augment.jitters_sensor:
            anchor_images = self._jitter_anchors(anchor_images, index)
        return Sample(
            images=images,
            camera_names=self.cameras,
            subject=ref.subject,
            recording=ref.recording,
            frame=frame,
            domain=ref.domain,
            split=self._subjects[ref.subject]["split"],
            keypoints=keypoints,
            keypoint_visibility=visibility,
            ood=None if handle.ood is None else bool(handle.ood[frame]),
            anchor_frames=dict(subject_anchors),
            anchor_images=anchor_images,
            **labels,
        )


def _stack_optional(values: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    """Stack, zero-filling the missing entries; None when every entry is missing."""
    present = next((v for v in values if v is not None), None)
    if present is None:
        return None
    return torch.stack([v if v is not None else torch.zeros_like(present) for v in values])


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a `Batch` (use as `DataLoader(..., collate_fn=collate)`). All must share cameras."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    cameras = samples[0].camera_names
    if any(s.camera_names != cameras for s in samples):
        raise ValueError(f"samples of one batch must share cameras; got {sorted({s.camera_names for s in samples})}")
    common = set(samples[0].anchor_images).intersection(*(s.anchor_images for s in samples))
    return Batch(
        images=torch.stack([s.images for s in samples]),
        camera_names=cameras,
        label_mask=torch.tensor([s.expression is not None for s in samples]),
        expression=_stack_optional([s.expression for s in samples]),
        gaze=_stack_optional([s.gaze for s in samples]),
        head_rotation=_stack_optional([s.head_rotation for s in samples]),
        head_translation=_stack_optional([s.head_translation for s in samples]),
        keypoints=_stack_optional([s.keypoints for s in samples]),
        keypoint_visibility=_stack_optional([s.keypoint_visibility for s in samples]),
        ood=torch.tensor([bool(s.ood) for s in samples]),
        subjects=[s.subject for s in samples],
        recordings=[s.recording for s in samples],
        frames=torch.tensor([s.frame for s in samples]),
        domains=[s.domain for s in samples],
        anchor_frames=[s.anchor_frames for s in samples],
        anchor_images={name: torch.stack([s.anchor_images[name] for s in samples]) for name in sorted(common)},
    )
