"""Evaluating the anchor-calibrated encoder: per-subject enrollment from the anchor segments, and its per-frame cost.

`CalibratedPredictor` is an image predictor (`egoface.eval.evaluate.Predictor`) that `evaluate` enrolls before each
subject (`enroll_subject`): the subject's anchor frames (the peak of each anchor segment of the capture script, in
the training tree of its domain: images and segment tables only, never oracle labels) go through phi_exp once, and
every frame is then encoded against that cache, as the runtime would after its enrollment step.

`anchor_overhead` measures what the anchors cost per frame: the calibrated encoder with cached anchors against the
same encoder without anchors (`calibration="none"`), batch 1, interleaved frame by frame so that load from other
processes hits both alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import numpy as np
import torch

from egoface.capture.recording import SubjectInfo
from egoface.data import HeadsetDataset
from egoface.eval.evaluate import ModelPredictor
from egoface.models import CalibratedEncoder, model_from_config, normalize_images

__all__ = ["CalibratedPredictor", "anchor_overhead"]


class CalibratedPredictor(ModelPredictor):
    """A `CalibratedEncoder` enrolled from each subject's anchor segments before that subject's frames."""

    model: CalibratedEncoder

    def __init__(self, model: CalibratedEncoder, name: str) -> None:
        super().__init__(model, name)
        self.enrolled: str | None = None

    def enroll_subject(self, root: str, info: SubjectInfo) -> None:
        """Cache the anchor features of `info.subject` (its anchors: the first recording, in sorted order, holding
        each anchor segment; raises ValueError naming the anchors a subject lacks)."""
        anchors = self.model.config.anchors
        if self.enrolled == info.subject or not anchors:
            return
        dataset = HeadsetDataset(
            root, domains=(info.domain,), splits=(info.split,), subjects=[info.subject], cameras=self.cameras,
            resolution=self.resolution, anchors=anchors,
        )  # fmt: skip
        sample = dataset[0]
        images = torch.stack([sample.anchor_images[name] for name in anchors])  # (M, C, 1, H, W) in [0, 1]
        self.model.set_anchors(self.model.enroll(normalize_images(images, self.model.config)))
        self.enrolled = info.subject


def anchor_overhead(model: CalibratedEncoder, frames: int = 200, warmup: int = 20, seed: int = 0) -> dict[str, float]:
    """Per-frame latency (ms, batch 1, one torch thread, no gradients) of `model` with cached anchors and of the
    same architecture without anchors, on random frames: `calibrated_ms_p50`, `reference_ms_p50` (medians),
    `overhead_pct` (100 * (calibrated / reference - 1)). Weights do not change the cost, so the reference is built
    fresh from `model`'s config with `calibration="none"`."""
    if frames < 1 or warmup < 0:
        raise ValueError(f"need frames >= 1 and warmup >= 0, got {frames}, {warmup}")
    generator = torch.Generator().manual_seed(seed)
    reference = model_from_config(replace(model.config, calibration="none", anchors=())).eval()
    model = model.eval()
    anchors = torch.rand((len(model.config.anchors), *model.input_shape), generator=generator)
    previous_cache, previous_threads = model.enrolled_anchors, torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"calibrated": [], "reference": []}
    try:
        if model.config.anchors:
            model.set_anchors(model.enroll(anchors))
        with torch.no_grad():
            for i in range(warmup + frames):
                x = torch.rand((1, *model.input_shape), generator=generator)
                for name, net in (("calibrated", model), ("reference", reference)):
                    start = time.perf_counter()
                    net(x)
                    if i >= warmup:
                        times[name].append(1000.0 * (time.perf_counter() - start))
    finally:
        model.set_anchors(previous_cache)
        torch.set_num_threads(previous_threads)
    calibrated, plain = statistics.median(times["calibrated"]), statistics.median(times["reference"])
    return {
        "calibrated_ms_p50": calibrated,
        "reference_ms_p50": plain,
        "overhead_pct": 100.0 * (calibrated / plain - 1.0),
        "frames": float(frames),
        "calibrated_ms_p90": float(np.percentile(times["calibrated"], 90)),
        "reference_ms_p90": float(np.percentile(times["reference"], 90)),
    }
