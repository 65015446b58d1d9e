"""The procedural face: topology, geometry targets of the expressions, identity plausibility, adapted rigs, gaze."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from egoface.face.model import REQUIRED_REGIONS
from egoface.face.names import EXPRESSION_NAMES, expression_index, expression_vector, mirror_name
from egoface.face.procedural import ProceduralFaceModel, lid_gap, lip_gap


@pytest.fixture(scope="module")
def model() -> ProceduralFaceModel:
    return ProceduralFaceModel()


def _pose(model: ProceduralFaceModel, values: dict[str, float]) -> np.ndarray:
    expression = torch.from_numpy(expression_vector(values))[None]
    return model(expression=expression).vertices[0].numpy().astype(np.float64)


def _delta(model: ProceduralFaceModel, name: str) -> np.ndarray:
    return model.expression_deltas[expression_index(name)].numpy().astype(np.float64)


def _landmark(model: ProceduralFaceModel, name: str) -> int:
    landmarks = model.topology.landmarks
    return int(landmarks.vertex_ids[landmarks.names.index(name)])


def test_topology_is_valid_and_sized_for_the_renderer(model: ProceduralFaceModel) -> None:
    topology = model.topology
    topology.validate(model.num_vertices)
    assert set(REQUIRED_REGIONS) <= set(topology.regions)
    for extra in ("sclera", "iris", "pupil", "tongue", "eyelid_L", "eyelid_R", "head", "neck", "beard", "moustache"):
        assert len(topology.regions[extra]) > 0, extra
    assert 15_000 <= model.num_vertices <= 20_000
    assert 28_000 <= len(model.triangles) <= 40_000
    assert len(topology.regions["face"]) >= 8_000
    assert 90 <= len(topology.landmarks.names) <= 110
    assert len(set(topology.landmarks.names)) == len(topology.landmarks.names)
    # no degenerate triangles and every triangle used once
    tri = np.sort(model.triangles, axis=1)
    assert len(np.unique(tri, axis=0)) == len(tri)
    assert (tri[:, 0] != tri[:, 1]).all() and (tri[:, 1] != tri[:, 2]).all()


def test_skin_triangles_face_outward(model: ProceduralFaceModel) -> None:
    """Skin normals point away from the head's centre (counter-clockwise seen from outside); lid margins and the
    inward roll of the lips, which face the openings, are left out."""
    v = model.neutral_vertices.numpy().astype(np.float64)
    skin = np.zeros(model.num_vertices, dtype=bool)
    skin[model.topology.regions["skin"]] = True
    for name in ("lips", "eyelid_L", "eyelid_R"):
        skin[model.topology.regions[name]] = False
    tri = model.triangles[skin[model.triangles].all(axis=1)]
    normal = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    outward = v[tri].mean(axis=1) - [0.0, -30.0, -70.0]
    assert (np.einsum("ij,ij->i", normal, outward) > 0).mean() > 0.99


def test_mesh_is_mirror_symmetric(model: ProceduralFaceModel) -> None:
    from scipy.spatial import cKDTree

    v = model.neutral_vertices.numpy().astype(np.float64)
    distance, _ = cKDTree(v).query(v * [-1.0, 1.0, 1.0])
    assert distance.max() < 1e-3


def test_adult_proportions(model: ProceduralFaceModel) -> None:
    v = model.neutral_vertices.numpy().astype(np.float64)
    centres = model.mean_eyeball_centers.numpy()
    assert np.linalg.norm(centres[0] - centres[1]) == pytest.approx(63.0, abs=1.0)
    assert centres[0, 0] > 0  # eye 0 is the subject's left, +X
    face_height = v[_landmark(model, "brow_L_03"), 1] - v[_landmark(model, "jaw_08"), 1]
    assert 110 <= face_height <= 150
    head_width = v[:, 0].max() - v[:, 0].min()
    assert 140 <= head_width <= 165
    nose_tip = v[_landmark(model, "nose_04")]
    corner_plane = v[_landmark(model, "eye_L_corner_outer"), 2]
    assert 20 <= nose_tip[2] - corner_plane <= 40


def test_neutral_lips_closed_and_eyes_open(model: ProceduralFaceModel) -> None:
    neutral = _pose(model, {})
    assert lip_gap(neutral, model) < 1.0
    assert lid_gap(neutral, model, "L") > 8.0 and lid_gap(neutral, model, "R") > 8.0


def test_jaw_open_parts_the_lips_and_moves_the_lower_teeth(model: ProceduralFaceModel) -> None:
    opened = _pose(model, {"jawOpen": 1.0})
    assert 30.0 <= lip_gap(opened, model) <= 50.0
    delta = _delta(model, "jawOpen")
    regions = model.topology.regions
    assert np.linalg.norm(delta[regions["teeth_lower"]], axis=1).min() > 10.0
    assert np.linalg.norm(delta[regions["teeth_upper"]], axis=1).max() < 1e-6
    assert delta[regions["chin"], 1].mean() < -15.0  # chin goes down


def test_mouth_close_closes_an_open_jaw(model: ProceduralFaceModel) -> None:
    both = _pose(model, {"jawOpen": 1.0, "mouthClose": 1.0})
    assert lip_gap(both, model) < 0.25 * lip_gap(_pose(model, {"jawOpen": 1.0}), model)


@pytest.mark.parametrize(("side", "other"), [("L", "R"), ("R", "L")])
def test_blink_closes_one_eye(model: ProceduralFaceModel, side: str, other: str) -> None:
    closed = _pose(model, {f"eyeBlink_{side}": 1.0})
    assert lid_gap(closed, model, side) < 1.0
    assert lid_gap(closed, model, other) > 8.0


def test_lids_stay_outside_the_eyeballs_while_blinking(model: ProceduralFaceModel) -> None:
    centres = model.mean_eyeball_centers.numpy()
    for weight in (0.3, 0.6, 1.0):
        posed = _pose(model, {"eyeBlink_L": weight})
        lid = posed[model.topology.eyelid_vertex_ids[0]]
        assert np.linalg.norm(lid - centres[0], axis=1).min() >= model.eyeball_radius[0].item()


def test_smile_raises_and_pulls_back_the_corner(model: ProceduralFaceModel) -> None:
    corner = model.topology.lip_pairs.corner_L
    delta = _delta(model, "mouthSmile_L")[corner]
    assert delta[1] > 5.0 and delta[2] < -3.0 and delta[0] > 0.0
    assert np.linalg.norm(_delta(model, "mouthSmile_L")[model.topology.lip_pairs.corner_R]) < 2.0


def test_brow_shapes_move_the_brows(model: ProceduralFaceModel) -> None:
    inner, outer = _landmark(model, "brow_L_01"), _landmark(model, "brow_L_05")
    assert _delta(model, "browDown_L")[[inner, outer], 1].mean() < -3.0
    assert _delta(model, "browInnerUp_L")[inner, 1] > 4.0
    assert _delta(model, "browInnerUp_L")[inner, 1] > 2 * _delta(model, "browInnerUp_L")[outer, 1]
    assert _delta(model, "browOuterUp_L")[outer, 1] > 5.0
    assert _delta(model, "browOuterUp_L")[outer, 1] > 2 * _delta(model, "browOuterUp_L")[inner, 1]


def test_cheek_puff_bulges_outward(model: ProceduralFaceModel) -> None:
    delta = _delta(model, "cheekPuff_L")
    cheeks = model.topology.regions["cheeks"]
    left = cheeks[model.neutral_vertices[cheeks, 0].numpy() > 0]
    assert delta[left, 0].max() > 8.0  # outward (+X) on the left cheek
    assert np.abs(delta[cheeks[model.neutral_vertices[cheeks, 0].numpy() < -20], :]).max() < 0.5


def test_pucker_narrows_and_pushes_the_lips(model: ProceduralFaceModel) -> None:
    pairs = model.topology.lip_pairs
    neutral, puckered = _pose(model, {}), _pose(model, {"mouthPucker": 1.0})
    width = lambda v: np.linalg.norm(v[pairs.corner_L] - v[pairs.corner_R])  # noqa: E731
    assert width(puckered) < width(neutral) - 5.0
    assert _delta(model, "mouthPucker")[pairs.upper_center, 2] > 4.0


def test_eye_wide_raises_the_upper_lid(model: ProceduralFaceModel) -> None:
    assert _delta(model, "eyeWide_L")[_landmark(model, "eye_L_upper_04"), 1] > 2.0


# Where each shape may move: the share of its summed displacement inside these regions must be >= 70%.
_EXPECTED_REGIONS = {
    "brow": ("brows", "forehead", "eye"),
    "cheekPuff": ("cheeks", "lips", "chin"),
    "cheekSquint": ("cheeks", "eye"),
    "eye": ("eye",),
    "jaw": ("lower_face",),
    "mouth": ("lips", "mouth_interior", "chin", "cheeks"),
    "noseSneer": ("nose", "cheeks", "lips"),
}


def _expected(name: str) -> tuple[str, ...]:
    for prefix, regions in _EXPECTED_REGIONS.items():
        if name.startswith(prefix):
            side = name[-1] if name[-2] == "_" else None
            return tuple(f"eye_{side}" if r == "eye" and side else r for r in regions)
    raise KeyError(name)


@pytest.mark.parametrize("name", EXPRESSION_NAMES)
def test_expression_moves_mostly_its_region(model: ProceduralFaceModel, name: str) -> None:
    delta = np.linalg.norm(_delta(model, name), axis=1)
    inside = np.zeros(model.num_vertices, dtype=bool)
    for region in _expected(name):
        inside[model.topology.regions[region]] = True
    assert delta[inside].sum() >= 0.7 * delta.sum(), f"{name}: {delta[inside].sum() / delta.sum():.2f}"
    assert np.abs(_delta(model, name)[model.topology.regions["eyeballs"]]).max() == 0.0


@pytest.mark.parametrize("name", [n for n in EXPRESSION_NAMES if mirror_name(n) != n and n.endswith(("_L", "Left"))])
def test_left_and_right_shapes_mirror(model: ProceduralFaceModel, name: str) -> None:
    from scipy.spatial import cKDTree

    v = model.neutral_vertices.numpy().astype(np.float64)
    _, mirror = cKDTree(v).query(v * [-1.0, 1.0, 1.0])
    left, right = _delta(model, name), _delta(model, mirror_name(name))
    assert np.abs(left - right[mirror] * [-1.0, 1.0, 1.0]).max() < 0.5


@pytest.mark.parametrize("name", EXPRESSION_NAMES)
def test_max_displacement_is_of_ict_order(model: ProceduralFaceModel, name: str) -> None:
    ict_cm = {"jawOpen": 4.2, "mouthClose": 4.18, "mouthLeft": 1.88, "eyeBlink": 0.96, "mouthSmile": 1.58,
              "mouthRollLower": 1.42, "cheekPuff": 1.41, "mouthPucker": 1.24, "mouthFunnel": 1.17, "jawForward": 1.12,
              "noseSneer": 1.03, "mouthStretch": 1.03, "jawLeft": 0.89, "mouthDimple": 0.89, "browOuterUp": 0.86,
              "browDown": 0.65, "cheekSquint": 0.63, "browInnerUp": 0.61, "mouthFrown": 0.61, "mouthLowerDown": 0.46,
              "mouthPress": 0.43, "eyeSquint": 0.37, "eyeWide": 0.36}  # fmt: skip
    stem = name.removesuffix("_L").removesuffix("_R").replace("Right", "Left")
    largest = np.linalg.norm(_delta(model, name), axis=1).max()
    if stem.startswith("eyeLook"):
        assert 0.5 < largest < 6.0
    elif stem in ict_cm:
        assert 0.6 * ict_cm[stem] * 10 <= largest <= 1.6 * ict_cm[stem] * 10, largest
    else:
        assert 2.0 < largest < 15.0


def test_identity_samples_are_plausible(model: ProceduralFaceModel) -> None:
    generator = torch.Generator().manual_seed(0)
    identity = model.sample_identity(200, generator)
    mesh = model(identity=identity)
    v = mesh.vertices.numpy()
    assert np.isfinite(v).all()
    ipd = torch.linalg.norm(mesh.eyeball_centers[:, 0] - mesh.eyeball_centers[:, 1], dim=-1).numpy()
    assert ipd.min() >= 54.0 and ipd.max() <= 72.0
    assert 5.0 > ipd.std() > 1.5
    width = v[..., 0].max(axis=1) - v[..., 0].min(axis=1)
    assert width.min() >= 125.0 and width.max() <= 180.0
    brow, chin = _landmark(model, "brow_L_03"), _landmark(model, "jaw_08")
    height = v[:, brow, 1] - v[:, chin, 1]
    assert height.min() >= 100.0 and height.max() <= 165.0
    assert height.std() > 2.0  # faces really differ


def test_eyes_stay_in_their_sockets_across_identities(model: ProceduralFaceModel) -> None:
    """At +-3 sigma on every component (before any posing), the eyeball moves rigidly with its lid margins and no
    lid vertex comes inside the eyeball."""
    neutral = model.neutral_vertices.numpy().astype(np.float64)
    for k in range(model.num_identity_components):
        for sign in (-3.0, 3.0):
            identity = torch.zeros(1, model.num_identity_components)
            identity[0, k] = sign
            vertices, centres = model.identity_neutral(identity)
            for eye in (0, 1):
                lid_ids = model.topology.eyelid_vertex_ids[eye]
                centre = centres[0, eye].numpy()
                before = np.linalg.norm(neutral[lid_ids] - model.mean_eyeball_centers[eye].numpy(), axis=1)
                after = np.linalg.norm(vertices[0, lid_ids].numpy() - centre, axis=1)
                assert np.abs(after - before)[before < 15.0].max() < 0.1, (k, sign)
                assert after.min() > 12.6, (k, sign)
                ball = vertices[0, model.topology.eyeball_vertex_ids[eye]].numpy()
                radius = np.linalg.norm(ball - centre, axis=1)
                assert radius.max() < 12.7 and radius.min() > 11.9


def test_adapted_deltas_follow_the_identity(model: ProceduralFaceModel) -> None:
    zero = model.adapted_expression_deltas(torch.zeros(model.num_identity_components))
    assert torch.equal(zero, model.expression_deltas)
    start = time.perf_counter()
    identity = 2.0 * torch.ones(model.num_identity_components)
    adapted = model.adapted_expression_deltas(identity)
    assert time.perf_counter() - start < 1.0
    assert adapted.shape == model.expression_deltas.shape
    assert (adapted - model.expression_deltas).abs().max() > 0.5
    # the subject's rig still opens the mouth and closes the eyes
    rig = model.rig(identity)
    jaw = rig(expression=torch.from_numpy(expression_vector({"jawOpen": 1.0}))[None]).vertices[0]
    assert 25.0 <= lip_gap(jaw, model) <= 55.0
    blink = rig(expression=torch.from_numpy(expression_vector({"eyeBlink_L": 1.0}))[None]).vertices[0]
    assert lid_gap(blink, model, "L") < 1.0


def test_gradients_reach_identity_and_expression(model: ProceduralFaceModel) -> None:
    identity = torch.zeros(1, model.num_identity_components, requires_grad=True)
    expression = torch.zeros(1, 53, requires_grad=True)
    mesh = model(identity=identity, expression=expression)
    mesh.vertices[0, model.topology.lip_pairs.lower_center].sum().backward()
    assert identity.grad is not None and identity.grad.abs().sum() > 0
    assert expression.grad is not None and expression.grad[0, expression_index("jawOpen")].abs() > 0


def test_gaze_turns_the_eyeballs_inside_the_lids(model: ProceduralFaceModel) -> None:
    pupil = model.topology.regions["pupil"]
    left_pupil = pupil[model.neutral_vertices[pupil, 0].numpy() > 0]
    straight = model(gaze=torch.zeros(1, 2, 2)).vertices[0].numpy()
    gaze = torch.tensor([[[20.0, 0.0], [20.0, 0.0]]])
    turned = model(gaze=gaze).vertices[0].numpy()
    assert turned[left_pupil, 0].mean() > straight[left_pupil, 0].mean() + 3.0
    centre = model.mean_eyeball_centers[0].numpy()
    radius = np.linalg.norm(turned[model.topology.eyeball_vertex_ids[0]] - centre, axis=1)
    assert radius.max() < 12.7  # rigid rotation about the centre
    lids = turned[model.topology.eyelid_vertex_ids[0]]
    assert np.linalg.norm(lids - centre, axis=1).min() >= 12.0


def test_bad_inputs_raise_clear_errors(model: ProceduralFaceModel) -> None:
    with pytest.raises(ValueError, match="expression must have shape"):
        model(expression=torch.zeros(1, 52))
    with pytest.raises(ValueError, match="NaN"):
        model(identity=torch.full((1, model.num_identity_components), float("nan")))
    with pytest.raises(ValueError, match="identity must have shape"):
        model.adapted_expression_deltas(torch.zeros(3))
    with pytest.raises(ValueError, match="side"):
        lid_gap(model.neutral_vertices.numpy(), model, "left")


def test_construction_is_fast_and_deterministic(model: ProceduralFaceModel) -> None:
    start = time.perf_counter()
    again = ProceduralFaceModel()
    assert time.perf_counter() - start < 2.0
    assert torch.equal(again.neutral_vertices, model.neutral_vertices)
    assert again.name == "procedural"
    assert model.num_identity_components >= 30


# ------------------------------------------------------------------------------------ closed, symmetric surfaces

_SEPARATE_PARTS = ("eyeballs", "teeth_upper", "teeth_lower", "tongue")


def _directed_edges(triangles: np.ndarray) -> np.ndarray:
    return np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])


def _head_triangles(model: ProceduralFaceModel) -> np.ndarray:
    """The triangles of the head surface: skin, lid margins, eye sockets, nostrils, lips and mouth sac."""
    separate = np.zeros(model.num_vertices, dtype=bool)
    for name in _SEPARATE_PARTS:
        separate[model.topology.regions[name]] = True
    return model.triangles[~separate[model.triangles].any(axis=1)]


def test_head_surface_is_watertight_but_for_the_neck(model: ProceduralFaceModel) -> None:
    """Every edge of the head surface joins exactly two triangles that run along it in opposite directions (one
    consistent orientation), except one open loop at the base of the neck."""
    triangles = _head_triangles(model)
    edges = _directed_edges(triangles)
    assert len(np.unique(edges, axis=0)) == len(edges)  # no directed edge twice: consistently oriented, manifold
    keys = {tuple(e) for e in edges.tolist()}
    open_edges = np.array([e for e in edges.tolist() if (e[1], e[0]) not in keys])
    v = model.neutral_vertices.numpy()
    assert len(open_edges) > 0 and v[open_edges.ravel(), 1].max() < -130.0  # only the neck cut is open
    # the open edges form one simple loop
    following = dict(open_edges.tolist())
    assert len(following) == len(open_edges)
    start, length = open_edges[0, 0], 1
    current = following[start]
    while current != start:
        current, length = following[current], length + 1
    assert length == len(open_edges)


@pytest.mark.parametrize("name", _SEPARATE_PARTS)
def test_separate_parts_are_closed_surfaces(model: ProceduralFaceModel, name: str) -> None:
    inside = np.zeros(model.num_vertices, dtype=bool)
    inside[model.topology.regions[name]] = True
    triangles = model.triangles[inside[model.triangles].all(axis=1)]
    assert inside[model.triangles].any(axis=1).sum() == len(triangles)  # not attached to anything else
    edges = _directed_edges(triangles)
    assert len(np.unique(edges, axis=0)) == len(edges)
    assert {tuple(e) for e in edges.tolist()} == {(b, a) for a, b in edges.tolist()}


def test_triangulation_is_mirror_symmetric(model: ProceduralFaceModel) -> None:
    """Every triangle's mirror image across x = 0, with reversed winding, is a triangle too (so the two sides render
    as exact mirror images from mirrored cameras)."""
    from scipy.spatial import cKDTree

    v = model.neutral_vertices.numpy().astype(np.float64)
    _, mirror = cKDTree(v).query(v * [-1.0, 1.0, 1.0])

    def canonical(triangles: np.ndarray) -> set[tuple[int, int, int]]:
        first = np.argmin(triangles, axis=1)
        rows = np.arange(len(triangles))[:, None]
        return set(map(tuple, triangles[rows, (first[:, None] + np.arange(3)) % 3].tolist()))

    assert canonical(mirror[model.triangles][:, ::-1]) == canonical(model.triangles)


def _first_hits(origin: np.ndarray, directions: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Distance along each ray (origin + s * direction) to the nearest triangle it crosses, inf if none
    (Moller-Trumbore). directions: (R, 3) unit; corners: (T, 3, 3)."""
    a, e1, e2 = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    p = np.cross(directions[:, None, :], e2[None])  # (R, T, 3)
    det = np.einsum("rtk,tk->rt", p, e1)
    inv = 1.0 / np.where(np.abs(det) < 1e-12, np.nan, det)
    s = origin - a
    u = np.einsum("rtk,tk->rt", p, s) * inv
    q = np.cross(s, e1)
    w = np.einsum("rk,tk->rt", directions, q) * inv
    distance = np.einsum("tk,tk->t", e2, q)[None] * inv
    crossed = (u >= 0) & (w >= 0) & (u + w <= 1) & (distance > 0)
    return np.where(crossed, distance, np.inf).min(axis=1)


