"""`DistillationCollator`: audio rows + reference text + (optionally) the teacher cache -> one padded batch.

Batch keys (B rows, L label positions, m teacher positions, k top-k):
- `input_features` (B, n_mels, 3000): log-mel features from the processor's feature extractor, of each row's
  `audio` (`{"array", "sampling_rate"}`; another rate than 16 kHz is resampled with a one-time warning, channels are
  downmixed, NaN samples are an `AudioError`);
- `labels` (B, L): Whisper's prefix tokens (language/task/no-timestamps), the text tokens and end-of-text, with the
  leading decoder-start token stripped (the model prepends it when it shifts the labels), padded with -100. With
  `timestamp_ratio` > 0 that share of the rows (drawn per row, seeded) gets the target Whisper writes with
  timestamps instead (`<column>_segments`: no `<|notimestamps|>`, `<|t0|> segment<|t1|>...`), so that a student
  decoded with timestamps in long-form transcription was trained to write them. With `cut_ratio` > 0 that share of
  the timestamped rows has its audio cut at a random point after its first segment, as Whisper's long-form decoding
  cuts speech at the end of every 30 s window, and its target ends as Whisper's own training targets do there: the
  segments that ended before the cut, then the start time of the one the cut interrupts (a decoder that ends on a
  closed segment is taken to have heard everything and skips the rest of the window). With `window_ratio` > 0 that
  share of the timestamped rows is trained on its `window` instead (rows of `load_swc`): the 30 s of audio from the
  chunk's start, speech running on past the chunk as in a long-form window, and its target (the segments that end
  inside it, then the start time of one its end interrupts); the words past the chunk's text are not distilled.
  With `shift_ratio` > 0 that share of the timestamped rows is trained on its `shifted_window`: 30 s from a point
  drawn inside the chunk, mid-sentence and often mid-word, as a long-form window starts where the last one's 30 s
  ran out; its target starts at the first word heard from its start. Nothing of it is distilled (its words are not
  the chunk's);
- `distill_mask` (B, L): True on the text tokens (what the teacher knows about); `student_spans` (B, L, 2): their
  character spans in the text; `text_lengths` (B,); `text_covered` (B,): the characters of the text the target
  covers (all of it, but on a cut row: the teacher's positions past it are not distilled);
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
from .data.dataset import chunk_audio
from .errors import ConfigError
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
    cut_ratio: float = 0.0  # share of the timestamped rows whose audio is cut inside the chunk (long-form windows)
    window_ratio: float = 0.0  # share of the timestamped rows trained on the 30 s window from the chunk's start
    shift_ratio: float = 0.0  # share of the timestamped rows trained on 30 s from a point inside the chunk
    seed: int = 0  # which rows get timestamped targets, which are windows or cut, and where
    _tag_ids: frozenset | None = field(default=None, init=False, repr=False)
    _warned_rate: bool = field(default=False, init=False, repr=False)

    def _draw(self, row: dict) -> tuple[bool, float | None, str | None]:
        """Whether the row is trained on its timestamped target, the second its audio is cut at (None: not cut) and
        which of its long-form windows it is trained on (`window`, `shifted_window`; None: the chunk); drawn from the
        seed and the row, so every epoch and process draws the same."""
        if self.timestamp_ratio <= 0:
            return False, None, None
        key = row.get("row_index", zlib.crc32(row[self.text_column].encode("utf-8", "surrogatepass")))
        rng = random.Random(self.seed * 1_000_003 + int(key))
        if rng.random() >= self.timestamp_ratio:
            return False, None, None
        for name, option in (("shifted_window", "shift_ratio"), ("window", "window_ratio")):
            if getattr(self, option) > 0 and rng.random() < getattr(self, option):
                if row.get(name) is None:
                    raise ConfigError(f"{option} > 0 trains rows on a 30 s long-form window: the rows need the "
                                      f"`{name}` column that `load_swc` writes (rows of `prepare_dataset` have "
                                      f"none); set {option}=0 for them")  # fmt: skip
                # a window in which no segment ends (one phrase over 30 s) has no target Whisper would write: the chunk
                return True, None, name if row[name][f"{self.text_column}_segments"] else None
        if self.cut_ratio <= 0 or rng.random() >= self.cut_ratio:
            return True, None, None
        segments = _segment_times(row[f"{self.text_column}_segments"])
        if len(segments) < 2:
            return True, None, None
        return True, rng.uniform(segments[0][1], segments[-1][1]), None  # after the first segment, before the end

    def _timestamped(self, row: dict) -> bool:
        return self._draw(row)[0]

    def _labels(self, row: dict, draw: tuple[bool, float | None, str | None]):
        """Label ids, character spans in the row's text, the mask of text tokens (what the teacher knows) and the
        characters of the text the target covers, for the row as `draw`n (`_draw`)."""
        tokenizer = self.processor.tokenizer
        text = row[self.text_column].strip()
        prefix = tokenizer.prefix_tokens[1:]  # the decoder-start token is added by the model
        timestamped, cut, window = draw
        shifted, covered = window == "shifted_window", len(text)
        if timestamped:
            source = row[window] if window else row  # a window's text begins with the chunk's (not a shifted one's)
            target = space_after_opening_tags(source[f"{self.text_column}_segments"])
            prefix = [t for t in prefix if t != tokenizer.convert_tokens_to_ids("<|notimestamps|>")]
            to_text = _offsets_in(source[self.text_column].strip(), target)
            if cut is not None:
                target, closed_end = _cut_target(target, cut)
                covered = to_text(closed_end)
            if window:
                covered = 0 if shifted else min(covered, to_text(len(_TRAILING_TIMESTAMPS.sub("", target))))
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
            is_text = is_text and not shifted and not (window and to_text(e) > len(text))  # past the chunk's words
            spans.append((to_text(s), to_text(e)) if is_text else (0, 0))
            mask.append(is_text)
        return ids, (spans + [(0, 0)])[: len(ids)], (mask + [False])[: len(ids)], covered

    def _with_prompt(self, row: dict, ids: list, spans: list, mask: list, *rest):
        """Prepend the previous text: decoder inputs `<|startofprev|> prompt <|startoftranscript|> ids[:-1]`; the
        prompt and the start token are masked out of the loss (as in Whisper's condition-on-previous decoding)."""
        tokenizer = self.processor.tokenizer
        previous = " ".join(row.get("context_before", "").split()[-self.prompt_words :])
        room = min(self.max_label_length // 2 - 1, self.max_label_length - len(ids) - 1)  # Whisper: <= 223 tokens
        prompt = tokenizer(" " + previous, add_special_tokens=False).input_ids[-room:] if previous and room > 0 else []
        start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        head = [tokenizer.convert_tokens_to_ids("<|startofprev|>"), *prompt] if prompt else []
        skip = len(head)  # label positions whose targets are prompt tokens or the start token
        return ([*head, start, *ids[:-1]], [-100] * skip + ids, [(0, 0)] * skip + spans, [False] * skip + mask,
                *rest)  # fmt: skip

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

    def _drawn_audio(self, row: dict, draw: tuple[bool, float | None, str | None]) -> np.ndarray:
        """The audio the row is trained on: the chunk's, cut at the drawn second, or its 30 s window's (read here,
        only for the rows drawn)."""
        _, cut, window = draw
        if window:
            return chunk_audio(row[window])
        return self._audio(row) if cut is None else self._audio(row)[: round(cut * SAMPLING_RATE)]

    def __call__(self, rows: list[dict]) -> dict:
        draws = [self._draw(r) for r in rows]
        encoded = [self._labels(r, d) for r, d in zip(rows, draws, strict=True)]
        audio = [self._drawn_audio(r, d) for r, d in zip(rows, draws, strict=True)]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        if self.prompt_words:
            encoded = [self._with_prompt(r, *e) for r, e in zip(rows, encoded, strict=True)]
        else:
            encoded = [(None, *e) for e in encoded]
        width = max(len(e[1]) for e in encoded)
        batch = {
            "input_features": features.input_features,
            "labels": torch.full((len(rows), width), -100, dtype=torch.long),
            "distill_mask": torch.zeros(len(rows), width, dtype=torch.bool),
            "student_spans": torch.zeros(len(rows), width, 2, dtype=torch.long),
            "text_lengths": torch.tensor([len(r[self.text_column].strip()) for r in rows]),
            "text_covered": torch.tensor([e[4] for e in encoded]),
        }
        if self.prompt_words:
            pad = self.processor.tokenizer.pad_token_id
            batch["decoder_input_ids"] = torch.full((len(rows), width), pad, dtype=torch.long)
        for i, (decoder_ids, ids, spans, mask, _) in enumerate(encoded):
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


_TIMESTAMP = re.compile(r"<\|(\d+\.\d+)\|>")
_TRAILING_TIMESTAMPS = re.compile(r"(<\|\d+\.\d+\|>)+$")


def _segment_times(timestamped: str) -> list[tuple[float, float]]:
    """(start, end) seconds of each segment of a timestamped target (`<|t0|> text<|t1|><|t2|> text<|t3|>`)."""
    times = [float(m.group(1)) for m in _TIMESTAMP.finditer(timestamped)]
    return list(zip(times[0::2], times[1::2], strict=False))


def _cut_target(timestamped: str, cut: float) -> tuple[str, int]:
    """The target of the audio cut at `cut` seconds, as Whisper writes it: the segments that ended by then, then the
    start time of the segment the cut interrupts (none when the cut falls in a pause). Also the position in
    `timestamped` where the text of the last kept segment ends."""
    stamps = list(_TIMESTAMP.finditer(timestamped))
    keep, closed_end = 0, 0
    for start, end in zip(stamps[0::2], stamps[1::2], strict=False):
        if float(end.group(1)) > cut:
            if float(start.group(1)) < cut:
                return timestamped[:keep] + start.group(), closed_end
            break
        keep, closed_end = end.end(), end.start()
    return timestamped[:keep], closed_end


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
