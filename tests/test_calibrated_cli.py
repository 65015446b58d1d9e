"""The calibrated encoder's commands end to end on a generated tiny store (slow: each point trains and evaluates):
`egoface train --preset calibrated-tiny` then `egoface eval` (enrolled per subject), `egoface anchors search`
(JSON keys, resumes without retraining), `egoface ablate calibration` (the issue's JSON keys, report and plots)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egoface.cli.main import main

pytestmark = pytest.mark.slow
MODULE_KEYS = {"name", "mesh_l2_mm", "mouth_shape_l2_mm", "gaze_error_deg", "latency_ms_p50"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibrated_cli") / "data"
    argv = ["generate", "--preset", "tiny", "--subjects", "1", "--domains", "synthetic,real", "--quiet", "--out"]
    assert main([*argv, str(out)]) == 0
    return out


def test_train_and_eval_enrolls_each_subject(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["train", "--preset", "calibrated-tiny", "--data", str(data), "--out", str(run), "--quiet"]) == 0
    assert (run / "model.pt").exists()
    capsys.readouterr()
    code = main(["eval", "--model", str(run), "--data", str(data), "--split", "all", "--compare",
                 "--photometric-frames", "1", "--json", "--quiet"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["real"]["mesh_l2_mm"] > 0 and summary["latency_ms_p50"] > 0


def test_anchor_search_writes_its_result_and_resumes(data: Path, tmp_path: Path, capsys) -> None:
    argv = ["anchors", "search", "--data", str(data), "--out", str(tmp_path / "search"), "--split", "all",
            "--domains", "synthetic", "--candidates", "neutral,maximal_jaw_drop,closed_eyes", "--max-anchors", "2",
            "--photometric-frames", "1", "--json", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["candidates"] == ["neutral", "maximal_jaw_drop", "closed_eyes"] and result["beam_width"] == 3
    assert len(result["scores"]) == 6 and [row["anchors"] for row in result["by_size"]] == [1, 2]
    assert result["best_error"] == min(row["error"] for row in result["scores"])
    assert json.loads((tmp_path / "search" / "search.json").read_text()) == result
    runs = sorted(p.name for p in (tmp_path / "search" / "runs").iterdir())
    stamps = {name: (tmp_path / "search" / "runs" / name / "model.pt").stat().st_mtime for name in runs}
    assert main(argv) == 0  # resumed: every set is reused, nothing retrained
    assert json.loads(capsys.readouterr().out) == result
    assert stamps == {name: (tmp_path / "search" / "runs" / name / "model.pt").stat().st_mtime for name in runs}


def test_ablation_reports_the_issue_keys(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """One experiment alone (`--only`), then the rest by two worker processes, then all again in this one: every
    experiment trains once."""
    out = tmp_path / "ablation"
    argv = ["ablate", "calibration", "--data", str(data), "--out", str(out), "--split", "all", "--domains", "real",
            "--identities", "1", "--latency-frames", "5", "--compare", "neutral", "missing_run",
            "--photometric-frames", "1", "--json", "--quiet"]  # fmt: skip
    assert main([*argv, "--only", "pooling", "--set", "threads=1"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in alone["experiments"]] == ["pooling"] and alone["experiments"][0]["mesh_l2_mm"] > 0
    assert [run.name for run in (out / "runs").iterdir()] == ["pooling"]
    pooling_trained = (out / "runs" / "pooling" / "model.pt").stat().st_mtime
    assert main([*argv, "--only", "poling"]) == 2
    assert "unknown: ['poling']" in capsys.readouterr().err
    code = main([*argv, "--workers", "2", "--set", "threads=1"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["domain"] == "real"
    assert set(result["uncalibrated"]) >= MODULE_KEYS and result["uncalibrated"]["name"] == "none"
    names = [row["name"] for row in result["modules"]]
    assert names == ["late_fusion", "cross_attention", "self_attention", "pooling", "early_fusion"]
    assert all(set(row) >= MODULE_KEYS and row["mesh_l2_mm"] > 0 for row in result["modules"])
    assert [row["anchors"] for row in result["anchors_curve"]] == [0, 1, 2, 3]
    assert [row["identities"] for row in result["identities_curve"]] == [1]
    assert [row["name"] for row in result["losses"]] == ["late_fusion_code", "late_fusion_perceptual"]
    assert result["table1"][-1]["name"] == "missing_run" and "error" in result["table1"][-1]
    assert {"mesh_reduction_pct", "mesh_target_met", "latency_overhead_pct", "latency_target_met"} <= set(
        result["targets"]
    )
    written = {p.name for p in out.iterdir()}
    assert written >= {"ablation.json", "report.md", "anchors_curve.png", "identities_curve.png"}
    stamps = {run.name: (run / "model.pt").stat().st_mtime for run in (out / "runs").iterdir()}
    assert len(stamps) == 6 + 1 + 2  # Table 3 with `none`, Table 2's code loss, the 1- and 2-anchor points
    assert stamps["pooling"] == pooling_trained
    assert main([*argv, "--set", "threads=1"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert [row["mesh_l2_mm"] for row in rerun["modules"]] == [row["mesh_l2_mm"] for row in result["modules"]]
    assert stamps == {run.name: (run / "model.pt").stat().st_mtime for run in (out / "runs").iterdir()}
