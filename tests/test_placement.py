"""egoface.placement: V and M on constructed geometry (frontal / from behind / occluded / oblique), determinism,
the search improving a constructed case inside its feasible region, written rigs that load, clear errors."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from egoface.face import (
    NUM_EXPRESSIONS,
    REQUIRED_REGIONS,
    FaceModel,
    FaceModelData,
    FaceTopology,
    Landmarks,
    LipPairs,
    load_face_model,
)
from egoface.face.names import expression_index
from egoface.headset import CameraSpec, DonningModel, HeadsetRig, LensSpec, OccluderSpec, load_rig, save_rig
from egoface.placement import (
    KEY_EXPRESSIONS,
    camera_keys,
    compare_rigs,
    evaluate_rig,
    mount_region,
    placement_score,
    sample_population,
    search_camera,
)

NOMINAL = DonningModel(session_translation_mm=0.0, session_rotation_deg=0.0)
MOUTH = np.array([0.0, -70.0, 0.0])  # the centre of the patch face's lips


# ---------------------------------------------------------------------------------------------------------------
# A flat patch face: a grid in the plane z = 0 facing +Z (head frame), regions where a face has them, jawOpen moves
# everything below the mouth 10 mm down; optionally a visor, a plate 20 mm in front of the lips (part of the face).


def _grid(xs: np.ndarray, ys: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (len(ys) * len(xs), 3) and triangles counter-clockwise seen from +Z."""
    gx, gy = np.meshgrid(xs, ys)
    vertices = np.stack([gx, gy, np.full_like(gx, z)], -1).reshape(-1, 3)
    triangles = []
    for r in range(len(ys) - 1):
        for c in range(len(xs) - 1):
            a, b, d, e = r * len(xs) + c, r * len(xs) + c + 1, (r + 1) * len(xs) + c + 1, (r + 1) * len(xs) + c
            triangles += [(a, b, d), (a, d, e)]
    return vertices, np.asarray(triangles, np.int32)


def patch_face(visor: bool = False) -> FaceModel:
    vertices, triangles = _grid(np.arange(-60.0, 60.1, 4.0), np.arange(-110.0, 30.1, 4.0), 0.0)
    x, y = vertices[:, 0], vertices[:, 1]
    face = np.arange(len(vertices))
    regions = {name: np.zeros(0, np.int64) for name in REQUIRED_REGIONS}
    regions.update(
        face=face,
        lips=face[(np.abs(x) <= 20) & (np.abs(y - MOUTH[1]) <= 6)],
        chin=face[(np.abs(x) <= 20) & (y <= -90)],
        cheeks=face[(np.abs(x) >= 28) & (y <= -40) & (y >= -90)],
        lower_face=face[y < -40],
        upper_face=face[y >= -40],
        eye_L=face[np.hypot(x - 31, y) <= 10],
        eye_R=face[np.hypot(x + 31, y) <= 10],
        brows=face[(np.abs(x) >= 16) & (np.abs(x) <= 46) & (np.abs(y - 20) <= 3)],
        nose=face[(np.abs(x) <= 8) & (np.abs(y + 30) <= 8)],
    )
    if visor:  # a plate in front of the lips, counted as skin (it can hide), not in any key region
        plate, plate_triangles = _grid(np.arange(-28.0, 28.1, 4.0), np.arange(-82.0, -57.9, 4.0), 20.0)
        regions["face"] = np.arange(len(vertices) + len(plate))
        regions["nose"] = np.arange(len(vertices), len(vertices) + len(plate))
        triangles = np.concatenate([triangles, plate_triangles + len(vertices)])
        vertices = np.concatenate([vertices, plate])
    marks = np.concatenate([regions["lips"][::3], regions["chin"][::5], regions["eye_L"][::6], regions["brows"][::4]])
    deltas = np.zeros((NUM_EXPRESSIONS, len(vertices), 3), np.float32)
    deltas[expression_index("jawOpen"), :, 1] = np.where(vertices[:, 1] < MOUTH[1], -10.0, 0.0)
    deltas[expression_index("browInnerUp_L"), regions["brows"], 1] = 3.0
    identity = np.zeros((2, len(vertices), 3), np.float32)
    identity[0, :, 2] = 1.0  # the whole face 1 mm forward at +1 sigma
    identity[1, :, 1] = 0.05 * vertices[:, 1]  # 5 % taller
    lips = regions["lips"]
    topology = FaceTopology(
        triangles=triangles.astype(np.int32),
        regions=regions,
        landmarks=Landmarks(tuple(f"mark_{i}" for i in range(len(marks))), marks),
        lip_pairs=LipPairs(int(lips[np.argmax(x[lips])]), int(lips[np.argmin(x[lips])]), int(lips[0]), int(lips[-1])),
        eyeball_vertex_ids=(np.zeros(0, np.int64), np.zeros(0, np.int64)),
    )
    return FaceModel(
        FaceModelData(
            name="patch",
            neutral=vertices.astype(np.float32),
            identity_basis=identity,
            expression_deltas=deltas,
            eyeball_centers=np.array([[31.0, 0.0, -12.0], [-31.0, 0.0, -12.0]], np.float32),
            eyeball_radius=np.array([12.0, 12.0], np.float32),
            topology=topology,
        )
    )


