"""Train/val/test splits by subject and shards of subjects for distributed generation (`--shard i/n`).

Splits are assigned per subject, so a test identity never appears in training. `assign_split` needs only the
subject's index: subjects are grouped in consecutive blocks (10 for the default 0.8/0.1/0.1) and each block is
split exactly by a permutation seeded with (seed, block); adding subjects never moves existing ones.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from egoface.data.schema import SPLITS

__all__ = ["DEFAULT_FRACTIONS", "Shard", "assign_split", "parse_shard", "shard_of", "split_subjects"]

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
_MAX_BLOCK = 100


def assign_split(subject_index: int, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """The split (`train`/`val`/`test`) of subject number `subject_index` (>= 0); deterministic in (index, seed).

    `fractions` (train, val, test) sum to 1; within every block of B consecutive subjects (B the smallest size
    with whole counts, at most 100) exactly `fraction * B` subjects get each split.
    """
    if not isinstance(subject_index, int | np.integer) or subject_index < 0:
        raise ValueError(f"subject_index must be an integer >= 0, got {subject_index!r}")
    counts = _block_counts(fractions)
    block, offset = divmod(int(subject_index), sum(counts))
    labels = np.repeat(np.arange(len(SPLITS)), counts)
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, block]).permutation(labels)
    return SPLITS[int(order[offset])]


def split_subjects(
    subjects: Sequence[str], seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, list[str]]:
    """Subjects by split, using their position in `subjects` as the index of `assign_split`."""
    out: dict[str, list[str]] = {split: [] for split in SPLITS}
    for index, subject in enumerate(subjects):
        out[assign_split(index, seed, fractions)].append(subject)
    return out


def _block_counts(fractions: Sequence[float]) -> list[int]:
    values = [float(f) for f in fractions]
    if len(values) != len(SPLITS) or min(values) < 0 or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be {len(SPLITS)} non-negative numbers (train, val, test) summing to 1, "
                         f"got {tuple(fractions)}")  # fmt: skip
    exact = [Fraction(v).limit_denominator(_MAX_BLOCK) for v in values]
    block = int(np.lcm.reduce([f.denominator for f in exact]))
    if block > _MAX_BLOCK:
        block = _MAX_BLOCK
    counts = [int(v * block) for v in values]
    remainders = sorted(range(len(values)), key=lambda i: values[i] * block - counts[i], reverse=True)
    for i in remainders[: block - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count): the subjects one cluster job generates or processes."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"a shard is i/n with n >= 1 and 0 <= i < n, got {self.index}/{self.count}")

    def contains(self, subject: int | str) -> bool:
        """True if this shard owns `subject` (see `shard_of`)."""
        return shard_of(subject, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(subject: int | str, num_shards: int) -> int:
    """The shard (0..num_shards-1) that owns a subject: round-robin over an integer index (balanced), or the
    CRC-32 of a subject id string (stable across processes and machines, unlike `hash`)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    if isinstance(subject, str):
        return zlib.crc32(subject.encode("utf-8")) % num_shards
    if subject < 0:
        raise ValueError(f"a subject index must be >= 0, got {subject}")
    return int(subject) % num_shards


def parse_shard(text: str) -> Shard:
    """Parse `--shard i/n` (zero-based: `0/4` ... `3/4`)."""
    parts = text.strip().split("/") if isinstance(text, str) else []
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--shard must look like i/n with whole numbers (e.g. 0/4), got {text!r}")
    index, count = int(parts[0]), int(parts[1])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard i/n needs n >= 1 and 0 <= i < n (zero-based), got {text!r}")
    return Shard(index, count)
