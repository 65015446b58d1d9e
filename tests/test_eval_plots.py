"""egoface.eval.plots: each plot writes a non-empty PNG of its documented pixel size (atomically, no temporary left
behind) that actually shows something, and refuses inputs it cannot draw."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from egoface.capture import animate, build_script
from egoface.capture.recording import SubjectInfo
from egoface.eval.breakdown import per_expression_errors
from egoface.eval.metrics import FaceTrack
from egoface.eval.plots import (
    CURVES_SIZE,
    ERROR_BARS_SIZE,
    ERROR_MAP_SIZE,
    plot_curves,
    plot_error_map,
    plot_expression_errors,
)
from egoface.eval.visualize import FrontalFace
from egoface.face import Appearance
from egoface.face.names import expression_vector

FPS = 30.0


@pytest.fixture(scope="module")
def tracks():
    script = build_script("tiny", FPS)
    performance = animate(script, subject_seed=1)
    true = FaceTrack(performance.expression, performance.gaze)
    pred = FaceTrack(np.clip(true.expression * 0.8 + 0.03, 0, 1), true.gaze + 2.0)
    return script.segment_table(), pred, true


def check_png(path, size) -> np.ndarray:
    assert path.stat().st_size > 1000
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no partial file left
    image = Image.open(path)
    assert image.format == "PNG" and image.size == size
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 5  # not a blank canvas
    return pixels


def test_curves(tmp_path, tracks):
    rows, pred, true = tracks
    path = plot_curves(tmp_path / "curves.png", pred, true, FPS, rows, title="subject 1")
    check_png(path, CURVES_SIZE)
    with pytest.raises(ValueError, match="frames"):
        plot_curves(tmp_path / "bad.png", pred.take(slice(0, 10)), true, FPS)


def test_expression_error_bars(tmp_path, tracks):
    _, pred, true = tracks
    errors = {
        "model": per_expression_errors(pred.expression, true.expression),
        "neutral": per_expression_errors(np.zeros_like(true.expression), true.expression),
    }
    check_png(plot_expression_errors(tmp_path / "bars.png", errors), ERROR_BARS_SIZE)
    with pytest.raises(ValueError, match="at least one"):
        plot_expression_errors(tmp_path / "none.png", {})


def test_error_map(tmp_path):
    info = SubjectInfo(
        subject="plots-test", domain="synthetic", split="test", face_model="procedural",
        identity=np.zeros(36, np.float32), appearance=dataclasses.asdict(Appearance()), idiosyncrasies=None,
        rig_name="none", rig_text="", cameras=("eye_left",),
    )  # fmt: skip
    face = FrontalFace(info, 96)
    true = FaceTrack(np.stack([expression_vector({})] * 2), np.zeros((2, 2, 2)))
    pred = FaceTrack(np.stack([expression_vector({}), expression_vector({"jawOpen": 0.8})]), np.zeros((2, 2, 2)))
    same = check_png(plot_error_map(tmp_path / "same.png", face, pred, true, frame=0, max_mm=10.0), ERROR_MAP_SIZE)
    jaw = check_png(plot_error_map(tmp_path / "jaw.png", face, pred, true, frame=1, max_mm=10.0), ERROR_MAP_SIZE)
    assert np.abs(same - jaw).mean() > 1.0  # the open jaw shows in the renders and the error colours
    with pytest.raises(ValueError, match="frame"):
        plot_error_map(tmp_path / "bad.png", face, pred, true, frame=2)
