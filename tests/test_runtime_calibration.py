"""Calibration: profiles round-trip through their JSON file (anchor memories bit for bit, found by model id, with
clear errors for another model's or a damaged memory) and survive a process killed in the middle of a write (the
previous version stays readable); the neutral re-centre maps the user's neutral to zero and keeps 1 at 1; the
range-of-motion calibration remaps a user's observed range to [0, 1] once it has enough frames; enrollment stores
anchors and the neutral; the anchor names are the capture script's anchor candidates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from egoface.capture.script import ANCHOR_CANDIDATES
from egoface.face.names import EXPRESSION_NAMES, expression_index
from egoface.runtime.calibration import (
    ANCHOR_PROMPTS,
    AnchorMemory,
    Calibrator,
    Profile,
    ProfileStore,
    RomOptions,
    enroll,
)

JAW = expression_index("jawOpen")


def memory(model_id: str, size: int = 1000, seed: int = 0) -> AnchorMemory:
    values = np.random.default_rng(seed).standard_normal(size).astype(np.float32)
    return AnchorMemory(model_id, "calibrated_nano", "late_fusion", ("neutral", "big_smile"), values, 30)


def test_profile_round_trip(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    profile = Profile("alice", model="refa_nano", neutral=np.full(53, 0.1, np.float32))
    profile.rom_histogram[JAW, 40] = 7
    profile.memories = {"a" * 16: memory("a" * 16), "b" * 16: memory("b" * 16, 12, seed=1)}
    store.save(profile)
    loaded = store.load("alice")
    assert loaded.model == "refa_nano" and loaded.rom_histogram[JAW, 40] == 7
    np.testing.assert_allclose(loaded.neutral, 0.1)
    # anchor memories come back bit for bit, found by model id
    np.testing.assert_array_equal(loaded.anchor_memory("a" * 16, "m", 1000), profile.memories["a" * 16].memory)
    assert loaded.memories["b" * 16].anchors == ("neutral", "big_smile") and loaded.memories["b" * 16].frames == 30
    with pytest.raises(ValueError, match=r"no anchor memory for model m \(c+\); it was enrolled with other models"):
        loaded.anchor_memory("c" * 16, "m", 1000)
    with pytest.raises(ValueError, match=r"holds 1000 anchor-memory values .* reads 999"):
        loaded.anchor_memory("a" * 16, "m", 999)
    with pytest.raises(ValueError, match=r"has no enrolled anchors.*egoface enroll --profile u --model m"):
        Profile("u").anchor_memory("a" * 16, "m", 1000)
    assert store.names() == ["alice"]
    with pytest.raises(ValueError, match="profile name"):
        store.path("../evil")
    with pytest.raises(FileNotFoundError, match=r"no profile 'bob'.*profiles: alice"):
        store.load("bob")
    (tmp_path / "broken.json").write_text('{"format": 1, "name": ')
    with pytest.raises(ValueError, match=r"broken\.json is damaged"):
        store.load("broken")
    text = json.loads(profile.to_json())
    text["memories"]["a" * 16]["memory"] = text["memories"]["a" * 16]["memory"][:-8]  # truncated values
    (tmp_path / "cut.json").write_text(json.dumps(text))
    with pytest.raises(ValueError, match=r"cut\.json is damaged"):
        store.load("cut")
    # a format 1 profile (before anchor memories) is still read
    old = {key: value for key, value in json.loads(Profile("old").to_json()).items() if key != "memories"}
    (tmp_path / "old.json").write_text(json.dumps({**old, "format": 1}))
    assert store.load("old").memories == {}


def test_profile_survives_a_crash_mid_write(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(Profile("alice", model="first", memories={"a" * 16: memory("a" * 16)}))
    # a real process dies (SIGKILL) after writing the new version's bytes but before the rename
    child = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from egoface.runtime.calibration import Profile, ProfileStore
        real_fsync = os.fsync
        def die(fd):
            real_fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        os.fsync = die
        from egoface.runtime.calibration import AnchorMemory
        memory = AnchorMemory("b" * 16, "m", "late_fusion", ("neutral",), np.ones(200_000, np.float32), 30)
        profile = Profile("alice", model="second", neutral=np.ones(53, np.float32), memories={{"b" * 16: memory}})
        ProfileStore({str(tmp_path)!r}).save(profile)
        """
    )
    result = subprocess.run([sys.executable, "-c", child], env=os.environ.copy(), timeout=60)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "alice.json"]
    assert leftovers and all(name.startswith(".alice.json.tmp") for name in leftovers)  # the write did happen
    assert store.load("alice").model == "first"  # the old version, intact, its anchor memory too
    np.testing.assert_array_equal(store.load("alice").memories["a" * 16].memory, memory("a" * 16).memory)
    assert store.names() == ["alice"]  # temporaries are not profiles
    store.save(Profile("alice", model="third"))
    assert store.load("alice").model == "third"


def test_neutral_recentre() -> None:
    neutral = np.zeros(53, np.float32)
    neutral[JAW] = 0.2
    calibrator = Calibrator(Profile("u", neutral=neutral), RomOptions(enabled=False))
    values = np.zeros(53, np.float32)
    for raw, expected in ((0.2, 0.0), (0.1, 0.0), (0.6, 0.5), (1.0, 1.0)):
        values[JAW] = raw
        assert calibrator(values)[JAW] == pytest.approx(expected)


def test_range_of_motion_remaps_the_observed_range() -> None:
    calibrator = Calibrator(Profile("u"), RomOptions(min_frames=200))
    rng = np.random.default_rng(0)
    values = np.zeros(53, np.float32)
    for i in range(400):
        values[JAW] = 0.6 * rng.random()  # this user's jaw reaches about 0.6
        calibrator.update(values)
        if i == 100:
            values[JAW] = 0.6
            assert calibrator(values)[JAW] == pytest.approx(0.6)  # too few frames yet: unchanged
    values[JAW] = 0.6
    assert calibrator(values)[JAW] > 0.95
    values[JAW] = 0.3
    assert 0.4 < calibrator(values)[JAW] < 0.6
    other = expression_index("mouthPucker")  # never moved: span too small, left alone
    values[other] = 0.05
    assert calibrator(values)[other] == pytest.approx(0.05)


def test_enroll_stores_anchors_and_neutral() -> None:
    assert set(ANCHOR_PROMPTS) <= set(ANCHOR_CANDIDATES)
    rng = np.random.default_rng(0)

    def capture(name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        level = 0.1 if name == "neutral" else 0.7
        return [(rng.standard_normal(16).astype(np.float32), np.full(53, level, np.float32)) for _ in range(5)]

    profile = enroll(Profile("u"), capture, ["neutral", "big_smile"])
    assert set(profile.anchors) == {"neutral", "big_smile"}
    assert profile.anchors["big_smile"].frames == 5 and profile.anchors["big_smile"].features.shape == (16,)
    np.testing.assert_allclose(profile.neutral, 0.1)
    assert len(EXPRESSION_NAMES) == len(profile.neutral)
    with pytest.raises(KeyError, match="unknown anchor 'wink'"):
        enroll(Profile("u"), capture, ["wink"])
