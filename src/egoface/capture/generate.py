"""Generating a dataset: many subjects recorded in parallel worker processes, in shards, resumable.

The job writes through a `RecordingSink` (the dataset store: `egoface.data.DatasetStore`), created once per
worker by a picklable factory, so this module never depends on how recordings are stored. A subject whose
recording the sink already has is skipped, which makes an interrupted run resumable; `plans` can be any subset
(a shard) of a dataset's subjects, so a cluster can generate in pieces.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numba
import torch

from egoface.capture.record import CaptureSettings, SubjectPlan, record_subject
from egoface.capture.recording import DOMAINS, RecordingData
from egoface.capture.script import build_script
from egoface.headset import HeadsetRig

__all__ = [
    "GENERATION_PRESETS",
    "GenerationPreset",
    "GenerationSummary",
    "RecordingSink",
    "frames_per_subject",
    "generate",
    "plan_subjects",
]


@dataclass(frozen=True)
class GenerationPreset:
    """subjects_per_domain; script: capture-script preset; resolution: (width, height) px or None for each
    camera's own; max_fps: cap on the capture rate (None = the rig's rate)."""

    name: str
    subjects_per_domain: int
    script: str
    resolution: tuple[int, int] | None
    max_fps: float | None

    def settings(self, rig: HeadsetRig, ood_rate: float = 0.05) -> CaptureSettings:
        fps = rig.cameras[0].fps if self.max_fps is None else min(rig.cameras[0].fps, self.max_fps)
        return CaptureSettings(script=self.script, resolution=self.resolution, fps=fps, ood_rate=ood_rate)


GENERATION_PRESETS: dict[str, GenerationPreset] = {
    "tiny": GenerationPreset("tiny", 2, "tiny", (96, 96), 30.0),
    "small": GenerationPreset("small", 10, "small", (192, 192), 30.0),
    # the shipped tracker's training set: many identities (unseen-face generalization needs identity variety more
    # than frames), the small script at 10 Hz, 128x128
    "default": GenerationPreset("default", 40, "small", (128, 128), 10.0),
    "paper": GenerationPreset("paper", 200, "paper", None, None),
    # the default's frame budget spread over 4x the identities (the small script at 2.5 Hz): unseen-identity accuracy
    # is limited by how many faces a tracker saw, not by how many frames of each
    "many": GenerationPreset("many", 160, "small", (128, 128), 2.5),
    # `many` at 192x192, the papers' camera resolution: the shipped tracker's training set
    "many-192": GenerationPreset("many-192", 160, "small", (192, 192), 2.5),
    # `egoface demo`: one unseen subject per domain at the shipped tracker's 192x192, 10 Hz
    "demo": GenerationPreset("demo", 1, "small", (192, 192), 10.0),
}


class RecordingSink(Protocol):
    """Where recordings go (the dataset store implements this)."""

    def has_recording(self, subject: str, recording: str) -> bool: ...

    def write_recording(self, data: RecordingData) -> bool: ...


@dataclass(frozen=True)
class GenerationSummary:
    """planned: subjects asked for; written / skipped (already complete); frames written; seconds of wall time."""

    planned: int
    written: int
    skipped: int
    frames: int
    seconds: float


def plan_subjects(
    domains: Sequence[str],
    subjects_per_domain: int,
    seed: int,
    split_of: Callable[[int], str],
    real_faces: str | None = None,
) -> list[SubjectPlan]:
    """The subjects of a dataset, numbered across domains (`<domain>-<index>`): their index fixes their identity,
    split (`split_of(index)`) and shard. real_faces: a face-model spec (e.g. `ict:PATH`) for the real and unlabeled
    domains; the synthetic domain always uses the procedural model."""
    unknown = [domain for domain in domains if domain not in DOMAINS]
    if unknown or not domains:
        raise ValueError(f"domains must be a non-empty subset of {DOMAINS}, got {list(domains)}")
    if subjects_per_domain < 1:
        raise ValueError(f"subjects per domain must be >= 1, got {subjects_per_domain}")
    plans = []
    for domain in DOMAINS:  # a fixed order, so a subject's index does not depend on how domains were listed
        for number in range(subjects_per_domain):
            index = DOMAINS.index(domain) * 100_000 + number
            if domain not in domains:
                continue
            face_model = real_faces if (real_faces and domain != "synthetic") else "procedural"
            plans.append(SubjectPlan(f"{domain}-{number:04d}", index, domain, split_of(index), seed, face_model))
    return plans


def generate(
    plans: Sequence[SubjectPlan],
    rig: HeadsetRig,
    settings: CaptureSettings,
    sink_factory: Callable[[], RecordingSink],
    workers: int = 1,
    on_subject: Callable[[SubjectPlan, int], None] | None = None,
) -> GenerationSummary:
    """Record every plan not yet in the sink, in `workers` processes. on_subject(plan, frames) after each write."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    start = time.perf_counter()
    sink = sink_factory()
    todo = [plan for plan in plans if not sink.has_recording(plan.subject, settings.recording)]
    frames = 0
    if workers == 1:
        for plan in todo:
            frames += _record_and_write(plan, rig, settings, sink)
            if on_subject is not None:
                on_subject(plan, frames)
    else:
        context = multiprocessing.get_context("spawn")  # torch and numba thread pools do not survive fork
        with context.Pool(min(workers, max(1, len(todo))), _start_worker, (sink_factory,)) as pool:
            jobs = [(plan, rig, settings) for plan in todo]
            for plan, written in pool.imap_unordered(_worker_job, jobs):
                frames += written
                if on_subject is not None:
                    on_subject(plan, frames)
    return GenerationSummary(len(plans), len(todo), len(plans) - len(todo), frames, time.perf_counter() - start)


def frames_per_subject(settings: CaptureSettings) -> int:
    """Frames in one subject's recording under `settings` (for progress totals)."""
    return build_script(settings.script, settings.fps or 30.0).num_frames


def _record_and_write(plan: SubjectPlan, rig: HeadsetRig, settings: CaptureSettings, sink: RecordingSink) -> int:
    data = record_subject(plan, rig, settings)
    sink.write_recording(data)
    return data.frames


_worker_sink: RecordingSink | None = None


def _start_worker(sink_factory: Callable[[], RecordingSink]) -> None:
    """One thread per worker process: the workers are the parallelism."""
    global _worker_sink
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    _worker_sink = sink_factory()


def _worker_job(job: tuple[SubjectPlan, HeadsetRig, CaptureSettings]) -> tuple[SubjectPlan, int]:
    plan, rig, settings = job
    assert _worker_sink is not None, "worker started without its sink"
    return plan, _record_and_write(plan, rig, settings, _worker_sink)
