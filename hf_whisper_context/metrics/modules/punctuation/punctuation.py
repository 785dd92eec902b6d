"""`evaluate` module: `evaluate.load("<this folder>/punctuation.py")`."""

import evaluate

from hf_whisper_context.metrics import punctuation_scores
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class Punctuation(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(punctuation_scores)
