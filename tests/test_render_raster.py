"""Rasterizer: the fast numba path agrees with the reference; depth order, culling, barycentrics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from egoface.render.cameras import Camera, fisheye_for_fov
from egoface.render.raster import Fragments, rasterize, rasterize_reference
from egoface.render.scene import plane_grid, uv_sphere

BOTH = [rasterize, rasterize_reference]


def _random_ish_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A jittered sphere in front of a tilted plane, plus loose random triangles, seen by a fisheye: many overlaps,
    back faces, shared edges, triangles crossing the image border and vertices outside the field of view."""
    rng = np.random.default_rng(7)
    sphere = uv_sphere(18.0, rings=14, segments=22, center=(0.0, 0.0, 0.0))
    sphere_vertices = sphere.vertices + rng.normal(0.0, 0.6, sphere.vertices.shape)
    plane = plane_grid(300.0, 300.0, 12, 12, center=(5.0, 0.0, -30.0))
    loose = rng.uniform(-40.0, 40.0, (60, 3)) * [1.0, 1.0, 0.5]
    loose[:5, 2] = 80.0  # behind the camera: these triangles are skipped
    vertices = np.concatenate((sphere_vertices, plane.vertices, loose)).astype(np.float32)
    offset = len(sphere_vertices) + len(plane.vertices)
    triangles = np.concatenate(
        (sphere.triangles, plane.triangles + len(sphere_vertices), offset + np.arange(60).reshape(20, 3))
    )
    camera = Camera.look_at([10.0, -15.0, 45.0], [0.0, 0.0, 0.0], lens=fisheye_for_fov(96, 80, 150.0), width=96,
                            height=80)  # fmt: skip
    projection = camera.project(vertices)
    return projection.pixels, projection.depth, projection.valid, triangles


@pytest.mark.parametrize("cull", [True, False])
def test_fast_and_reference_rasterizers_agree(cull: bool) -> None:
    pixels, depth, valid, triangles = _random_ish_scene()
    assert not valid.all()  # the scene exercises skipped triangles
    fast = rasterize(pixels, depth, valid, triangles, 96, 80, cull_backfaces=cull)
    reference = rasterize_reference(pixels, depth, valid, triangles, 96, 80, cull_backfaces=cull)
    same = fast.triangle_id == reference.triangle_id
    assert 0.3 < reference.mask.mean() < 1.0
    assert same.mean() >= 0.999, f"{(~same).sum()} pixels differ"  # only exact ties on shared edges may differ
    np.testing.assert_allclose(fast.barycentrics[same], reference.barycentrics[same], atol=1e-4)
    np.testing.assert_allclose(fast.depth[same], reference.depth[same], atol=1e-4, rtol=1e-6)
    assert fast.triangle_id.dtype == np.int32 and fast.barycentrics.dtype == np.float32
    assert fast.depth.dtype == np.float32 and np.isinf(fast.depth[~fast.mask]).all()


def test_fast_rasterizer_covers_exactly_the_reference_pixels_on_edges_through_pixel_centres() -> None:
    """Whole-pixel vertices put pixel centres exactly on edges (barycentric exactly 0), the case where the fast
    path's per-row span (found analytically) must not drop a pixel the exact edge test accepts; with one depth per
    triangle there are no ties, so both rasterizers agree at every pixel. Also slivers, axis-aligned edges,
    triangles far outside the image."""
    rng = np.random.default_rng(11)
    corners = rng.integers(-6, 46, (400, 3, 2)).astype(np.float64)
    corners[:20] = rng.integers(-2000, 2000, (20, 3, 2))  # huge: crossings far off the image
    corners[20:40, 1, 1] = corners[20:40, 0, 1]  # a horizontal edge each
    corners[40:60, 2, 0] = corners[40:60, 0, 0]  # a vertical edge each
    pixels = corners.reshape(-1, 2)
    depth = np.repeat(rng.permutation(400).astype(np.float64) + 1.0, 3)
    triangles = np.arange(1200).reshape(400, 3)
    for cull in (True, False):
        fast = rasterize(pixels, depth, np.ones(1200, bool), triangles, 40, 36, cull_backfaces=cull)
        reference = rasterize_reference(pixels, depth, np.ones(1200, bool), triangles, 40, 36, cull_backfaces=cull)
        assert reference.mask.mean() > 0.5
        np.testing.assert_array_equal(fast.triangle_id, reference.triangle_id)
        np.testing.assert_allclose(fast.barycentrics, reference.barycentrics, atol=1e-6)


