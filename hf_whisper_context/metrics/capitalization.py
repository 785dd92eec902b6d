"""Capitalization: precision/recall/F1 of "the word starts upper-case" on aligned, lexically equal word pairs.

TP: both capitalised; FP: only the hypothesis; FN: only the reference (so precision can fall below 1).
Pairs that are not the same word (substitutions, insertions, deletions) do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from .alignment import align, capitalised, prf, words


def capitalization_scores(references: Sequence[str], predictions: Sequence[str]) -> dict:
    tp = fp = fn = 0
    for ref_text, hyp_text in zip(references, predictions, strict=True):
        ref, hyp = words(ref_text), words(hyp_text)
        for pair in align(ref, hyp):
            if pair.op != "equal":
                continue
            r, h = capitalised(ref[pair.ref]), capitalised(hyp[pair.hyp])
            tp += r and h
            fp += h and not r
            fn += r and not h
    return prf(tp, fp, fn)
