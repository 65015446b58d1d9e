"""Choosing the anchor expressions: the beam search of Universal App. A, Alg. 1.

The beam B starts empty. Each round, every not yet visited successor `b | {e}` of every node b of the beam and
candidate e is scored (in the paper: train an encoder with those anchors, measure its held-out error; here any
`score(anchors) -> error` callable, see `egoface anchors search`); the new beam is the `beam_width` lowest-error
sets among *all* nodes scored so far. The search stops when the beam no longer changes (adding anchors stopped
helping) or when it holds a set of `max_anchors`. Sets are scored once (`visited`); a set is unordered, but it is
passed to `score` in the order of `candidates`, so the anchor order a model sees is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["BeamSearchResult", "beam_search"]


@dataclass(frozen=True)
class BeamSearchResult:
    """best: the lowest-error set in the final beam; beam: the final beam, best first; scores: every scored set
    (in candidate order) -> error; rounds: the beam after each round; by_size[n]: the lowest error of any scored
    set of n anchors (the error-vs-number-of-anchors curve, Fig. 8)."""

    best: tuple[str, ...]
    beam: list[tuple[str, ...]]
    scores: dict[tuple[str, ...], float]
    rounds: list[list[tuple[str, ...]]] = field(default_factory=list)

    @property
    def by_size(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for anchors, error in self.scores.items():
            out[len(anchors)] = min(error, out.get(len(anchors), error))
        return dict(sorted(out.items()))


def beam_search(
    candidates: Sequence[str],
    score: Callable[[tuple[str, ...]], float],
    beam_width: int = 3,
    max_anchors: int = 6,
    on_scored: Callable[[tuple[str, ...], float], None] | None = None,
) -> BeamSearchResult:
    """Alg. 1 over `candidates` (distinct names). score(anchors) -> held-out error (lower is better); ties are
    broken by fewer anchors, then by candidate order. `on_scored(anchors, error)` is called after each score."""
    if len(set(candidates)) != len(candidates) or not candidates:
        raise ValueError(f"candidates must be distinct and non-empty, got {list(candidates)}")
    if beam_width < 1 or not 1 <= max_anchors <= len(candidates):
        raise ValueError(f"need beam_width >= 1 and 1 <= max_anchors <= {len(candidates)} (the candidates), got "
                         f"beam_width={beam_width}, max_anchors={max_anchors}")  # fmt: skip
    position = {name: i for i, name in enumerate(candidates)}

    def key(anchors: tuple[str, ...]) -> tuple[float, int, list[int]]:
        return scores[anchors], len(anchors), [position[a] for a in anchors]

    scores: dict[tuple[str, ...], float] = {}
    beam: list[tuple[str, ...]] = []
    rounds: list[list[tuple[str, ...]]] = []
    while not beam or all(len(b) < max_anchors for b in beam):
        for node in beam or [()]:
            for candidate in candidates:
                if candidate in node:
                    continue
                successor = tuple(sorted((*node, candidate), key=position.__getitem__))
                if successor in scores:
                    continue
                scores[successor] = float(score(successor))
                if on_scored is not None:
                    on_scored(successor, scores[successor])
        new_beam = sorted(scores, key=key)[:beam_width]
        if new_beam == beam:
            break
        beam = new_beam
        rounds.append(beam)
    return BeamSearchResult(best=beam[0], beam=beam, scores=scores, rounds=rounds)
