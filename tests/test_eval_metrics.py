"""egoface.eval.metrics and breakdown: Universal Sec. 5.2 metrics on constructed cases with known values.

Guarantees: a perfect prediction scores exactly 0 mm / 0 deg / 0 photometric; mesh, lower-face and mouth-shape L2
equal hand-computed values on a toy rig whose shapes move known vertices by known millimetres (mouth shape is the
*sum* of the width and opening differences); upper-face-only differences leave the lower-face error at 0 on the
procedural face; gaze offsets of 10 deg give 10 deg (5 deg when one eye is off); the photometric L1 is positive
for a different expression, symmetric, a per-frame mean, and its mask covers the face but not the background;
per-segment and per-expression breakdowns and the recording -> subject -> dataset aggregation on cases where a
plain mean would differ; inputs of the wrong shape fail with clear messages.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from egoface.capture.recording import SubjectInfo
from egoface.eval.breakdown import (
    ATTRIBUTION_GROUPS,
    aggregate,
    error_attribution,
    per_expression_errors,
    per_segment_errors,
)
from egoface.eval.metrics import (
    FaceTrack,
    frame_errors,
    frontal_render,
    geometry_metrics,
    metric_regions,
    neutral_exposure,
    photometric_l1,
)
from egoface.eval.visualize import FrontalFace
from egoface.face import Appearance, FaceModel
from egoface.face.names import expression_index, expression_vector
from toy_face import toy_face_data

JAW, STRETCH = expression_index("jawOpen"), expression_index("mouthStretch_L")


@pytest.fixture(scope="module")
def toy_rig():
    """The toy face (tests/toy_face.py) with known lip motion: jawOpen moves the bottom row (7 vertices) and the
    lower lip centre (vertex 10) down 10 mm; mouthStretch_L moves corner_L (vertex 8) 3 mm outward in x."""
    data = toy_face_data()
    data.expression_deltas[JAW, 10, 1] = -10.0
    data.expression_deltas[STRETCH, 8, 0] = -3.0
    return FaceModel(data).rig()


def procedural_subject() -> SubjectInfo:
    return SubjectInfo(
        subject="metrics-test",
        domain="synthetic",
        split="test",
        face_model="procedural",
        identity=np.zeros(36, np.float32),
        appearance=dataclasses.asdict(Appearance()),
        idiosyncrasies=None,
        rig_name="none",
        rig_text="",
        cameras=("eye_left",),
    )


@pytest.fixture(scope="module")
def procedural_face():
    return FrontalFace(procedural_subject(), 64)


def track(expressions, gaze=None) -> FaceTrack:
    expression = np.stack([expression_vector(e) for e in expressions])
    return FaceTrack(expression, np.zeros((len(expression), 2, 2)) if gaze is None else gaze)


def test_perfect_prediction_scores_zero(toy_rig):
    rng = np.random.default_rng(0)
    true = FaceTrack(rng.random((12, 53)), rng.uniform(-25, 25, (12, 2, 2)))
    metrics = geometry_metrics(true, true, toy_rig, batch=5)
    assert metrics["mesh_l2_mm"] == 0.0
    assert metrics["lower_face_mesh_l2_mm"] == 0.0
    assert metrics["mouth_shape_l2_mm"] == 0.0
    assert metrics["gaze_error_deg"] == pytest.approx(0.0, abs=1e-9)


def test_known_offsets_give_known_millimetres(toy_rig):
    regions = metric_regions(toy_rig.topology)
    assert len(regions["face"]) == 48  # the 7 x 7 grid without vertex 24 (the toy's teeth / mouth interior)
    true = track([{}, {}, {}])
    pred = track([{}, {"jawOpen": 1.0}, {"jawOpen": 1.0, "mouthStretch_L": 1.0}])
    errors = frame_errors(pred, true, toy_rig)
    # jawOpen: 8 face vertices move 10 mm; with the stretch one more moves 3 mm.
    np.testing.assert_allclose(errors.mesh_l2_mm, [0.0, 80 / 48, 83 / 48], rtol=1e-6)
    np.testing.assert_allclose(errors.lower_face_mesh_l2_mm, errors.mesh_l2_mm)
    # mouth shape: opening 20 -> 30 mm (+10), width 80 -> 83 mm (+3), summed: 13 (not sqrt(10^2 + 3^2)).
    np.testing.assert_allclose(errors.mouth_shape_l2_mm, [0.0, 10.0, 13.0], rtol=1e-6)
    assert geometry_metrics(pred, true, toy_rig)["mouth_shape_l2_mm"] == pytest.approx(23 / 3, rel=1e-6)


def test_mouth_shape_is_the_measured_lip_change_on_the_procedural_face(procedural_face):
    rig = procedural_face.rig
    pairs = rig.topology.lip_pairs
    true, pred = track([{}]), track([{"jawOpen": 1.0}])
    with torch.no_grad():
        v_true = rig(torch.from_numpy(true.expression)).vertices[0].numpy().astype(np.float64)
        v_pred = rig(torch.from_numpy(pred.expression)).vertices[0].numpy().astype(np.float64)

    def lips(v):  # mouth width and opening, mm
        width = np.linalg.norm(v[pairs.corner_L] - v[pairs.corner_R])
        return width, np.linalg.norm(v[pairs.upper_center] - v[pairs.lower_center])

    expected = sum(abs(a - b) for a, b in zip(lips(v_pred), lips(v_true), strict=True))
    metrics = geometry_metrics(pred, true, rig)
    assert expected > 20.0  # the jaw really opens the lips
    assert metrics["mouth_shape_l2_mm"] == pytest.approx(expected, rel=1e-4)
    assert metrics["lower_face_mesh_l2_mm"] > metrics["mesh_l2_mm"] > 0.5  # the jaw error sits in the lower face


def test_upper_face_differences_leave_the_lower_face_error_at_zero(procedural_face):
    true = track([{}, {"jawOpen": 0.3}])
    pred = track([{"browDown_L": 1.0, "eyeWide_R": 1.0}, {"jawOpen": 0.3, "browInnerUp_L": 1.0}])
    metrics = geometry_metrics(pred, true, procedural_face.rig)
    assert metrics["mesh_l2_mm"] > 0.05
    assert metrics["lower_face_mesh_l2_mm"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["mouth_shape_l2_mm"] == pytest.approx(0.0, abs=1e-4)


def test_gaze_offsets_give_their_angle(toy_rig):
    rng = np.random.default_rng(1)
    true_gaze = np.zeros((20, 2, 2))
    true_gaze[..., 0] = rng.uniform(-25, 25, (20, 2))  # pitch 0: a yaw offset is a great-circle step
    yaw_off = true_gaze + [10.0, 0.0]
    zeros = np.zeros((20, 53))
    assert geometry_metrics(FaceTrack(zeros, yaw_off), FaceTrack(zeros, true_gaze), toy_rig)[
        "gaze_error_deg"
    ] == pytest.approx(10.0, abs=1e-6)
    any_gaze = rng.uniform(-25, 25, (20, 2, 2))  # a pitch offset at any yaw is a meridian step
    one_eye = any_gaze.copy()
    one_eye[:, 0, 1] += 10.0
    errors = frame_errors(FaceTrack(zeros, one_eye), FaceTrack(zeros, any_gaze), toy_rig)
    np.testing.assert_allclose(errors.gaze_error_deg, 5.0, atol=1e-6)  # mean of 10 and 0 deg


def test_photometric_l1(procedural_face):
    true = track([{}, {"jawOpen": 0.2}, {"mouthSmile_L": 1.0}])
    pred = track([{}, {"jawOpen": 1.0}, {"mouthSmile_L": 1.0}])
    assert photometric_l1(true, true, procedural_face) == 0.0
    value = photometric_l1(pred, true, procedural_face)
    assert 0.001 < value < 0.5
    assert photometric_l1(true, pred, procedural_face) == pytest.approx(value)
    single = photometric_l1(pred, true, procedural_face, frames=[1])
    assert value == pytest.approx(single / 3)  # frames 0 and 2 are perfect: a per-frame mean
    with pytest.raises(ValueError, match="frames"):
        photometric_l1(pred, true, procedural_face, frames=[3])


def test_frontal_render_face_mask(procedural_face):
    render = frontal_render(procedural_face, np.zeros(53), np.zeros((2, 2)), neutral_exposure(procedural_face))
    assert render.image.shape == render.mask.shape == (64, 64)
    assert render.image.min() >= 0.0 and render.image.max() <= 1.0
    assert render.mask[32, 32]  # the face's centre
    assert not render.mask[0].any() and not render.mask[:, 0].any()  # background
    assert render.mask.sum() < (render.fragments.triangle_id >= 0).sum()  # neck and scalp are left out


def test_per_segment_and_per_expression_breakdowns(toy_rig):
    true = track([{}] * 10)
    pred = track([{}] * 5 + [{"jawOpen": 1.0}] * 5)
    rows = [
        {"name": "calm", "kind": "neutral", "start_frame": 0, "stop_frame": 5},
        {"name": "jaw", "kind": "expression", "start_frame": 5, "stop_frame": 10},
    ]
    per_segment = per_segment_errors(frame_errors(pred, true, toy_rig), rows)
    assert list(per_segment) == ["calm", "jaw"]
    assert per_segment["calm"]["mesh_l2_mm"] == 0.0
    assert per_segment["jaw"]["mesh_l2_mm"] == pytest.approx(80 / 48, rel=1e-6)
    assert per_segment["jaw"]["mouth_shape_l2_mm"] == pytest.approx(10.0, rel=1e-6)
    per_expression = per_expression_errors(pred.expression, true.expression)
    assert per_expression["jawOpen"] == pytest.approx(0.5)
    assert sum(per_expression.values()) == pytest.approx(0.5)
    assert per_expression_errors(pred.expression, true.expression, frames=slice(5, 10))["jawOpen"] == 1.0
    with pytest.raises(ValueError, match="outside"):
        per_segment_errors(frame_errors(pred, true, toy_rig), [{**rows[0], "stop_frame": 11}])


def test_error_attribution_finds_the_group_that_causes_the_error(toy_rig):
    true = track([{}] * 4, gaze=np.zeros((4, 2, 2)))
    gaze = np.zeros((4, 2, 2))
    gaze[:, :, 0] = 10.0  # both eyes 10 deg off: the toy rig has no eyeballs, so no millimetres
    pred = track([{"jawOpen": 1.0}, {"jawOpen": 1.0}, {"mouthStretch_L": 1.0}, {}], gaze=gaze)
    attribution = error_attribution(pred, true, toy_rig)
    assert set(attribution) == {"none", *ATTRIBUTION_GROUPS}
    assert attribution["none"] == pytest.approx((80 + 80 + 3) / 48 / 4, rel=1e-6)
    assert attribution["jaw_open"] == pytest.approx(3 / 48 / 4, rel=1e-6)  # only the stretch is left
    assert attribution["mouth"] == pytest.approx(160 / 48 / 4, rel=1e-6)  # only the jaw is left
    for group in ("gaze", "brows", "eyelids", "cheeks_nose", "jaw_sideways_forward"):
        assert attribution[group] == pytest.approx(attribution["none"], rel=1e-6)  # these were right (in mm)
    assert error_attribution(true, true, toy_rig) == {group: 0.0 for group in attribution}


def test_aggregation_is_recording_then_subject_then_dataset():
    per_recording = [
        ("a", {"mesh_l2_mm": 1.0, "eye_closure": float("nan")}),
        ("a", {"mesh_l2_mm": 1.0, "eye_closure": 1.0}),
        ("a", {"mesh_l2_mm": 1.0}),
        ("b", {"mesh_l2_mm": 3.0, "eye_closure": 0.0}),
    ]
    result = aggregate(per_recording)
    assert result.per_subject["a"] == {"mesh_l2_mm": 1.0, "eye_closure": 1.0}  # NaN and missing are skipped
    assert result.dataset["mesh_l2_mm"] == 2.0  # mean of subjects (1, 3); a plain mean of recordings gives 1.5
    assert result.dataset["eye_closure"] == 0.5
    assert np.isnan(aggregate([("c", {"x": float("nan")})]).dataset["x"])
    with pytest.raises(ValueError, match="at least one"):
        aggregate([])


def test_inputs_are_checked(toy_rig):
    with pytest.raises(ValueError, match=r"\(N, 53\)"):
        FaceTrack(np.zeros((4, 52)), np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="gaze"):
        FaceTrack(np.zeros((4, 53)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        FaceTrack(np.full((1, 53), np.nan), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="3 frames but the truth has 2"):
        geometry_metrics(track([{}] * 3), track([{}] * 2), toy_rig)
