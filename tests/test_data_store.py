"""The dataset store: exact round trips, atomic and resumable writes, concurrent writers, info and integrity check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import egoface.data.store as store_module
from egoface.data import DatasetStore, OracleReader, check_dataset, dataset_info
from egoface.data.schema import anchor_frames, schema_table_markdown
from test_data_helpers import make_recording

REPO = Path(__file__).resolve().parents[1]


def _assert_same_arrays(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key].dtype == want[key].dtype, key
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_round_trip_synthetic_is_exact(tmp_path: Path) -> None:
    """Every array, the segment table, the free attrs and the subject attrs come back exactly."""
    data = make_recording(domain="synthetic", seed=3)
    store = DatasetStore(tmp_path)
    assert store.write_recording(data)
    back = store.read_recording("s000", "script")
    _assert_same_arrays(back.arrays(), data.arrays())
    assert back.labels is not None and back.labels.keypoint_names == data.labels.keypoint_names
    assert back.segments == data.segments and back.attrs == data.attrs
    assert back.subject.to_attrs() == data.subject.to_attrs()
    np.testing.assert_array_equal(back.subject.identity, data.subject.identity)
    partial = store.read_recording("s000", "script", frames=slice(7, 19))
    np.testing.assert_array_equal(partial.images["mouth_left"], data.images["mouth_left"][7:19])


def test_real_labels_go_only_to_the_oracle_tree(tmp_path: Path) -> None:
    """Real-domain true labels are absent from the training tree and exact in the oracle tree."""
    data = make_recording(subject="r000", domain="real", seed=4)
    store = DatasetStore(tmp_path)
    store.write_recording(data)
    back = store.read_recording("r000", "script")
    assert back.labels is None
    assert not (tmp_path / "real" / "r000" / "script" / "labels" / "expression").exists()
    assert back.segments == data.segments  # art priors may train
    np.testing.assert_array_equal(back.ood, data.ood)
    truth = OracleReader(tmp_path).labels("r000", "script")
    _assert_same_arrays(truth.arrays(), data.labels.arrays())
    assert [r.subject for r in OracleReader(tmp_path).recordings()] == ["r000"]


def test_unlabeled_round_trip_has_images_only(tmp_path: Path) -> None:
    data = make_recording(subject="u000", domain="unlabeled", seed=5)
    store = DatasetStore(tmp_path)
    store.write_recording(data)
    back = store.read_recording("u000", "script")
    _assert_same_arrays(back.arrays(), data.arrays())
    assert back.labels is None and back.segments is None


def test_resume_skips_complete_recordings(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    data = make_recording()
    assert not store.has_recording("s000", "script")
    assert store.write_recording(data) is True
    assert store.has_recording("s000", "script")
    marker = tmp_path / "synthetic" / "s000" / "script" / "_complete" / "zarr.json"
    stamp = marker.stat().st_mtime_ns
    assert store.write_recording(data) is False  # rerun: skipped, nothing rewritten
    assert marker.stat().st_mtime_ns == stamp
    assert DatasetStore(tmp_path).has_recording("s000", "script")


def test_interrupted_write_leaves_nothing_visible_and_rerun_completes(tmp_path: Path, monkeypatch) -> None:
    """An exception in the middle of writing leaves no recording and no temporary; a rerun writes it whole."""
    store = DatasetStore(tmp_path)
    data = make_recording(domain="real", subject="r001")
    calls = {"n": 0}
    original = store_module._write_array

    def failing(group, path, array):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full (simulated)")
        original(group, path, array)

    monkeypatch.setattr(store_module, "_write_array", failing)
    with pytest.raises(OSError, match="simulated"):
        store.write_recording(data)
    assert not store.has_recording("r001", "script")
    assert not (tmp_path / "real" / "r001" / "script").exists()
    assert not (tmp_path / "oracle" / "real" / "r001" / "script").exists()
    assert [p for p in (tmp_path / ".tmp").iterdir() if p.is_dir()] == []
    monkeypatch.setattr(store_module, "_write_array", original)
    assert store.write_recording(data)
    assert check_dataset(tmp_path)["ok"]


def test_crash_between_oracle_and_training_rename_is_repaired(tmp_path: Path, monkeypatch) -> None:
    """A writer that dies after publishing the oracle part leaves the recording invisible; the rerun replaces it."""
    store = DatasetStore(tmp_path)
    data = make_recording(domain="real", subject="r002")
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst).parent.parent.name == "real" and Path(dst).parent.parent.parent.name != "oracle":
            raise KeyboardInterrupt  # dies right before the training part becomes visible
        real_rename(src, dst)

    monkeypatch.setattr(store_module.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        store.write_recording(data)
    monkeypatch.setattr(store_module.os, "rename", real_rename)
    assert not store.has_recording("r002", "script")
    report = check_dataset(tmp_path)
    assert not report["ok"] and "counterpart" in report["problems"][0]["error"]
    assert store.write_recording(data)
    assert check_dataset(tmp_path)["ok"]


_WRITER = """
import sys, time
from pathlib import Path
sys.path[:0] = [{src!r}, {tests!r}]
import egoface.data.store as store_module
from egoface.data import DatasetStore
from test_data_helpers import make_recording
original = store_module._write_array
def slow(group, path, array):
    original(group, path, array)
    if {pause!r} and path == "images/mouth_left":
        Path({flag!r}).write_text("half-way")
        time.sleep(600)
