"""egoface.headset rigs: presets, files (round trip, clear errors), cameras that see what they must, occluders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egoface.headset import (
    PRESET_NAMES,
    REFERENCE_FACE,
    DonningModel,
    HeadsetRig,
    OccluderSpec,
    RigError,
    describe_rig,
    load_rig,
    rig_to_dict,
    save_rig,
)

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"

EXPECTED_CAMERAS = {
    "refa-5": {"eye_left", "eye_right", "mouth_left", "mouth_right", "glabella"},
    "quest-pro-4": {"eye_left", "eye_right", "mouth_left", "mouth_right"},
    "quest-pro-train-8": {
        "eye_left", "eye_right", "mouth_left", "mouth_right", "eye_left_aug", "eye_right_aug", "boom_left",
        "boom_right",
    },
    "refa-collect-10": {
        "eye_left", "eye_right", "mouth_left", "mouth_right", "glabella", "boom_left", "boom_right", "eye_left_gt",
        "eye_right_gt", "glabella_gt",
    },
    "diy-babble-etvr": {"mouth", "eye_left", "eye_right"},
}  # fmt: skip


def _reference_points() -> dict[str, np.ndarray]:
    """Synthetic landmarks around REFERENCE_FACE: each eye's corners and lid middles, and the lip contour."""
    points = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        cornea = np.array(REFERENCE_FACE["cornea_L"]) * [sign, 1, 1]
        offsets = [(-14, 0, -6), (14, 0, -6), (0, 6, -1), (0, -6, -1), (-7, 4, -2), (7, -4, -2)]
        points[side] = cornea + np.array(offsets, dtype=np.float64)
    centre = np.array(REFERENCE_FACE["mouth_center"])
    lips = [REFERENCE_FACE["mouth_corner_L"], REFERENCE_FACE["mouth_corner_R"]]
    lips += [tuple(centre + offset) for offset in ((0, 8, 1), (0, -9, -1), (12, 5, -3), (-12, 5, -3), (12, -6, -4))]
    points["lips"] = np.array(lips)
    return points


def _in_image(rig: HeadsetRig, name: str, points: np.ndarray) -> np.ndarray:
    camera = rig.camera(name)
    projection = camera.project(np.ascontiguousarray(points, dtype=np.float64))
    u, v = projection.pixels[:, 0], projection.pixels[:, 1]
    return projection.valid & (u >= -0.5) & (u <= camera.width - 0.5) & (v >= -0.5) & (v <= camera.height - 0.5)


def _donnings(count: int = 12) -> list:
    model = DonningModel()
    return [None] + [model.sample_session_pose(seed) for seed in range(count)]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_preset_round_trips_through_yaml_and_json(name: str, tmp_path: Path) -> None:
    """Presets validate, and load(save(rig)) == rig for YAML and JSON; the file holds plain data."""
    rig = load_rig(name)
    assert rig.name == name
    for suffix in (".yaml", ".json"):
        path = save_rig(rig, tmp_path / f"{name}{suffix}")
        assert load_rig(path) == rig
        assert load_rig(str(path)) == rig
    assert json.loads((tmp_path / f"{name}.json").read_text()) == rig_to_dict(rig)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.yaml"]  # no temporary left


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_cameras_have_the_specified_names_roles_and_sides(name: str) -> None:
    rig = load_rig(name)
    assert set(rig.camera_names) == EXPECTED_CAMERAS[name]
    for camera in rig.cameras:
        assert camera.name.startswith(camera.role)
        if camera.side == "center":
            assert "left" not in camera.name and "right" not in camera.name
        else:
            assert camera.name.startswith(f"{camera.role}_{camera.side}")
            assert np.sign(camera.position[0]) == (1 if camera.side == "left" else -1)  # +X is the subject's left
    assert len(rig.cameras_by_role("eye")) == 2 + 2 * (name in ("quest-pro-train-8", "refa-collect-10"))
    assert len(rig.cameras_by_role("boom")) == 2 * (name in ("quest-pro-train-8", "refa-collect-10"))
    assert rig.head_pose.angle_deg == 0 and not rig.head_pose.translation.any()


