"""Punctuation per mark (`, . ; : ! ?`) on aligned word pairs, and a punctuation error rate.

Counting rules (a word's mark is the sentence mark it ends with, looking through closing quotes/brackets):
- aligned pair (equal or substituted word), same mark: a true positive of that mark;
- aligned pair, different marks: a false negative of the reference's mark (if any) **and** a false positive of the
  hypothesis's mark (if any);
- a hypothesis word inserted with a mark: a false positive; a deleted reference word with a mark: a false negative.
`aligned` counts only the first two rules; `all_words` all four. The punctuation error rate is (substituted +
deleted + inserted marks) / reference marks over all words, a substitution counting once; with no reference mark it
is 0.0 if no mark was inserted, else 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence

from .alignment import MARKS, align, mark, prf, words


def punctuation_scores(references: Sequence[str], predictions: Sequence[str]) -> dict:
    aligned = {m: [0, 0, 0] for m in MARKS}  # tp, fp, fn
    every = {m: [0, 0, 0] for m in MARKS}
    ref_count = dict.fromkeys(MARKS, 0)
    errors = 0
    for ref_text, hyp_text in zip(references, predictions, strict=True):
        ref, hyp = words(ref_text), words(hyp_text)
        for pair in align(ref, hyp):
            r = mark(ref[pair.ref]) if pair.ref is not None else ""
            h = mark(hyp[pair.hyp]) if pair.hyp is not None else ""
            if r:
                ref_count[r] += 1
            errors += r != h
            tables = (aligned, every) if pair.ref is not None and pair.hyp is not None else (every,)
            for table in tables:
                if r and r == h:
                    table[r][0] += 1
                    continue
                if h:
                    table[h][1] += 1
                if r:
                    table[r][2] += 1
    n_ref = sum(ref_count.values())
    return {
        "per_mark": {m: {**prf(*aligned[m]), "reference_count": ref_count[m]} for m in MARKS},
        "per_mark_all_words": {m: {**prf(*every[m]), "reference_count": ref_count[m]} for m in MARKS},
        "micro": prf(*(sum(t[i] for t in aligned.values()) for i in range(3))),
        "micro_all_words": prf(*(sum(t[i] for t in every.values()) for i in range(3))),
        "punctuation_error_rate": errors / n_ref if n_ref else float(errors > 0),
    }
