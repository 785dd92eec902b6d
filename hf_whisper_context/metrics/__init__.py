"""Metrics for long transcripts: plain functions on strings first, thin `evaluate` wrappers second.

>>> from hf_whisper_context.metrics import compute_all, load
>>> compute_all(["[PERSON]Bob Dylan[/PERSON] sang."], ["Bob Dylan sang."])
>>> load("punctuation").compute(references=[...], predictions=[...])   # an evaluate.Metric, from a local path

Every metric is counted along one shared reading and alignment of each text pair (`alignment`), as additive counts
(`counts`): a corpus is the sum of its texts, and `compare` bootstraps counts of articles or 30 s windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ConfigError
from .alignment import align_texts
from .capitalization import capitalization_events, capitalization_from_counts, capitalization_scores
from .counts import total, windows
from .entities import entities_from_counts, entity_events, entity_scores, resolve_mode, tag_for_scoring
from .loops import KEYS as LOOP_KEYS
from .loops import loop_events, loop_scores
from .punctuation import punctuation_events, punctuation_from_counts, punctuation_scores
from .wer import normalised_counts, normalised_words, orthographic_events, wer_from_counts, word_error_rate

MODULES_DIR = Path(__file__).parent / "modules"
MODULE_NAMES = ("long_wer", "punctuation", "capitalization", "entities", "long_transcript")
# the headline numbers (`summary`), and which way is better
HEADLINE = ("wer", "wer_orthographic", "entity_f1", "comma_f1", "period_f1", "punctuation_error_rate",
            "capitalization_f1", "loops", "insertion_bursts", "deletion_runs")  # fmt: skip
LOWER_IS_BETTER = frozenset({"wer", "wer_orthographic", "punctuation_error_rate", "loops", "insertion_bursts",
                             "deletion_runs"})  # fmt: skip
EVENTS = (orthographic_events, punctuation_events, capitalization_events, entity_events, loop_events)

__all__ = [
    "HEADLINE", "capitalization_scores", "compute_all", "compute_metrics_factory", "entity_scores", "load",
    "loop_scores", "punctuation_scores", "scores_from_counts", "summary", "word_error_rate",
]  # fmt: skip


def scores_from_counts(counts: Mapping, entity_mode: str = "tags") -> dict:
    """Every metric's scores from summed counts (plain numbers, or numpy arrays of bootstrap sums)."""
    return {
        "wer_orthographic": wer_from_counts(counts, "orthographic"),
        "wer_normalised": wer_from_counts(counts, "normalised"),
        "punctuation": punctuation_from_counts(counts),
        "capitalization": capitalization_from_counts(counts),
        "entities": entities_from_counts(counts, entity_mode),
        "loops": {key: counts.get(key, 0) for key in LOOP_KEYS},
    }


def compute_all(references: Sequence[str], predictions: Sequence[str], entity_mode: str = "auto", tagger=None,
                window_words: int | Sequence[int] | None = None) -> dict:  # fmt: skip
    """Every metric at once, from one alignment per pair.

    `entity_mode`: "tags" (the predictions carry inline tags), "tagger" (tag them, and untagged references, with
    the references' tagger) or "auto" (tags if any prediction has one); the mode used is in the result.
    `window_words` (one number, or one per pair) also returns `windows`: per pair, the counts of consecutive
    windows of that many reference words (inserted words go with the reference word before them), for `compare`.
    """
    if len(references) != len(predictions):
        raise ConfigError(f"{len(references)} references but {len(predictions)} predictions")
    mode = resolve_mode(entity_mode, predictions)
    tagged_refs, tagged_hyps = tag_for_scoring(references, predictions, mode, tagger)
    counts: Counter = Counter()
    per_pair_windows = []
    for i, (ref, hyp) in enumerate(zip(tagged_refs, tagged_hyps, strict=True)):
        a = align_texts(ref, hyp)
        events = [e for fn in EVENTS for e in fn(a)]
        total(events, counts)
        counts.update(normalised_counts(normalised_words(references[i]), normalised_words(predictions[i])))
        if window_words is not None:
            size = window_words if isinstance(window_words, int) else window_words[i]
            per_pair_windows.append(_windows(a, events, max(1, int(size))))
    result = {**scores_from_counts(counts, mode), "entity_mode": mode, "counts": dict(counts)}
    if window_words is not None:
        result["windows"] = per_pair_windows
    return result


def _windows(a, events, size: int) -> list[dict]:
    """Counts per window of `size` reference words; normalised WER counted on each window's own words."""
    window_of_pair, last = [], 0
    for p in a.pairs:
        last = p.ref if p.ref is not None else last
        window_of_pair.append(last // size)
    n = max(1, -(-len(a.ref) // size), (max(window_of_pair) + 1) if window_of_pair else 1)
    out = windows(events, window_of_pair, n)
    ref_words, hyp_words = [[] for _ in range(n)], [[] for _ in range(n)]
    for p, w in zip(a.pairs, window_of_pair, strict=True):
        if p.ref is not None:
            ref_words[w].append(a.ref[p.ref])
        if p.hyp is not None:
            hyp_words[w].append(a.hyp[p.hyp])
    for w in range(n):
        ref_norm, hyp_norm = normalised_words(" ".join(ref_words[w])), normalised_words(" ".join(hyp_words[w]))
        out[w].update(normalised_counts(ref_norm, hyp_norm))
    return [dict(c) for c in out]


def summary(results: dict) -> dict[str, float]:
    """The headline numbers of `compute_all`'s result, flat (for logs, tables and model cards)."""
    punctuation = results["punctuation"]["per_mark_all_words"]  # marks lost with deleted words count too
    return {
        "wer": results["wer_normalised"]["wer"],
        "wer_orthographic": results["wer_orthographic"]["wer"],
        "entity_f1": results["entities"]["micro"]["f1"],
        "comma_f1": punctuation[","]["f1"],
        "period_f1": punctuation["."]["f1"],
        "punctuation_error_rate": results["punctuation"]["punctuation_error_rate"],
        "capitalization_f1": results["capitalization"]["f1"],
        "loops": results["loops"]["loops"],
        "insertion_bursts": results["loops"]["insertion_bursts"],
        "deletion_runs": results["loops"]["deletion_runs"],
    }


def load(name: str, **kwargs):
    """One of this package's metrics as an `evaluate` module, loaded from its local path (no Hub access)."""
    import evaluate

    if name not in MODULE_NAMES:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(MODULE_NAMES)}")
    return evaluate.load(str(MODULES_DIR / name / f"{name}.py"), **kwargs)


def compute_metrics_factory(tokenizer, entity_mode: str = "auto"):
    """A `compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: decodes predictions and labels
    (-100 -> pad) and returns the `summary` numbers."""
    import numpy as np

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        if predictions.ndim != 2:
            raise ConfigError("compute_metrics got logits, not generated token ids: evaluate with "
                              "predict_with_generate=True (teacher-forced logits are no transcript)")  # fmt: skip
        labels = np.where(labels == -100, tokenizer.pad_token_id, labels)
        predictions = np.where(predictions == -100, tokenizer.pad_token_id, predictions)
        hyps = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        refs = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return summary(compute_all(refs, hyps, entity_mode=entity_mode))

    return compute_metrics
