"""Synthetic headset captures end to end: determinism, labels consistent with the images, what each camera sees,
obliqueness from geometry, domain policy, and generation that resumes after an interruption."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

from egoface.capture.generate import generate, plan_subjects
from egoface.capture.record import CaptureSettings, SubjectPlan, record_subject
from egoface.data import DatasetStore, HeadsetDataset, OracleReader
from egoface.eval.subjects import subject_appearance, subject_rig
from egoface.face import expression_vector, load_face_model
from egoface.headset import PRESET_NAMES, DonningModel, HeadPose, load_rig
from egoface.render.scene import Mesh, render_scene
from egoface.render.sensor import AutoExposure

FAST = CaptureSettings(script="tiny", resolution=(64, 64), fps=10.0, ood_rate=0.0)


@pytest.fixture(scope="module")
def rig():
    return load_rig("quest-pro-4")


@pytest.fixture(scope="module")
def synthetic_recording(rig):
    return record_subject(SubjectPlan("synthetic-0000", 0, "synthetic", "train", seed=11), rig, FAST)


def test_recording_is_deterministic_by_seed(rig, synthetic_recording) -> None:
    again = record_subject(SubjectPlan("synthetic-0000", 0, "synthetic", "train", seed=11), rig, FAST)
    for camera, images in synthetic_recording.images.items():
        np.testing.assert_array_equal(images, again.images[camera])
    np.testing.assert_array_equal(synthetic_recording.labels.expression, again.labels.expression)
    other = record_subject(SubjectPlan("synthetic-0000", 0, "synthetic", "train", seed=12), rig, FAST)
    assert not np.array_equal(other.images["mouth_left"], synthetic_recording.images["mouth_left"])


def test_images_are_exposed_and_labels_span_the_script(synthetic_recording) -> None:
    for camera, images in synthetic_recording.images.items():
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 64)
        assert 20 < images.mean() < 200, f"{camera} badly exposed: mean {images.mean():.0f}"
    jaw = synthetic_recording.labels.expression[:, 26]
    assert jaw.max() > 0.6 and jaw.min() < 0.1  # the tiny script opens the jaw fully and rests


def test_the_first_frames_are_exposed_like_the_rest() -> None:
    """The camera settles its exposure before the session and keeps adapting at its own 72 Hz between captured
    frames: the anchor expressions at the start of a 2.5 Hz capture are not overexposed while the loop catches up."""
    settings = CaptureSettings(script="small", resolution=(64, 64), fps=2.5, ood_rate=0.0)
    recording = record_subject(SubjectPlan("synthetic-0001", 1, "synthetic", "train", seed=3), load_rig("quest-pro-4"),
                               settings)  # fmt: skip
    for camera, images in recording.images.items():
        levels = np.array([AutoExposure.level(frame) for frame in images])
        late = np.median(levels[len(levels) // 2 :])
        assert np.all(np.abs(levels[:20] / late - 1.0) < 0.15), f"{camera}: first levels {levels[:20]}, late {late}"
        assert (images[:20] >= 250).mean() < 0.05, f"{camera}: saturated start"


def test_visible_keypoints_land_on_the_rendered_face(rig, synthetic_recording) -> None:
    """Rebuild the subject's face from the stored labels alone and check each visible keypoint hits its surface."""
    data = synthetic_recording
    face_rig = subject_rig(data.subject)
    labels = data.labels
    frame = int(np.argmax(labels.expression[:, 26]))  # jaw wide open: lips apart, teeth visible
    with torch.no_grad():
        vertices = face_rig(labels.expression[frame : frame + 1], labels.gaze[frame : frame + 1]).vertices[0].numpy()
    pose = HeadPose(labels.head_rotation[frame], labels.head_translation[frame])
    face = Mesh.uniform(pose.apply(vertices), face_rig.triangles)
    num_face_triangles = len(face_rig.triangles)
    mesh = Mesh.concatenate([face, *rig.occluder_meshes().values()])
    checked = 0
    for camera in data.subject.cameras:
        fragments = render_scene(mesh, rig.camera(camera, (64, 64)), rig.lights()).fragments
        visible = labels.keypoint_visibility[camera][frame]
        column, row = np.rint(labels.keypoints[camera][frame][visible]).astype(int).T
        hit = fragments.triangle_id[row, column]
        assert ((hit >= 0) & (hit < num_face_triangles)).mean() > 0.95, camera
        checked += visible.sum()
    assert checked > 20


