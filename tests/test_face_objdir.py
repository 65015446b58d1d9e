"""OBJ reading/writing and face models from folders of OBJ blendshapes (synthetic fixture in tmp_path)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from egoface.face.model import REQUIRED_REGIONS
from egoface.face.names import expression_index
from egoface.face.objdir import load_obj_folder
from egoface.face.objio import ObjFormatError, read_obj, write_obj
from face_fixtures import synthetic_face, write_obj_folder


def _load_quietly(folder, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_obj_folder(folder, **kwargs)


# --- read_obj / write_obj ---------------------------------------------------------------------------------------


def test_read_obj_forms_negative_indices_and_quads(tmp_path):
    path = tmp_path / "mesh.obj"
    path.write_text(
        "# a comment\nmtllib a.mtl\no thing\ng group\ns 1\nusemtl skin\n"
        "v 0 0 0\nv 1 0 0\nv 1 1 0  # trailing comment\nv 0 1 0\n"
        "vt 0 0\nvn 0 0 1\n"
        "f 1/1/1 2/1/1 3/1/1 4/1/1\n"
        "f -4//1 -2//1 -1//1\n"
        "f 1/1 2/1 3/1\n"
    )
    vertices, triangles = read_obj(path)
    assert vertices.dtype == np.float32 and vertices.shape == (4, 3)
    assert triangles.dtype == np.int32
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3], [0, 2, 3], [0, 1, 2]])


def test_write_read_round_trip(tmp_path):
    face = synthetic_face()
    write_obj(tmp_path / "face.obj", face.neutral, face.triangles)
    vertices, triangles = read_obj(tmp_path / "face.obj")
    np.testing.assert_allclose(vertices, face.neutral, atol=1e-5)
    np.testing.assert_array_equal(triangles, face.triangles)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("v 0 0 0\nv 1 0\n", r"bad\.obj, line 2: a vertex needs 3 coordinates"),
        ("v 0 0 0\nv 1 x 0\n", r"bad\.obj, line 2: vertex coordinate 'x' is not a number"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", r"bad\.obj, line 4: face refers to a vertex that does not exist"),
        ("v 0 0 0\nf 1 2\n", r"bad\.obj, line 2: a face needs at least 3 vertices"),
        ("v 0 0 0\nf 1 a 2\n", r"bad\.obj, line 2: face indices must be integers"),
        ("v 0 0 0\nf 0 1 1\n", r"bad\.obj, line 2: face index 0 is invalid"),
        ("v 0 0 0\nbogus 1\n", r"bad\.obj, line 2: unknown statement 'bogus'"),
    ],
)
def test_malformed_obj_names_file_and_line(tmp_path, body, message):
    (tmp_path / "bad.obj").write_text(body)
    with pytest.raises(ObjFormatError, match=message):
        read_obj(tmp_path / "bad.obj")


# --- load_obj_folder --------------------------------------------------------------------------------------------


def test_folder_loads_arkit_names_and_splits_merged_shapes(tmp_path):
    face = write_obj_folder(tmp_path)
    model = _load_quietly(tmp_path)
    assert model.num_vertices == len(face.neutral) and model.num_identity_components == 0
    assert model.missing_expressions == ()
    deltas = model.expression_deltas.numpy()
    for name in ("eyeBlink_L", "jawOpen", "mouthSmile_R"):
        np.testing.assert_allclose(deltas[expression_index(name)], face.shapes[name], atol=1e-4)
    for merged in ("browInnerUp", "cheekPuff"):
        left, right = deltas[expression_index(merged + "_L")], deltas[expression_index(merged + "_R")]
        np.testing.assert_allclose(left + right, face.shapes[merged + "_L"] + face.shapes[merged + "_R"], atol=1e-4)
        x = model.neutral_vertices[:, 0].numpy()
        assert np.abs(left[x < -10]).max() == 0 and np.abs(right[x > 10]).max() == 0
        assert np.abs(left[x > 10]).max() > 1.0


def test_missing_and_unknown_shapes_are_reported(tmp_path):
    write_obj_folder(tmp_path, skip=("mouthDimple_L", "jawForward"), extra=("tongueOut", "hat"))
    with pytest.warns(UserWarning) as record:
        model = load_obj_folder(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert "hat.obj" in messages and "tongueOut.obj" in messages
    assert "mouthDimple_L" in messages and "jawForward" in messages
    assert model.missing_expressions == ("jawForward", "mouthDimple_L")
    assert not model.present[expression_index("jawForward")]
    assert model.expression_deltas[expression_index("jawForward")].abs().max() == 0


def test_names_match_case_insensitively_in_both_spellings(tmp_path):
    write_obj_folder(tmp_path)
    (tmp_path / "eyeBlinkLeft.obj").rename(tmp_path / "EyeBlink_L.obj")
    (tmp_path / "jawOpen.obj").rename(tmp_path / "JAWOPEN.obj")
    model = _load_quietly(tmp_path)
    assert model.missing_expressions == ()
    (tmp_path / "eyeblinkleft.obj").write_bytes((tmp_path / "EyeBlink_L.obj").read_bytes())
    with pytest.raises(ValueError, match=r"EyeBlink_L\.obj.*eyeblinkleft\.obj|eyeblinkleft\.obj.*EyeBlink_L\.obj"):
        load_obj_folder(tmp_path)


def test_vertex_count_mismatch_names_file_and_counts(tmp_path):
    face = write_obj_folder(tmp_path)
    write_obj(tmp_path / "jawOpen.obj", face.neutral[:-1], face.triangles[:10])
    with pytest.raises(
        ValueError, match=rf"jawOpen\.obj has {len(face.neutral) - 1} vertices, expected {len(face.neutral)}"
    ):
        load_obj_folder(tmp_path)


def test_units_are_converted_to_mm(tmp_path):
    face = write_obj_folder(tmp_path / "mm")
    write_obj_folder(tmp_path / "cm", scale=0.1)
    in_mm, in_cm = _load_quietly(tmp_path / "mm"), _load_quietly(tmp_path / "cm", units="cm")
    torch.testing.assert_close(in_cm.neutral_vertices, in_mm.neutral_vertices, atol=1e-3, rtol=0)
    torch.testing.assert_close(in_cm.expression_deltas, in_mm.expression_deltas, atol=1e-3, rtol=0)
    assert in_mm.eyeball_radius[0].item() == pytest.approx(12.0, abs=0.5)
    assert len(face.neutral) == in_mm.num_vertices
    with pytest.raises(ValueError, match="units"):
        load_obj_folder(tmp_path / "mm", units="inch")


def test_eyeballs_recentre_and_follow_gaze(tmp_path):
    face = write_obj_folder(tmp_path)
    model = _load_quietly(tmp_path)
    # origin between the eyes on the corneal plane: the 12 mm fixture eyes' centres sit 12 mm behind it
    np.testing.assert_allclose(model.mean_eyeball_centers.numpy(), [[32, 0, -12], [-32, 0, -12]], atol=0.2)
    ids = np.asarray(face.eyeballs[0])
    turned = model(gaze=torch.tensor([[[20.0, 0.0], [0.0, 0.0]]])).vertices[0, ids]
    front = ids[np.argmax(face.neutral[ids, 2])]
    assert turned[list(ids).index(front), 0] > model.neutral_vertices[front, 0] + 3.0


def test_without_eyeballs_gaze_moves_no_eyes_and_centres_are_finite(tmp_path):
    write_obj_folder(tmp_path, eyeballs=False)
    model = _load_quietly(tmp_path)
    assert all(ids.size == 0 for ids in model.topology.eyeball_vertex_ids)
    mesh = model(gaze=torch.tensor([[[20.0, 10.0], [20.0, 10.0]]]))
    assert torch.isfinite(mesh.eyeball_centers).all()
    # Only the eyeLook* lid shapes move; the sphere vertices (not on the face) stay where they are.
    face = synthetic_face()
    sphere = np.asarray(face.eyeballs[0] + face.eyeballs[1])
    torch.testing.assert_close(mesh.vertices[0, sphere], model.neutral_vertices[sphere])


def test_regions_and_lip_pairs_are_inferred_from_shapes(tmp_path):
    write_obj_folder(tmp_path)
    model = _load_quietly(tmp_path)
    regions, v = model.topology.regions, model.neutral_vertices.numpy()
    for name in REQUIRED_REGIONS:
        assert name in regions
    for name in ("face", "eye_L", "eye_R", "brows", "lips", "nose", "cheeks", "chin", "eyeballs", "sclera"):
        assert len(regions[name]) > 0, name
    assert v[regions["eye_L"], 0].min() > 0 > v[regions["eye_R"], 0].max()
    assert v[regions["brows"], 1].mean() > v[regions["eye_L"], 1].mean() > v[regions["lips"], 1].mean()
    assert v[regions["chin"], 1].max() < v[regions["lips"], 1].min()
    pairs = model.topology.lip_pairs
    assert v[pairs.corner_L, 0] > 0 > v[pairs.corner_R, 0]
    assert v[pairs.upper_center, 1] > v[pairs.lower_center, 1]
    jaw = model.expression_deltas[expression_index("jawOpen")].norm(dim=-1)
    assert jaw[pairs.lower_center] > 5 * jaw[pairs.upper_center]
    assert "nose_tip" in model.topology.landmarks.names


def test_side_files_override_inference(tmp_path):
    face = write_obj_folder(tmp_path)
    lips = [0, 1, 2, 3]
    (tmp_path / "regions.json").write_text(json.dumps({"lips": lips, "teeth": [4]}))
    landmarks = {"mouth_corner_L": 3, "mouth_corner_R": 1, "lip_upper_center": 2, "lip_lower_center": 0}
    (tmp_path / "landmarks.json").write_text(json.dumps(landmarks))
    model = _load_quietly(tmp_path)
    np.testing.assert_array_equal(model.topology.regions["lips"], lips)
    np.testing.assert_array_equal(model.topology.regions["teeth"], [4])
    assert model.topology.landmarks.names == tuple(landmarks)
    assert (model.topology.lip_pairs.corner_L, model.topology.lip_pairs.lower_center) == (3, 0)
    (tmp_path / "regions.json").write_text(json.dumps({"lips": [len(face.neutral)]}))
    with pytest.raises(ValueError, match=r"regions\.json.*'lips'.*outside"):
        load_obj_folder(tmp_path)


def test_missing_neutral_is_a_clear_error(tmp_path):
    write_obj_folder(tmp_path)
    (tmp_path / "neutral.obj").unlink()
    with pytest.raises(FileNotFoundError, match=r"neutral\.obj"):
        load_obj_folder(tmp_path)
