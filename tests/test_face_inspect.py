"""face inspect: displacement, region attribution and symmetry measured on known shapes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from egoface.face import FaceModel
from egoface.face.inspect import inspect_model, mirror_vertex_map
from egoface.face.names import expression_index
from toy_face import toy_face, toy_face_data


def test_mirror_map_of_a_symmetric_mesh_is_exact() -> None:
    vertices = np.array([[-1.0, 0, 0], [1.0, 0, 0], [0.0, 2, 0]])
    mapping, residual = mirror_vertex_map(vertices)
    assert mapping.tolist() == [1, 0, 2] and residual == 0.0


def test_report_measures_known_shapes() -> None:
    report = inspect_model(toy_face())
    rows = {row.name: row for row in report.expressions}
    assert report.num_vertices == toy_face().num_vertices and report.missing == []
    assert rows["jawOpen"].max_displacement_mm == pytest.approx(10.0)
    assert rows["jawOpen"].symmetry_error_mm == pytest.approx(0.0)  # the moved row is symmetric
    assert rows["browDown_L"].symmetry_error_mm == pytest.approx(3.0)  # its mirror shape is empty in the toy
    assert rows["eyeBlink_L"].max_displacement_mm == 0.0


def test_missing_shapes_are_reported_not_measured() -> None:
    data = toy_face_data()
    present = np.ones(53, bool)
    present[expression_index("mouthPucker")] = False
    report = inspect_model(FaceModel(dataclasses.replace(data, present=present)))
    assert report.missing == ["mouthPucker"]
    assert "mouthPucker" not in {row.name for row in report.expressions}
    assert set(report.to_json()) >= {"model", "num_vertices", "expressions", "missing"}
