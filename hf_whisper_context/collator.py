"""`DistillationCollator`: audio rows + reference text + (optionally) the teacher cache -> one padded batch.

Batch keys (B rows, L label positions, m teacher positions, k top-k):
- `input_features` (B, n_mels, 3000): log-mel features from the processor's feature extractor;
- `labels` (B, L): Whisper's prefix tokens (language/task/no-timestamps), the text tokens and end-of-text, with the
  leading decoder-start token stripped (the model prepends it when it shifts the labels), padded with -100;
- `distill_mask` (B, L): True on the text tokens (what the teacher knows about); `student_spans` (B, L, 2): their
  character spans in the text; `text_lengths` (B,);
- from the teacher cache: `teacher_topk_logprobs` (B, m, k) float32, `teacher_topk_ids` (B, m, k) long,
  `teacher_mask` (B, m), `teacher_spans` (B, m, 2), `teacher_embedding` (B, D).
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

    def _labels(self, text: str):
        tokenizer = self.processor.tokenizer
        enc = tokenizer(" " + text.strip(), add_special_tokens=False, return_offsets_mapping=True)
        prefix = tokenizer.prefix_tokens[1:]  # the decoder-start token is added by the model
        ids = [*prefix, *enc["input_ids"], tokenizer.eos_token_id][: self.max_label_length]
        spans = [(0, 0)] * len(prefix) + [(max(0, s - 1), max(0, e - 1)) for s, e in enc["offset_mapping"]] + [(0, 0)]
        mask = [False] * len(prefix) + [True] * len(enc["input_ids"]) + [False]
        return ids, spans[: len(ids)], mask[: len(ids)]

    def __call__(self, rows: list[dict]) -> dict:
        audio = [np.asarray(r["audio"]["array"], dtype=np.float32) for r in rows]
        features = self.processor.feature_extractor(audio, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        encoded = [self._labels(r[self.text_column]) for r in rows]
        width = max(len(ids) for ids, _, _ in encoded)
        batch = {
            "input_features": features.input_features,
            "labels": torch.full((len(rows), width), -100, dtype=torch.long),
            "distill_mask": torch.zeros(len(rows), width, dtype=torch.bool),
            "student_spans": torch.zeros(len(rows), width, 2, dtype=torch.long),
            "text_lengths": torch.tensor([len(r[self.text_column].strip()) for r in rows]),
        }
        for i, (ids, spans, mask) in enumerate(encoded):
            batch["labels"][i, : len(ids)] = torch.tensor(ids)
            batch["distill_mask"][i, : len(ids)] = torch.tensor(mask)
            batch["student_spans"][i, : len(ids)] = torch.tensor(spans)
        if self.teacher_cache is not None:
            batch.update(self._teacher(rows))
        return batch

    def _teacher(self, rows: list[dict]) -> dict:
        cached = [self.teacher_cache[r["row_index"]] for r in rows]
        present = [c for c in cached if c is not None]
        if not present:
            raise ValueError("no row of this batch is in the teacher cache: was it built from this dataset?")
        m = max(len(c["token_ids"]) for c in present)
        k = present[0]["topk_ids"].shape[1]
        dim = present[0]["embedding"].shape[0]
        out = {
            "teacher_topk_logprobs": torch.zeros(len(rows), m, k),
            "teacher_topk_ids": torch.zeros(len(rows), m, k, dtype=torch.long),
            "teacher_mask": torch.zeros(len(rows), m, dtype=torch.bool),
            "teacher_spans": torch.zeros(len(rows), m, 2, dtype=torch.long),
            "teacher_embedding": torch.zeros(len(rows), dim),
        }
        for i, c in enumerate(cached):
            if c is None:  # a row the cache skipped (empty text): no teacher signal, masked
                continue
            n = len(c["token_ids"])
            out["teacher_topk_logprobs"][i, :n] = torch.from_numpy(c["topk_logprobs"].astype(np.float32))
            out["teacher_topk_ids"][i, :n] = torch.from_numpy(c["topk_ids"].astype(np.int64))
            out["teacher_mask"][i, :n] = torch.from_numpy(c["valid"])
            out["teacher_spans"][i, :n] = torch.from_numpy(c["spans"].astype(np.int64))
            out["teacher_embedding"][i] = torch.from_numpy(c["embedding"].astype(np.float32))
        return out
