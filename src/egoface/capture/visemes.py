"""Visemes as data: the mouth shapes of speech, their expression vectors, and a rough text -> viseme reader.

The viseme set is the usual 15-class one of real-time lip-sync systems (silence, three lip-closing or lip-to-teeth
classes, seven consonant groups, five vowels), named so that a reader recognises the sound:

=====  =====================================  =====  =====================================
SIL    silence, lips at rest                   RR     r (lips rounded a little)
MBP    m, b, p (lips closed and pressed)       AA     a (jaw wide open)
FV     f, v (lower lip under the upper teeth)  EH     e (jaw half open, lips spread)
TH     th (tongue between the teeth)           IH     i, y, ee (lips spread, jaw nearly shut)
DD     t, d, l                                 OH     o (lips rounded, jaw open)
KG     k, g, c, q, x, ng                       OO     u, w, oo (lips pushed forward)
CH     ch, sh, j (lips funnelled)              SS     s, z (teeth together, lips spread)
NN     n
=====  =====================================  =====  =====================================

`VISEME_SHAPES` maps each to a sparse set of the canonical 53 expression coefficients (the shape a speaker passes
through at the centre of the sound); `VISEME_DOMINANCE` is how strongly a viseme imposes its shape on its
neighbours during co-articulation (Cohen & Massaro's dominance idea: lips must really close on m/b/p and really
touch the teeth on f/v, while vowels and most consonants blend into their neighbours).

`text_to_visemes` is a grapheme reader, not a phonemiser: it maps letters and common digraphs to visemes, drops a
word-final silent `e` and merges repeats. English spelling makes it approximate, which is enough to drive plausible,
repeatable lip motion for synthetic speech segments.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SPEECH_RATE_HZ", "VISEME_DOMINANCE", "VISEME_NAMES", "VISEME_SHAPES", "text_to_visemes", "viseme_index"]

#: Visemes per second of connected speech (about 8-12 in natural reading); the script sizes speech segments with it.
SPEECH_RATE_HZ = 10.0

VISEME_NAMES: tuple[str, ...] = (
    "SIL", "MBP", "FV", "TH", "DD", "KG", "CH", "SS", "NN", "RR", "AA", "EH", "IH", "OH", "OO",
)  # fmt: skip

#: viseme -> expression coefficients at the centre of the sound (canonical names, values in [0, 1]).
VISEME_SHAPES: Mapping[str, Mapping[str, float]] = {
    "SIL": {},
    "MBP": {"mouthClose": 0.25, "mouthPress_L": 0.45, "mouthPress_R": 0.45, "mouthRollLower": 0.1},
    "FV": {"mouthRollLower": 0.6, "mouthUpperUp_L": 0.2, "mouthUpperUp_R": 0.2, "jawOpen": 0.08},
    "TH": {"jawOpen": 0.15, "mouthLowerDown_L": 0.15, "mouthLowerDown_R": 0.15},
    "DD": {"jawOpen": 0.2, "mouthLowerDown_L": 0.1, "mouthLowerDown_R": 0.1},
    "KG": {"jawOpen": 0.25, "mouthStretch_L": 0.1, "mouthStretch_R": 0.1},
    "CH": {"mouthFunnel": 0.5, "mouthPucker": 0.25, "jawOpen": 0.12},
    "SS": {"jawOpen": 0.06, "mouthStretch_L": 0.25, "mouthStretch_R": 0.25, "mouthUpperUp_L": 0.1},
    "NN": {"jawOpen": 0.15, "mouthLowerDown_L": 0.05, "mouthLowerDown_R": 0.05},
    "RR": {"mouthPucker": 0.35, "mouthFunnel": 0.2, "jawOpen": 0.15},
    "AA": {"jawOpen": 0.6, "mouthLowerDown_L": 0.2, "mouthLowerDown_R": 0.2},
    "EH": {"jawOpen": 0.35, "mouthStretch_L": 0.3, "mouthStretch_R": 0.3},
    "IH": {"jawOpen": 0.18, "mouthStretch_L": 0.35, "mouthStretch_R": 0.35, "mouthSmile_L": 0.15, "mouthSmile_R": 0.15},
    "OH": {"jawOpen": 0.4, "mouthFunnel": 0.55, "mouthPucker": 0.15},
    "OO": {"mouthPucker": 0.7, "mouthFunnel": 0.3, "jawOpen": 0.12},
}

#: Co-articulation dominance (1 = an ordinary sound); higher wins over the neighbours at its own centre.
VISEME_DOMINANCE: Mapping[str, float] = {name: 1.0 for name in VISEME_NAMES} | {
    "SIL": 1.5,
    "MBP": 6.0,
    "FV": 4.0,
    "OO": 1.5,
    "CH": 1.3,
}

_LETTERS = {
    "a": "AA", "e": "EH", "i": "IH", "y": "IH", "o": "OH", "u": "OO", "w": "OO",
    "b": "MBP", "m": "MBP", "p": "MBP", "f": "FV", "v": "FV",
    "t": "DD", "d": "DD", "l": "DD", "k": "KG", "c": "KG", "g": "KG", "q": "KG", "x": "KG",
    "j": "CH", "s": "SS", "z": "SS", "n": "NN", "r": "RR",
}  # fmt: skip
_DIGRAPHS = {"th": "TH", "sh": "CH", "ch": "CH", "ph": "FV", "oo": "OO", "ee": "IH", "ea": "IH", "ng": "KG"}
_PAUSES = frozenset(".,;:!?")
_INDEX = {name: i for i, name in enumerate(VISEME_NAMES)}


def viseme_index(name: str) -> int:
    """Index of a viseme in `VISEME_NAMES`; unknown names raise with the valid ones."""
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(f"unknown viseme {name!r}; valid visemes are: {', '.join(VISEME_NAMES)}") from None


def text_to_visemes(text: str) -> tuple[str, ...]:
    """Visemes of an English text, read letter by letter (see the module docstring).

    Punctuation becomes `SIL` (a pause); `h`, apostrophes and other characters are silent; consecutive identical
    visemes merge into one. The result starts and ends with `SIL` (the mouth at rest before and after speaking).
    """
    visemes: list[str] = ["SIL"]
    for raw_word in text.lower().split():
        word = raw_word.rstrip("".join(_PAUSES))
        letters = "".join(ch for ch in word if ch.isalpha())
        if len(letters) > 3 and letters.endswith("e") and letters[-2] not in "aeiouy":
            letters = letters[:-1]  # silent final e: "made", "time"
        i = 0
        while i < len(letters):
            pair = letters[i : i + 2]
            if pair in _DIGRAPHS:
                visemes.append(_DIGRAPHS[pair])
                i += 2
                continue
            if letters[i] in _LETTERS:
                visemes.append(_LETTERS[letters[i]])
            i += 1
        if word != raw_word:
            visemes.append("SIL")
    visemes.append("SIL")
    return tuple(v for i, v in enumerate(visemes) if i == 0 or v != visemes[i - 1])
