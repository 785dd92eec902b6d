"""Metrics for long transcripts: plain functions on strings first, thin `evaluate` wrappers second.

>>> from hf_whisper_context.metrics import compute_all, load
>>> compute_all(["[PERSON]Bob Dylan[/PERSON] sang."], ["Bob Dylan sang."])
>>> load("punctuation").compute(references=[...], predictions=[...])   # an evaluate.Metric, from a local path
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .capitalization import capitalization_scores
from .entities import entity_scores
from .punctuation import punctuation_scores
from .wer import word_error_rate

MODULES_DIR = Path(__file__).parent / "modules"
MODULE_NAMES = ("wer", "punctuation", "capitalization", "entities", "long_transcript")

__all__ = [
    "capitalization_scores", "compute_all", "compute_metrics_factory", "entity_scores", "load",
    "punctuation_scores", "word_error_rate",
]  # fmt: skip


def compute_all(references: Sequence[str], predictions: Sequence[str], entity_mode: str = "auto", tagger=None) -> dict:
    """Every metric at once. `entity_mode`: "tags" (the predictions carry inline tags), "tagger" (tag them with
    the references' tagger) or "auto" (tags if any prediction has one)."""
    from ..data.entities import strip_tags

    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    if entity_mode == "auto":
        entity_mode = "tags" if any(strip_tags(p) != p for p in predictions) else "tagger"
    entity_references = references
    if entity_mode == "tagger" and all(strip_tags(r) == r for r in references):
        # plain references (e.g. decoded training labels): tag them with the same tagger as the predictions
        from .entities import tag_texts

        entity_references = tag_texts(list(references), tagger)
    return {
        "wer_orthographic": word_error_rate(references, predictions, "orthographic"),
        "wer_normalised": word_error_rate(references, predictions, "normalised"),
        "punctuation": punctuation_scores(references, predictions),
        "capitalization": capitalization_scores(references, predictions),
        "entities": entity_scores(entity_references, predictions, mode=entity_mode, tagger=tagger),
    }


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
    }


def load(name: str, **kwargs):
    """One of this package's metrics as an `evaluate` module, loaded from its local path (no Hub access)."""
    import evaluate

    if name not in MODULE_NAMES:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(MODULE_NAMES)}")
    return evaluate.load(str(MODULES_DIR / name / f"{name}.py"), **kwargs)


def compute_metrics_factory(tokenizer, entity_mode: str = "auto"):
    """A `compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: decodes predictions and labels
    (-100 -> pad) and returns the `summary` numbers."""
    import numpy as np

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        labels = np.where(labels == -100, tokenizer.pad_token_id, labels)
        predictions = np.where(predictions == -100, tokenizer.pad_token_id, predictions)
        hyps = tokenizer.batch_decode(predictions, skip_special_tokens=True)
        refs = tokenizer.batch_decode(labels, skip_special_tokens=True)
        return summary(compute_all(refs, hyps, entity_mode=entity_mode))

    return compute_metrics