def test_preset_sensor_formats_follow_the_papers() -> None:
    """REFA: 400x400 at 30 Hz; Quest Pro (Universal): 400x400 at 72 Hz; DIY: a 160-degree mouth fisheye."""
    for name, fps in (("refa-5", 30.0), ("refa-collect-10", 30.0), ("quest-pro-4", 72.0), ("quest-pro-train-8", 72.0)):
        assert {(c.width, c.height, c.fps) for c in load_rig(name).cameras} == {(400, 400, fps)}
    mouth = load_rig("diy-babble-etvr").camera_spec("mouth")
    assert (mouth.lens.type, mouth.lens.fov_deg) == ("fisheye", 160.0)
    distance = np.linalg.norm(np.subtract(mouth.position, REFERENCE_FACE["mouth_center"]))
    assert 30.0 < distance < 60.0 and REFERENCE_FACE["eye_center_L"][1] - mouth.position[1] == pytest.approx(90.0)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_optical_axes_point_at_the_eyes_and_the_mouth(name: str) -> None:
    """Eye cameras aim at the eye opening: the optical axis passes within 5 mm of the cornea's apex (an axis through
    the eyeball's centre from below would hit the lower lid ~10 mm lower); mouth and boom axes pass within 12 mm of
    the mouth."""
    rig = load_rig(name)
    for spec in rig.cameras_by_role("eye"):
        camera = rig.camera(spec.name)
        cornea = np.array(REFERENCE_FACE["cornea_L" if spec.side == "left" else "cornea_R"])
        offset = cornea - camera.center
        assert np.linalg.norm(offset - (offset @ camera.optical_axis) * camera.optical_axis) < 5.0, spec.name
        assert 20.0 < np.linalg.norm(offset) < 50.0
    for spec in rig.cameras_by_role("mouth") + rig.cameras_by_role("boom"):
        camera = rig.camera(spec.name)
        offset = np.array(REFERENCE_FACE["mouth_center"]) - camera.center
        miss = np.linalg.norm(offset - (offset @ camera.optical_axis) * camera.optical_axis)
        assert miss < 12.0, (spec.name, miss)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_eye_and_lip_landmarks_fall_inside_the_images_for_sampled_donnings(name: str) -> None:
    rig = load_rig(name)
    points = _reference_points()
    for pose in _donnings():
        posed = {key: value if pose is None else pose.apply(value) for key, value in points.items()}
        for spec in rig.cameras_by_role("eye"):
            assert _in_image(rig, spec.name, posed[spec.side]).all(), (spec.name, pose)
        for spec in rig.cameras_by_role("mouth") + rig.cameras_by_role("boom"):
            assert _in_image(rig, spec.name, posed["lips"]).all(), (spec.name, pose)
            assert not rig.occluded(spec.name, posed["lips"]).any()
        for spec in rig.cameras_by_role("glabella"):
            assert _in_image(rig, spec.name, np.array([REFERENCE_FACE["glabella"]])).all()


