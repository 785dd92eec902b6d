"""Entity metrics from inline tags: strict IOB2 F1 (micro and per type, as seqeval's strict mode counts it) and
entity formatting.

Tags (`[TYPE]…[/TYPE]` or the paper's `<TYPE>…</TYPE>`, 21 types) become IOB2 labels on the words
(`alignment.parse`). The two word sequences are aligned lexically, as for every metric. A word inserted *inside* a
reference entity (between two of its words) is part of that entity on the reference side, and a word deleted inside
a hypothesis entity part of it on the hypothesis side, so that a gap makes the span differ instead of vanishing;
any other inserted or deleted word is "O" on the side that lacks it. An entity counts as found when its span (pair
positions) and type match exactly. With no entity on either side, precision, recall and F1 are 1.0 with support 0.

Hypotheses without tags (any off-the-shelf model) can be tagged by the same tagger as the references
(`mode="tagger"`); references and hypotheses are then tagged after the same clean-up, so identical texts score 1.0.

Formatting, per reference entity: the hypothesis words aligned to exactly its words (and words inserted inside it)
are compared with it, trailing sentence marks removed: Jaro-Winkler similarity for text types, character error rate
for numeric types (capped at 1). A missing entity scores similarity 0 / CER 1; the next entity's words are never read.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..errors import ConfigError
from ..tags import ENTITY_TYPES, NUMERIC_TYPES, has_tags, render
from .alignment import MARKS, Aligned, align_texts, clean
from .counts import Event, prf, ratio, total

MODES = ("tags", "tagger")


def _fill_gaps(labels: list[str], indices: list[int | None]) -> list[str]:
    """Labels along the alignment: `indices[i]` is the word at pair i (None: the word is missing on this side).
    A missing word between two words of one entity takes `I-` of that entity, any other missing word `O`."""
    out, last = [], None
    for index in indices:
        if index is not None:
            last = index
            out.append(labels[index])
            continue
        after = 0 if last is None else last + 1
        inside = last is not None and after < len(labels) and labels[last] != "O"
        out.append(f"I-{labels[last][2:]}" if inside and labels[after] == f"I-{labels[last][2:]}" else "O")
    return out


def spans(labels: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of each strict IOB2 entity: `B-X` then `I-X`*; an `I-` without its `B-` is no entity."""
    found = []
    for i, label in enumerate(labels):
        if label.startswith("B-"):
            end = i + 1
            while end < len(labels) and labels[end] == f"I-{label[2:]}":
                end += 1
            found.append((i, end, label[2:]))
    return found


def aligned_iob(a: Aligned) -> tuple[list[str], list[str]]:
    """IOB2 labels along the alignment: (`y_true`, `y_pred`)."""
    y_true = _fill_gaps(a.ref_labels, [p.ref for p in a.pairs])
    y_pred = _fill_gaps(a.hyp_labels, [p.hyp for p in a.pairs])
    return y_true, y_pred


def _strip_marks(text: str) -> str:
    return text.rstrip("".join(MARKS) + "\"')")


def entity_events(a: Aligned) -> list[Event]:
    from rapidfuzz.distance import JaroWinkler, Levenshtein

    y_true, y_pred = aligned_iob(a)
    true, pred = set(spans(y_true)), set(spans(y_pred))
    events = [(s, f"ent {t} {'tp' if (s, e, t) in pred else 'fn'}", 1) for s, e, t in true]
    events += [(s, f"ent {t} fp", 1) for s, e, t in pred - true]
    # formatting: each hypothesis word sits at a slot (the reference index it is aligned to, or last + 0.5 when
    # inserted after reference word `last`); slots are sorted along the alignment, so each entity is two bisections
    slots, words, first_pair, last = [], [], {}, -1.0
    for i, p in enumerate(a.pairs):
        if p.ref is not None:
            last = p.ref
            first_pair.setdefault(p.ref, i)
        if p.hyp is not None:
            slots.append(float(p.ref) if p.ref is not None else last + 0.5)
            words.append(a.hyp[p.hyp])
    for start, end, label in spans(a.ref_labels):
        hyp = _strip_marks(" ".join(words[bisect_left(slots, start) : bisect_right(slots, end - 1)]))
        ref = _strip_marks(" ".join(a.ref[start:end]))
        if label in NUMERIC_TYPES:
            score = min(1.0, Levenshtein.distance(ref, hyp) / max(len(ref), 1)) if hyp else 1.0
        else:
            score = JaroWinkler.similarity(ref, hyp) if hyp else 0.0
        events += [(first_pair[start], f"fmt {label} sum", score), (first_pair[start], f"fmt {label} n", 1)]
    return events


