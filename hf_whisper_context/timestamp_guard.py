"""Whisper's timestamp rules with a guard on the timestamp-sum rule: a segment may not be forced shut by a jump.

Whisper forces a timestamp wherever the timestamps' total probability beats the likeliest text token (the
"timestamp-sum rule"). Where a fine-tuned student is unsure of the next word (a rare name, a number, a window that
starts mid-word) that can end a segment after a word or two, and the timestamp then written is the likeliest one,
often the next pause far ahead: the long-form decoder seeks past the speech it never wrote (a dropped window).
`GuardedTimestamps` applies the rule only where the timestamp it would write is within reach of the text written
since the segment's start (`SECONDS_PER_TOKEN` per text token, plus `SLACK_S`); elsewhere the next token is the
likeliest one, text or timestamp, as without the rule. Every other timestamp rule is transformers' own.
"""

from __future__ import annotations

import torch
from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor

TIME_PRECISION_S = 0.02  # one timestamp token
SECONDS_PER_TOKEN = 1.0  # a bound, not an estimate: fluent English is 3 to 4 tokens a second
SLACK_S = 3.0  # a pause inside a segment


class GuardedTimestamps(WhisperTimeStampLogitsProcessor):
    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        rule, self._detect_timestamp_from_logprob = self._detect_timestamp_from_logprob, False
        try:
            processed = super().__call__(input_ids, scores)  # every rule but the sum rule
        finally:
            self._detect_timestamp_from_logprob = rule
        if not rule:
            return processed
        logprobs = torch.nn.functional.log_softmax(processed.float(), dim=-1)
        timestamps = logprobs[:, self.timestamp_begin :]
        forced = timestamps.logsumexp(dim=-1) > logprobs[:, : self.timestamp_begin].max(dim=-1).values
        for k in forced.nonzero()[:, 0].tolist():
            if self._within_reach(input_ids[k, self.begin_index :].tolist(), int(timestamps[k].argmax())):
                processed[k, : self.timestamp_begin] = -float("inf")
        return processed

    def _within_reach(self, seq: list[int], pick: int) -> bool:
        """Whether timestamp `pick` (tokens after the first timestamp) can end the segment `seq` is in: at most
        `SECONDS_PER_TOKEN` per text token written since its start time, plus `SLACK_S`."""
        starts = [i for i, token in enumerate(seq) if token >= self.timestamp_begin]
        if not starts:
            return True
        text = sum(1 for token in seq[starts[-1] + 1 :] if token < self.eos_token_id)
        start_s = (seq[starts[-1]] - self.timestamp_begin) * TIME_PRECISION_S
        return pick * TIME_PRECISION_S <= start_s + SECONDS_PER_TOKEN * text + SLACK_S


def asked_for(generation_config) -> bool:
    """Whether a generation config asks for the guard (`timestamp_jump_guard`: set by `transcribe_long`, or saved with
    a student by `hub.save_student`)."""
    return bool(getattr(generation_config, "timestamp_jump_guard", False))


def guarded(processor):
    """`processor` as a `GuardedTimestamps` if it is Whisper's timestamp processor (its state kept), else itself."""
    from .suppress import swapped

    return swapped(processor, {WhisperTimeStampLogitsProcessor: GuardedTimestamps})
