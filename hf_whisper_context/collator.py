"""`DistillationCollator`: audio rows + reference text + (optionally) the teacher cache -> one padded batch.

Batch keys (B rows, L label positions, m teacher positions, k top-k):
- `input_features` (B, n_mels, 3000): log-mel features from the processor's feature extractor;
- `labels` (B, L): Whisper's prefix tokens (language/task/no-timestamps), the text tokens and end-of-text, with the
  leading decoder-start token stripped (the model prepends it when it shifts the labels), padded with -100;
- `distill_mask` (B, L): True on the text tokens (what the teacher knows about); `student_spans` (B, L, 2): their
  character spans in the text; `text_lengths` (B,);
- from the teacher cache: `teacher_topk_logprobs` (B, m, k) float32, `teacher_topk_ids` (B, m, k) long,
  `teacher_mask` (B, m), `teacher_spans` (B, m, 2), `teacher_embedding` (B, D);
- with `prompt_words` > 0, `decoder_input_ids` (B, L): `<|startofprev|>`, the previous text (the last words of
  `context_before`), `<|startoftranscript|>`, then the labels shifted right; prompt and start token are -100 in the
  labels. Without it the model builds the decoder inputs from the labels;
- or, for a live teacher (`teacher_tokenizer` given), `teacher_windows`: per row the `encode_window` result (the
  chunk inside its context), which `ContextDistillTrainer` runs through the teacher and pads with `pad_teacher`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .audio import SAMPLING_RATE


@dataclass
class DistillationCollator:
    processor: object  # a WhisperProcessor (feature extractor + tokenizer)
    teacher_cache: object | None = None  # a `TeacherCache`; rows need a `row_index` column
    text_column: str = "text"
    max_label_length: int = 448
    teacher_tokenizer: object | None = None  # live teacher: rows need `context_before` / `context_after`
    context_words: int = 512
    teacher_max_length: int = 2048
    prompt_words: int = 0  # > 0: condition on the previous text (last N words of `context_before`) as a prompt

    def _labels(self, text: str):
        tokenizer = self.processor.tokenizer
        enc = tokenizer(" " + text.strip(), add_special_tokens=False, return_offsets_mapping=True)
        prefix = tokenizer.prefix_tokens[1:]  # the decoder-start token is added by the model
        ids = [*prefix, *enc["input_ids"], tokenizer.eos_token_id][: self.max_label_length]
        spans = [(0, 0)] * len(prefix) + [(max(0, s - 1), max(0, e - 1)) for s, e in enc["offset_mapping"]] + [(0, 0)]
        mask = [False] * len(prefix) + [True] * len(enc["input_ids"]) + [False]
        return ids, spans[: len(ids)], mask[: len(ids)]

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

    def __call__(self, rows: list[dict]) -> dict:
        audio = [np.asarray(r["audio"]["array"], dtype=np.float32) for r in rows]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        encoded = [self._labels(r[self.text_column]) for r in rows]
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
                raise ValueError("no row of this batch is in the teacher cache: was it built from this dataset?")
            batch.update(pad_teacher(cached))
        elif self.teacher_tokenizer is not None:
            batch["teacher_windows"] = [self._window(r) for r in rows]
        return batch

    def _window(self, row: dict) -> dict:
        from .teacher.cache import encode_window

        half = self.context_words // 2
        before = " ".join(row.get("context_before", "").split()[-half:]) if half else ""
        after = " ".join(row.get("context_after", "").split()[:half]) if half else ""
        text = row[self.text_column].strip()
        return encode_window(self.teacher_tokenizer, before, text, after, self.teacher_max_length) if text else {}


def pad_teacher(rows: list[dict | None], device=None) -> dict:
    """Pad per-row teacher outputs (cache rows or live results with `spans`) into batch tensors with masks; a row
    that is None or empty (nothing cached, empty text) is all masked."""
    present = [r for r in rows if r]
    m = max(len(r["spans"]) for r in present)
    k, dim = present[0]["topk_ids"].shape[1], present[0]["embedding"].shape[0]
    out = {
        "teacher_topk_logprobs": torch.zeros(len(rows), m, k, device=device),
        "teacher_topk_ids": torch.zeros(len(rows), m, k, dtype=torch.long, device=device),
        "teacher_mask": torch.zeros(len(rows), m, dtype=torch.bool, device=device),
        "teacher_spans": torch.zeros(len(rows), m, 2, dtype=torch.long, device=device),
        "teacher_embedding": torch.zeros(len(rows), dim, device=device),
    }
    for i, r in enumerate(rows):
        if not r:
            continue
        n = len(r["spans"])
        for key, name, dtype in (("topk_logprobs", "teacher_topk_logprobs", torch.float32),
                                 ("topk_ids", "teacher_topk_ids", torch.long), ("valid", "teacher_mask", torch.bool),
                                 ("spans", "teacher_spans", torch.long)):  # fmt: skip
            out[name][i, :n] = torch.as_tensor(r[key]).to(device=out[name].device, dtype=dtype)
        out["teacher_embedding"][i] = torch.as_tensor(r["embedding"]).to(out["teacher_embedding"].device).float()
    return out
