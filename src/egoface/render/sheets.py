"""Contact sheets: frontal, shaded renders of a face model's expressions or of random identities, in a labelled grid.

`expression_cells` / `identity_cells` yield (label, image) pairs one at a time (so a caller can show progress);
`compose_grid` lays them out with their labels; `save_image` writes a PNG atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from egoface.face.appearance import Appearance, glasses_geometry, sample_appearance, surface_reflectance
from egoface.face.model import FaceModel
from egoface.face.names import EXPRESSION_NAMES, expression_vector
from egoface.render.cameras import Camera
from egoface.render.scene import Mesh, frontal_camera, render_view, render_view_with_lenses
from egoface.render.shading import PointLight

__all__ = ["compose_grid", "expression_cells", "identity_cells", "save_image", "studio_lights", "tone_map"]

Cell = tuple[str, np.ndarray]
_LABEL_HEIGHT = 16


def tone_map(radiance: np.ndarray, exposure: float) -> np.ndarray:
    """radiance (H, W) float -> (H, W) uint8 with a display gamma of 2.2."""
    return (255.0 * np.clip(radiance * exposure, 0.0, 1.0) ** (1 / 2.2) + 0.5).astype(np.uint8)


def studio_lights(camera: Camera) -> list[PointLight]:
    """A key light above and to the subject's right of `camera` and a dimmer fill on the other side, so that the
    sheet shows the face's relief (headset LEDs sit beside their camera and light it flat)."""
    right, down = camera.rotation[0], camera.rotation[1]
    distance = float(np.linalg.norm(camera.center))
    key = camera.center + 0.5 * distance * (-right - down)
    fill = camera.center + 0.5 * distance * right
    return [PointLight(key, distance**2), PointLight(fill, 0.35 * distance**2)]


def _face_mesh(model: FaceModel, vertices: torch.Tensor, appearance: Appearance) -> Mesh:
    reflectance = surface_reflectance(model, appearance)
    return Mesh(
        vertices=vertices.detach().cpu().numpy().astype(np.float32),
        triangles=model.triangles,
        albedo=reflectance.albedo,
        specular=reflectance.specular,
    )


def expression_cells(model: FaceModel, size: int = 192) -> Iterator[Cell]:
    """Neutral, then each of the 53 expressions at weight 1.0, frontal and shaded, at the mean identity."""
    camera = frontal_camera(size, size)
    lights = studio_lights(camera)
    appearance = Appearance()
    exposure = None
    for name in ("neutral", *EXPRESSION_NAMES):
        weights = expression_vector({} if name == "neutral" else {name: 1.0})
        with torch.no_grad():
            vertices = model(expression=torch.from_numpy(weights)[None]).vertices[0]
        radiance = render_view(_face_mesh(model, vertices, appearance), camera, lights)
        exposure = exposure or _auto_exposure(radiance)
        yield name, tone_map(radiance, exposure)


def identity_cells(model: FaceModel, num: int, seed: int = 0, size: int = 192) -> Iterator[Cell]:
    """`num` random identities with random appearance (facial hair, glasses), neutral expression, frontal."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    camera = frontal_camera(size, size)
    lights = studio_lights(camera)
    identities = model.sample_identity(num, generator)
    for i in range(num):
        appearance = sample_appearance(rng)
        with torch.no_grad():
            face = model(identity=identities[i : i + 1])
        mesh = _face_mesh(model, face.vertices[0], appearance)
        lenses = None
        if appearance.glasses:
            glasses = glasses_geometry(face.eyeball_centers[0].numpy(), appearance)
            frame = Mesh.uniform(glasses.frame_vertices, glasses.frame_triangles, albedo=0.08, specular=0.4)
            mesh = Mesh.concatenate([mesh, frame])
            lenses = Mesh.uniform(glasses.lens_vertices, glasses.lens_triangles, albedo=0.0, specular=0.6)
        radiance = (
            render_view_with_lenses(mesh, lenses, camera, lights) if lenses else render_view(mesh, camera, lights)
        )
        label = f"id {i}" + (" glasses" if appearance.glasses else "")
        label += " beard" if appearance.beard > 0.3 else (" stubble" if appearance.stubble > 0.3 else "")
        yield label, tone_map(radiance, _auto_exposure(radiance))


def _auto_exposure(radiance: np.ndarray) -> float:
    """Exposure that maps the 99.5th percentile of lit pixels to 90% white."""
    lit = radiance[radiance > 0]
    return 0.9 / float(np.percentile(lit, 99.5)) if lit.size else 1.0


def compose_grid(cells: Iterable[Cell], columns: int) -> np.ndarray:
    """Lay out labelled cells (all the same size) in rows of `columns` -> (H, W) uint8."""
    cells = list(cells)
    if not cells:
        raise ValueError("no cells to lay out")
    height, width = cells[0][1].shape
    rows = -(-len(cells) // columns)
    sheet = Image.new("L", (columns * width, rows * (height + _LABEL_HEIGHT)), color=0)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for index, (label, image) in enumerate(cells):
        x, y = (index % columns) * width, (index // columns) * (height + _LABEL_HEIGHT)
        sheet.paste(Image.fromarray(image), (x, y + _LABEL_HEIGHT))
        draw.text((x + 3, y + 2), label, fill=255, font=font)
    return np.asarray(sheet)


def save_image(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a uint8 image as PNG; the file appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")  # created with the user's usual permissions
    Image.fromarray(image).save(partial, format="PNG")
    os.replace(partial, path)
