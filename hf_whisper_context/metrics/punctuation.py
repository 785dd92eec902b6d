"""Punctuation per mark (`, . ; : ! ?`) on aligned word pairs, and a punctuation error rate.

Counting rules (a word's marks are the sentence marks of its trailing run, see `alignment.marks`; marks of tokens
without a letter or digit, such as `],`, count on the word before them):
- aligned pair (equal or substituted word): a mark on both sides is a true positive; a mark only in the reference
  is a false negative, one only in the hypothesis a false positive (a substituted mark is both);
- a hypothesis word inserted with a mark: a false positive; a deleted reference word with a mark: a false negative.
`aligned` counts only the first rule; `all_words` both. The punctuation error rate is (substituted + deleted +
inserted marks) / reference marks over all words, a substitution counting once (per pair: the larger of the
reference-only and hypothesis-only mark counts); with no reference mark it is 0.0 if no mark was inserted, else 1.0.
A mark that occurs on neither side has precision, recall and F1 1.0 and `reference_count` 0: read F1 with the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .alignment import MARKS, Aligned, align_texts, marks
from .counts import Event, error_rate, prf, total


def punctuation_events(a: Aligned) -> list[Event]:
    events = []
    empty = frozenset()
    for i, p in enumerate(a.pairs):
        r = marks(a.ref[p.ref]) if p.ref is not None else empty
        h = marks(a.hyp[p.hyp]) if p.hyp is not None else empty
        if not r and not h:
            continue
        scopes = ("all", "aligned") if p.ref is not None and p.hyp is not None else ("all",)
        for scope in scopes:
            events.extend((i, f"punct {m} tp {scope}", 1) for m in r & h)
            events.extend((i, f"punct {m} fp {scope}", 1) for m in h - r)
            events.extend((i, f"punct {m} fn {scope}", 1) for m in r - h)
        events.extend((i, f"punct {m} ref", 1) for m in r)
        errors = max(len(r - h), len(h - r))
        if errors:
            events.append((i, "punct errors", errors))
    return events


def punctuation_from_counts(counts: Mapping) -> dict:
    def table(scope: str) -> dict:
        return {m: prf(*(counts.get(f"punct {m} {x} {scope}", 0) for x in ("tp", "fp", "fn"))) for m in MARKS}

    def micro(per_mark: dict) -> dict:
        return prf(*(sum(v[x] for v in per_mark.values()) for x in ("tp", "fp", "fn")))

    aligned, every = table("aligned"), table("all")
    ref_count = {m: counts.get(f"punct {m} ref", 0) for m in MARKS}
    n_ref, errors = sum(ref_count.values()), counts.get("punct errors", 0)
    return {
        "per_mark": {m: {**aligned[m], "reference_count": ref_count[m]} for m in MARKS},
        "per_mark_all_words": {m: {**every[m], "reference_count": ref_count[m]} for m in MARKS},
        "micro": micro(aligned),
        "micro_all_words": micro(every),
        "punctuation_error_rate": error_rate(errors, n_ref),
    }


def punctuation_scores(references: Sequence[str], predictions: Sequence[str]) -> dict:
    """Punctuation F1 per mark (, . ; : ! ?) over aligned words and over all words (marks lost with deleted words
    count as misses), overall F1 and the punctuation error rate, with the counts behind each."""
    counts = total([])
    for ref, hyp in zip(references, predictions, strict=True):
        total(punctuation_events(align_texts(ref, hyp)), counts)
    return punctuation_from_counts(counts)
