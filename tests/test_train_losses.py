"""Supervised losses: L1 on the free coefficients, Universal Eq. 14 on azimuth/elevation, the rig geometry loss;
unlabelled samples never contribute."""

from __future__ import annotations

import math

import pytest
import torch

from egoface.face.gaze import gaze_vector
from egoface.face.names import EXPRESSION_NAMES, EYE_LOOK_NAMES, FREE_EXPRESSION_NAMES
from egoface.models import TrackerOutput, get_model_config
from egoface.train import GeometryLoss, LossConfig, expression_l1, gaze_angle_loss, supervised_losses
from toy_face import toy_face


def _azimuth_elevation(vectors: torch.Tensor) -> torch.Tensor:
    """Eq. 14's delta: unit direction (..., 3) -> (azimuth, elevation) rad, head frame (+Z forward, +Y up)."""
    return torch.stack([torch.atan2(vectors[..., 0], vectors[..., 2]), torch.asin(vectors[..., 1])], dim=-1)


def test_gaze_loss_is_equation_14_on_azimuth_and_elevation() -> None:
    generator = torch.Generator().manual_seed(0)
    true = (torch.rand((6, 2, 2), generator=generator) - 0.5) * 80  # deg, within +-40
    predicted = (torch.rand((6, 2, 2), generator=generator) - 0.5) * 80
    mask = torch.ones(6, dtype=torch.bool)
    delta = _azimuth_elevation(gaze_vector(true)) - _azimuth_elevation(gaze_vector(predicted))  # (B, 2, 2) rad
    expected = (delta.square().sum(-1).sum(-1)).mean()  # |.|^2 left eye + |.|^2 right eye, mean over samples
    assert torch.allclose(gaze_angle_loss(predicted, true, mask), expected, atol=1e-6)
    one_degree = gaze_angle_loss(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.zeros(1, 2, 2), mask[:1])
    assert math.isclose(float(one_degree), math.radians(1) ** 2, rel_tol=1e-6)


def test_unlabelled_samples_do_not_contribute() -> None:
    true, predicted = torch.zeros(3, 2, 2), torch.full((3, 2, 2), 5.0)
    mask = torch.tensor([True, False, True])
    wild = predicted.clone()
    wild[1] = 40.0  # only the unlabelled sample changes
    assert torch.equal(gaze_angle_loss(predicted, true, mask), gaze_angle_loss(wild, true, mask))
    coefficients = torch.tensor([[0.2, 0.4], [0.9, 0.9], [0.0, 1.0]])
    assert math.isclose(float(expression_l1(coefficients, torch.zeros(3, 2), mask)), (0.3 + 0.5) / 2, rel_tol=1e-6)
    nothing = torch.zeros(3, dtype=torch.bool)
    assert float(expression_l1(coefficients, torch.zeros(3, 2), nothing)) == 0.0


def _output(free: torch.Tensor, gaze: torch.Tensor) -> TrackerOutput:
    expression = torch.zeros(free.shape[0], 53)
    expression[:, [EXPRESSION_NAMES.index(n) for n in FREE_EXPRESSION_NAMES]] = free
    return TrackerOutput(expression=expression, free_expression=free, gaze=gaze)


def test_expression_loss_reads_the_45_free_shapes_only() -> None:
    config = get_model_config("refa_nano")
    true = torch.rand(4, 53, generator=torch.Generator().manual_seed(1))
    free = true[:, [EXPRESSION_NAMES.index(n) for n in FREE_EXPRESSION_NAMES]]
    output = _output(free.clone().requires_grad_(True), torch.zeros(4, 2, 2))
    changed_eye_look = true.clone()
    changed_eye_look[:, [EXPRESSION_NAMES.index(n) for n in EYE_LOOK_NAMES]] = 1.0  # driven by gaze, not L1
    mask = torch.ones(4, dtype=torch.bool)
    for labels in (true, changed_eye_look):
        terms = supervised_losses(output, labels, torch.zeros(4, 2, 2), mask, config, LossConfig())
        assert terms.expression.item() == 0.0 and terms.gaze.item() == 0.0 and terms.geometry is None
    off = supervised_losses(output, true + 0.1, torch.ones(4, 2, 2), mask, config, LossConfig(gaze=2.0))
    assert math.isclose(off.expression.item(), 0.1, rel_tol=1e-4)
    assert math.isclose(off.total.item(), 0.1 + 2.0 * 4 * math.radians(1) ** 2, rel_tol=1e-4)
    off.total.backward()
    assert output.free_expression.grad is not None and output.free_expression.grad.abs().sum() > 0


def test_a_batch_without_labels_gives_zero_losses_that_still_backpropagate() -> None:
    output = _output(torch.rand(2, 45, requires_grad=True), torch.zeros(2, 2, 2))
    terms = supervised_losses(
        output, None, None, torch.zeros(2, dtype=torch.bool), get_model_config("refa_nano"), LossConfig()
    )
    terms.total.backward()
    assert terms.total.item() == 0.0


def test_geometry_loss_is_zero_for_the_truth_and_weights_mouth_and_eyes() -> None:
    face = toy_face()
    rig = face.rig()

    def loss(eye: float, mouth: float, shape: str) -> torch.Tensor:
        geometry = GeometryLoss(lambda _subject: rig, eye_weight=eye, mouth_weight=mouth)
        true = torch.zeros(2, 53)
        predicted = true.clone()
        predicted[:, EXPRESSION_NAMES.index(shape)] = 1.0
        predicted.requires_grad_(True)
        gaze = torch.zeros(2, 2, 2)
        value = geometry(predicted, gaze, true, gaze, ["a", "a"], torch.tensor([True, True]))
        assert float(geometry(true, gaze, true, gaze, ["a", "b"], torch.tensor([True, True]))) == 0.0
        value.backward()
        assert predicted.grad is not None and predicted.grad[:, EXPRESSION_NAMES.index(shape)].abs().min() > 0
        return value.detach()

    # Toy face: jawOpen moves the 7 bottom-row grid vertices 10 mm down; the 49 grid vertices are the face and
    # (in this toy) also the eye regions, 3 are lips or mouth interior; the eyeballs (weight 1) do not move.
    eyeball_vertices = len(rig.topology.regions["eyeballs"])
    for eye, mouth in ((1.0, 1.0), (3.0, 10.0)):
        expected = 7 * 10.0 * eye / (46 * eye + 3 * mouth + eyeball_vertices)  # weighted mean of L1 distances, mm
        assert math.isclose(float(loss(eye, mouth, "jawOpen")), expected, rel_tol=1e-5)


def test_geometry_weight_needs_the_rigs() -> None:
    output = _output(torch.rand(1, 45), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"loss\.geometry > 0 needs a GeometryLoss"):
        supervised_losses(
            output, torch.zeros(1, 53), torch.zeros(1, 2, 2), torch.ones(1, dtype=torch.bool),
            get_model_config("refa_nano"), LossConfig(geometry=1.0),
        )  # fmt: skip
