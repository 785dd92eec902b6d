"""`DistillationCollator`: audio rows + reference text + (optionally) the teacher cache -> one padded batch.

Batch keys (B rows, L label positions, m teacher positions, k top-k):
- `input_features` (B, n_mels, 3000): log-mel features from the processor's feature extractor, of each row's
  `audio` (`{"array", "sampling_rate"}`; another rate than 16 kHz is resampled with a one-time warning, channels are
  downmixed, NaN samples are an `AudioError`);
- `labels` (B, L): Whisper's prefix tokens (language/task/no-timestamps), the text tokens and end-of-text, with the
  leading decoder-start token stripped (the model prepends it when it shifts the labels), padded with -100. With
  `timestamp_ratio` > 0 that share of the rows (drawn per row, seeded) gets the target Whisper writes with
  timestamps instead (`<column>_segments`: no `<|notimestamps|>`, `<|t0|> segment<|t1|>...`), so that a student
  decoded with timestamps in long-form transcription was trained to write them;
- `distill_mask` (B, L): True on the text tokens (what the teacher knows about); `student_spans` (B, L, 2): their
  character spans in the text; `text_lengths` (B,);
- from the teacher cache: `teacher_topk_logprobs` (B, m, k) float32, `teacher_topk_ids` (B, m, k) long,
  `teacher_mask` (B, m), `teacher_spans` (B, m, 2), `teacher_embedding` (B, D);
- with `prompt_words` > 0, `decoder_input_ids` (B, L): `<|startofprev|>`, the previous text (the last words of
  `context_before`), `<|startoftranscript|>`, then the labels shifted right; prompt and start token are -100 in the
  labels. Without it the model builds the decoder inputs from the labels;
- or, for a live teacher (`teacher_tokenizer` given), `teacher_windows`: per row the `teacher.window.teacher_window`
  (the chunk inside its context, built exactly as the cache builds it), which `ContextDistillTrainer` runs through
  the teacher and pads with `pad_teacher`.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import torch

from .audio import SAMPLING_RATE, decode_source
from .student_tags import tag_ids
from .tags import space_after_opening_tags
from .teacher.cache import CacheError
from .teacher.window import max_tokens, pad_teacher, teacher_window

logger = logging.getLogger(__name__)


@dataclass
class DistillationCollator:
    processor: object  # a WhisperProcessor (feature extractor + tokenizer)
    teacher_cache: object | None = None  # a `TeacherCache`; rows need a `row_index` column
    text_column: str = "text"
    max_label_length: int = 448
    teacher_tokenizer: object | None = None  # live teacher: rows need `context_before` / `context_after`
    context_words: int = 512  # live teacher: words of article context (half before, half after)
    teacher_max_length: int | None = (
        None  # live teacher: tokens per window (default as the cache: `window.max_tokens`)
    )
    prompt_words: int = 0  # > 0: condition on the previous text (last N words of `context_before`) as a prompt
    timestamp_ratio: float = 0.0  # share of rows trained on timestamped targets (`<text_column>_segments`)
    seed: int = 0  # which rows get timestamped targets
    _tag_ids: frozenset | None = field(default=None, init=False, repr=False)
    _warned_rate: bool = field(default=False, init=False, repr=False)

    def _timestamped(self, row: dict) -> bool:
        if self.timestamp_ratio <= 0:
            return False
        key = row.get("row_index", zlib.crc32(row[self.text_column].encode("utf-8", "surrogatepass")))
        return random.Random(self.seed * 1_000_003 + int(key)).random() < self.timestamp_ratio

    def _labels(self, row: dict):
        """Label ids, character spans in the row's text, and the mask of text tokens (what the teacher knows)."""
        tokenizer = self.processor.tokenizer
        text = row[self.text_column].strip()
        prefix = tokenizer.prefix_tokens[1:]  # the decoder-start token is added by the model
        if self._timestamped(row):
            target = space_after_opening_tags(row[f"{self.text_column}_segments"])
            prefix = [t for t in prefix if t != tokenizer.convert_tokens_to_ids("<|notimestamps|>")]
            to_text = _offsets_in(text, target)
        else:
            target, to_text = " " + space_after_opening_tags(text), lambda i: max(0, i - 1)
        enc = tokenizer(target, add_special_tokens=False, return_offsets_mapping=True)
        ids = [*prefix, *enc["input_ids"], tokenizer.eos_token_id][: self.max_label_length]
        spans, mask = [(0, 0)] * len(prefix), [False] * len(prefix)
        if self._tag_ids is None:
            self._tag_ids = frozenset(tag_ids(tokenizer))
        for token, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            # text tokens and entity tags (the teacher predicts both), not timestamps or other special tokens
            is_text = token < tokenizer.convert_tokens_to_ids("<|endoftext|>") or token in self._tag_ids
            spans.append((to_text(s), to_text(e)) if is_text else (0, 0))
            mask.append(is_text)
        return ids, (spans + [(0, 0)])[: len(ids)], (mask + [False])[: len(ids)]

    def _with_prompt(self, row: dict, ids: list, spans: list, mask: list):
        """Prepend the previous text: decoder inputs `<|startofprev|> prompt <|startoftranscript|> ids[:-1]`; the
        prompt and the start token are masked out of the loss (as in Whisper's condition-on-previous decoding)."""
        tokenizer = self.processor.tokenizer
        previous = " ".join(row.get("context_before", "").split()[-self.prompt_words :])
        room = min(self.max_label_length // 2 - 1, self.max_label_length - len(ids) - 1)  # Whisper: <= 223 tokens
        prompt = tokenizer(" " + previous, add_special_tokens=False).input_ids[-room:] if previous and room > 0 else []
        start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        head = [tokenizer.convert_tokens_to_ids("<|startofprev|>"), *prompt] if prompt else []
        skip = len(head)  # label positions whose targets are prompt tokens or the start token
        return [*head, start, *ids[:-1]], [-100] * skip + ids, [(0, 0)] * skip + spans, [False] * skip + mask

    def _audio(self, row: dict) -> np.ndarray:
        """The row's audio at 16 kHz, mono: other rates are resampled (with a warning, once), channels downmixed."""
        value = row["audio"]
        rate = value.get("sampling_rate") or SAMPLING_RATE
        if rate != SAMPLING_RATE and not self._warned_rate:
            logger.warning("audio at %d Hz is resampled to Whisper's %d Hz in the collator (every batch: resample "
                           "once beforehand, e.g. `prepare_dataset` and `with_audio`, to save the time)", rate,
                           SAMPLING_RATE)  # fmt: skip
            self._warned_rate = True
        return decode_source({"array": value["array"], "sampling_rate": rate, "path": value.get("path")})

    def __call__(self, rows: list[dict]) -> dict:
        audio = [self._audio(r) for r in rows]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        encoded = [self._labels(r) for r in rows]
        if self.prompt_words:
            encoded = [self._with_prompt(r, *e) for r, e in zip(rows, encoded, strict=True)]
        else:
            encoded = [(None, *e) for e in encoded]
        width = max(len(ids) for _, ids, _, _ in encoded)
        batch = {
            "input_features": features.input_features,
            "labels": torch.full((len(rows), width), -100, dtype=torch.long),
            "distill_mask": torch.zeros(len(rows), width, dtype=torch.bool),
            "student_spans": torch.zeros(len(rows), width, 2, dtype=torch.long),
            "text_lengths": torch.tensor([len(r[self.text_column].strip()) for r in rows]),
        }
        if self.prompt_words:
            pad = self.processor.tokenizer.pad_token_id
            batch["decoder_input_ids"] = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, (decoder_ids, ids, spans, mask) in enumerate(encoded):
            batch["labels"][i, : len(ids)] = torch.tensor(ids)
            batch["distill_mask"][i, : len(ids)] = torch.tensor(mask)
            batch["student_spans"][i, : len(ids)] = torch.tensor(spans)
            if decoder_ids is not None:
                batch["decoder_input_ids"][i, : len(decoder_ids)] = torch.tensor(decoder_ids)
        if self.teacher_cache is not None:
            cached = [self.teacher_cache[r["row_index"]] for r in rows]
            if all(c is None for c in cached):
                raise CacheError("no row of this batch is in the teacher cache: was it built from this dataset?")
            batch.update(pad_teacher(cached))
        elif self.teacher_tokenizer is not None:
            length = max_tokens(self.teacher_tokenizer, self.teacher_max_length)
            batch["teacher_windows"] = [teacher_window(r, self.teacher_tokenizer, self.context_words, length,
                                                       self.text_column) for r in rows]  # fmt: skip
        return batch


_TIMESTAMP = re.compile(r"<\|\d+\.\d+\|>")


def _offsets_in(text: str, timestamped: str):
    """Map character positions of `timestamped` (the text with timestamp tokens between segments) to positions in
    `text`: each segment's words are found in order in `text`."""
    pieces, cursor = [], 0  # (start in timestamped, start in text) of each segment, leading space included
    for m in re.finditer(r"[^<|>]+|<\|[^|]*\|>", timestamped):
        if _TIMESTAMP.fullmatch(m.group()) or not m.group().strip():
            continue
        words = m.group().strip()
        found = text.find(words, cursor)
        at = found if found >= 0 else cursor
        lead = m.group().index(words)
        pieces.append((m.start(), at - lead))
        cursor = at + len(words)
    starts = [p[0] for p in pieces]

    def to_text(i: int) -> int:
        k = max(0, bisect_right(starts, i) - 1)
        return max(0, pieces[k][1] + i - pieces[k][0]) if pieces else 0

    return to_text
