"""One clean-up and one word alignment, shared by every metric (so that they count the same words).

Clean-up, applied to references and hypotheses alike: inline entity tags and Whisper timestamp tokens are removed,
typographic quotes become ASCII quotes, words that hold no letter or digit (a lone dash) are dropped. Words are then
aligned on their *lexical* form (lower case, no punctuation) with `jiwer.process_words`, so that punctuation and case
can be scored on the pairs the alignment finds.

Defined results for odd input: empty or whitespace-only texts have no words (all insertions or deletions); other
non-ASCII punctuation ("，", "¿", "«") is neither a scored mark nor part of a word's lexical form; words in another
script are ordinary words (they simply do not match); unknown `[TAGS]` are removed like known ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANY_TAG = re.compile(r"\[/?[A-Z][A-Z_]*\]|<\|\d+\.\d+\|>")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "‚": "'"})
_NOT_WORD = re.compile(r"[^\w']+")
_CLOSERS = "\"')]}"
MARKS = (",", ".", ";", ":", "!", "?")


def clean(text: str) -> str:
    """The shared clean-up: no tags or timestamps (a mark after a closing tag stays on its word), ASCII quotes,
    single spaces."""
    return " ".join(_ANY_TAG.sub("", text or "").translate(_QUOTES).split())


def lexical(word: str) -> str:
    """A word's lexical form: lower case, letters, digits and inner apostrophes only."""
    return _NOT_WORD.sub("", word.lower()).strip("'")


def words(text: str) -> list[str]:
    """The cleaned text's words that carry a letter or digit (punctuation stays attached to them)."""
    return [w for w in clean(text).split() if lexical(w)]


def mark(word: str) -> str:
    """The sentence mark a word ends with (`, . ; : ! ?`), looking through closing quotes and brackets; "" if none."""
    stripped = word.rstrip(_CLOSERS)
    return stripped[-1] if stripped and stripped[-1] in MARKS else ""


def capitalised(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and letters[0].isupper()


@dataclass(frozen=True)
class Pair:
    """One step of the alignment: `ref`/`hyp` are word indices or None (insertion/deletion)."""

    ref: int | None
    hyp: int | None
    op: str  # "equal", "substitute", "delete", "insert"


def align(ref_words: list[str], hyp_words: list[str]) -> list[Pair]:
    """Align two word lists on their lexical forms. Empty sides are fine (all deletions or insertions)."""
    import jiwer

    if not ref_words or not hyp_words:
        return [Pair(i, None, "delete") for i in range(len(ref_words))] + [
            Pair(None, j, "insert") for j in range(len(hyp_words))
        ]
    out = jiwer.process_words(" ".join(map(lexical, ref_words)), " ".join(map(lexical, hyp_words)))
    pairs: list[Pair] = []
    for chunk in out.alignments[0]:
        refs = range(chunk.ref_start_idx, chunk.ref_end_idx)
        hyps = range(chunk.hyp_start_idx, chunk.hyp_end_idx)
        if chunk.type in ("equal", "substitute"):
            pairs.extend(Pair(r, h, chunk.type) for r, h in zip(refs, hyps, strict=True))
        elif chunk.type == "delete":
            pairs.extend(Pair(r, None, "delete") for r in refs)
        else:
            pairs.extend(Pair(None, h, "insert") for h in hyps)
    return pairs


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall, F1. Nothing predicted: precision 1.0 (no false alarm); nothing to find: recall 1.0."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
