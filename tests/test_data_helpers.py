"""Small random recordings for the egoface.data tests (and a check that they satisfy the schema of each domain)."""

from __future__ import annotations

import numpy as np
import pytest

from egoface.data import Labels, RecordingData, SubjectInfo
from egoface.data.schema import validate_recording

CAMERAS = ("eye_left", "eye_right", "mouth_left", "mouth_right")
KEYPOINTS = 5


def make_subject(subject: str, domain: str = "synthetic", split: str = "train", cameras=CAMERAS) -> SubjectInfo:
    return SubjectInfo(
        subject=subject,
        domain=domain,
        split=split,
        face_model="procedural",
        identity=np.linspace(-1, 1, 36, dtype=np.float32),  # the procedural face model's 36 components
        appearance={"skin_albedo": 0.6, "beard": False, "glasses": None},
        idiosyncrasies={"jawOpen": [0.1, 0.2]} if domain == "real" else None,
        rig_name="quest-pro-4",
        rig_text="name: quest-pro-4\ncameras: []\n",
        cameras=tuple(cameras),
    )


def make_labels(frames: int, cameras, size, rng: np.random.Generator) -> Labels:
    height, width = size
    keypoints = {c: (rng.random((frames, KEYPOINTS, 2)) * [width - 1, height - 1]).astype(np.float32) for c in cameras}
    return Labels(
        expression=rng.random((frames, 53), dtype=np.float32),
        gaze=rng.uniform(-30, 30, (frames, 2, 2)).astype(np.float32),
        head_rotation=np.tile(np.eye(3, dtype=np.float32), (frames, 1, 1)),
        head_translation=rng.normal(0, 2, (frames, 3)).astype(np.float32),
        keypoints=keypoints,
        keypoint_visibility={c: rng.random((frames, KEYPOINTS)) > 0.2 for c in cameras},
        keypoint_names=tuple(f"kp{i}" for i in range(KEYPOINTS)),
    )


def make_recording(
    subject: str = "s000",
    recording: str = "script",
    domain: str = "synthetic",
    split: str = "train",
    frames: int = 40,
    size: tuple[int, int] = (24, 32),
    cameras=CAMERAS,
    seed: int = 0,
) -> RecordingData:
    """A recording of random images and labels; anchors `neutral` (hold 4-7: frame 5), `jaw_open_max` (hold 20-30)."""
    rng = np.random.default_rng(seed)
    labelled = domain != "unlabeled"
    segments = [
        {"name": "neutral", "kind": "expression", "start_frame": 0, "stop_frame": 10, "peak_start_frame": 4,
         "peak_stop_frame": 7, "anchor": "neutral", "art_prior": {"jawOpen": 0.0}, "eyes_closed": False,
         "mouth_closed": True},
        {"name": "jaw_open_max", "kind": "expression", "start_frame": 10, "stop_frame": frames,
         "phases": {"onset_s": 0.2, "peak_s": 0.3, "hold_s": 0.5, "release_s": 0.3}, "peak_start_frame": 20,
         "peak_stop_frame": 30, "anchor": "jaw_open_max", "art_prior": {"jawOpen": 1.0}, "eyes_closed": False,
         "mouth_closed": False},
    ]  # fmt: skip
    return RecordingData(
        subject=make_subject(subject, domain, split, cameras),
        recording=recording,
        images={c: rng.integers(0, 256, (frames, *size), dtype=np.uint8) for c in cameras},
        timestamps=np.arange(frames, dtype=np.float64) / 72.0,
        labels=make_labels(frames, cameras, size, rng) if labelled else None,
        ood=rng.random(frames) > 0.9,
        segments=segments if labelled else None,
        attrs={"seed": seed, "frame_rate_hz": 72.0},
    )


@pytest.mark.parametrize("domain", ["synthetic", "real", "unlabeled"])
def test_helper_recordings_satisfy_the_schema(domain: str) -> None:
    validate_recording(make_recording(domain=domain))


def test_schema_rejects_labels_in_unlabeled_and_bad_shapes() -> None:
    """The store's input checks name what was expected and what came."""
    good = make_recording(domain="synthetic")
    with pytest.raises(ValueError, match="carries no labels"):
        validate_recording(
            RecordingData(**{**good.__dict__, "subject": make_subject("s000", "unlabeled"), "segments": None})
        )
    bad_images = {**good.images, "eye_left": good.images["eye_left"][:, :, :5].astype(np.float32)}
    with pytest.raises(ValueError, match=r"images/eye_left must be uint8"):
        validate_recording(RecordingData(**{**good.__dict__, "images": bad_images}))
    with pytest.raises(ValueError, match="must hold exactly the subject's cameras"):
        validate_recording(RecordingData(**{**good.__dict__, "images": {"eye_left": good.images["eye_left"]}}))
    with pytest.raises(ValueError, match="single path component"):
        make_subject("../escape")
