"""`egoface placement evaluate|compare|search`: --json keys, written reports and rigs, clear errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from egoface.cli import main as cli_main
from egoface.cli import placement
from egoface.headset import load_rig


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `egoface ...`; registers the placement commands if main.py does not yet."""
    if not hasattr(cli_main, "placement"):
        build = cli_main._parser

        def parser() -> argparse.ArgumentParser:
            result = build()
            commands = next(a for a in result._actions if isinstance(a, argparse._SubParsersAction))
            placement.register(commands)
            return result

        monkeypatch.setattr(cli_main, "_parser", parser)

    def call(*argv: str) -> tuple[int, str, str]:
        code = cli_main.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


SMALL = ("--population", "3", "--donnings", "1", "--quiet")


def test_evaluate_json_has_the_documented_keys_and_writes_a_report(run, tmp_path: Path) -> None:
    code, out, _ = run("placement", "evaluate", "--headset", "refa-5", *SMALL, "--json", "--out", str(tmp_path))
    result = json.loads(out)
    assert code == 0 and result["headset"] == "refa-5" and result["population"] == 3
    assert {"seconds", "total_seconds", "cameras", "roles", "face_model", "donnings", "seed"} <= result.keys()
    assert result["seconds"] > 0
    assert [c["camera"] for c in result["cameras"]] == [
        "eye_left",
        "eye_right",
        "mouth_left",
        "mouth_right",
        "glabella",
    ]
    for camera in result["cameras"]:
        assert {"camera", "role", "visibility", "visible_fraction", "range_of_motion_px"} <= camera.keys()
        assert {"visibility_std", "range_of_motion_px_std", "regions", "expressions"} <= camera.keys()
        assert 0.0 <= camera["visibility"] <= 1.0
    assert set(result["roles"]) == {"eye", "mouth", "glabella"}
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "metrics.json", "bars.png", "views.png"}
    assert "| `mouth_left` | mouth |" in (tmp_path / "report.md").read_text()


def test_compare_marks_a_winner_per_role(run, tmp_path: Path) -> None:
    code, out, _ = run("placement", "compare", "refa-5", "quest-pro-4", *SMALL, "--json", "--out", str(tmp_path))
    result = json.loads(out)
    assert code == 0 and result["candidates"] == ["refa-5", "quest-pro-4"]
    assert result["roles"]["eye"]["winner"] in ("refa-5", "quest-pro-4")
    assert set(result["roles"]["eye"]["candidates"]["refa-5"]) >= {"visibility", "range_of_motion_px", "score"}
    assert "★" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "views_quest-pro-4.png").exists()


def test_search_writes_a_rig_that_loads(run, tmp_path: Path) -> None:
    best = tmp_path / "best.yaml"
    code, out, _ = run("placement", "search", "--headset", "refa-5", "--camera", "mouth_left", "--budget", "3",
                       *SMALL, "--mirror", "--out", str(best), "--json")  # fmt: skip
    result = json.loads(out)
    assert code == 0 and result["evaluations"] == 3 and result["best"]["score"] >= result["start"]["score"] == 1.0
    rig = load_rig(best)
    left, right = rig.camera_spec("mouth_left"), rig.camera_spec("mouth_right")
    assert list(left.position) == result["best"]["position_mm"]
    assert right.position == (-left.position[0], left.position[1], left.position[2])


def test_bad_input_fails_with_clear_messages(run, tmp_path: Path) -> None:
    code, _, err = run("placement", "evaluate", "--headset", "refa-5", "--population", "0", "--quiet")
    assert code == 2 and "num_identities must be a positive integer, got 0" in err
    code, _, err = run("placement", "search", "--headset", "refa-5", "--camera", "nose_cam", *SMALL,
                       "--out", str(tmp_path / "b.yaml"))  # fmt: skip
    assert code == 2 and "no camera 'nose_cam'" in err
    code, _, err = run("placement", "compare", "refa-5", *SMALL)
    assert code == 2 and "at least 2 rigs" in err
    code, _, err = run("placement", "evaluate", "--headset", "no-such-rig", *SMALL)
    assert code == 2 and "no-such-rig" in err
