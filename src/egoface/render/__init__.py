"""egoface.render: cameras, rasterizer (fast numba path + reference), IR shaders and the differentiable path.

project (`Camera.project`) -> rasterize (`rasterize` -> `Fragments`) -> shade (`shade`, or `shade_torch` /
`render_differentiable` for fitting); `render_view` does all three. See design.md for units and frames.
"""

from egoface.render.bench import benchmark_render
from egoface.render.cameras import Camera, FisheyeLens, PinholeLens, Projection, fisheye_for_fov, pinhole_for_fov
from egoface.render.differentiable import (
    barycentrics_from_triangle_ids,
    interpolate_vertex_attributes,
    render_differentiable,
    shade_torch,
)
from egoface.render.raster import Fragments, rasterize, rasterize_reference
from egoface.render.scene import (
    Mesh,
    RenderedView,
    default_face_lights,
    frontal_camera,
    plane_grid,
    render_scene,
    render_view,
    render_view_reference,
    render_view_with_lenses,
    uv_sphere,
)
from egoface.render.shading import Beam, PointLight, shade, vertex_normals

# The contact sheets (`egoface.render.sheets`) will be exported here too.
__all__ = [
    "Beam",
    "Camera",
    "FisheyeLens",
    "Fragments",
    "Mesh",
    "PinholeLens",
    "PointLight",
    "Projection",
    "RenderedView",
    "barycentrics_from_triangle_ids",
    "benchmark_render",
    "default_face_lights",
    "fisheye_for_fov",
    "frontal_camera",
    "interpolate_vertex_attributes",
    "pinhole_for_fov",
    "plane_grid",
    "rasterize",
    "rasterize_reference",
    "render_differentiable",
    "render_scene",
    "render_view",
    "render_view_reference",
    "render_view_with_lenses",
    "shade",
    "shade_torch",
    "uv_sphere",
    "vertex_normals",
]
