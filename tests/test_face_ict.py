"""ICT-FaceKit loader: the packed npz (needs ../shared/assets) and the FaceXModel folder layout (tiny fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from egoface.face.ict import ICT_LANDMARKS_MULTIPIE68, load_ict_facekit
from egoface.face.model import REQUIRED_REGIONS
from egoface.face.names import EXPRESSION_NAMES, expression_index
from face_fixtures import synthetic_face, write_facexmodel

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"
NPZ = ASSETS / "ict_facekit_light.npz"


@pytest.fixture(scope="module")
def ict():
    if not NPZ.exists():
        pytest.skip("needs ../shared/assets/ict_facekit_light.npz (developer machines and CI only)")
    return load_ict_facekit(NPZ)


@pytest.fixture(scope="module")
def raw():
    if not NPZ.exists():
        pytest.skip("needs ../shared/assets/ict_facekit_light.npz (developer machines and CI only)")
    with np.load(NPZ) as archive:
        return {key: archive[key] for key in ("neutral", "expression_names", "landmarks_multipie68")}


def test_npz_sizes_names_and_landmarks(ict, raw):
    assert ict.num_vertices == 26719
    assert ict.num_identity_components == 100
    assert ict.expression_names == EXPRESSION_NAMES and ict.missing_expressions == ()
    assert ict.triangles.shape[1] == 3 and ict.triangles.dtype == np.int32
    assert len(ict.topology.landmarks.vertex_ids) == 68
    np.testing.assert_array_equal(ict.topology.landmarks.vertex_ids, raw["landmarks_multipie68"])
    np.testing.assert_array_equal(ICT_LANDMARKS_MULTIPIE68, raw["landmarks_multipie68"])


def test_cm_to_mm_and_head_frame(ict, raw):
    """Eyeballs sit symmetric about the origin at ICT's measured size; the mesh is ICT's, scaled by 10 and shifted."""
    centres = ict.mean_eyeball_centers.numpy()
    np.testing.assert_allclose(centres[0, :2], [31.2, 0.0], atol=0.5)
    eyeballs = ict.topology.regions["eyeballs"]
    assert ict.neutral_vertices[eyeballs, 2].max().item() == pytest.approx(0.0, abs=0.5)  # corneal plane at z = 0
    assert -20.0 < centres[0, 2] < -12.0  # eye centres behind it
    np.testing.assert_allclose(centres[1], centres[0] * [-1, 1, 1], atol=1e-4)
    np.testing.assert_allclose(ict.eyeball_radius.numpy(), 15.8, atol=0.3)
    shift = ict.neutral_vertices.numpy() - raw["neutral"] * 10.0
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-3)
    np.testing.assert_allclose(-shift[0, :2], [0.0, 36.0], atol=0.5)  # ICT's eye midpoint height, mm


def test_jaw_open_displacement_is_about_42_mm(ict):
    largest = ict.expression_deltas[expression_index("jawOpen")].norm(dim=-1).max().item()
    assert 41.0 < largest < 43.0


def test_drops_the_four_extra_shapes(raw):
    assert {"cheekRaiser_L", "PupilDilate_R"} <= set(raw["expression_names"].tolist())
    assert "cheekRaiser_L" not in EXPRESSION_NAMES and "PupilDilate_R" not in EXPRESSION_NAMES


def test_triangles_face_outward(ict):
    """Front-most face triangles (nose, lips) have normals toward +Z: the winding is counter-clockwise outside."""
    v = ict.neutral_vertices.numpy()
    tri = ict.triangles[np.isin(ict.triangles[:, 0], ict.topology.regions["nose"])]
    normals = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    assert (normals[:, 2] > 0).mean() > 0.8


def test_gaze_rotates_eyeballs_about_their_centres(ict):
    gaze = torch.tensor([[[20.0, 0.0], [20.0, 0.0]]])
    ahead, turned = ict(gaze=torch.zeros(1, 2, 2)), ict(gaze=gaze)
    for eye, ids in enumerate(ict.topology.eyeball_vertex_ids):
        centre = turned.eyeball_centers[0, eye]
        before = (ahead.vertices[0, ids] - centre).norm(dim=-1)
        after = (turned.vertices[0, ids] - centre).norm(dim=-1)
        torch.testing.assert_close(before, after, atol=1e-3, rtol=0)
        pupil = np.intersect1d(ids, ict.topology.regions["pupil"])
        assert len(pupil) > 0
        shift_x = (turned.vertices[0, pupil, 0] - ahead.vertices[0, pupil, 0]).mean().item()
        assert shift_x > 3.0  # 20 deg on a ~14 mm pupil radius moves it ~5 mm toward +X


def test_identity_sample_changes_the_mesh(ict):
    identity = ict.sample_identity(1, generator=torch.Generator().manual_seed(0))
    change = (ict(identity=identity).vertices - ict().vertices).norm(dim=-1)
    assert change.max().item() > 1.0


def test_regions_are_complete_and_in_place(ict):
    regions, v = ict.topology.regions, ict.neutral_vertices.numpy()
    for name in (*REQUIRED_REGIONS, "sclera", "iris", "pupil"):
        assert len(regions[name]) > 0, name
    assert v[regions["eye_L"], 0].mean() > 0 > v[regions["eye_R"], 0].mean()
    assert v[regions["brows"], 1].mean() > v[regions["eye_L"], 1].mean() > v[regions["lips"], 1].mean()
    assert v[regions["lips"], 1].mean() > v[regions["chin"], 1].mean()
    assert v[regions["upper_face"], 1].min() >= v[regions["lower_face"], 1].max()
    pairs = ict.topology.lip_pairs
    assert v[pairs.corner_L, 0] > 20 and v[pairs.corner_R, 0] < -20
    assert abs(v[pairs.upper_center, 0]) < 1 and v[pairs.upper_center, 1] >= v[pairs.lower_center, 1]


def test_malformed_npz_names_file_and_key(tmp_path, raw):
    missing = tmp_path / "missing.npz"
    np.savez(missing, neutral=raw["neutral"])
    with pytest.raises(ValueError, match=r"missing\.npz.*'faces'"):
        load_ict_facekit(missing)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, neutral=raw["neutral"][:, :2])
    with pytest.raises(ValueError, match=r"wrong\.npz.*'neutral'.*shape"):
        load_ict_facekit(wrong)


def test_facexmodel_folder_fixture_loads(tmp_path):
    face = write_facexmodel(tmp_path / "FaceXModel")
    for path in (tmp_path, tmp_path / "FaceXModel"):
        model = load_ict_facekit(path)
        assert model.num_vertices == len(face.neutral) and model.num_identity_components == 2
        assert model.missing_expressions == ()
        # cm -> mm: the fixture was written at 1/10 of its mm coordinates; the origin moves between the eyes, onto
        # the corneal plane.
        origin = face.neutral[face.eyeballs[0] + face.eyeballs[1]].mean(axis=0)
        origin[2] = face.neutral[face.eyeballs[0] + face.eyeballs[1], 2].max()
        np.testing.assert_allclose(model.neutral_vertices.numpy(), face.neutral - origin, atol=1e-3)
        jaw = expression_index("jawOpen")
        np.testing.assert_allclose(model.expression_deltas[jaw].numpy(), face.shapes["jawOpen"], atol=1e-3)
        assert (model(identity=torch.ones(1, 2)).vertices - model().vertices).abs().max() > 1.0


def test_facexmodel_folder_missing_expression_file(tmp_path):
    write_facexmodel(tmp_path)
    (tmp_path / "jawOpen.obj").unlink()
    with pytest.raises(FileNotFoundError, match=r"jawOpen\.obj"):
        load_ict_facekit(tmp_path)


def test_fixture_is_symmetric():
    """The shared fixture itself: mirrored _L/_R shapes, so side tests on it mean something."""
    face = synthetic_face()
    left, right = face.shapes["eyeBlink_L"], face.shapes["eyeBlink_R"]
    assert np.abs(left).sum() == pytest.approx(np.abs(right).sum(), rel=1e-5)


def test_a_camera_sees_the_iris_and_pupil_not_icts_shading_shells(ict):
    """ICT's eye occlusion/blend shells, eyelash cards and the cornea cap are not drawn: a frontal camera looking at
    the pupil sees into the eyeball (ICT's pupil is a hole in a dished iris, behind it the eye's dark interior)."""
    from egoface.render.scene import Mesh, frontal_camera, render_scene
    from egoface.render.sheets import studio_lights

    vertices = ict().vertices[0].detach().numpy()
    camera = frontal_camera(256, 256, distance_mm=300.0)
    fragments = render_scene(Mesh.uniform(vertices, ict.triangles), camera, studio_lights(camera)).fragments
    pupil = ict.topology.regions["pupil"]
    for side in (1.0, -1.0):
        centre = vertices[pupil][np.sign(vertices[pupil, 0]) == side].mean(axis=0)
        column, row = np.rint(camera.project(centre[None]).pixels[0]).astype(int)
        triangle = ict.triangles[fragments.triangle_id[row, column]]
        assert np.isin(triangle, ict.topology.regions["eyeballs"]).all()
        assert not np.isin(triangle, ict.topology.regions["sclera"]).any()
