"""Wavefront OBJ meshes: read vertices and polygons (triangulated), write triangle meshes.

Only geometry is read: `v x y z` and `f a b c ...` (with the `a/vt/vn`, `a//vn`, `a/vt` forms and negative, relative
indices). Texture coordinates, normals, groups, objects, smoothing groups and materials (`vt`, `vn`, `o`, `g`, `s`,
`usemtl`, `mtllib`) and comments are skipped. Polygons are fan-triangulated (a b c d -> a b c, a c d), which keeps
their winding. A malformed line raises `ObjFormatError` naming the file, the line number and what was wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ObjFormatError", "read_obj", "write_obj"]

_IGNORED = frozenset({"vt", "vn", "vp", "o", "g", "s", "usemtl", "mtllib", "l", "p"})


class ObjFormatError(ValueError):
    """An OBJ file that cannot be read; the message names the file, the line and the problem."""


def read_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OBJ file -> vertices (V, 3) float32 (file units), triangles (T, 3) int32 (0-based, fan-triangulated).

    A file without faces gives triangles of shape (0, 3).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise FileNotFoundError(f"cannot read OBJ file {path}: {error.strerror}") from error
    coordinates: list[str] = []
    vertex_lines: list[int] = []
    polygons: list[tuple[int, list[int]]] = []  # (line number, 0-based indices)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "v":
            values = rest.split()
            if len(values) < 3:
                raise ObjFormatError(f"{path}, line {number}: a vertex needs 3 coordinates, got {raw.strip()!r}")
            coordinates.extend(values[:3])
            vertex_lines.append(number)
        elif keyword == "f":
            corners = rest.split()
            if len(corners) < 3:
                raise ObjFormatError(f"{path}, line {number}: a face needs at least 3 vertices, got {raw.strip()!r}")
            try:
                indices = [int(corner.split("/", 1)[0]) for corner in corners]
            except ValueError:
                raise ObjFormatError(
                    f"{path}, line {number}: face indices must be integers, got {raw.strip()!r}"
                ) from None
            if 0 in indices:
                raise ObjFormatError(f"{path}, line {number}: face index 0 is invalid (OBJ indices start at 1)")
            # Relative (negative) indices count back from the vertices read so far.
            polygons.append((number, [i - 1 if i > 0 else len(vertex_lines) + i for i in indices]))
        elif keyword not in _IGNORED:
            raise ObjFormatError(f"{path}, line {number}: unknown statement {keyword!r} in {raw.strip()!r}")
    vertices = _parse_coordinates(path, coordinates, vertex_lines)
    return vertices, _triangulate(path, polygons, len(vertices))


def _parse_coordinates(path: Path, coordinates: list[str], vertex_lines: list[int]) -> np.ndarray:
    try:
        vertices = np.array(coordinates, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        for i, value in enumerate(coordinates):
            try:
                float(value)
            except ValueError:
                raise ObjFormatError(
                    f"{path}, line {vertex_lines[i // 3]}: vertex coordinate {value!r} is not a number"
                ) from None
        raise
    bad = ~np.isfinite(vertices).all(axis=1)
    if bad.any():
        raise ObjFormatError(f"{path}, line {vertex_lines[int(np.argmax(bad))]}: vertex coordinate is not finite")
    return vertices.astype(np.float32)


def _triangulate(path: Path, polygons: list[tuple[int, list[int]]], num_vertices: int) -> np.ndarray:
    triangles: list[list[int]] = []
    for number, indices in polygons:
        if min(indices) < 0 or max(indices) >= num_vertices:
            raise ObjFormatError(
                f"{path}, line {number}: face refers to a vertex that does not exist "
                f"(0-based ids {indices}, {num_vertices} vertices defined)"
            )
        triangles.extend([indices[0], indices[k], indices[k + 1]] for k in range(1, len(indices) - 1))
    return np.array(triangles, dtype=np.int32).reshape(-1, 3)


def write_obj(path: str | Path, vertices: np.ndarray, triangles: np.ndarray) -> None:
    """Write vertices (V, 3) and triangles (T, 3) 0-based as an OBJ file (6 decimals, 1-based indices)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must have shape (T, 3), got {triangles.shape}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError(
            f"triangle vertex ids must lie in [0, {len(vertices)}), got [{triangles.min()}, {triangles.max()}]"
        )
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in triangles.tolist()]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
