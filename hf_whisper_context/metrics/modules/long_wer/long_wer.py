"""`evaluate` module for hf_whisper_context.metrics.word_error_rate: `evaluate.load("<this folder>/long_wer.py")`.

Named `long_wer`, not `wer`: it returns a dict (orthographic and normalised WER with their counts), and the canonical
`evaluate.load("wer")` returns one float that code multiplies by 100; the two must not shadow each other."""

import evaluate

from hf_whisper_context.metrics import word_error_rate
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class LongWer(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(word_error_rate)
