"""`evaluate` module for hf_whisper_context.metrics.word_error_rate: `evaluate.load("<this folder>/wer.py")`."""

import evaluate

from hf_whisper_context.metrics import word_error_rate
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class Wer(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(word_error_rate)
