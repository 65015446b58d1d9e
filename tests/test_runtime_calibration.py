"""Calibration: profiles round-trip through their JSON file and survive a process killed in the middle of a write
(the previous version stays readable); the neutral re-centre maps the user's neutral to zero and keeps 1 at 1; the
range-of-motion calibration remaps a user's observed range to [0, 1] once it has enough frames; enrollment stores
anchors and the neutral; the anchor names are the capture script's anchor candidates."""

from __future__ import annotations

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
    Calibrator,
    Profile,
    ProfileStore,
    RomOptions,
    enroll,
)

JAW = expression_index("jawOpen")


def test_profile_round_trip(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    profile = Profile("alice", model="refa_nano", neutral=np.full(53, 0.1, np.float32))
    profile.rom_histogram[JAW, 40] = 7
    store.save(profile)
    loaded = store.load("alice")
    assert loaded.model == "refa_nano" and loaded.rom_histogram[JAW, 40] == 7
    np.testing.assert_allclose(loaded.neutral, 0.1)
    assert store.names() == ["alice"]
    with pytest.raises(ValueError, match="profile name"):
        store.path("../evil")
    with pytest.raises(FileNotFoundError, match=r"no profile 'bob'.*profiles: alice"):
        store.load("bob")
    (tmp_path / "broken.json").write_text('{"format": 1, "name": ')
    with pytest.raises(ValueError, match=r"broken\.json is damaged"):
        store.load("broken")


def test_profile_survives_a_crash_mid_write(tmp_path) -> None:
    store = ProfileStore(tmp_path)
    store.save(Profile("alice", model="first"))
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
        profile = Profile("alice", model="second", neutral=np.ones(53, np.float32))
        ProfileStore({str(tmp_path)!r}).save(profile)
        """
    )
    result = subprocess.run([sys.executable, "-c", child], env=os.environ.copy(), timeout=60)
    assert result.returncode == -signal.SIGKILL
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "alice.json"]
    assert leftovers and all(name.startswith(".alice.json.tmp") for name in leftovers)  # the write did happen
    assert store.load("alice").model == "first"  # the old version, intact
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
