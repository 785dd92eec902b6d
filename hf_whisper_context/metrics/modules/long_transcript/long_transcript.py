"""`evaluate` module: `evaluate.load("<this folder>/long_transcript.py")`."""

import evaluate

from hf_whisper_context.metrics import compute_all
from hf_whisper_context.metrics.evaluate_module import LongTranscriptMetric


class LongTranscript(LongTranscriptMetric, evaluate.Metric):
    fn = staticmethod(compute_all)
