"""Rasterizer: projected triangles -> `Fragments` (which triangle covers each pixel, where, how far).

Two implementations with one contract:

- `rasterize`: the fast path, a numba kernel (compiled once per input dtype and cached on disk by
  `@njit(cache=True)`; the first call in a fresh environment takes a few seconds, later processes load the cache).
  The image is split into horizontal bands processed in parallel; each band walks the triangles in order, so the
  result does not depend on the number of threads.
- `rasterize_reference`: slow and obviously correct, numpy, one triangle at a time.

Both test the pixel centres of a triangle's bounding box with the same edge functions in float64 (the fast path only
those of each row's span between the edges, found analytically with a margin for rounding): a pixel is covered when its
three screen-space barycentrics are >= 0 (edges inclusive); depth is interpolated with those barycentrics and the
nearest fragment wins, the earlier triangle on exact ties. Triangles with an invalid vertex or zero area are
skipped. Triangles are counter-clockwise seen from outside, so in the image (y down) a front face has a negative
signed area `(b - a) x (c - a)`; with `cull_backfaces` the others are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from egoface.render.cameras import _check_image_size

__all__ = ["Fragments", "rasterize", "rasterize_reference"]


@dataclass(frozen=True)
class Fragments:
    """What the rasterizer saw at each pixel of an H x W image.

    triangle_id: (H, W) int32, -1 = background. barycentrics: (H, W, 3) float32 screen-space weights of the
    triangle's three vertices (zero on background). depth: (H, W) float32 mm from the camera centre, inf = background.
    """

    triangle_id: np.ndarray
    barycentrics: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool, True where a triangle covers the pixel."""
        return self.triangle_id >= 0


