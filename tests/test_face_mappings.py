"""Expression mappings: table names and order match the reference lists; known values; round trips."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from egoface.face.mappings import (
    ARKIT_NAMES,
    MEDIAPIPE_NAMES,
    MOVEMENT_NAMES,
    STANDARDS,
    UNIFIED_NAMES,
    convert,
    from_arkit,
    to_arkit,
    to_mediapipe,
    to_movement,
    to_unified,
)
from egoface.face.names import EXPRESSION_NAMES, NUM_EXPRESSIONS, expression_vector

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "expressions.md"


def _reference_list(heading: str) -> list[str]:
    """Names listed under the markdown heading that starts with `heading`, up to the next blank-line paragraph."""
    if not REFERENCE.exists():
        pytest.skip("needs ../shared/reference/expressions.md (developer machines and CI only)")
    text = REFERENCE.read_text()
    start = text.index(heading)
    body = text[text.index("\n", start) + 1 :].split("\n\n")[0]
    return re.findall(r"[A-Za-z_]+", body)


def test_name_tables_match_the_reference_in_count_and_order():
    assert tuple(_reference_list("## Apple ARKit")) == ARKIT_NAMES
    assert tuple(_reference_list('## VRCFaceTracking "Unified Expressions"')) == UNIFIED_NAMES
    assert tuple(_reference_list("## Meta Movement SDK")) == MOVEMENT_NAMES
    assert (len(ARKIT_NAMES), len(MEDIAPIPE_NAMES), len(UNIFIED_NAMES), len(MOVEMENT_NAMES)) == (52, 52, 88, 70)
    assert ("_neutral", *ARKIT_NAMES[:-1]) == MEDIAPIPE_NAMES and ARKIT_NAMES[-1] == "tongueOut"


def test_known_values_for_jaw_open():
    x = expression_vector({"jawOpen": 1.0})
    arkit, unified, movement = to_arkit(x), to_unified(x), to_movement(x)
    assert arkit[ARKIT_NAMES.index("jawOpen")] == 1.0 and arkit.sum() == 1.0
    assert unified[UNIFIED_NAMES.index("JawOpen")] == 1.0 and unified.sum() == 1.0
    assert movement[MOVEMENT_NAMES.index("JawDrop")] == 1.0 and movement.sum() == 1.0
    mediapipe = to_mediapipe(x)
    assert mediapipe[MEDIAPIPE_NAMES.index("jawOpen")] == 1.0 and mediapipe[0] == 0.0


def test_sided_and_merged_values():
    x = expression_vector({"eyeBlink_L": 0.8, "browInnerUp_L": 0.6, "browInnerUp_R": 0.2, "mouthSmile_R": 0.5})
    arkit = to_arkit(x)
    assert arkit[ARKIT_NAMES.index("eyeBlinkLeft")] == pytest.approx(0.8)
    assert arkit[ARKIT_NAMES.index("browInnerUp")] == pytest.approx(0.4)  # mean of the halves
    unified = to_unified(x)
    assert unified[UNIFIED_NAMES.index("MouthCornerPullRight")] == pytest.approx(0.5)
    assert unified[UNIFIED_NAMES.index("MouthCornerPullLeft")] == 0.0
    movement = to_movement(x)
    assert movement[MOVEMENT_NAMES.index("EyesClosedL")] == pytest.approx(0.8)
    assert movement[MOVEMENT_NAMES.index("LipCornerPullerR")] == pytest.approx(0.5)
    gaze = to_movement(expression_vector({"eyeLookOut_L": 1.0, "eyeLookIn_R": 1.0}))
    assert gaze[MOVEMENT_NAMES.index("EyesLookLeftL")] == 1.0 and gaze[MOVEMENT_NAMES.index("EyesLookLeftR")] == 1.0


def test_every_canonical_name_reaches_arkit():
    assert (STANDARDS["arkit"].matrix != 0).any(axis=0).all()


def test_arkit_round_trips():
    rng = np.random.default_rng(0)
    arkit = rng.uniform(size=(5, 52)).astype(np.float32)
    arkit[:, ARKIT_NAMES.index("tongueOut")] = 0.0
    np.testing.assert_array_equal(to_arkit(from_arkit(arkit)), arkit)
    symmetric = from_arkit(rng.uniform(size=(5, 52)).astype(np.float32))  # merged halves equal
    np.testing.assert_array_equal(from_arkit(to_arkit(symmetric)), symmetric)


def test_mediapipe_neutral_score():
    rest = to_mediapipe(np.zeros(NUM_EXPRESSIONS, np.float32))
    assert rest[0] == 1.0 and rest[1:].sum() == 0.0
    assert to_mediapipe(expression_vector({"mouthPucker": 0.3}))[0] == pytest.approx(0.7)


def test_torch_batches_gradients_and_numpy_agree():
    x = torch.rand(4, 3, NUM_EXPRESSIONS, dtype=torch.float64, requires_grad=True)
    for standard in STANDARDS:
        out = convert(x, standard)
        assert out.shape == (4, 3, len(STANDARDS[standard].names)) and out.dtype == torch.float64
        np.testing.assert_allclose(out.detach().numpy(), convert(x.detach().numpy(), standard), atol=1e-12)
    to_mediapipe(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_wrong_input_shapes_and_names_fail_clearly():
    with pytest.raises(ValueError, match=r"\(\.\.\., 53\), got \(52,\)"):
        to_arkit(np.zeros(52))
    with pytest.raises(ValueError, match=r"\(\.\.\., 52\)"):
        from_arkit(np.zeros(53))
    with pytest.raises(ValueError, match="unknown expression standard 'fbx'"):
        convert(np.zeros(53), "fbx")


def test_unified_leaves_gaze_and_blink_to_eye_data():
    """Unified Expressions carries gaze and openness as eye data, so the 10 eye-following/blink shapes map nowhere."""
    used = (STANDARDS["unified"].matrix != 0).any(axis=0)
    unused = {name for name, u in zip(EXPRESSION_NAMES, used, strict=True) if not u}
    assert unused == {n for n in EXPRESSION_NAMES if n.startswith(("eyeLook", "eyeBlink"))}