def _two_triangles(near_first: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two overlapping front-facing (counter-clockwise on screen = negative signed area) triangles."""
    pixels = np.array([[2.0, 2.0], [3.0, 17.0], [17.0, 10.0], [5.0, 4.0], [6.0, 18.0], [18.0, 12.0]])
    depth = np.array([10.0, 10.0, 10.0, 20.0, 20.0, 20.0])
    triangles = np.array([[0, 1, 2], [3, 4, 5]]) if near_first else np.array([[3, 4, 5], [0, 1, 2]])
    return pixels, depth, np.ones(6, bool), triangles


@pytest.mark.parametrize("raster", BOTH)
@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_triangle_wins_whatever_the_drawing_order(raster, near_first: bool) -> None:
    pixels, depth, valid, triangles = _two_triangles(near_first)
    fragments = raster(pixels, depth, valid, triangles, 20, 20)
    near_id = 0 if near_first else 1
    assert fragments.triangle_id[10, 8] == near_id  # inside both
    assert fragments.depth[10, 8] == pytest.approx(10.0)
    assert fragments.triangle_id[16, 10] == 1 - near_id  # inside the far one only
    assert fragments.depth[16, 10] == pytest.approx(20.0)


@pytest.mark.parametrize("raster", BOTH)
def test_backfaces_are_culled_only_when_asked(raster) -> None:
    pixels, depth, valid, _ = _two_triangles(True)
    clockwise = np.array([[0, 2, 1]])
    assert not raster(pixels, depth, valid, clockwise, 20, 20).mask.any()
    assert raster(pixels, depth, valid, clockwise, 20, 20, cull_backfaces=False).mask.sum() > 50


@pytest.mark.parametrize("raster", BOTH)
def test_barycentrics_and_depth_known_values(raster) -> None:
    pixels = np.array([[1.0, 1.0], [1.0, 9.0], [9.0, 1.0]])  # counter-clockwise on screen
    depth = np.array([10.0, 30.0, 50.0])
    fragments = raster(pixels, depth, np.ones(3, bool), np.array([[0, 1, 2]]), 12, 12)
    np.testing.assert_allclose(fragments.barycentrics[1, 1], [1.0, 0.0, 0.0])  # pixel (x=1, y=1) is vertex 0
    # pixel x=3, y=5: 2 along +x (vertex 2's weight 2/8), 4 along +y (vertex 1's weight 4/8)
    np.testing.assert_allclose(fragments.barycentrics[5, 3], [0.25, 0.5, 0.25], atol=1e-6)
    assert fragments.depth[5, 3] == pytest.approx(0.25 * 10 + 0.5 * 30 + 0.25 * 50)
    assert fragments.mask.sum() == sum(range(1, 10))  # pixel centres on or inside the right triangle with legs 8


@pytest.mark.parametrize("raster", BOTH)
def test_triangles_with_an_invalid_vertex_are_skipped(raster) -> None:
    pixels, depth, valid, triangles = _two_triangles(True)
    valid[1] = False
    fragments = raster(pixels, depth, valid, triangles, 20, 20)
    assert set(np.unique(fragments.triangle_id)) == {-1, 1}


@pytest.mark.parametrize("raster", BOTH)
def test_bad_inputs_raise_clear_errors(raster) -> None:
    pixels, depth, valid, triangles = _two_triangles(True)
    with pytest.raises(ValueError, match=r"pixels must be .* \(V, 2\)"):
        raster(pixels[:, :1], depth, valid, triangles, 20, 20)
    with pytest.raises(ValueError, match=r"depth must be .* \(6,\)"):
        raster(pixels, depth[:4], valid, triangles, 20, 20)
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        raster(pixels, depth, valid, np.array([[0, 1, 6]]), 20, 20)
    with pytest.raises(ValueError, match=r"\(T, 3\)"):
        raster(pixels, depth, valid, np.array([0, 1, 2]), 20, 20)
    with pytest.raises(ValueError, match="positive integer"):
        raster(pixels, depth, valid, triangles, 0, 20)
    with pytest.raises(ValueError, match="positive integer"):
        raster(pixels, depth, valid, triangles, 20, -3)
    bad = pixels.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        raster(bad, depth, valid, triangles, 20, 20)


def test_fragments_is_frozen() -> None:
    fragments = rasterize(*_two_triangles(True), 20, 20)
    assert isinstance(fragments, Fragments)
    with pytest.raises(AttributeError):
        fragments.depth = fragments.depth  # type: ignore[misc]
