"""The face interface: names, gaze <-> eyeLook, posing, rigs, idiosyncrasies, input checks (on a toy model)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from egoface.face import (
    EXPRESSION_NAMES,
    EYE_LOOK_NAMES,
    FREE_EXPRESSION_NAMES,
    FaceModel,
    expression_index,
    expression_vector,
    eye_look_from_gaze,
    gaze_from_eye_look,
    gaze_vector,
    mirror_name,
    sample_idiosyncrasies,
)
from egoface.face.gaze import gaze_rotation
from toy_face import EYE_CENTRES, EYE_RADIUS, toy_face, toy_face_data


def test_canonical_names_match_the_reference_order() -> None:
    assert len(EXPRESSION_NAMES) == 53 and len(set(EXPRESSION_NAMES)) == 53
    assert EXPRESSION_NAMES[0] == "browDown_L" and EXPRESSION_NAMES[-1] == "noseSneer_R"
    assert len(EYE_LOOK_NAMES) == 8 and len(FREE_EXPRESSION_NAMES) == 45
    assert expression_index("jawOpen") == 26


def test_unknown_expression_name_lists_the_valid_ones() -> None:
    with pytest.raises(KeyError, match="valid names are: browDown_L"):
        expression_vector({"jawOpenn": 1.0})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        expression_vector({"jawOpen": 1.5})


def test_mirror_names() -> None:
    assert mirror_name("eyeBlink_L") == "eyeBlink_R"
    assert mirror_name("jawLeft") == "jawRight" and mirror_name("mouthRight") == "mouthLeft"
    assert mirror_name("mouthPucker") == "mouthPucker"
    assert all(mirror_name(mirror_name(n)) == n for n in EXPRESSION_NAMES)


def test_eye_look_from_gaze_known_values_and_inverse() -> None:
    gaze = torch.tensor([[[15.0, 12.5], [-15.0, -15.0]]])  # left eye out+up, right eye out+down
    look = dict(zip(EYE_LOOK_NAMES, eye_look_from_gaze(gaze)[0].tolist(), strict=True))
    assert look["eyeLookOut_L"] == pytest.approx(0.5) and look["eyeLookIn_L"] == 0.0
    assert look["eyeLookOut_R"] == pytest.approx(0.5) and look["eyeLookIn_R"] == 0.0
    assert look["eyeLookUp_L"] == pytest.approx(0.5) and look["eyeLookDown_R"] == pytest.approx(0.5)
    assert torch.allclose(gaze_from_eye_look(eye_look_from_gaze(gaze)), gaze)


def test_gaze_rotation_takes_forward_to_the_gaze_vector() -> None:
    gaze = torch.tensor([[20.0, -10.0], [0.0, 0.0], [-35.0, 25.0]])
    forward = gaze_rotation(gaze) @ torch.tensor([0.0, 0.0, 1.0])
    assert torch.allclose(forward, gaze_vector(gaze), atol=1e-6)
    assert torch.allclose(gaze_vector(torch.tensor([90.0, 0.0])), torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


def test_posing_applies_expressions_and_identity_linearly() -> None:
    model = toy_face()
    expression = torch.from_numpy(expression_vector({"jawOpen": 0.5}))[None]
    posed = model(expression=expression).vertices[0]
    assert torch.allclose(posed[:7, 1] - model.neutral_vertices[:7, 1], torch.full((7,), -5.0))
    assert torch.allclose(posed[7:49], model.neutral_vertices[7:49])
    wide = model(identity=torch.tensor([[1.0, 0.0]])).vertices[0]
    assert torch.allclose(wide[:49, 0], 1.1 * model.neutral_vertices[:49, 0])


def test_gaze_rotates_eyeballs_rigidly_about_their_centres() -> None:
    model = toy_face()
    ids = model.topology.eyeball_vertex_ids[0]
    face = model(gaze=torch.tensor([[[20.0, 5.0], [0.0, 0.0]]]))
    left = face.vertices[0, ids]
    distance = (left - torch.from_numpy(EYE_CENTRES[0]).float()).norm(dim=1)
    assert torch.allclose(distance, torch.full_like(distance, EYE_RADIUS), atol=1e-4)
    front = int(ids[0])  # the sphere's front pole moves toward +X and up
    assert face.vertices[0, front, 0] > EYE_CENTRES[0, 0] + 3 and face.vertices[0, front, 1] > 0.5
    assert torch.allclose(
        face.vertices[0, model.topology.eyeball_vertex_ids[1]],
        model.neutral_vertices[model.topology.eyeball_vertex_ids[1]],
    )
    assert face.expression[0, expression_index("eyeLookOut_L")] > 0.6


def test_eye_look_weights_drive_the_eyeballs_without_gaze() -> None:
    model = toy_face()
    face = model(expression=torch.from_numpy(expression_vector({"eyeLookUp_R": 1.0}))[None])
    assert face.gaze[0, 1, 1] == pytest.approx(25.0) and face.gaze[0, 0, 1] == 0.0


def test_identity_moves_eyeball_centres_with_the_eyes() -> None:
    model = toy_face()
    face = model(identity=torch.tensor([[0.0, 1.0]]))
    assert face.eyeball_centers[0, 0, 2] == pytest.approx(EYE_CENTRES[0, 2] + 2.0)


def test_gradients_reach_identity_expression_and_gaze() -> None:
    model = toy_face().double()
    identity = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    expression = torch.zeros(1, 53, dtype=torch.float64, requires_grad=True)
    gaze = torch.full((1, 2, 2), 3.0, dtype=torch.float64, requires_grad=True)
    vertices = model(identity, expression, gaze).vertices
    (vertices * torch.linspace(0, 1, vertices.numel(), dtype=torch.float64).view_as(vertices)).sum().backward()
    for tensor in (identity, expression, gaze):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0


def test_bad_inputs_raise_clear_errors() -> None:
    model = toy_face()
    with pytest.raises(ValueError, match=r"expression must have shape \(1, 53\), got \(1, 52\)"):
        model(expression=torch.zeros(1, 52))
    with pytest.raises(ValueError, match="NaN"):
        model(expression=torch.full((1, 53), float("nan")))
    with pytest.raises(ValueError, match=r"identity must have shape \(2, 2\)"):
        model(identity=torch.zeros(2, 3), expression=torch.zeros(2, 53))
    with pytest.raises(TypeError, match="array of numbers"):
        model(gaze="left")


def test_model_data_validation_names_the_problem() -> None:
    data = toy_face_data()
    with pytest.raises(ValueError, match="expression_deltas must have shape"):
        FaceModel(dataclasses.replace(data, expression_deltas=data.expression_deltas[:52]))
    regions = dict(data.topology.regions)
    del regions["lips"]
    with pytest.raises(ValueError, match="lacks the regions"):
        FaceModel(dataclasses.replace(data, topology=dataclasses.replace(data.topology, regions=regions)))


def test_rig_reproduces_the_model_and_idiosyncrasies_change_it() -> None:
    model = toy_face()
    identity = torch.tensor([0.7, -0.3])
    expression = torch.from_numpy(expression_vector({"jawOpen": 1.0, "browDown_L": 0.4}))[None]
    rig = model.rig(identity)
    assert torch.allclose(rig(expression).vertices, model(identity[None], expression).vertices, atol=1e-5)
    own = model.rig(identity, sample_idiosyncrasies(seed=3))
    difference = (own(expression).vertices - rig(expression).vertices).norm(dim=-1)
    assert difference.max() > 0.5  # mm: another person's generic rig cannot reproduce it exactly
    assert torch.allclose(own().vertices, rig().vertices)  # the neutral face is the subject's own


def test_idiosyncrasies_are_deterministic_by_seed() -> None:
    a, b = sample_idiosyncrasies(5), sample_idiosyncrasies(5)
    assert np.array_equal(a.amplitude, b.amplitude) and a.perturbation == b.perturbation
    assert not np.array_equal(a.amplitude, sample_idiosyncrasies(6).amplitude)


def test_lids_slide_over_the_eye_instead_of_cutting_through_it() -> None:
    """A lid vertex that a shape drives through the eyeball ends on the clearance sphere through the corneal apex."""
    data = toy_face_data()
    lid = 24  # a grid vertex, moved by jawOpen straight into the left eye's centre
    deltas = data.expression_deltas.copy()
    deltas[expression_index("jawOpen"), lid] = EYE_CENTRES[0] - data.neutral[lid] + [0.0, 0.0, 3.0]
    topology = dataclasses.replace(data.topology, eyelid_vertex_ids=(np.array([lid]), np.zeros(0, np.int64)))
    model = FaceModel(dataclasses.replace(data, expression_deltas=deltas, topology=topology))
    assert model.lid_clearance[0].item() == pytest.approx(EYE_RADIUS + 0.1, abs=1e-4)  # the toy eye is a sphere
    posed = model(expression=torch.from_numpy(expression_vector({"jawOpen": 1.0}))[None]).vertices[0, lid]
    distance = (posed - torch.from_numpy(EYE_CENTRES[0]).float()).norm()
    assert distance.item() == pytest.approx(EYE_RADIUS + 0.1, abs=1e-3)
    assert posed[2] > EYE_CENTRES[0, 2]  # pushed out along its own direction (forward), not snapped elsewhere


def test_models_without_eyeballs_keep_their_nominal_eye_centres_per_face() -> None:
    data = toy_face_data()
    empty = np.zeros(0, np.int64)
    model = FaceModel(
        dataclasses.replace(data, topology=dataclasses.replace(data.topology, eyeball_vertex_ids=(empty, empty)))
    )
    face = model(identity=torch.zeros(3, 2))
    assert face.eyeball_centers.shape == (3, 2, 3)
    assert torch.allclose(face.eyeball_centers[2], torch.from_numpy(EYE_CENTRES).float())
