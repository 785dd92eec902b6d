"""`evaluate` module: `evaluate.load("<this folder>/capitalization.py")`."""

import evaluate

from hf_whisper_context.metrics import capitalization_scores
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class Capitalization(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(capitalization_scores)
