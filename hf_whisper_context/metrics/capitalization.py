"""Capitalization: precision/recall/F1 of "the word starts upper-case" on aligned, lexically equal word pairs.

TP: both capitalised; FP: only the hypothesis; FN: only the reference (so precision can fall below 1).
Pairs that are not the same word (substitutions, insertions, deletions) do not count; `pairs` says how many did.
With no lexically equal pair the score is undefined: precision, recall and F1 are then reported as 0.0
(`defined: False`, `pairs: 0`), except when both sides have no word at all (identical empty texts: 1.0). An
undefined score never reads as perfect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .alignment import Aligned, align_texts, capitalised
from .counts import Event, prf, total


def capitalization_events(a: Aligned) -> list[Event]:
    events = [(0, "cap words", len(a.ref) + len(a.hyp))] if a.ref or a.hyp else []
    for i, p in enumerate(a.pairs):
        if p.op != "equal":
            continue
        r, h = capitalised(a.ref[p.ref]), capitalised(a.hyp[p.hyp])
        events.append((i, "cap pairs", 1))
        if r or h:
            events.append((i, "cap tp" if r and h else "cap fp" if h else "cap fn", 1))
    return events


def capitalization_from_counts(counts: Mapping) -> dict:
    pairs, n_words = counts.get("cap pairs", 0), counts.get("cap words", 0)
    scores = prf(*(counts.get(f"cap {x}", 0) for x in ("tp", "fp", "fn")))
    defined = np.asarray(pairs) > 0
    if not np.all(defined):  # no pair to score: 0, unless there is no word at all (identical empty texts)
        for key in ("precision", "recall", "f1"):
            value = np.where(defined, scores[key], np.asarray(n_words) == 0) * 1.0
            scores[key] = float(value) if np.ndim(value) == 0 else value
    return {**scores, "pairs": pairs, "defined": bool(np.all(defined))}


def capitalization_scores(references: Sequence[str], predictions: Sequence[str]) -> dict:
    """Capitalization precision, recall and F1 over aligned word pairs (a capitalised reference word is a positive),
    with the counts, `pairs` and `defined` (False, and F1 0, when no aligned pair has a capital on either side)."""
    counts = total([])
    for ref, hyp in zip(references, predictions, strict=True):
        total(capitalization_events(align_texts(ref, hyp)), counts)
    return capitalization_from_counts(counts)
