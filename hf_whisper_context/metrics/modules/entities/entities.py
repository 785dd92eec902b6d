"""`evaluate` module for hf_whisper_context.metrics.entity_scores: `evaluate.load("<this folder>/entities.py")`."""

import evaluate

from hf_whisper_context.metrics import entity_scores
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class Entities(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(entity_scores)
