"""Word error rate, corpus level: sum of (S + D + I) over sum of reference words, with the counts.

- "orthographic": case- and punctuation-sensitive, counted along the shared lexical alignment: a substituted word,
  or a lexically equal pair written differently ("paris" for "Paris,"), is a substitution;
- "normalised": Whisper's English normaliser (with its British -> American spelling map) on the cleaned text in
  Unicode NFKC form, with brackets and parentheses read as word breaks (never as spans to drop), aligned by jiwer on
  the normalised words.

A pair with an empty reference adds its hypothesis words as insertions; when the whole corpus has no reference word,
WER is 0.0 with no insertions and 1.0 otherwise (jiwer and `evaluate` raise there).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..errors import ConfigError
from .alignment import Aligned, align_texts, clean, edit_opcodes, without_brackets
from .counts import Event, error_rate, total

KINDS = {"orthographic": "orth", "normalised": "norm"}
OPS = ("sub", "del", "ins", "hit")


@lru_cache(maxsize=1)
def whisper_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from ..bundled import english_spelling_map

    return EnglishTextNormalizer(english_spelling_map())


def normalised_words(text: str) -> list[str]:
    # NFKC first: the normaliser drops an ASCII sentence-final "." but keeps a fullwidth one ("．" -> "world.")
    return whisper_normalizer()(without_brackets(unicodedata.normalize("NFKC", clean(text)))).split()


def orthographic_events(a: Aligned) -> list[Event]:
    events = []
    for i, p in enumerate(a.pairs):
        if p.op in ("insert", "delete"):
            events.append((i, f"orth_{p.op[:3]}", 1))
        else:
            events.append((i, "orth_hit" if a.ref[p.ref] == a.hyp[p.hyp] else "orth_sub", 1))
    return events


def normalised_counts(reference_words: list[str], hypothesis_words: list[str]) -> dict[str, int]:
    """S/D/I/hit of normalised word lists, as `norm_*` counters (the counts `jiwer.process_words` gives)."""
    counts = dict.fromkeys(("norm_sub", "norm_del", "norm_ins", "norm_hit"), 0)
    names = {"replace": "norm_sub", "delete": "norm_del", "insert": "norm_ins", "equal": "norm_hit"}
    for tag, i1, i2, j1, j2 in edit_opcodes(reference_words, hypothesis_words):
        counts[names[tag]] += j2 - j1 if tag == "insert" else i2 - i1
    return counts


def wer_from_counts(counts: Mapping, normalization: str = "orthographic") -> dict:
    prefix = KINDS[normalization]
    s, d, i, h = (counts.get(f"{prefix}_{op}", 0) for op in OPS)
    n_ref, errors = s + d + h, s + d + i
    return {"wer": error_rate(errors, n_ref), "substitutions": s, "deletions": d, "insertions": i,
            "hits": h, "reference_words": n_ref}  # fmt: skip


def word_error_rate(references: Sequence[str], predictions: Sequence[str], normalization="orthographic") -> dict:
    """Corpus WER of `predictions` against `references` with S/D/I/hit counts and the number of reference words."""
    if len(references) != len(predictions):
        raise ConfigError(f"{len(references)} references but {len(predictions)} predictions")
    if normalization not in KINDS:
        raise ConfigError(f"normalization must be 'orthographic' or 'normalised', not {normalization!r}")
    counts = total([])
    for ref, hyp in zip(references, predictions, strict=True):
        if normalization == "orthographic":
            total(orthographic_events(align_texts(ref, hyp)), counts)
        else:
            counts.update(normalised_counts(normalised_words(ref), normalised_words(hyp)))
    return wer_from_counts(counts, normalization)