def entities_from_counts(counts: Mapping, mode: str = "tags") -> dict:
    def scores(tp, fp, fn) -> dict:
        s = prf(tp, fp, fn)
        return {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"], "support": tp + fn,
                "tp": tp, "fp": fp, "fn": fn}  # fmt: skip

    per_type = {}
    for t in ENTITY_TYPES:
        tp, fp, fn = (counts.get(f"ent {t} {x}", 0) for x in ("tp", "fp", "fn"))
        if any(f"ent {t} {x}" in counts for x in ("tp", "fp", "fn")):
            per_type[t] = scores(tp, fp, fn)
    micro = scores(*(sum(counts.get(f"ent {t} {x}", 0) for t in ENTITY_TYPES) for x in ("tp", "fp", "fn")))
    formatting = {}
    for t in ENTITY_TYPES:
        if f"fmt {t} n" in counts:
            n, name = counts[f"fmt {t} n"], "cer" if t in NUMERIC_TYPES else "jaro_winkler"
            formatting[t] = {name: ratio(counts.get(f"fmt {t} sum", 0), n, 0.0), "count": n}
    return {"mode": mode, "micro": micro, "per_type": per_type, "formatting": formatting}


def resolve_mode(mode: str, predictions: Sequence[str]) -> str:
    """ "auto" -> "tags" if any prediction carries a tag, else "tagger"."""
    if mode == "auto":
        return "tags" if any(has_tags(p) for p in predictions) else "tagger"
    if mode not in MODES:
        raise ConfigError(f"entity mode must be auto, tags or tagger, not {mode!r}")
    return mode


def tag_for_scoring(references: Sequence[str], predictions: Sequence[str], mode: str, tagger=None):
    """The texts as the entity metric reads them: with `mode="tagger"`, predictions (and references that carry no
    tag) are cleaned and tagged by the package's tagger, both after the same clean-up."""
    if mode != "tagger":
        return list(references), list(predictions)
    plain_refs = [i for i, r in enumerate(references) if not has_tags(r)]
    tagged = tag_texts([clean(p) for p in predictions] + [clean(references[i]) for i in plain_refs], tagger)
    references = list(references)
    for i, text in zip(plain_refs, tagged[len(predictions) :], strict=True):
        references[i] = text
    return references, tagged[: len(predictions)]


def entity_scores(references: Sequence[str], predictions: Sequence[str], mode: str = "tags", tagger=None) -> dict:
    """Entity F1 (strict IOB2) and formatting scores. `mode="tagger"` tags untagged predictions (and untagged
    references) first with `tagger` (an `EntityTagger`; the default one is built if None)."""
    mode = resolve_mode(mode, predictions)
    references, predictions = tag_for_scoring(references, predictions, mode, tagger)
    counts = total([])
    for ref, hyp in zip(references, predictions, strict=True):
        total(entity_events(align_texts(ref, hyp)), counts)
    return entities_from_counts(counts, mode)


@lru_cache(maxsize=1)
def default_tagger():
    """The package's tagger, loaded once per process (scoring many articles tags each of them)."""
    from ..data.entities import EntityTagger

    return EntityTagger()


def tag_texts(texts: Sequence[str], tagger=None) -> list[str]:
    """Inline-tag plain texts with the package's tagger (spaCy + rules), as the references were tagged."""
    tagger = tagger or default_tagger()
    return [render(text, found) for text, found in zip(texts, tagger.tag(list(texts)), strict=True)]
