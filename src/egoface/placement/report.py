"""Placement reports: markdown tables, bar charts of V and M, and contact sheets of what each camera sees.

`write_evaluation_report(out_dir, metrics, rig, population, model)` writes `report.md`, `metrics.json`, `bars.png`
and `views.png`; `write_comparison_report(out_dir, comparison, rigs, population, model)` writes `report.md`,
`comparison.json`, `bars.png` and one `views_<candidate>.png` per candidate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from egoface.face.appearance import Appearance, surface_reflectance
from egoface.face.model import FaceModel
from egoface.headset.rig import HeadsetRig
from egoface.placement.compare import Comparison
from egoface.placement.metrics import RigMetrics, single_threaded
from egoface.placement.population import Population
from egoface.render.scene import Mesh, render_scene
from egoface.render.sheets import compose_grid, save_image, tone_map

__all__ = ["bar_chart", "camera_views", "write_comparison_report", "write_evaluation_report"]

_VIEW_SIZE = 128


def _placed_face(
    population: Population, i: int, rotation: np.ndarray, translation: np.ndarray, triangles: np.ndarray,
    albedo: np.ndarray, specular: np.ndarray,
) -> Mesh:  # fmt: skip
    """Identity i's neutral face (x -> rotation x + translation, headset frame) with its glasses frame, if any (the
    lenses are left out, as in the metrics)."""
    face = Mesh(population.neutral[i] @ rotation.T + translation, triangles, albedo, specular)
    glasses = population.glasses[i]
    if glasses is None:
        return face
    frame = Mesh.uniform(glasses.vertices @ rotation.T + translation, glasses.triangles, albedo=0.08, specular=0.4)
    return Mesh.concatenate([face, frame])


def camera_views(
    rig: HeadsetRig, population: Population, model: FaceModel, identities: int = 6, size: int = _VIEW_SIZE
) -> np.ndarray:
    """A contact sheet (uint8 (H, W)): one row per camera, one column per identity (the first `identities` of the
    population at their first donning), rendered from the camera at `size` x `size` under the rig's LEDs, with the
    headset's occluders and glasses frames drawn dark, each cell exposed on its own."""
    count = min(identities, population.num_identities)
    reflectance = surface_reflectance(model, Appearance())
    occluders = list(rig.occluder_meshes().values())
    lights = rig.lights()
    nominal = rig.head_pose
    cells = []
    with single_threaded():
        for spec in rig.cameras:
            camera = spec.camera((size, size))
            for i in range(count):
                offset = population.donning_rotation[i, 0]
                rotation = offset @ nominal.rotation
                translation = population.donning_translation[i, 0] + offset @ nominal.translation
                face = _placed_face(
                    population, i, rotation, translation, model.triangles, reflectance.albedo, reflectance.specular
                )
                radiance = render_scene(Mesh.concatenate([face, *occluders]), camera, lights).radiance
                lit = radiance[radiance > 0]
                exposure = 0.9 / float(np.percentile(lit, 99.0)) if lit.size else 1.0
                label = f"{spec.name} id {i}" + (" glasses" if population.glasses[i] is not None else "")
                cells.append((label, tone_map(radiance, exposure)))
    return compose_grid(cells, columns=count)


