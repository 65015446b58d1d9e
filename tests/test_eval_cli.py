"""`egoface eval`: a trained run and baselines scored on a generated store, report files, JSON keys per domain, and
a clear refusal when the data has no labels to score against."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from egoface.cli.main import main
from egoface.eval.evaluate import METRIC_KEYS


@pytest.fixture(scope="module")
def store_and_run(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evalcli")
    data, run = root / "data", root / "run"
    argv = ["generate", "--preset", "tiny", "--subjects", "1", "--quiet", "--out", str(data)]
    assert main(argv) == 0
    assert main(["train", "--preset", "tiny", "--data", str(data), "--out", str(run), "--quiet"]) == 0
    return data, run


def test_eval_writes_the_report_and_metrics_per_domain(store_and_run, tmp_path, capsys) -> None:
    data, run = store_and_run
    out = tmp_path / "report"
    code = main(["eval", "--model", str(run), "--data", str(data), "--split", "all", "--photometric-frames", "2",
                 "--out", str(out), "--attribution", "--json", "--quiet"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["model"] == "run" and summary["split"] == "all"
    for domain in ("synthetic", "real"):
        assert set(METRIC_KEYS) <= summary[domain].keys()
        assert summary[domain]["subjects"] and summary[domain]["mesh_l2_mm"] >= 0.0
        attribution = summary[domain]["attribution"]  # asked for: mesh L2 with each group set to the truth
        assert attribution["none"] == pytest.approx(summary[domain]["mesh_l2_mm"])
        assert all(value >= 0.0 for value in attribution.values()) and "jaw_open" in attribution
    assert summary["compared"]["neutral"]["synthetic"]["semantic_accuracy"] == 0.0
    written = {path.name for path in out.iterdir()}
    assert {"report.md", "metrics.json", "curves_synthetic.png", "error_map_real.png"} <= written
    report = (out / "report.md").read_text()
    assert "Identities" in report and "`neutral`" in report and "Error attribution" in report
    assert "attribution" not in summary["compared"]["neutral"]["synthetic"]  # only the main model's


def test_eval_scores_a_training_checkpoint_as_the_model_at_its_step(store_and_run, capsys) -> None:
    data, run = store_and_run
    scores = {}
    for spec in (run, run / "checkpoints" / "last.pt"):  # the tiny preset's last checkpoint is its final step
        argv = ["eval", "--model", str(spec), "--data", str(data), "--domains", "synthetic", "--split", "all",
                "--photometric-frames", "1", "--compare", "--json", "--quiet"]  # fmt: skip
        assert main(argv) == 0
        scores[spec.name] = json.loads(capsys.readouterr().out)
    assert scores["last.pt"]["model"] == "run/last"
    assert scores["last.pt"]["synthetic"]["mesh_l2_mm"] == scores["run"]["synthetic"]["mesh_l2_mm"]


def test_eval_refuses_data_without_labels(store_and_run, capsys) -> None:
    data, _ = store_and_run
    code = main(
        ["eval", "--model", "neutral", "--data", str(data), "--domains", "unlabeled", "--split", "all", "--quiet"]
    )
    assert code == 2 and "labels" in capsys.readouterr().err
