"""The benchmark's input rows, identical for both tools (standard library only).

A vocabulary of 2,000 pseudo-words comes from a seeded ``random.Random``; each row's
``text`` is about 200 characters of words drawn from it, so rows are distinct and compress
like prose, not like repeated strings.
"""

from __future__ import annotations

import random
from array import array

__all__ = ["VOCABULARY_SIZE", "make_rows", "vocabulary"]

VOCABULARY_SIZE = 2_000
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_TEXT_CHARS = 200
# Words average ~6.5 letters: 34 of them with their spaces leave room to cut at 200 characters.
_WORDS_PER_ROW = 34


def vocabulary(seed: int = 0) -> list[str]:
    """Return ``VOCABULARY_SIZE`` distinct pseudo-words of 2 to 10 letters."""
    rng = random.Random(seed)
    words: dict[str, None] = {}
    while len(words) < VOCABULARY_SIZE:
        words["".join(rng.choices(_LETTERS, k=rng.randint(2, 10)))] = None
    return list(words)


def make_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """Return ``n`` rows ``{"text": ...}`` of about 200 characters each, deterministically."""
    vocab = vocabulary(seed)
    # Uniform 16-bit draws index a table of 65,536 entries that repeats the vocabulary;
    # mapping through it keeps the whole draw in C (the last 1,536 words are slightly rarer).
    table = (vocab * (65_536 // len(vocab) + 1))[:65_536]
    draws = array("H", random.Random(seed + 1).randbytes(2 * n * _WORDS_PER_ROW))
    words = iter(map(table.__getitem__, draws))
    # A generator, not a list: at a million rows the uncut texts would double the peak memory.
    texts = (" ".join(group) for group in zip(*[words] * _WORDS_PER_ROW, strict=True))
    return [{"text": text[: text.rfind(" ", 0, _TEXT_CHARS + 1)]} for text in texts]
