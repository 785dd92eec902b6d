"""Loops and drops: the long-form failures a WER hides in one number.

- **loops**: runs in the hypothesis where a word or an n-gram (n <= `MAX_NGRAM`) repeats `MIN_REPEATS` or more times
  in a row ("a B B B B", "of the of the of the of the"), unless the reference holds a run of the same unit (a poem's
  refrain is no loop); `loop_words` counts the repeated words beyond the first occurrence;
- **insertion bursts**: `MIN_INSERTION_BURST` or more hypothesis words in a row that the alignment inserts
  (hallucinated text);
- **deletion runs**: `MIN_DELETION_RUN` or more reference words in a row that the alignment deletes (a dropped
  window: 20 words is about 8 s of read speech).
Words are compared on their lexical forms.
"""

from __future__ import annotations

from collections.abc import Sequence

from .alignment import Aligned, align_texts, lexical
from .counts import Event, total

MAX_NGRAM = 4
MIN_REPEATS = 4
MIN_INSERTION_BURST = 10
MIN_DELETION_RUN = 20
KEYS = ("loops", "loop_words", "insertion_bursts", "insertion_burst_words", "deletion_runs", "deletion_run_words")


def repeated_runs(words: Sequence[str]) -> list[tuple[int, int, int]]:
    """(start, n, repeats) of each maximal run of an n-gram repeated >= MIN_REPEATS times in a row; shorter units
    first; a run wholly inside a reported one is not reported again."""
    covered = [False] * len(words)
    runs = []
    for n in range(1, MAX_NGRAM + 1):
        i = 0
        while i + n * MIN_REPEATS <= len(words):
            unit = words[i : i + n]
            repeats = 1
            while words[i + repeats * n : i + (repeats + 1) * n] == unit:
                repeats += 1
            if repeats >= MIN_REPEATS and len(set(unit)) == n and not all(covered[i : i + n * repeats]):
                runs.append((i, n, repeats))
                covered[i : i + n * repeats] = [True] * (n * repeats)
                i += n * repeats
            else:
                i += 1
    return sorted(runs)


def loop_events(a: Aligned) -> list[Event]:
    ref, hyp = [lexical(w) for w in a.ref], [lexical(w) for w in a.hyp]
    in_reference = {tuple(ref[s : s + n]) for s, n, _ in repeated_runs(ref)}
    pair_of_hyp = {p.hyp: i for i, p in enumerate(a.pairs) if p.hyp is not None}
    events: list[Event] = []
    for start, n, repeats in repeated_runs(hyp):
        if tuple(hyp[start : start + n]) not in in_reference:
            events += [(pair_of_hyp[start], "loops", 1), (pair_of_hyp[start], "loop_words", (repeats - 1) * n)]
    for op, minimum, name in (("insert", MIN_INSERTION_BURST, "insertion_burst"), ("delete", MIN_DELETION_RUN,
                                                                                   "deletion_run")):  # fmt: skip
        start = None
        for i, p in enumerate([*a.pairs, None]):
            if p is not None and p.op == op:
                start = i if start is None else start
                continue
            if start is not None and i - start >= minimum:
                events += [(start, f"{name}s", 1), (start, f"{name}_words", i - start)]
            start = None
    return events


def loop_scores(references: Sequence[str], predictions: Sequence[str]) -> dict[str, int]:
    """Counts of loops, insertion bursts and deletion runs (and their words) over a corpus."""
    counts = total([])
    for ref, hyp in zip(references, predictions, strict=True):
        total(loop_events(align_texts(ref, hyp)), counts)
    return {key: counts.get(key, 0) for key in KEYS}