def _seen(camera, depth: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """points (N, 3) -> in the image (N,), and unoccluded there (its pixel shows a surface at its depth) (N,)."""
    projection = camera.project(points)
    column, row = np.rint(projection.pixels).astype(int).T
    inside = projection.valid & (column >= 0) & (column < camera.width) & (row >= 0) & (row < camera.height)
    seen = np.zeros(len(points), bool)
    seen[inside] = np.abs(depth[row[inside], column[inside]] - projection.depth[inside]) <= 3.0
    return inside, seen


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_eye_cameras_see_the_eyes_and_mouth_cameras_the_mouth_under_donning(preset) -> None:
    """Eye cameras: the whole eye contour in the frame and the pupil unoccluded; mouth and boom cameras: most of the
    outer lip contour on their side of the face (all of it for a centred camera) unoccluded -- at the nominal pose and
    three sampled donnings."""
    rig = load_rig(preset)
    model = load_face_model("procedural")
    names = model.topology.landmarks.names
    regions = model.topology.regions
    with torch.no_grad():
        vertices = model().vertices[0].numpy()
    contour = {s: model.topology.landmarks.vertex_ids[[n.startswith(f"eye_{s}_") for n in names]] for s in "LR"}
    pupil = {s: np.intersect1d(regions["pupil"], regions[f"eye_{s}"]) for s in "LR"}
    lips = model.topology.landmarks.vertex_ids[[n.startswith("lip_outer_") for n in names]]
    lip_side = {"left": vertices[lips, 0] >= 0, "right": vertices[lips, 0] <= 0, "center": np.ones(len(lips), bool)}
    donning = DonningModel()
    for trial in range(4):
        pose = donning.sample_session_pose(trial) if trial else rig.head_pose
        posed = pose.apply(vertices)
        mesh = Mesh.concatenate([Mesh.uniform(posed, model.triangles), *rig.occluder_meshes().values()])
        for spec in rig.cameras:
            if spec.role not in ("eye", "mouth", "boom"):
                continue
            camera = rig.camera(spec.name, (96, 96))
            depth = render_scene(mesh, camera, rig.lights()).fragments.depth
            where = f"{preset} {spec.name} donning {trial}"
            if spec.role == "eye":
                side = "L" if spec.side == "left" else "R"
                inside, _ = _seen(camera, depth, posed[contour[side]])
                _, pupil_seen = _seen(camera, depth, posed[pupil[side]])
                assert inside.all() and pupil_seen.any(), f"{where}: eye in frame {inside.mean():.0%}, pupil hidden"
            else:
                _, seen = _seen(camera, depth, posed[lips[lip_side[spec.side]]])
                assert seen.mean() >= 0.5, f"{where}: sees {seen.mean():.0%} of its outer lip landmarks"


def test_oblique_mouth_cameras_see_less_lip_motion_than_frontal_boom_cameras() -> None:
    rig = load_rig("quest-pro-train-8")
    model = load_face_model("procedural")
    lower_lip = model.topology.lip_pairs.lower_center
    with torch.no_grad():
        neutral = model().vertices[0, lower_lip].numpy()
        opened = model(expression=torch.from_numpy(expression_vector({"jawOpen": 1.0}))[None]).vertices[0, lower_lip]
    motion = {}
    for spec in rig.cameras:
        if spec.role in ("mouth", "boom"):
            camera = rig.camera(spec.name, (192, 192))
            pixels = camera.project(np.stack([neutral, opened.numpy()])).pixels
            motion[spec.name] = float(np.linalg.norm(pixels[1] - pixels[0]))
    oblique = [v for k, v in motion.items() if k.startswith("mouth")]
    frontal = [v for k, v in motion.items() if k.startswith("boom")]
    assert len(oblique) == 2 and len(frontal) == 2
    assert max(oblique) < min(frontal), motion


def test_real_domain_labels_reach_only_the_evaluation_reader(tmp_path, rig) -> None:
    plan = SubjectPlan("real-0000", 100_000, "real", "train", seed=5)
    recording = record_subject(plan, rig, FAST)
    assert recording.subject.idiosyncrasies is not None  # person-specific rig
    DatasetStore(tmp_path).write_recording(recording)
    dataset = HeadsetDataset(tmp_path, domains=("real",), splits=("train",), resolution=(32, 32))
    assert len(dataset) == recording.frames
    assert all(dataset[i].expression is None and dataset[i].gaze is None for i in (0, len(dataset) - 1))
    stored = DatasetStore(tmp_path).read_recording("real-0000", "script")
    assert stored.labels is None and stored.segments is not None  # art priors may train, true labels may not
    withheld = OracleReader(tmp_path).labels("real-0000", "script")
    np.testing.assert_array_equal(withheld.expression, recording.labels.expression)


def test_synthetic_subjects_get_idiosyncrasies_only_when_asked(rig, synthetic_recording) -> None:
    assert synthetic_recording.subject.idiosyncrasies is None  # the synthetic domain's own: the generic rig
    plan = SubjectPlan("synthetic-0000", 0, "synthetic", "train", seed=11)
    personal = record_subject(plan, rig, dataclasses.replace(FAST, idiosyncrasies=2.0)).subject.idiosyncrasies
    assert personal is not None and personal["perturbation"] == 0.5  # strength 2: twice the real domain's 25%
    assert np.std(personal["amplitude"]) > 0.2  # per-shape gains about 1 +- 0.4
    with pytest.raises(ValueError, match="idiosyncrasies must be a strength"):
        CaptureSettings(idiosyncrasies=-1.0)


def test_unlabeled_recordings_carry_no_labels_and_subject_appearance_round_trips(rig) -> None:
    recording = record_subject(SubjectPlan("unlabeled-0000", 200_000, "unlabeled", "train", seed=5), rig, FAST)
    assert recording.labels is None and recording.segments is None
    assert subject_appearance(recording.subject).skin_albedo == recording.subject.appearance["skin_albedo"]


class _FailingStore(DatasetStore):
    """A store whose second write dies half-way (an interrupted job)."""

    writes = 0

    def write_recording(self, data):  # type: ignore[no-untyped-def]
        type(self).writes += 1
        if type(self).writes == 2:
            raise KeyboardInterrupt("interrupted")
        return super().write_recording(data)


def test_interrupted_generation_resumes_to_the_same_result(tmp_path, rig) -> None:
    plans = plan_subjects(["synthetic"], 3, seed=2, split_of=lambda index: "train")
    with pytest.raises(KeyboardInterrupt):
        generate(plans, rig, FAST, functools.partial(_FailingStore, tmp_path / "resumed"))
    assert len(DatasetStore(tmp_path / "resumed").recordings()) == 1
    summary = generate(plans, rig, FAST, functools.partial(DatasetStore, tmp_path / "resumed"))
    assert (summary.written, summary.skipped) == (2, 1)
    generate(plans, rig, FAST, functools.partial(DatasetStore, tmp_path / "fresh"))
    for plan in plans:
        a = DatasetStore(tmp_path / "resumed").read_recording(plan.subject, "script")
        b = DatasetStore(tmp_path / "fresh").read_recording(plan.subject, "script")
        for camera in a.images:
            np.testing.assert_array_equal(a.images[camera], b.images[camera])
        np.testing.assert_array_equal(a.labels.expression, b.labels.expression)