def mouth_camera(position, look_at=MOUTH, name: str = "mouth", side: str = "center") -> CameraSpec:
    return CameraSpec(name, "mouth", side, tuple(position), tuple(look_at), LensSpec("pinhole", fov_deg=120.0), 200,
                      200, 30.0)  # fmt: skip


def rig_of(*cameras: CameraSpec, occluders: tuple[OccluderSpec, ...] = ()) -> HeadsetRig:
    return HeadsetRig("test", tuple(cameras), occluders=occluders)


@pytest.fixture(scope="module")
def patch_population():
    return sample_population(patch_face(), 2, 1, seed=0, glasses_fraction=0.0, donning=NOMINAL)


def test_a_camera_facing_the_regions_sees_v_near_1_and_one_from_behind_0(patch_population) -> None:
    """Every key region of a flat face seen head-on scores V ~ 1 and is fully visible; from behind V = 0, F = 0."""
    front = evaluate_rig(rig_of(mouth_camera(MOUTH + [0, 0, 60])), patch_population).cameras[0]
    assert front.visibility > 0.97 and front.visible_fraction > 0.97
    assert set(front.regions) == {"lips", "chin", "cheeks", "lower_face"}
    assert all(region.visibility > 0.97 for region in front.regions.values())
    assert front.visibility_ray < front.visibility  # off-axis rays meet the plane obliquely
    behind = evaluate_rig(rig_of(mouth_camera(MOUTH - [0, 0, 60])), patch_population).cameras[0]
    assert behind.visibility == 0.0 and behind.visible_fraction == 0.0 and behind.range_of_motion_px == 0.0


def test_v_follows_the_cosine_of_the_viewing_angle(patch_population) -> None:
    """Tilting the optical axis by 60 deg from the face normal halves V of the lips (cos 60 = 0.5)."""
    angle = np.radians(60.0)
    position = MOUTH + 60.0 * np.array([0.0, np.sin(angle), np.cos(angle)])
    lips = evaluate_rig(rig_of(mouth_camera(position)), patch_population).cameras[0].regions["lips"]
    assert lips.visible_fraction > 0.97
    assert lips.visibility == pytest.approx(0.5, abs=0.01)


def test_occluders_between_camera_and_face_drop_v_to_0(patch_population) -> None:
    """A headset occluder across the view, or the face's own geometry (a plate in front of the lips, found by the
    depth buffer), hides what is behind it."""
    camera = mouth_camera(MOUTH + [0, 0, 60])
    wall = OccluderSpec("wall", "box", center=(0.0, -70.0, 30.0), size=(400.0, 400.0, 4.0))
    blocked = evaluate_rig(rig_of(camera, occluders=(wall,)), patch_population).cameras[0]
    assert blocked.visibility == 0.0 and blocked.visible_fraction == 0.0
    visor = sample_population(patch_face(visor=True), 1, 1, seed=0, glasses_fraction=0.0, donning=NOMINAL)
    hidden = evaluate_rig(rig_of(camera), visor).cameras[0]
    assert hidden.regions["lips"].visibility < 0.03 and hidden.regions["lips"].visible_fraction < 0.03
    assert hidden.regions["chin"].visibility > 0.97  # below the plate, still seen


