"""The shared body of this package's `evaluate` modules (each module file names its function)."""

from __future__ import annotations

import datasets
import evaluate

_CITATION = """@inproceedings{altinok2025whispering,
  title={Whispering Context: Distilling Syntax and Semantics for Long Speech Transcripts},
  author={Altinok, Duygu}, booktitle={ASRU}, year={2025}}"""
_INPUTS = """Args:
    predictions (list of str): transcripts, with or without inline entity tags.
    references (list of str): reference transcripts (cased, punctuated, optionally tagged).
Returns: a dict of scores; see the function's docstring in hf_whisper_context.metrics."""


class LongTranscriptMetric:
    """Mixed into each module's `evaluate.Metric` subclass, which sets `fn` (a function of references and
    predictions). Not itself a Metric: `evaluate.load` takes the first Metric class a module file holds."""

    fn = None  # (no `description` attribute here: it would hide `evaluate.Metric.description`, the module card's)

    def _info(self):
        return evaluate.MetricInfo(
            description=type(self).fn.__doc__ or "",
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),  # fmt: skip
            reference_urls=["https://arxiv.org/abs/2508.13376"],
        )

    def _compute(self, predictions, references, **kwargs):
        return type(self).fn(references, predictions, **kwargs)