def bar_chart(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    errors: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    winners: Mapping[str, str] | None = None,
    title: str = "",
) -> Path:
    """Two panels, V and M (px), of grouped bars: `groups` along x, one bar per series label with its (V values,
    M values) per group (NaN = absent); optional (V, M) error bars per series; `winners` (group -> series label)
    marks the winning bar with a star. Writes a PNG."""
    figure = Figure(figsize=(max(6.0, 1.6 * len(groups) + 3.0), 3.4), dpi=100)
    axes = figure.subplots(1, 2)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for panel, (axis, name) in enumerate(zip(axes, ("visibility V", "range of motion M (px)"), strict=True)):
        for k, (label, values) in enumerate(series.items()):
            heights = np.asarray(values[panel], dtype=np.float64)
            error = None if errors is None else np.asarray(errors[label][panel], dtype=np.float64)
            offsets = x - 0.4 + width * (k + 0.5)
            axis.bar(offsets, np.nan_to_num(heights), width, yerr=error, capsize=2, label=label)
            for g, group in enumerate(groups):
                if winners is not None and winners.get(group) == label and np.isfinite(heights[g]):
                    axis.annotate("★", (offsets[g], heights[g]), ha="center", va="bottom", fontsize=12)
        axis.set_xticks(x, groups, rotation=20, ha="right", fontsize=8)
        axis.set_title(name, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
        axis.margins(y=0.15)
    if len(series) > 1:
        axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


def _population_line(metrics: RigMetrics) -> str:
    return (
        f"{metrics.num_identities} identities of `{metrics.face_model}` x {metrics.num_donnings} donnings "
        f"(seed {metrics.seed}), occlusion from {metrics.depth_resolution}x{metrics.depth_resolution} depth buffers"
    )


def write_evaluation_report(
    out_dir: str | Path, metrics: RigMetrics, rig: HeadsetRig, population: Population, model: FaceModel
) -> Path:
    """Write report.md, metrics.json, bars.png and views.png for one rig into `out_dir`; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", metrics.to_json())
    names = [camera.camera for camera in metrics.cameras]
    bar_chart(
        out / "bars.png",
        names,
        {rig.name: ([c.visibility for c in metrics.cameras], [c.range_of_motion_px for c in metrics.cameras])},
        errors={
            rig.name: ([c.visibility_std for c in metrics.cameras], [c.range_of_motion_px_std for c in metrics.cameras])
        },
        title=f"{rig.name}: mean and standard deviation over the population",
    )
    save_image(camera_views(rig, population, model), out / "views.png")
    lines = [
        f"# Camera placement: `{rig.name}`",
        "",
        f"{_population_line(metrics)}; {metrics.seconds:.1f} s. Definitions: docs/placement.md.",
        "",
        "| camera | role | V | V std | V worst 5 % | V (ray) | visible fraction | M (px) | M std | M worst 5 % "
        "| keypoints |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in metrics.cameras:
        lines.append(
            f"| `{c.camera}` | {c.role} | {c.visibility:.3f} | {c.visibility_std:.3f} | {c.visibility_p05:.3f} | "
            f"{c.visibility_ray:.3f} | {c.visible_fraction:.3f} | {c.range_of_motion_px:.2f} | "
            f"{c.range_of_motion_px_std:.2f} | {c.range_of_motion_px_p05:.2f} | {c.num_keypoints} |"
        )
    lines += ["", "## Per region", "", "| camera | region | V | V std | visible fraction | M (px) | keypoints |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in metrics.cameras:
        for name, r in c.regions.items():
            lines.append(
                f"| `{c.camera}` | {name} | {r.visibility:.3f} | {r.visibility_std:.3f} | {r.visible_fraction:.3f} | "
                f"{r.range_of_motion_px:.2f} | {r.num_keypoints} |"
            )
    lines += ["", "## M per key expression (px)", "", "| camera | " + " | ".join(population.expressions) + " |",
              "|---|" + "---|" * len(population.expressions)]  # fmt: skip
    for c in metrics.cameras:
        cells = [f"{c.expressions[name]:.1f}" if name in c.expressions else "" for name in population.expressions]
        lines.append(f"| `{c.camera}` | " + " | ".join(cells) + " |")
    lines += ["", "![V and M per camera](bars.png)", "",
              "What each camera sees (rows: cameras; columns: identities at their first donning):", "",
              "![camera views](views.png)", ""]  # fmt: skip
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _slug(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", label).strip("_") or "rig"


def write_comparison_report(
    out_dir: str | Path,
    comparison: Comparison,
    rigs: Sequence[HeadsetRig],
    population: Population,
    model: FaceModel,
) -> Path:
    """Write report.md, comparison.json, bars.png and views_<candidate>.png into `out_dir`; returns report.md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "comparison.json", comparison.to_json())
    labels = comparison.labels
    roles = [role.role for role in comparison.roles]
    nan = float("nan")
    series = {
        label: (
            [role.candidates[label].visibility if label in role.candidates else nan for role in comparison.roles],
            [role.candidates[label].range_of_motion_px if label in role.candidates else nan
             for role in comparison.roles],
        )
        for label in labels
    }  # fmt: skip
    winners = {role.role: role.winner for role in comparison.roles}
    bar_chart(out / "bars.png", roles, series, winners=winners, title="V and M per camera role (★ = winner)")
    lines = [
        "# Camera placement comparison",
        "",
        f"{_population_line(comparison.metrics[0])}; {comparison.seconds:.1f} s. Per role, the mean over the "
        f"candidate's cameras of that role. The winner (**bold**, ★) has the highest score "
        f"w V / V_best + (1 - w) M / M_best with w = {comparison.visibility_weight}. Definitions: docs/placement.md.",
        "",
    ]
    for role in comparison.roles:
        lines += [f"## {role.role}", "", "| | " + " | ".join(f"`{label}`" for label in role.candidates) + " |",
                  "|---|" + "---|" * len(role.candidates)]  # fmt: skip

        def row(name: str, values: list[str], role=role) -> str:
            pairs = zip(role.candidates, values, strict=True)
            marked = [f"**{v}** ★" if label == role.winner and v != "-" else v for label, v in pairs]
            return f"| {name} | " + " | ".join(marked) + " |"

        scores = list(role.candidates.values())
        lines.append(row("cameras", [", ".join(s.cameras) for s in scores]))
        lines.append(row("visibility V", [f"{s.visibility:.3f}" for s in scores]))
        lines.append(row("visible fraction", [f"{s.visible_fraction:.3f}" for s in scores]))
        lines.append(row("range of motion M (px)", [f"{s.range_of_motion_px:.2f}" for s in scores]))
        lines.append(row("score", [f"{s.score:.3f}" for s in scores]))
        kinds = list(dict.fromkeys(kind for s in scores for kind in s.regions))
        for kind in kinds:
            lines.append(row(f"{kind}: V / M", [
                f"{s.regions[kind][0]:.3f} / {s.regions[kind][1]:.1f}" if kind in s.regions else "-" for s in scores
            ]))  # fmt: skip
        lines.append("")
    lines += ["![V and M per role](bars.png)", ""]
    for label, rig in zip(labels, rigs, strict=True):
        name = f"views_{_slug(label)}.png"
        save_image(camera_views(rig, population, model), out / name)
        lines += [f"What `{label}` sees:", "", f"![{label}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