def test_a_frontal_mouth_camera_sees_more_jaw_motion_than_an_oblique_one(patch_population) -> None:
    """REFA Eq. 2: jawOpen moves the lower face 10 mm down; seen from the front (60 mm) that is a large image motion,
    seen at 70 deg from the normal (same distance) mostly a motion along the ray."""
    angle = np.radians(70.0)
    oblique = mouth_camera(MOUTH + 60.0 * np.array([0.0, np.sin(angle), np.cos(angle)]))
    frontal = mouth_camera(MOUTH + [0, 0, 60])
    m_oblique = evaluate_rig(rig_of(oblique), patch_population).cameras[0].expressions["jawOpen"]
    m_frontal = evaluate_rig(rig_of(frontal), patch_population).cameras[0].expressions["jawOpen"]
    assert m_oblique > 0.0
    assert m_frontal > 2.0 * m_oblique


def test_placement_score_is_relative_and_checks_its_weight() -> None:
    assert placement_score(0.4, 20.0, 0.4, 20.0) == pytest.approx(1.0)
    assert placement_score(0.8, 10.0, 0.4, 20.0, visibility_weight=1.0) == pytest.approx(2.0)
    assert placement_score(0.0, 0.0, 0.0, 0.0) == 0.0  # floored references, no division by zero
    with pytest.raises(ValueError, match="visibility_weight"):
        placement_score(0.1, 1.0, 0.1, 1.0, visibility_weight=1.5)


def _patch_headset(position) -> HeadsetRig:
    shell = OccluderSpec("shell", "box", center=(0.0, -30.0, 80.0), size=(200.0, 200.0, 20.0))
    return rig_of(mouth_camera(position, name="mouth_left", side="left"), occluders=(shell,))


def test_search_improves_the_score_inside_the_feasible_region(patch_population, tmp_path: Path) -> None:
    """From an oblique start the search finds a better pose; the best pose is feasible, the history never drops,
    the result is deterministic by seed, and the written rig loads with load_rig."""
    rig = _patch_headset((12.0, -20.0, 20.0))
    region = mount_region(rig, patch_population)
    result = search_camera(rig, "mouth_left", patch_population, budget=10, seed=3, region=region)
    assert result.start.score == pytest.approx(1.0)
    assert result.best.score > 1.05
    assert region.violation(result.best.position, "left") is None
    assert all(b >= a for a, b in zip(result.history, result.history[1:], strict=False))
    assert len(result.history) == result.evaluations == 10
    again = search_camera(rig, "mouth_left", patch_population, budget=10, seed=3, region=region)
    assert again.best == result.best
    path = save_rig(result.rig, tmp_path / "best.yaml")
    loaded = load_rig(path)
    assert loaded == result.rig and loaded.camera_spec("mouth_left").position == result.best.position


def test_search_refuses_an_infeasible_start_and_unknown_cameras(patch_population) -> None:
    rig = _patch_headset((12.0, -20.0, 20.0))
    with pytest.raises(KeyError, match="no camera 'mouth_right'"):
        search_camera(rig, "mouth_right", patch_population, budget=3)
    inside_face = _patch_headset((12.0, -20.0, 20.0))
    region = dataclasses.replace(mount_region(inside_face, patch_population), face_clearance_mm=25.0)
    with pytest.raises(ValueError, match=r"not feasible.*from the face"):
        search_camera(inside_face, "mouth_left", patch_population, budget=3, region=region)
    with pytest.raises(ValueError, match="budget"):
        search_camera(rig, "mouth_left", patch_population, budget=1)


def test_empty_population_and_unknown_camera_give_clear_errors(patch_population) -> None:
    with pytest.raises(ValueError, match="num_identities must be a positive integer, got 0"):
        sample_population(patch_face(), 0)
    with pytest.raises(KeyError, match="no camera 'glabella'"):
        evaluate_rig(rig_of(mouth_camera(MOUTH + [0, 0, 60])), patch_population, cameras=["glabella"])
    with pytest.raises(ValueError, match="at least 2 candidate rigs"):
        compare_rigs([rig_of(mouth_camera(MOUTH + [0, 0, 60]))], patch_population)


