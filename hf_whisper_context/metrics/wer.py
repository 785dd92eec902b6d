"""Word error rate, corpus level: sum of (S + D + I) over sum of reference words, with the counts.

- "orthographic": case- and punctuation-sensitive words after the shared clean-up (tags stripped);
- "normalised": Whisper's English normaliser (with its British -> American spelling map) on tag-stripped text.

A pair with an empty reference adds its hypothesis words as insertions; when the whole corpus has no reference word,
WER is 0.0 with no insertions and 1.0 otherwise (jiwer and `evaluate` raise there).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .alignment import clean, words


@lru_cache(maxsize=1)
def whisper_normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from ..bundled import english_spelling_map

    return EnglishTextNormalizer(english_spelling_map())


def _counts(reference: list[str], hypothesis: list[str]) -> dict:
    import jiwer

    if not reference or not hypothesis:
        return {"substitutions": 0, "deletions": len(reference), "insertions": len(hypothesis), "hits": 0}
    out = jiwer.process_words(" ".join(reference), " ".join(hypothesis))
    return {"substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions,
            "hits": out.hits}  # fmt: skip


def word_error_rate(references: Sequence[str], predictions: Sequence[str], normalization="orthographic") -> dict:
    """Corpus WER of `predictions` against `references` with S/D/I/hit counts and the number of reference words."""
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if normalization == "orthographic":
        split = words
    elif normalization == "normalised":
        normalizer = whisper_normalizer()
        split = lambda text: normalizer(clean(text)).split()  # noqa: E731
    else:
        raise ValueError(f"normalization must be 'orthographic' or 'normalised', not {normalization!r}")
    total = {"substitutions": 0, "deletions": 0, "insertions": 0, "hits": 0}
    for ref, hyp in zip(references, predictions, strict=True):
        for key, value in _counts(split(ref), split(hyp)).items():
            total[key] += value
    n_ref = total["substitutions"] + total["deletions"] + total["hits"]
    errors = total["substitutions"] + total["deletions"] + total["insertions"]
    wer = errors / n_ref if n_ref else float(errors > 0)
    return {"wer": wer, **total, "reference_words": n_ref}