store_module._write_array = slow
print(DatasetStore({root!r}).write_recording(make_recording(subject={subject!r}, recording={recording!r},
      frames=70, seed={seed})))
"""


def _writer(root: Path, subject: str, recording: str, seed: int, pause: bool = False) -> subprocess.Popen:
    code = _WRITER.format(src=str(REPO / "src"), tests=str(REPO / "tests"), pause=pause, flag=str(root / "flag"),
                          root=str(root), subject=subject, recording=recording, seed=seed)  # fmt: skip
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)


def test_killed_writer_leaves_no_visible_recording_and_rerun_completes(tmp_path: Path) -> None:
    """SIGKILL half-way: nothing visible, the temporary stays until the next open (its lock is free), rerun works."""
    writer = _writer(tmp_path, "s010", "script", seed=1, pause=True)
    deadline = time.time() + 60
    while not (tmp_path / "flag").exists():
        assert writer.poll() is None and time.time() < deadline, "writer did not reach the middle of its write"
        time.sleep(0.05)
    assert [p.name for p in (tmp_path / ".tmp").iterdir() if p.is_dir()] == ["synthetic~s010~script"]
    assert DatasetStore(tmp_path).clean_temporaries() == []  # the live writer's temporary is left alone
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert not (tmp_path / "synthetic" / "s010" / "script").exists()
    store = DatasetStore(tmp_path)  # opening removes the dead writer's temporary
    assert [p for p in (tmp_path / ".tmp").iterdir() if p.is_dir()] == []
    assert not store.has_recording("s010", "script")
    data = make_recording(subject="s010", frames=70, seed=1)
    assert store.write_recording(data)
    np.testing.assert_array_equal(store.read_recording("s010", "script").images["eye_left"], data.images["eye_left"])


def test_two_processes_write_different_recordings_of_one_new_subject(tmp_path: Path) -> None:
    """Concurrent writers race on creating the subject group; both recordings land complete and intact."""
    writers = [_writer(tmp_path, "s020", name, seed) for seed, name in enumerate(("script", "free"))]
    outputs = [w.communicate(timeout=120)[0].strip() for w in writers]
    assert [w.returncode for w in writers] == [0, 0] and outputs == ["True", "True"]
    store = DatasetStore(tmp_path)
    for seed, name in enumerate(("script", "free")):
        want = make_recording(subject="s020", recording=name, frames=70, seed=seed)
        np.testing.assert_array_equal(
            store.read_recording("s020", name).images["mouth_right"], want.images["mouth_right"]
        )
    assert check_dataset(tmp_path)["ok"]


def test_subject_facts_must_agree_and_stay_in_one_domain(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    store.write_recording(make_recording(subject="s030", split="train"))
    with pytest.raises(ValueError, match="different attributes"):
        store.write_recording(make_recording(subject="s030", recording="free", split="test"))
    with pytest.raises(ValueError, match="already exists in domain 'synthetic'"):
        store.write_recording(make_recording(subject="s030", recording="free", domain="unlabeled"))


def test_dataset_info_counts(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path)
    store.write_recording(make_recording(subject="a", frames=40))
    store.write_recording(make_recording(subject="a", recording="free", frames=30))
    store.write_recording(make_recording(subject="b", split="test", frames=20))
    store.write_recording(make_recording(subject="r", domain="real", split="val", frames=10))
    store.write_recording(make_recording(subject="u", domain="unlabeled", frames=12, size=(16, 16)))
    info = dataset_info(tmp_path)
    assert info["subjects"] == 4 and info["frames"] == 112
    synthetic = info["domains"]["synthetic"]
    assert (synthetic["subjects"], synthetic["recordings"], synthetic["frames"]) == (2, 3, 90)
    assert synthetic["splits"]["train"] == {"subjects": 1, "recordings": 2, "frames": 70}
    assert synthetic["splits"]["test"] == {"subjects": 1, "recordings": 1, "frames": 20}
    assert info["domains"]["real"]["splits"]["val"]["frames"] == 10
    assert info["domains"]["unlabeled"]["frames"] == 12
    assert info["cameras"] == ["eye_left", "eye_right", "mouth_left", "mouth_right"]
    assert info["resolution"]["eye_left"] == [24, 32]
    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert info["bytes"] == on_disk > 0 and info["oracle_recordings"] == 1


def test_check_names_a_corrupted_chunk_file(tmp_path: Path) -> None:
    """Overwriting bytes inside one image shard makes check fail and name exactly that file."""
    store = DatasetStore(tmp_path)
    store.write_recording(make_recording(frames=140, size=(32, 32)))
    calls = []
    report = check_dataset(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert report["ok"] and report["problems"] == [] and calls[-1] == (report["chunks"], report["chunks"])
    shard = tmp_path / "synthetic" / "s000" / "script" / "images" / "eye_right" / "c" / "1" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3 : len(raw) // 3 + 64] = bytes(64)
    shard.write_bytes(bytes(raw))
    report = check_dataset(tmp_path)
    assert not report["ok"]
    named = {p["path"] for p in report["problems"]}
    assert named == {str(shard)}
    assert any("unreadable" in p["error"] for p in report["problems"])  # the chunk itself fails to decode
    assert any("checksum" in p["error"] for p in report["problems"])


def test_check_flags_true_labels_in_the_real_training_tree(tmp_path: Path) -> None:
    """The domain policy is checked: a real recording holding labels next to its images is reported."""
    store = DatasetStore(tmp_path)
    store.write_recording(make_recording(subject="r100", domain="real"))
    import zarr

    group = zarr.open_group(tmp_path / "real" / "r100" / "script", mode="a")
    group.create_array("labels/expression", shape=(40, 53), dtype="float32")
    report = check_dataset(tmp_path)
    errors = {Path(p["path"]).name: p["error"] for p in report["problems"]}
    assert not report["ok"] and "not allowed" in errors["expression"]


def test_datasheet_shows_the_schema_table() -> None:
    """docs/datasheet.md renders RECORDING_ARRAYS verbatim (regenerate it with schema_table_markdown())."""
    sheet = REPO / "docs" / "datasheet.md"
    assert schema_table_markdown() in sheet.read_text(encoding="utf-8")


def test_anchor_frames_take_the_clean_hold_frame_nearest_the_middle() -> None:
    """The hold's middle; with OOD flags the nearest unflagged frame of the hold (the earlier of two as near); the
    middle when the whole hold is flagged; a segment without a hold uses the whole segment."""
    segments = [
        {"anchor": "neutral", "start_frame": 0, "stop_frame": 12, "peak_start_frame": 2, "peak_stop_frame": 9},
        {"anchor": "closed_eyes", "start_frame": 12, "stop_frame": 20},
        {"anchor": "neutral", "start_frame": 20, "stop_frame": 24},  # a second neutral segment: the first wins
        {"name": "no anchor", "start_frame": 24, "stop_frame": 26},
    ]
    assert anchor_frames(segments) == {"neutral": 5, "closed_eyes": 15}
    ood = np.zeros(26, bool)
    ood[[5, 15, 16]] = True
    assert anchor_frames(segments, ood) == {"neutral": 4, "closed_eyes": 14}
    ood[4] = True
    assert anchor_frames(segments, ood)["neutral"] == 6
    ood[2:9] = True
    assert anchor_frames(segments, ood)["neutral"] == 5