# ---------------------------------------------------------------------------------------------------------------
# The procedural face and the presets


@pytest.fixture(scope="module")
def procedural():
    return load_face_model("procedural")


@pytest.fixture(scope="module")
def small_population(procedural):
    return sample_population(procedural, 6, 2, seed=0)


def test_camera_keys_of_the_procedural_face_follow_the_roles(procedural) -> None:
    """Key regions and keypoints are on the camera's side and where the role looks."""
    mean = procedural.neutral_vertices.numpy()
    eye = camera_keys(procedural.topology, mean, "eye", "left")
    assert set(eye.regions) == {"eye_L", "iris_L", "brow_L"}
    assert all(name.startswith(("eye_L", "brow_L")) for name in eye.keypoint_names) and len(eye.keypoints) >= 10
    assert (mean[eye.vertex_ids, 0] >= 0).all()
    mouth = camera_keys(procedural.topology, mean, "mouth", "right")
    assert {"lips", "chin", "cheek_R", "lower_face"} == set(mouth.regions)
    assert any(name.startswith("lip_") for name in mouth.keypoint_names)
    glabella = camera_keys(procedural.topology, mean, "glabella", "center")
    assert len(glabella.regions["glabella"]) > 20 and set(glabella.expressions) <= set(KEY_EXPRESSIONS)


def test_evaluation_is_deterministic_by_seed(procedural, small_population) -> None:
    rig = load_rig("quest-pro-4")
    first = evaluate_rig(rig, small_population).to_json()
    second = evaluate_rig(rig, sample_population(procedural, 6, 2, seed=0)).to_json()
    other = evaluate_rig(rig, sample_population(procedural, 6, 2, seed=1)).to_json()
    for result in (first, second, other):
        result.pop("seconds")
    assert first == second
    assert first["cameras"] != other["cameras"]


def test_refa_mouth_cameras_beat_the_more_oblique_quest_ones(small_population) -> None:
    """The presets' mouth cameras differ in obliqueness (refa-5 66 deg, quest-pro-4 75 deg from the mouth's normal):
    the comparison sees it in V, and every camera of both rigs sees something."""
    comparison = compare_rigs([load_rig("refa-5"), load_rig("quest-pro-4")], small_population)
    mouth = next(role for role in comparison.roles if role.role == "mouth")
    assert mouth.candidates["refa-5"].visibility > mouth.candidates["quest-pro-4"].visibility
    glabella = next(role for role in comparison.roles if role.role == "glabella")
    assert list(glabella.candidates) == ["refa-5"] and glabella.winner == "refa-5"
    for metrics in comparison.metrics:
        for camera in metrics.cameras:
            assert 0.05 < camera.visibility < 0.9 and camera.range_of_motion_px > 1.0


def test_preset_cameras_are_feasible_and_keep_outs_are_not(small_population) -> None:
    rig = load_rig("refa-5")
    region = mount_region(rig, small_population)
    assert all(region.violation(camera.position, camera.side) is None for camera in rig.cameras)
    assert "keep-out 'lens_cup_left'" in region.violation((31.0, 0.0, 27.5), "left")
    assert "keep-out 'glasses_zone'" in region.violation((31.0, 0.0, 14.0), "left")
    assert "inside the face" in region.violation((0.0, -30.0, 10.0), "center")  # in the nose
    assert "subject's left" in region.violation((-30.0, -45.0, 30.0), "left")
    assert "envelope" in region.violation((0.0, -45.0, 70.0), "center")


@pytest.mark.slow
def test_a_5_camera_rig_over_100_identities_10_expressions_5_donnings_takes_under_2_minutes(procedural) -> None:
    start = time.perf_counter()
    population = sample_population(procedural, 100, 5, seed=0)
    metrics = evaluate_rig(load_rig("refa-5"), population)
    seconds = time.perf_counter() - start
    print(f"refa-5, 100 x {len(population.expressions)} x 5: {metrics.seconds:.1f} s evaluation, {seconds:.1f} s")
    assert len(population.expressions) == 10 and len(metrics.cameras) == 5
    assert seconds < 120.0
