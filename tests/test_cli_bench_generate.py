"""`egoface bench generate`: one small in-process run prints the documented JSON keys with consistent values."""

from __future__ import annotations

import json

import pytest

from egoface.cli.main import main


@pytest.mark.slow  # one 114-frame recording at 192x192: ~10-25 s on the shared 2-core machine
def test_bench_generate_json_has_the_documented_keys(capsys) -> None:
    assert main(["bench", "generate", "--workers", "1", "--subjects", "1", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    keys = {"frames_per_second", "frames_per_cpu_second", "runs", "workers", "cameras", "resolution", "frames_per_run"}
    assert keys | {"target_frames_per_second"} <= result.keys()
    assert result["cameras"] == 4 and result["resolution"] == [192, 192] and result["workers"] == 1
    assert result["frames_per_run"] > 0 and result["runs"] == [result["frames_per_second"]]
    assert result["frames_per_second"] > 0 and result["frames_per_cpu_second"] > 0
