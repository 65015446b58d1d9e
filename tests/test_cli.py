"""The `egoface` command: every subcommand runs, `--json` prints the documented keys, bad input fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from egoface.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_face_inspect_json_has_the_documented_keys(capsys) -> None:
    code, out, _ = run(capsys, "face", "inspect", "--json")
    report = json.loads(out)
    assert code == 0 and report["model"] == "procedural" and report["missing"] == []
    assert {"model", "num_vertices", "expressions", "missing"} <= report.keys()
    rows = {row["name"]: row for row in report["expressions"]}
    assert len(rows) == 53
    assert {"name", "max_displacement_mm", "region", "symmetry_error_mm"} <= rows["jawOpen"].keys()
    assert 30.0 < rows["jawOpen"]["max_displacement_mm"] < 60.0


def test_face_preview_writes_a_labelled_grid(tmp_path, capsys) -> None:
    out = tmp_path / "sheet.png"
    code, _, _ = run(capsys, "face", "preview", "--cell", "48", "--columns", "9", "--quiet", "--out", str(out))
    image = np.asarray(Image.open(out))
    assert code == 0 and image.shape == (6 * (48 + 16), 9 * 48)  # 54 cells: neutral + 53 expressions
    assert image[16:64, :48].mean() > 10  # the neutral face is rendered


def test_bad_inputs_fail_with_clear_messages(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "face", "inspect", "--model", "flame:x")
    assert code == 2 and "unknown face model 'flame:x'" in err
    code, _, err = run(capsys, "generate", "--headset", "no-such-rig", "--out", str(tmp_path / "d"))
    assert code == 2 and "no-such-rig" in err
    code, _, err = run(capsys, "generate", "--shard", "3/2", "--out", str(tmp_path / "d"))
    assert code == 2 and "--shard" in err
    code, _, err = run(capsys, "data", "info", str(tmp_path / "missing"))
    assert code == 2 and "no dataset directory" in err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "data"
    code = main(
        [
            "generate",
            "--preset",
            "tiny",
            "--domains",
            "synthetic,real",
            "--subjects",
            "1",
            "--quiet",
            "--out",
            str(root),
        ]
    )
    assert code == 0
    return root


def test_generate_then_info_and_check(dataset, capsys) -> None:
    code, out, _ = run(capsys, "data", "info", str(dataset), "--json")
    info = json.loads(out)
    assert code == 0 and {"subjects", "frames", "domains", "cameras", "bytes"} <= info.keys()
    assert info["subjects"] == 2 and info["domains"]["synthetic"]["subjects"] == 1
    assert info["cameras"] == ["eye_left", "eye_right", "mouth_left", "mouth_right"]
    code, out, _ = run(capsys, "data", "check", str(dataset), "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_rerunning_generate_skips_what_is_complete(dataset, capsys) -> None:
    code, _, err = run(capsys, "generate", "--preset", "tiny", "--domains", "synthetic,real", "--subjects", "1",
                       "--quiet", "--out", str(dataset))  # fmt: skip
    assert code == 0 and "wrote 0 recordings" in err and "2 already complete" in err


def test_show_writes_a_video_and_a_peak_sheet(dataset, tmp_path, capsys) -> None:
    video, sheet = tmp_path / "real.mp4", tmp_path / "peaks.png"
    assert (
        run(capsys, "show", str(dataset), "--subject", "real-0000", "--size", "64", "--quiet", "--out", str(video))[0]
        == 0
    )
    with av.open(str(video)) as container:
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(video=0)]
    assert len(frames) == 114 and frames[0].shape[1] == 64 * 5 + 190  # 4 cameras, the true face, the bars
    assert run(capsys, "show", str(dataset), "--subject", "synthetic-0000", "--size", "64", "--out", str(sheet))[0] == 0
    assert np.asarray(Image.open(sheet)).shape[1] == 64 * 5 + 190
    code, _, err = run(capsys, "show", str(dataset), "--out", str(tmp_path / "x.gif"))
    assert code == 2 and ".mp4" in err


def test_check_names_a_damaged_chunk(dataset, tmp_path, capsys) -> None:
    damaged = tmp_path / "damaged"
    import shutil

    shutil.copytree(dataset, damaged)
    chunk = next(
        p for p in sorted((damaged / "synthetic").rglob("*")) if p.is_file() and "/images/mouth_left/c/" in str(p)
    )
    chunk.write_bytes(b"\0" * chunk.stat().st_size)
    code, out, _ = run(capsys, "data", "check", str(damaged), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert any(str(chunk.relative_to(damaged)) in problem["path"] for problem in report["problems"])


@pytest.mark.slow
def test_demo_tracks_unseen_subjects_and_writes_the_video_and_report(tmp_path, capsys) -> None:
    """The main job end to end with the shipped model (~2-6 min): metrics per domain beside the neutral predictor,
    a playable side-by-side video, the report. (Accuracy is measured by `egoface eval`, in the model card.)"""
    code, out, _ = run(capsys, "demo", "--out", str(tmp_path / "demo"), "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    assert summary["model"] == "default" and set(summary["compared"]) == {"neutral"}
    for domain in ("synthetic", "real"):
        assert summary[domain]["mesh_l2_mm"] > 0 and summary[domain]["subjects"] == [f"{domain}-0000"]
    assert summary["compared"]["neutral"]["synthetic"]["semantic_accuracy"] == 0.0  # the baseline really ran
    assert (tmp_path / "demo" / "report" / "report.md").exists()
    # the shipped model is anchor-calibrated: the demo shows its enrollment step, once per subject
    assert set(summary["enrollment"]) == {"synthetic-0000", "real-0000"}
    assert all(len(e["anchors"]) == 6 and e["enroll_ms"] > 0 for e in summary["enrollment"].values())
    assert (tmp_path / "demo" / "enrollment.png").exists()
    with av.open(str(tmp_path / "demo" / "tracking.mp4")) as video:
        assert video.streams.video[0].frames > 100


def test_generate_offers_every_generation_preset() -> None:
    from egoface.capture.generate import GENERATION_PRESETS
    from egoface.cli.data import GENERATION_PRESET_NAMES

    assert set(GENERATION_PRESET_NAMES) == set(GENERATION_PRESETS)


def test_default_model_spec_gets_the_predictor_of_its_kind() -> None:
    """`--model default` is scored like a run of the same model: a calibrated encoder is enrolled per subject."""
    from egoface.cli.eval import load_predictor
    from egoface.eval.calibrated import CalibratedPredictor
    from egoface.models import CalibratedEncoder, load_shipped_model

    shipped = load_shipped_model("default")
    predictor = load_predictor("default", shipped.config.cameras)
    assert predictor.name == "default"
    assert isinstance(predictor, CalibratedPredictor) == isinstance(shipped, CalibratedEncoder)