@pytest.mark.parametrize(
    ("blink", "gaze"), [(0.0, (0.0, 0.0)), (1.0, (0.0, 0.0)), (0.0, (30.0, 0.0)), (0.0, (-30.0, 0.0)),
                        (0.0, (0.0, 30.0)), (0.0, (0.0, -30.0))],
)  # fmt: skip
def test_eyeball_stays_inside_lids_and_socket(
    model: ProceduralFaceModel, blink: float, gaze: tuple[float, float]
) -> None:
    """Seen from the eye's centre, no eyeball vertex lies beyond the lids and the eye socket around it (the eyeball
    never pokes through), and the socket stays outside the eyeball; both eyes."""
    expression = torch.from_numpy(expression_vector({"eyeBlink_L": blink, "eyeBlink_R": blink}))[None]
    mesh = model(expression=expression, gaze=torch.tensor([[gaze, gaze]]))
    v = mesh.vertices[0].numpy().astype(np.float64)
    head = _head_triangles(model)
    socket = model.topology.regions["eye_socket"]
    for eye in (0, 1):
        centre = mesh.eyeball_centers[0, eye].numpy().astype(np.float64)
        near = head[(np.linalg.norm(v[head] - centre, axis=2) < 22.0).all(axis=1)]
        offsets = v[model.topology.eyeball_vertex_ids[eye]] - centre
        distance = np.linalg.norm(offsets, axis=1)
        hits = _first_hits(centre, offsets / distance[:, None], v[near])
        assert (hits > distance).all(), f"eye {eye}: pokes through by {(distance - hits).max():.3f} mm"
        own = socket[np.sign(v[socket, 0]) == np.sign(centre[0])]
        assert np.linalg.norm(v[own] - centre, axis=1).min() >= model.eyeball_radius[eye].item() + 0.5