def _check_raster_inputs(
    pixels: object, depth: object, valid: object, triangles: object, width: object, height: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    width_i, height_i = _check_image_size(width, height)
    pixels_a = np.asarray(pixels)
    depth_a = np.asarray(depth)
    valid_a = np.asarray(valid)
    triangles_a = np.asarray(triangles)
    if pixels_a.ndim != 2 or pixels_a.shape[1] != 2 or not np.issubdtype(pixels_a.dtype, np.floating):
        raise ValueError(f"pixels must be a float array of shape (V, 2), got {pixels_a.dtype} {pixels_a.shape}")
    num_vertices = pixels_a.shape[0]
    if depth_a.shape != (num_vertices,) or not np.issubdtype(depth_a.dtype, np.floating):
        raise ValueError(f"depth must be a float array of shape ({num_vertices},), got {depth_a.dtype} {depth_a.shape}")
    if valid_a.shape != (num_vertices,) or valid_a.dtype != np.bool_:
        raise ValueError(f"valid must be a bool array of shape ({num_vertices},), got {valid_a.dtype} {valid_a.shape}")
    triangles_a = check_triangles(triangles_a, num_vertices)
    if not (np.isfinite(pixels_a[valid_a]).all() and np.isfinite(depth_a[valid_a]).all()):
        raise ValueError("pixels and depth of valid vertices must be finite (NaN or inf found)")
    return pixels_a, depth_a, valid_a, triangles_a, width_i, height_i


def check_triangles(triangles: object, num_vertices: int) -> np.ndarray:
    """Check `triangles` (T, 3) integer vertex ids in [0, num_vertices) and return them as int32."""
    triangles_a = np.asarray(triangles)
    if triangles_a.ndim != 2 or triangles_a.shape[1] != 3 or not np.issubdtype(triangles_a.dtype, np.integer):
        raise ValueError(
            f"triangles must be an integer array of shape (T, 3), got {triangles_a.dtype} {triangles_a.shape}"
        )
    if triangles_a.size and (triangles_a.min() < 0 or triangles_a.max() >= num_vertices):
        raise ValueError(
            f"triangle vertex ids must be in [0, {num_vertices}), got range [{triangles_a.min()}, {triangles_a.max()}]"
        )
    return np.ascontiguousarray(triangles_a, dtype=np.int32)


def _new_fragments(width: int, height: int) -> Fragments:
    return Fragments(
        triangle_id=np.full((height, width), -1, np.int32),
        barycentrics=np.zeros((height, width, 3), np.float32),
        depth=np.full((height, width), np.inf, np.float32),
    )


# ---------------------------------------------------------------------------------------------------------------
# Fast path
# ---------------------------------------------------------------------------------------------------------------


@njit(cache=True, parallel=True)
def _triangle_rows(pixels, valid, triangles, height, cull, rows):  # pragma: no cover - compiled
    """Per triangle the first and last image row it may cover (rows[t] = (1, 0) when skipped)."""
    for t in prange(triangles.shape[0]):
        rows[t, 0] = 1
        rows[t, 1] = 0
        i0, i1, i2 = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        if not (valid[i0] and valid[i1] and valid[i2]):
            continue
        ax, ay = np.float64(pixels[i0, 0]), np.float64(pixels[i0, 1])
        bx, by = np.float64(pixels[i1, 0]), np.float64(pixels[i1, 1])
        cx, cy = np.float64(pixels[i2, 0]), np.float64(pixels[i2, 1])
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area == 0.0 or (cull and area > 0.0):
            continue
        top = max(math.ceil(min(ay, by, cy)), 0.0)
        bottom = min(math.floor(max(ay, by, cy)), height - 1.0)
        if top <= bottom:
            rows[t, 0] = np.int32(top)
            rows[t, 1] = np.int32(bottom)


@njit(cache=True)
def _edge_span(x0, y0, dx_per_dy, dy, y, side, low, high):  # pragma: no cover - compiled
    """Narrow the pixel-x interval [low, high] of image row `y` to where the edge from (x0, y0) along (dx, dy) has
    side * edge function >= 0 (the edge function of `_rasterize_bands`: dx * (y - y0) - dy * (x - x0)), widened by a
    margin far above rounding error so that the exact test, not this bound, decides at the edge."""
    if dy == 0.0:
        return low, high  # constant along the row: the exact test decides
    crossing = x0 + dx_per_dy * (y - y0)
    margin = 1e-6 * (1.0 + abs(crossing))
    if side * dy < 0.0:
        return max(low, crossing - margin), high
    return low, min(high, crossing + margin)


@njit(cache=True, parallel=True)
def _rasterize_bands(
    pixels, depth, triangles, rows, width, num_bands, triangle_id, barycentrics, depth_out
):  # pragma: no cover - compiled
    """Draw the triangles that `rows` keeps into the (pre-cleared) outputs, one horizontal band per task."""
    height = triangle_id.shape[0]
    for band in prange(num_bands):
        band_top = band * height // num_bands
        band_bottom = (band + 1) * height // num_bands - 1
        for t in range(triangles.shape[0]):
            top = max(rows[t, 0], band_top)
            bottom = min(rows[t, 1], band_bottom)
            if top > bottom:
                continue
            i0, i1, i2 = triangles[t, 0], triangles[t, 1], triangles[t, 2]
            ax, ay = np.float64(pixels[i0, 0]), np.float64(pixels[i0, 1])
            bx, by = np.float64(pixels[i1, 0]), np.float64(pixels[i1, 1])
            cx, cy = np.float64(pixels[i2, 0]), np.float64(pixels[i2, 1])
            left = max(math.ceil(min(ax, bx, cx)), 0.0)
            right = min(math.floor(max(ax, bx, cx)), width - 1.0)
            if left > right:
                continue
            inv_area = 1.0 / ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
            side = 1.0 if inv_area > 0.0 else -1.0
            d0, d1, d2 = np.float64(depth[i0]), np.float64(depth[i1]), np.float64(depth[i2])
            slope0 = (cx - bx) / (cy - by) if cy != by else 0.0  # dx / dy of each edge
            slope1 = (ax - cx) / (ay - cy) if ay != cy else 0.0
            slope2 = (bx - ax) / (by - ay) if by != ay else 0.0
            for y in range(top, bottom + 1):
                # Only the row's span inside the three edges, found analytically with a margin so that rounding
                # never drops a pixel; the exact edge tests below decide as before.
                low, high = _edge_span(bx, by, slope0, cy - by, y, side, -math.inf, math.inf)
                low, high = _edge_span(cx, cy, slope1, ay - cy, y, side, low, high)
                low, high = _edge_span(ax, ay, slope2, by - ay, y, side, low, high)
                first = int(max(left, math.ceil(low)))
                last = int(min(right, math.floor(high)))
                for x in range(first, last + 1):
                    b0 = ((cx - bx) * (y - by) - (cy - by) * (x - bx)) * inv_area
                    b1 = ((ax - cx) * (y - cy) - (ay - cy) * (x - cx)) * inv_area
                    b2 = ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) * inv_area
                    if b0 >= 0.0 and b1 >= 0.0 and b2 >= 0.0:
                        z = b0 * d0 + b1 * d1 + b2 * d2
                        if z < depth_out[y, x]:
                            depth_out[y, x] = z
                            triangle_id[y, x] = t
                            barycentrics[y, x, 0] = b0
                            barycentrics[y, x, 1] = b1
                            barycentrics[y, x, 2] = b2


