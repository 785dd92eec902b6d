"""Entity metrics from inline tags: seqeval strict IOB2 F1 (micro and per type) and entity formatting.

Tags (`[TYPE]…[/TYPE]`, the 21 types of `data.entities`) become IOB2 labels on the cleaned words. An opening tag
without its closing tag runs to the next opening tag or the end of the text; a closing tag without an opening one,
and unknown tags, are ignored. Hypotheses without tags (any off-the-shelf model) are tagged by the same tagger as the
references (`mode="tagger"`); the result says which mode was used. The two word sequences are aligned lexically
(as for every metric); an inserted word is "O" on the reference side and a deleted one "O" on the hypothesis side.
With no entity on either side, precision, recall and F1 are 1.0.

Formatting, per reference entity: the hypothesis words aligned to exactly its words (and words inserted inside it)
are compared with it, trailing sentence marks removed: Jaro-Winkler similarity for text types, character error rate
for numeric types (capped at 1). A missing entity scores similarity 0 / CER 1; the next entity's words are never read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from ..data.entities import ENTITY_TYPES
from .alignment import MARKS, align, clean, lexical

NUMERIC_TYPES = {"CARDINAL", "NUMERIC", "MONEY", "PERCENT", "QUANTITY", "TIME", "URL", "EMAIL"}
_TAG = re.compile(r"\[(/?)(" + "|".join(ENTITY_TYPES) + r")\]")


def tagged_words(text: str) -> tuple[list[str], list[str]]:
    """Cleaned words of a tagged text and their IOB2 labels."""
    spaced = _TAG.sub(lambda m: f" {m.group(0)} ", text or "")
    out_words, labels = [], []
    current, begin = None, False
    for piece in spaced.split():
        tag = _TAG.fullmatch(piece)
        if tag:
            closing, label = tag.groups()
            if not closing:
                current, begin = label, True
            elif label == current:
                current = None
            continue
        word = clean(piece)
        if not word or not lexical(word):
            continue  # glue marks such as a lone "," back on nothing: they are not words
        out_words.append(word)
        labels.append("O" if current is None else f"{'B' if begin else 'I'}-{current}")
        begin = False
    return out_words, labels


def _glue_punctuation(text: str) -> str:
    """Tags often stand between a word and its mark ("[GPE]Paris[/GPE],"): move the mark onto the word."""
    return re.sub(r"(\[/[A-Z_]+\])([" + re.escape("".join(MARKS)) + r"]+)", r"\2\1", text or "")


def aligned_iob(reference: str, prediction: str) -> dict:
    """IOB2 labels along the word alignment (`y_true`, `y_pred`), with both sides' words and labels and the pairs."""
    ref_words, ref_labels = tagged_words(_glue_punctuation(reference))
    hyp_words, hyp_labels = tagged_words(_glue_punctuation(prediction))
    pairs = align(ref_words, hyp_words)
    return {
        "y_true": [ref_labels[p.ref] if p.ref is not None else "O" for p in pairs],
        "y_pred": [hyp_labels[p.hyp] if p.hyp is not None else "O" for p in pairs],
        "ref_words": ref_words,
        "ref_labels": ref_labels,
        "hyp_words": hyp_words,
        "pairs": pairs,
    }


def _spans(labels: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of each IOB2 entity in a label sequence."""
    spans = []
    for i, label in enumerate(labels):
        if label.startswith("B-"):
            end = i + 1
            while end < len(labels) and labels[end] == f"I-{label[2:]}":
                end += 1
            spans.append((i, end, label[2:]))
    return spans


def _slots(pairs) -> list[tuple[float, int]]:
    """(slot, hypothesis word) in order: an aligned word sits at its reference index r, an inserted one at r + 0.5
    after the last reference word r before it (so it is inside an entity only if it is between two of its words)."""
    slots, last_ref = [], -1.0
    for pair in pairs:
        if pair.ref is not None:
            last_ref = pair.ref
        if pair.hyp is not None:
            slots.append((float(pair.ref) if pair.ref is not None else last_ref + 0.5, pair.hyp))
    return slots


def _plain(row: dict) -> dict:
    """seqeval's row with plain numbers and "f1" for "f1-score"."""
    return {("f1" if k == "f1-score" else k): (int(v) if k == "support" else float(v)) for k, v in row.items()}


def _strip_marks(text: str) -> str:
    return text.rstrip("".join(MARKS) + "\"')")


def entity_scores(references: Sequence[str], predictions: Sequence[str], mode: str = "tags", tagger=None) -> dict:
    """Entity F1 (seqeval strict IOB2) and formatting scores. `mode="tagger"` tags untagged predictions first
    with `tagger` (an `EntityTagger`; the default one is built if None)."""
    from rapidfuzz.distance import JaroWinkler, Levenshtein
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if mode not in ("tags", "tagger"):
        raise ValueError(f"mode must be 'tags' or 'tagger', not {mode!r}")
    if mode == "tagger":
        predictions = tag_texts([clean(p) for p in predictions], tagger)
    y_true, y_pred = [], []
    formatting: dict[str, list[float]] = defaultdict(list)
    for reference, prediction in zip(references, predictions, strict=True):
        a = aligned_iob(reference, prediction)
        y_true.append(a["y_true"])
        y_pred.append(a["y_pred"])
        slots = _slots(a["pairs"])
        for start, end, label in _spans(a["ref_labels"]):
            hyp = _strip_marks(" ".join(a["hyp_words"][j] for slot, j in slots if start <= slot <= end - 1))
            ref = _strip_marks(" ".join(a["ref_words"][start:end]))
            if label in NUMERIC_TYPES:
                formatting[label].append(min(1.0, Levenshtein.distance(ref, hyp) / max(len(ref), 1)) if hyp else 1.0)
            else:
                formatting[label].append(JaroWinkler.similarity(ref, hyp) if hyp else 0.0)
    n_true = sum(lab.startswith("B-") for seq in y_true for lab in seq)
    n_pred = sum(lab.startswith("B-") for seq in y_pred for lab in seq)
    if n_true == 0 and n_pred == 0:
        micro, per_type = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 0}, {}
    else:
        report = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
        micro = _plain(report["micro avg"])
        per_type = {t: _plain(r) for t, r in report.items() if t in ENTITY_TYPES}
    return {
        "mode": mode,
        "micro": micro,
        "per_type": per_type,
        "formatting": {
            label: {("cer" if label in NUMERIC_TYPES else "jaro_winkler"): sum(v) / len(v), "count": len(v)}
            for label, v in sorted(formatting.items())
        },
    }


def tag_texts(texts: Sequence[str], tagger=None) -> list[str]:
    """Inline-tag plain texts with the package's tagger (spaCy + rules), as the references were tagged."""
    from ..data.entities import EntityTagger

    tagger = tagger or EntityTagger()
    out = []
    for text, spans in zip(texts, tagger.tag(list(texts)), strict=True):
        pieces, pos = [], 0
        for start, end, label in spans:
            pieces += [text[pos:start], f"[{label}]", text[start:end], f"[/{label}]"]
            pos = end
        out.append("".join([*pieces, text[pos:]]))
    return out
