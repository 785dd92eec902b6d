"""Whisper's suppressed tokens, masked with a mask built once per `generate` call instead of at every step.

transformers' `SuppressTokensLogitsProcessor` and `SuppressTokensAtBeginLogitsProcessor` rebuild their mask at every
decoding step (`isin` of the whole vocabulary, ~52k ids, against the suppressed ones): on a CPU that costs about as
much as a step of Whisper tiny itself. `mask_once(model)` makes the model's `generate` use processors that build it
on their first step and reuse it: the same scores, in the same place of the processor list, so the same text.
"""

from __future__ import annotations

import torch
from transformers.generation.logits_process import (
    SuppressTokensAtBeginLogitsProcessor,
    SuppressTokensLogitsProcessor,
)


class _MaskOnce:
    _mask: torch.Tensor | None = None

    def _suppressed(self, scores: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        mask = self._mask
        if mask is None or mask.shape[-1] != scores.shape[-1] or mask.device != scores.device:
            vocab = torch.arange(scores.shape[-1], device=scores.device)
            mask = self._mask = torch.isin(vocab, tokens.to(scores.device))
        return scores.masked_fill(mask, -float("inf"))


class SuppressOnce(_MaskOnce, SuppressTokensLogitsProcessor):
    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        return self._suppressed(scores, self.suppress_tokens)


class SuppressAtBeginOnce(_MaskOnce, SuppressTokensAtBeginLogitsProcessor):
    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[-1] != self.begin_index:
            return scores
        return self._suppressed(scores, self.begin_suppress_tokens)


_FASTER = {SuppressTokensLogitsProcessor: SuppressOnce, SuppressTokensAtBeginLogitsProcessor: SuppressAtBeginOnce}


def swapped(processor, kinds: dict):
    """`processor` as the subclass `kinds` maps its exact type to, its state kept (suppressed ids, begin index,
    timestamp settings); itself if its type is not mapped."""
    kind = kinds.get(type(processor))
    if kind is None:
        return processor
    swap = kind.__new__(kind)
    swap.__dict__.update(processor.__dict__)
    return swap


def _faster(processor):
    return swapped(processor, _FASTER)


def mask_once(model) -> None:
    """Swap the suppressing processors a Whisper model's `generate` builds for ones that build their mask once (and,
    when its generation config sets `timestamp_jump_guard`, the timestamp processor for
    `timestamp_guard.GuardedTimestamps`). A model whose transformers has no such step (`_retrieve_logit_processors`)
    is left as it is."""
    from .timestamp_guard import asked_for, guarded

    retrieve = getattr(model, "_retrieve_logit_processors", None)
    if retrieve is None or getattr(retrieve, "masks_once", False):
        return

    def retrieve_masking_once(generation_config, *args, **kwargs):
        processors = retrieve(generation_config, *args, **kwargs)
        if processors is None:
            return None
        processors = [_faster(p) for p in processors]
        if asked_for(generation_config):
            processors = [guarded(p) for p in processors]
        return processors

    retrieve_masking_once.masks_once = True
    model._retrieve_logit_processors = retrieve_masking_once