def _num_bands(height: int) -> int:
    # A few bands per thread balance faces that fill only part of the image; each band re-reads the row table, so a
    # single thread draws the image as one band.
    threads = numba.get_num_threads()
    return 1 if threads == 1 else max(1, min(height, 4 * threads))


def _rasterize_fast(
    pixels: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    triangles: np.ndarray,
    width: int,
    height: int,
    cull_backfaces: bool,
    rows: np.ndarray | None = None,
) -> Fragments:
    """`rasterize` without input checks. `rows`: optional reusable (T, 2) int32 scratch buffer."""
    if rows is None or rows.shape != (triangles.shape[0], 2):
        rows = np.empty((triangles.shape[0], 2), np.int32)
    fragments = _new_fragments(width, height)
    _triangle_rows(pixels, valid, triangles, height, cull_backfaces, rows)
    _rasterize_bands(
        pixels, depth, triangles, rows, width, _num_bands(height),
        fragments.triangle_id, fragments.barycentrics, fragments.depth,
    )  # fmt: skip
    return fragments


def rasterize(
    pixels: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    triangles: np.ndarray,
    width: int,
    height: int,
    cull_backfaces: bool = True,
) -> Fragments:
    """Fast rasterizer (numba). pixels: (V, 2) float px; depth: (V,) mm; valid: (V,) bool (a `Projection`'s
    fields); triangles: (T, 3) int vertex ids, counter-clockwise from outside -> Fragments of `height` x `width`."""
    pixels, depth, valid, triangles, width, height = _check_raster_inputs(
        pixels, depth, valid, triangles, width, height
    )
    return _rasterize_fast(
        np.ascontiguousarray(pixels), np.ascontiguousarray(depth), valid, triangles, width, height, bool(cull_backfaces)
    )


# ---------------------------------------------------------------------------------------------------------------
# Reference
# ---------------------------------------------------------------------------------------------------------------


def rasterize_reference(
    pixels: np.ndarray,
    depth: np.ndarray,
    valid: np.ndarray,
    triangles: np.ndarray,
    width: int,
    height: int,
    cull_backfaces: bool = True,
) -> Fragments:
    """Slow, obviously correct rasterizer with the same contract as `rasterize`: for each triangle in order, every
    pixel centre of its bounding box is tested with the edge functions and kept if nearer than what is there."""
    pixels, depth, valid, triangles, width, height = _check_raster_inputs(
        pixels, depth, valid, triangles, width, height
    )
    pixels = pixels.astype(np.float64)
    depth = depth.astype(np.float64)
    fragments = _new_fragments(width, height)
    for t, (i0, i1, i2) in enumerate(triangles):
        if not (valid[i0] and valid[i1] and valid[i2]):
            continue
        (ax, ay), (bx, by), (cx, cy) = pixels[i0], pixels[i1], pixels[i2]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if area == 0.0 or (cull_backfaces and area > 0.0):
            continue
        left, right = max(math.ceil(min(ax, bx, cx)), 0), min(math.floor(max(ax, bx, cx)), width - 1)
        top, bottom = max(math.ceil(min(ay, by, cy)), 0), min(math.floor(max(ay, by, cy)), height - 1)
        if left > right or top > bottom:
            continue
        y, x = np.mgrid[top : bottom + 1, left : right + 1].astype(np.float64)
        # Edge function of the edge opposite each vertex, divided by the signed area: screen-space barycentrics.
        b0 = ((cx - bx) * (y - by) - (cy - by) * (x - bx)) / area
        b1 = ((ax - cx) * (y - cy) - (ay - cy) * (x - cx)) / area
        b2 = ((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / area
        z = b0 * depth[i0] + b1 * depth[i1] + b2 * depth[i2]
        window = (slice(top, bottom + 1), slice(left, right + 1))
        wins = (b0 >= 0) & (b1 >= 0) & (b2 >= 0) & (z < fragments.depth[window])
        fragments.triangle_id[window][wins] = t
        fragments.depth[window][wins] = z[wins]
        fragments.barycentrics[window][wins] = np.stack((b0, b1, b2), axis=-1)[wins]
    return fragments
