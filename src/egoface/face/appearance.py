"""Infrared appearance of a face: per-vertex reflectance (skin, brows, lips, pores, facial hair, eyes) and glasses.

Works for any `FaceModel` from its named regions and geometry, so ICT-FaceKit and OBJ-folder faces get the same
appearance variety as the procedural default. Reflectances are at the ~850 nm wavelength of headset LEDs: skin is
bright and varies little with skin tone, hair darkens less than in visible light, the pupil is black, the cornea is
a mirror (the LED glints). Glasses are geometry: frames are opaque, lenses are a separate transparent layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egoface.face.model import FaceModel

__all__ = [
    "Appearance",
    "Glasses",
    "SurfaceReflectance",
    "glasses_geometry",
    "sample_appearance",
    "surface_reflectance",
]


@dataclass(frozen=True)
class Appearance:
    """Appearance parameters of one subject (all unitless in [0, 1] unless noted).

    skin_albedo: mean IR reflectance of skin; skin_variation: amplitude of smooth blotches; pores: amplitude of
    per-vertex fine noise (pores, freckles); oiliness: skin specular strength; brow_density, lip_darkness;
    stubble, beard, moustache: facial-hair densities; iris_albedo; glasses: whether glasses are worn;
    glasses_lens_mm: (width, height) of each lens; seed: fixes the noise patterns.
    """

    skin_albedo: float = 0.55
    skin_variation: float = 0.08
    pores: float = 0.04
    oiliness: float = 0.08
    brow_density: float = 0.6
    lip_darkness: float = 0.15
    stubble: float = 0.0
    beard: float = 0.0
    moustache: float = 0.0
    iris_albedo: float = 0.4
    glasses: bool = False
    glasses_lens_mm: tuple[float, float] = (50.0, 36.0)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "skin_albedo", "skin_variation", "pores", "oiliness", "brow_density", "lip_darkness", "stubble",
            "beard", "moustache", "iris_albedo",
        ):  # fmt: skip
            value = getattr(self, name)
            if not np.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"Appearance.{name} must be in [0, 1], got {value!r}")
        width, height = self.glasses_lens_mm
        if not (20.0 <= width <= 80.0 and 15.0 <= height <= 60.0):
            raise ValueError(f"Appearance.glasses_lens_mm must be about (20-80, 15-60) mm, got {self.glasses_lens_mm}")


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random plausible adult appearance: about 40% with facial hair, 25% with glasses."""
    hairy = rng.random() < 0.4
    return Appearance(
        skin_albedo=float(rng.uniform(0.4, 0.7)),
        skin_variation=float(rng.uniform(0.03, 0.15)),
        pores=float(rng.uniform(0.01, 0.08)),
        oiliness=float(rng.uniform(0.02, 0.2)),
        brow_density=float(rng.uniform(0.3, 1.0)),
        lip_darkness=float(rng.uniform(0.05, 0.3)),
        stubble=float(rng.uniform(0.2, 0.9)) if hairy else 0.0,
        beard=float(rng.uniform(0.0, 1.0)) if hairy and rng.random() < 0.5 else 0.0,
        moustache=float(rng.uniform(0.0, 1.0)) if hairy and rng.random() < 0.5 else 0.0,
        iris_albedo=float(rng.uniform(0.25, 0.6)),
        glasses=bool(rng.random() < 0.25),
        glasses_lens_mm=(float(rng.uniform(42, 58)), float(rng.uniform(28, 44))),
        seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class SurfaceReflectance:
    """Per-vertex reflectance. albedo: (V,) diffuse in [0, 1]; specular: (V,) specular strength in [0, 1]."""

    albedo: np.ndarray
    specular: np.ndarray


_SCLERA_ALBEDO = 0.75
_PUPIL_ALBEDO = 0.03
_TEETH_ALBEDO = 0.8
_MOUTH_INTERIOR_ALBEDO = 0.12  # stands in for the cavity's self-shadowing, which the shader does not model
_EYE_SOCKET_ALBEDO = 0.2  # the conjunctiva folding back around the eyeball, mostly in the lids' shadow
_TONGUE_ALBEDO = 0.35
_CORNEA_SPECULAR = 0.9


def surface_reflectance(model: FaceModel, appearance: Appearance) -> SurfaceReflectance:
    """The per-vertex IR reflectance of `model`'s mesh for one subject's `appearance`."""
    rng = np.random.default_rng(appearance.seed)
    vertices = model.neutral_vertices.detach().cpu().numpy().astype(np.float64)  # (V, 3) mm
    regions = model.topology.regions
    num_vertices = len(vertices)

    blotches = _smooth_noise(vertices, rng, wavelength_mm=(25.0, 60.0))
    albedo = appearance.skin_albedo * (1.0 + appearance.skin_variation * blotches)
    albedo *= 1.0 + appearance.pores * rng.standard_normal(num_vertices)
    albedo[regions["lips"]] *= 1.0 - appearance.lip_darkness
    hair = _facial_hair_density(model, vertices, appearance, rng)
    albedo *= 1.0 - 0.55 * hair

    parts = _eye_parts(model)
    albedo[regions["eyeballs"]] = _PUPIL_ALBEDO  # what lies behind the pupil; the visible parts follow
    albedo[parts["sclera"]] = _SCLERA_ALBEDO
    albedo[parts["iris"]] = appearance.iris_albedo
    albedo[parts["pupil"]] = _PUPIL_ALBEDO
    albedo[regions["mouth_interior"]] = _MOUTH_INTERIOR_ALBEDO
    if "eye_socket" in regions:
        albedo[regions["eye_socket"]] = _EYE_SOCKET_ALBEDO
    if "tongue" in regions:
        albedo[regions["tongue"]] = _TONGUE_ALBEDO
    albedo[regions["teeth"]] = _TEETH_ALBEDO

    specular = np.full(num_vertices, appearance.oiliness) * (1.0 - hair)
    specular[regions["eyeballs"]] = 0.3
    specular[np.concatenate([parts["iris"], parts["pupil"]])] = _CORNEA_SPECULAR
    specular[regions["teeth"]] = 0.3
    specular[regions["mouth_interior"]] = 0.05
    return SurfaceReflectance(
        albedo=np.clip(albedo, 0.0, 1.0).astype(np.float32), specular=np.clip(specular, 0.0, 1.0).astype(np.float32)
    )


def _smooth_noise(points: np.ndarray, rng: np.random.Generator, wavelength_mm: tuple[float, float]) -> np.ndarray:
    """(V,) sum of random plane waves with wavelengths in `wavelength_mm`, unit RMS."""
    num_waves = 6
    directions = rng.standard_normal((num_waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavenumber = 2 * np.pi / rng.uniform(*wavelength_mm, num_waves)
    phase = rng.uniform(0, 2 * np.pi, num_waves)
    waves = np.sin(points @ (directions * wavenumber[:, None]).T + phase)  # (V, W)
    return waves.sum(axis=1) * np.sqrt(2.0 / num_waves)


def _facial_hair_density(
    model: FaceModel, vertices: np.ndarray, appearance: Appearance, rng: np.random.Generator
) -> np.ndarray:
    """(V,) hair coverage in [0, 1]: brows, stubble and beard on the beard area, moustache above the upper lip.

    Uses the model's `beard`/`moustache` regions when it has them, else areas placed from the lip landmarks.
    """
    regions = model.topology.regions
    density = appearance.brow_density * _brow_hair(regions["brows"], vertices)
    beard_area, moustache_area = _beard_areas(model, vertices)
    patchy = np.clip(0.5 + 0.5 * rng.standard_normal(len(vertices)), 0.0, 1.0)  # hair is spotty per vertex
    density = np.maximum(density, beard_area * (0.5 * appearance.stubble * patchy + appearance.beard))
    density = np.maximum(density, moustache_area * max(appearance.moustache, 0.5 * appearance.stubble * 0.8))
    return np.clip(density, 0.0, 1.0)


_BROW_HALF_HEIGHT_MM = 4.5  # eyebrow hair grows in a band about 9 mm tall along the brow


def _brow_hair(brows: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(V,) eyebrow-hair coverage in [0, 1]: a band along the middle of the `brows` region (which may be much
    taller than the hair), following its arch: per 3 mm column the band centres on the region's mean height."""
    coverage = np.zeros(len(vertices))
    if brows.size == 0:
        return coverage
    x, y = vertices[brows, 0], vertices[brows, 1]
    column = np.floor(x / 3.0).astype(int)
    _, inverse = np.unique(column, return_inverse=True)
    centre = np.bincount(inverse, weights=y) / np.bincount(inverse)
    distance = np.abs(y - centre[inverse])
    coverage[brows] = np.clip(1.5 - distance / _BROW_HALF_HEIGHT_MM, 0.0, 1.0)
    return coverage


def _beard_areas(model: FaceModel, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V,) weights in [0, 1] of the beard and moustache areas."""
    regions = model.topology.regions
    beard = np.zeros(len(vertices))
    moustache = np.zeros(len(vertices))
    if "beard" in regions and "moustache" in regions:
        beard[regions["beard"]] = 1.0
        moustache[regions["moustache"]] = 1.0
        return beard, moustache
    lips = model.topology.lip_pairs
    corner_l, corner_r = vertices[lips.corner_L], vertices[lips.corner_R]
    mouth_y = 0.5 * (vertices[lips.upper_center, 1] + vertices[lips.lower_center, 1])
    half_width = 0.5 * abs(corner_l[0] - corner_r[0])
    x, y = vertices[:, 0], vertices[:, 1]
    skin = np.zeros(len(vertices), dtype=bool)
    skin[regions["face"]] = True
    for excluded in ("lips", "nose", "eyeballs", "mouth_interior", "teeth"):
        skin[regions[excluded]] = False
    beard[skin & (y < mouth_y - 4.0)] = 1.0
    beard[skin & (y < mouth_y + 25.0) & (np.abs(x) > half_width + 12.0)] = 1.0
    moustache[skin & (np.abs(x) < half_width + 6.0) & (y > mouth_y + 4.0) & (y < mouth_y + 18.0)] = 1.0
    return beard, moustache


def _eye_parts(model: FaceModel) -> dict[str, np.ndarray]:
    """Vertex ids of the eyes' sclera, iris and pupil regions (empty for models without eyeballs)."""
    empty = np.zeros(0, np.int64)
    return {part: model.topology.regions.get(part, empty) for part in ("sclera", "iris", "pupil")}


@dataclass(frozen=True)
class Glasses:
    """Glasses as geometry in the head frame (mm). frame_*: opaque rims, bridge and temples; lens_*: the two lenses,
    a transparent layer (both faces, so they are seen from either side). Triangles are (T, 3) int32."""

    frame_vertices: np.ndarray
    frame_triangles: np.ndarray
    lens_vertices: np.ndarray
    lens_triangles: np.ndarray


_LENS_IN_FRONT_OF_EYE_CENTRE_MM = 26.0  # eyeball radius ~12 mm + ~14 mm vertex distance
_RIM_TUBE_MM = (2.5, 3.0)  # (radial width, depth) of the frame's rim
_TEMPLE_LENGTH_MM = 95.0


def glasses_geometry(eyeball_centers: np.ndarray, appearance: Appearance) -> Glasses:
    """Glasses fitted to the eyes. eyeball_centers: (2, 3) mm head frame -> `Glasses`."""
    width, height = appearance.glasses_lens_mm
    frames: list[tuple[np.ndarray, np.ndarray]] = []
    lenses: list[tuple[np.ndarray, np.ndarray]] = []
    outer_corners = []
    for eye in range(2):
        centre = eyeball_centers[eye] + np.array([0.0, 0.0, _LENS_IN_FRONT_OF_EYE_CENTRE_MM])
        outline = _rounded_rectangle(width, height, num_points=48)  # (N, 2) CCW seen from +Z
        frames.append(_rim_tube(centre, outline))
        lenses.append(_lens_disc(centre, outline))
        side = 1.0 if eyeball_centers[eye, 0] > eyeball_centers[1 - eye, 0] else -1.0
        outer_corners.append(centre + np.array([side * width / 2, height * 0.3, 0.0]))
    bridge_start = eyeball_centers.mean(axis=0) + np.array([0.0, height * 0.2, _LENS_IN_FRONT_OF_EYE_CENTRE_MM])
    half_gap = 0.5 * abs(eyeball_centers[0, 0] - eyeball_centers[1, 0]) - width / 2
    frames.append(_box_between(bridge_start - [half_gap, 0, 0], bridge_start + [half_gap, 0, 0], 2.0))
    for corner in outer_corners:
        frames.append(_box_between(corner, corner - np.array([0.0, 0.0, _TEMPLE_LENGTH_MM]), 2.5))
    frame_vertices, frame_triangles = _merge(frames)
    lens_vertices, lens_triangles = _merge(lenses)
    return Glasses(frame_vertices, frame_triangles, lens_vertices, lens_triangles)


def _rounded_rectangle(width: float, height: float, num_points: int) -> np.ndarray:
    """(N, 2) points of a superellipse of the given size, counter-clockwise."""
    angle = np.linspace(0.0, 2 * np.pi, num_points, endpoint=False)
    exponent = 0.5  # |cos|^0.5 gives a rounded rectangle
    x = np.sign(np.cos(angle)) * np.abs(np.cos(angle)) ** exponent * width / 2
    y = np.sign(np.sin(angle)) * np.abs(np.sin(angle)) ** exponent * height / 2
    return np.stack([x, y], axis=1)


def _rim_tube(centre: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A closed rectangular tube following `outline` (N, 2) in the plane z = centre.z."""
    radial, depth = _RIM_TUBE_MM
    direction = outline / np.linalg.norm(outline, axis=1, keepdims=True)
    profile = [(0.0, -depth / 2), (radial, -depth / 2), (radial, depth / 2), (0.0, depth / 2)]  # (out, z)
    rings = [
        np.column_stack([outline + out * direction, np.full(len(outline), z)]) + centre for out, z in profile
    ]  # 4 x (N, 3)
    vertices = np.concatenate(rings)
    n = len(outline)
    triangles = []
    for ring in range(4):
        a, b = ring * n, ((ring + 1) % 4) * n
        for i in range(n):
            j = (i + 1) % n
            triangles += [(a + i, a + j, b + j), (a + i, b + j, b + i)]
    return vertices, np.asarray(triangles, np.int32)


def _lens_disc(centre: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A flat lens filling `outline`: a fan around the centre, with both windings so it is visible from both sides."""
    vertices = np.vstack([centre, np.column_stack([outline, np.zeros(len(outline))]) + centre])
    n = len(outline)
    front = [(0, 1 + i, 1 + (i + 1) % n) for i in range(n)]
    back = [(0, c, b) for (_, b, c) in front]
    return vertices, np.asarray(front + back, np.int32)


def _box_between(start: np.ndarray, end: np.ndarray, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned-ish square bar of `thickness` mm from `start` to `end` (both (3,))."""
    axis = end - start
    axis = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    offsets = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    corners = [start + thickness / 2 * (a * u + b * v) for a, b in offsets]
    vertices = np.array(corners + [c + (end - start) for c in corners])
    quads = [(0, 1, 2, 3), (7, 6, 5, 4), (0, 4, 5, 1), (1, 5, 6, 2), (2, 6, 7, 3), (3, 7, 4, 0)]
    triangles = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    return vertices, np.asarray(triangles, np.int32)


def _merge(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    vertices, triangles, offset = [], [], 0
    for part_vertices, part_triangles in parts:
        vertices.append(part_vertices)
        triangles.append(part_triangles + offset)
        offset += len(part_vertices)
    return np.concatenate(vertices).astype(np.float32), np.concatenate(triangles).astype(np.int32)
