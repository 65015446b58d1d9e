"""The experiments `egoface ablate calibration` trains (names, configs and order), without training them."""

from __future__ import annotations

from egoface.cli.calibration import _ablation_plan
from egoface.train import PRESETS, apply_overrides


def test_a_code_loss_preset_compares_against_the_perceptual_loss() -> None:
    base = apply_overrides(PRESETS["calibrated-tiny"], ["calibration.loss=code"])
    plan = _ablation_plan(base, identity_counts=[8, 16])
    assert list(plan)[:2] == ["late_fusion", "none"]  # the reference pair trains first
    assert {"cross_attention", "self_attention", "pooling", "early_fusion"} < set(plan)
    assert plan["late_fusion_perceptual"].calibration.loss == "perceptual"
    assert "late_fusion_code" not in plan  # the preset's own run is the `late_fusion` row
    assert all(plan[m].calibration.loss == "code" for m in ("late_fusion", "none"))
    anchors = base.calibration.anchors
    assert [plan[f"late_fusion_{n}_anchors"].calibration.anchors for n in (1, 2)] == [anchors[:1], anchors[:2]]
    assert f"late_fusion_{len(anchors)}_anchors" not in plan
    subjects = {name: config.calibration.train_subjects for name, config in plan.items() if "identities" in name}
    assert subjects == {"late_fusion_8_identities": 8, "none_8_identities": 8,
                        "late_fusion_16_identities": 16, "none_16_identities": 16}  # fmt: skip


def test_a_perceptual_preset_with_another_module_ablates_that_module() -> None:
    base = apply_overrides(PRESETS["calibrated-tiny"], ["calibration.module=pooling"])
    plan = _ablation_plan(base, identity_counts=[])
    assert list(plan)[:2] == ["pooling", "none"] and plan["pooling_code"].calibration.loss == "code"
    assert plan["pooling_1_anchors"].calibration.module == "pooling"
    assert not any("identities" in name for name in plan)


def test_linear_fusion_stays_with_the_modules_that_have_a_fusion_conv() -> None:
    base = apply_overrides(PRESETS["calibrated-tiny"], ["calibration.linear_fusion=true"])
    plan = _ablation_plan(base, identity_counts=[8])
    linear = {name for name, config in plan.items() if config.calibration.linear_fusion}
    assert linear == {name for name, config in plan.items() if config.calibration.module in ("late_fusion", "pooling")}
    assert {"late_fusion", "pooling", "late_fusion_1_anchors", "late_fusion_8_identities"} <= linear