def _face_vertices(spec: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    from egoface.face import load_face_model

    model = load_face_model(spec)
    vertices = model.rig()().vertices[0].detach().numpy().astype(np.float64)
    return vertices, model.topology.regions


def _check_face_in_view(vertices: np.ndarray, regions: dict[str, np.ndarray]) -> None:
    for name in PRESET_NAMES:
        rig = load_rig(name)
        for pose in _donnings(6):
            posed = vertices if pose is None else pose.apply(vertices)
            for spec in rig.cameras_by_role("eye"):
                eye = posed[regions["eye_L" if spec.side == "left" else "eye_R"]]
                assert _in_image(rig, spec.name, eye).mean() > 0.95, (name, spec.name)
            for spec in rig.cameras_by_role("mouth") + rig.cameras_by_role("boom"):
                assert _in_image(rig, spec.name, posed[regions["lips"]]).all(), (name, spec.name)


def test_procedural_face_is_in_view_of_every_preset() -> None:
    """The default face model's eye regions (>95% of vertices) and lips (all) project into the right images."""
    try:
        vertices, regions = _face_vertices("procedural")
    except ImportError:
        pytest.skip("the procedural face model (egoface.face.procedural) is not available yet")
    _check_face_in_view(vertices, regions)


@pytest.mark.slow
def test_ict_face_is_in_view_of_every_preset() -> None:
    """ICT-FaceKit (a scanned face), placed in the head frame by its corneal apices (z = 0), is in view too."""
    path = ASSETS / "ict_facekit_light.npz"
    if not path.exists():
        pytest.skip("needs ../shared/assets/ict_facekit_light.npz (developer machines and CI only)")
    vertices, regions = _face_vertices(f"ict:{path}")
    vertices = vertices - [0.0, 0.0, vertices[regions["eyeballs"], 2].max()]
    _check_face_in_view(vertices, regions)


def _obliqueness_deg(rig: HeadsetRig, name: str) -> float:
    """Angle between the face normal at the mouth (+Z) and the direction from the mouth to the camera."""
    to_camera = rig.camera(name).center - np.array(REFERENCE_FACE["mouth_center"])
    return float(np.degrees(np.arccos(to_camera[2] / np.linalg.norm(to_camera))))


def test_consumer_mouth_cameras_are_far_more_oblique_than_boom_cameras() -> None:
    quest, train = load_rig("quest-pro-4"), load_rig("quest-pro-train-8")
    oblique = [_obliqueness_deg(quest, spec.name) for spec in quest.cameras_by_role("mouth")]
    frontal = [_obliqueness_deg(train, spec.name) for spec in train.cameras_by_role("boom")]
    assert min(oblique) > 65.0 and max(frontal) < 25.0
    refa = load_rig("refa-5")
    assert min(oblique) > max(_obliqueness_deg(refa, spec.name) for spec in refa.cameras_by_role("mouth"))


def test_occluders_block_rays_through_them_and_only_those() -> None:
    rig = load_rig("quest-pro-4")
    eye_l, eye_r = np.array(REFERENCE_FACE["eye_center_L"]), np.array(REFERENCE_FACE["eye_center_R"])
    # the shell floor hides the eyes from the mouth cameras; the eye cameras see their eye
    assert rig.occluded("mouth_left", np.array([eye_l])).all()
    assert not rig.occluded("eye_left", np.array([eye_l, REFERENCE_FACE["cornea_L"]])).any()
    # a point straight behind the left lens cup, seen from the right eye camera, is blocked by the cup
    assert rig.occluded("eye_right", np.array([[31.5, 0.0, 45.0]])).all()
    assert not rig.occluded("eye_right", np.array([eye_r])).any()


SHAPES = [
    OccluderSpec("box", "box", center=(1.0, 2.0, 3.0), size=(10.0, 6.0, 4.0)),
    OccluderSpec("sphere", "sphere", center=(0.0, -2.0, 1.0), radius=5.0),
    OccluderSpec("capsule", "capsule", start=(-6.0, 0.0, 0.0), end=(5.0, 4.0, 2.0), radius=2.5),
    OccluderSpec("plane", "plane", center=(0.0, 1.0, 0.0), normal=(0.3, 1.0, 0.2), size=(12.0, 8.0)),
]


def _inside_reference(occluder: OccluderSpec, points: np.ndarray) -> np.ndarray:
    """(..., 3) -> (...) bool: the solid's definition written out directly (signed side for a plane)."""
    if occluder.shape == "box":
        return (np.abs(points - occluder.center) <= np.asarray(occluder.size) / 2).all(axis=-1)
    if occluder.shape == "sphere":
        return np.linalg.norm(points - occluder.center, axis=-1) < occluder.radius
    if occluder.shape == "capsule":
        start, axis = np.asarray(occluder.start), np.subtract(occluder.end, occluder.start)
        s = np.clip((points - start) @ axis / (axis @ axis), 0, 1)
        return np.linalg.norm(points - (start + s[..., None] * axis), axis=-1) < occluder.radius
    return (points - occluder.center) @ np.asarray(occluder.normal) > 0


@pytest.mark.parametrize("occluder", SHAPES, ids=lambda o: o.shape)
def test_segment_tests_agree_with_dense_sampling(occluder: OccluderSpec) -> None:
    """The closed-form segment-vs-primitive test against a brute-force reference: 4000 samples along each segment
    tested for being inside (a plane: a change of side at a sample inside the rectangle)."""
    rng = np.random.default_rng(0)
    starts, ends = rng.uniform(-15, 15, (300, 3)), rng.uniform(-15, 15, (300, 3))
    along = starts[:, None] + np.linspace(0.0, 1.0, 4000)[None, :, None] * (ends - starts)[:, None]  # (S, K, 3)
    inside = _inside_reference(occluder, along)  # (S, K)
    if occluder.shape == "plane":
        change = np.diff(inside.astype(int), axis=1) != 0  # (S, K - 1)
        normal = np.asarray(occluder.normal) / np.linalg.norm(occluder.normal)
        width_axis = np.cross((0.0, 1.0, 0.0), normal)
        width_axis /= np.linalg.norm(width_axis)
        height_axis = np.cross(normal, width_axis)
        offset = along[:, 1:] - occluder.center
        within = (np.abs(offset @ width_axis) <= occluder.size[0] / 2) & (  # type: ignore[index]
            np.abs(offset @ height_axis) <= occluder.size[1] / 2  # type: ignore[index]
        )
        expected = (change & within).any(axis=1)
    else:
        expected = inside.any(axis=1)
    hits = np.array([occluder.segment_hits(s, e[None])[0] for s, e in zip(starts, ends, strict=True)])
    assert 15 < expected.sum() < 285  # the test segments both hit and miss
    assert (hits != expected).sum() <= 2  # grazing segments may differ between the two


@pytest.mark.parametrize("occluder", SHAPES, ids=lambda o: o.shape)
def test_occluder_meshes_are_closed_outward_and_on_the_primitive(occluder: OccluderSpec) -> None:
    mesh = occluder.mesh()
    corners = mesh.vertices[mesh.triangles]  # (T, 3, 3)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    if occluder.shape == "plane":
        assert len(mesh.triangles) == 4 and np.allclose(normals[:2].sum(0), -normals[2:].sum(0), atol=1e-3)
        return
    centre = mesh.vertices.mean(axis=0)
    assert (np.einsum("ti,ti->t", normals, corners.mean(axis=1) - centre) > 0).all()  # counter-clockwise outside
    grown = OccluderSpec(**{**occluder.__dict__, "name": "grown"})
    assert all(grown.segment_hits(v.astype(np.float64), centre[None].astype(np.float64))[0] for v in mesh.vertices)


def test_occluder_meshes_of_a_rig_are_named_and_dark() -> None:
    rig = load_rig("quest-pro-train-8")
    meshes = rig.occluder_meshes()
    assert list(meshes) == [occluder.name for occluder in rig.occluders]
    assert all(float(mesh.albedo.max()) < 0.1 for mesh in meshes.values())


def test_describe_rig_summarizes_cameras_and_leds() -> None:
    summary = describe_rig(load_rig("refa-5"))
    json.dumps(summary)
    assert summary["leds"] == len(load_rig("refa-5").leds) and summary["leds"] >= 12
    glabella = next(c for c in summary["cameras"] if c["name"] == "glabella")  # type: ignore[union-attr]
    assert glabella["resolution"] == [400, 400] and glabella["fps"] == 30.0 and glabella["fov_deg"] == 90.0
    assert np.linalg.norm(glabella["look_direction"]) == pytest.approx(1.0, abs=1e-3)


def test_leds_ring_each_lens_cup_and_light_the_face() -> None:
    rig = load_rig("quest-pro-4")
    cup_left = [led for led in rig.leds if led.name.startswith("cup_left")]
    assert len(cup_left) >= 4
    radii = [np.linalg.norm(np.subtract(led.position, REFERENCE_FACE["eye_center_L"])[:2]) for led in cup_left]
    assert np.ptp(radii) < 1e-2  # positions are rounded to 1 um
    lights = rig.lights()
    assert len(lights) == len(rig.leds) and all(light.intensity > 0 for light in lights)


# --- errors ------------------------------------------------------------------------------------------------------


def _write(tmp_path: Path, data: dict, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else __import__("yaml").safe_dump(data))
    return path


def _base() -> dict:
    return rig_to_dict(load_rig("refa-5"))


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda d: d["cameras"][1].update(colour="red"), "cameras[1].colour", "unknown key"),
        (lambda d: d["cameras"][2].pop("position"), "cameras[2].position", "missing"),
        (lambda d: d["cameras"][2]["lens"].update(fov_deg=-90.0), "cameras[2].lens.fov_deg", "-90.0"),
        (lambda d: d["cameras"].__setitem__(3, dict(d["cameras"][2])), "cameras[3].name", "duplicate"),
        (lambda d: d["cameras"][0].update(width="wide"), "cameras[0].width", "'wide'"),
        (lambda d: d["cameras"][0]["position"].__setitem__(1, "x"), "cameras[0].position[1]", "expected a number"),
        (lambda d: d["cameras"][0].update(name="mouth_left_2"), "cameras[0].name", "'eye_left'"),
        (
            lambda d: d["cameras"][0].update(side="right", name="eye_right_2"),
            "cameras[0].side",
            "+X is the subject's left",
        ),
        (lambda d: d["cameras"][0].update(look_at=d["cameras"][0]["position"]), "cameras[0].look_at", "different"),
        (lambda d: d["cameras"][0]["lens"].update(fx=300.0), "cameras[0].lens.fx", "not both"),
        (lambda d: d["leds"][0].update(half_angle_deg=95), "leds[0].half_angle_deg", "(0, 90)"),
        (lambda d: d["occluders"][0].update(radius=3.0), "occluders[0].radius", "not used by a box"),
        (lambda d: d["cameras"][0].update(position=[31.5, 0.0, 27.0]), "cameras[0].position", "inside occluder"),
        (lambda d: d.update(extra=1), "extra", "unknown key"),
    ],
)
def test_bad_rig_files_name_the_file_and_the_field(tmp_path: Path, edit, field: str, words: str) -> None:
    data = _base()
    edit(data)
    for name in ("bad.yaml", "bad.json"):
        path = _write(tmp_path, data, name)
        with pytest.raises(RigError) as caught:
            load_rig(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: {field}: "), message
        assert words in message
        assert caught.value.path == field and caught.value.source == str(path)


def test_unreadable_and_misnamed_files_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("cameras: [unclosed\n")
    with pytest.raises(RigError, match=r"broken\.yaml: not valid YAML"):
        load_rig(broken)
    with pytest.raises(RigError, match="neither a preset"):
        load_rig("quest-pro-5")
    with pytest.raises(RigError, match="cannot read"):
        load_rig(tmp_path / "absent.yml")
    with pytest.raises(RigError, match=r"expected a mapping"):
        load_rig(_write(tmp_path, [1, 2], "list.json"))  # type: ignore[arg-type]


def test_save_rig_replaces_atomically_and_keeps_old_file_on_failure(tmp_path: Path, monkeypatch) -> None:
    path = save_rig(load_rig("refa-5"), tmp_path / "rig.yaml")
    before = path.read_text()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("egoface.headset.rig.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_rig(load_rig("quest-pro-4"), path)
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["rig.yaml"]