@pytest.mark.parametrize("blink", [0.3, 0.5, 0.7])
def test_eye_socket_stays_outside_the_eyeball_mid_blink(model: ProceduralFaceModel, blink: float) -> None:
    centres = model.mean_eyeball_centers.numpy()
    posed = _pose(model, {"eyeBlink_L": blink, "eyeBlink_R": blink})
    socket = model.topology.regions["eye_socket"]
    for eye in (0, 1):
        assert set(socket[np.sign(posed[socket, 0]) == np.sign(centres[eye, 0])]) <= set(
            model.topology.eyelid_vertex_ids[eye]
        )
        lids = posed[model.topology.eyelid_vertex_ids[eye]]
        assert np.linalg.norm(lids - centres[eye], axis=1).min() >= model.eyeball_radius[eye].item()


def test_lips_have_anatomical_volume(model: ProceduralFaceModel) -> None:
    """Vermilion about 8 mm tall on the upper lip and 11 mm on the lower, lips protruding, a Cupid's bow, a closed
    mouth whose inner lip contours are 0.3 mm apart."""
    v = model.neutral_vertices.numpy().astype(np.float64)
    pairs = model.topology.lip_pairs
    stomion = 0.5 * (v[pairs.upper_center] + v[pairs.lower_center])
    upper_border, lower_border = v[_landmark(model, "lip_outer_04")], v[_landmark(model, "lip_outer_12")]
    assert abs(upper_border[0]) < 1e-6 and abs(lower_border[0]) < 1e-6
    assert 7.0 <= upper_border[1] - stomion[1] <= 10.0
    assert 9.5 <= stomion[1] - lower_border[1] <= 12.5
    lips = v[model.topology.regions["lips"]]
    midline = lips[np.abs(lips[:, 0]) < 1.0]
    chin_point = v[_landmark(model, "jaw_08")]
    assert midline[:, 2].max() - upper_border[2] > 1.5  # the lips bulge in front of their border
    assert midline[:, 2].max() - chin_point[2] > 3.0
    upper = lips[lips[:, 1] > stomion[1]]
    bow_peaks = upper[(np.abs(upper[:, 0]) > 3.5) & (np.abs(upper[:, 0]) < 7.5), 1].max()
    assert bow_peaks > upper[np.abs(upper[:, 0]) < 1.0, 1].max() + 0.5  # Cupid's bow
    assert 0.2 <= lip_gap(v, model) <= 0.5


def test_the_built_face_is_cached_on_disk_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch) -> None:
    from egoface.face import procedural

    monkeypatch.setenv("EGOFACE_CACHE_DIR", str(tmp_path))
    built = procedural._build_uncached()
    procedural._build.cache_clear()
    try:
        first = procedural._build()  # builds and writes the cache
        cache = procedural._cache_file()
        assert cache.parent == tmp_path and cache.is_file()
        procedural._build.cache_clear()
        loaded = procedural._build()  # reads it
        for name in ("neutral", "identity_basis", "expression_deltas"):
            np.testing.assert_array_equal(getattr(loaded.data, name), getattr(built.data, name))
        assert first is not loaded
        cache.write_bytes(b"not a pickle")
        procedural._build.cache_clear()
        rebuilt = procedural._build()
        np.testing.assert_array_equal(rebuilt.data.neutral, built.data.neutral)
    finally:
        procedural._build.cache_clear()
