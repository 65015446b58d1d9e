"""Splits by subject (disjoint, deterministic, exact per block) and shards of subjects (an exact partition)."""

from __future__ import annotations

import pytest

from egoface.data import Shard, assign_split, parse_shard, shard_of, split_subjects


def test_splits_are_disjoint_deterministic_and_exact_per_block() -> None:
    subjects = [f"s{i:03d}" for i in range(200)]
    splits = split_subjects(subjects, seed=7)
    assert split_subjects(subjects, seed=7) == splits  # deterministic
    train, val, test = (set(splits[k]) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(subjects)
    assert (len(train), len(val), len(test)) == (160, 20, 20)  # exactly 8/1/1 in every block of 10
    assert split_subjects(subjects, seed=8) != splits  # the seed matters


def test_adding_subjects_never_moves_existing_ones() -> None:
    before = [assign_split(i, seed=3) for i in range(37)]
    assert [assign_split(i, seed=3) for i in range(100)][:37] == before


def test_other_fractions_and_bad_inputs() -> None:
    counts = [assign_split(i, 0, (0.7, 0.15, 0.15)) for i in range(20)]
    assert (counts.count("train"), counts.count("val"), counts.count("test")) == (14, 3, 3)
    with pytest.raises(ValueError, match="summing to 1"):
        assign_split(0, 0, (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="integer >= 0"):
        assign_split(-1, 0)


def test_shards_partition_subjects_exactly() -> None:
    """Every subject (by index or by id) belongs to exactly one of the n shards; index shards are balanced."""
    for n in (1, 3, 4):
        shards = [parse_shard(f"{i}/{n}") for i in range(n)]
        for subject in list(range(50)) + [f"subject_{i}" for i in range(50)]:
            assert sum(shard.contains(subject) for shard in shards) == 1
        sizes = [sum(s.contains(k) for k in range(50)) for s in shards]
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 50
    assert shard_of("subject_7", 5) == shard_of("subject_7", 5)  # stable (CRC-32, not the salted hash)


@pytest.mark.parametrize("text", ["3", "1/0", "4/4", "-1/4", "a/b", "1/2/3", ""])
def test_parse_shard_rejects_malformed_input_clearly(text: str) -> None:
    with pytest.raises(ValueError, match=r"--shard"):
        parse_shard(text)


def test_parse_shard_accepts_zero_based_pairs() -> None:
    assert parse_shard(" 2/5 ") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
