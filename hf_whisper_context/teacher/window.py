"""What the teacher reads for one chunk, and what it gives back: one window builder and one forward for the cache
and the live teacher alike, so that both distil from exactly the same teacher outputs.

The window is `context_before + chunk text + context_after`: at most `context_words` words of article context,
half before and half after. The chunk is tokenized on its own (with a leading space when context precedes it, as
inside running text), so its tokens never depend on the context; the context is trimmed symmetrically (tokens
nearest the chunk kept) to fit `max_tokens`, never the chunk.
"""

from __future__ import annotations

from ..errors import HfWhisperContextError

TEACHER_KEYS = ("distill_mask", "student_spans", "text_lengths", "text_covered", "teacher_topk_logprobs",
                "teacher_topk_ids", "teacher_mask", "teacher_spans", "teacher_embedding")  # fmt: skip
MAX_TOKENS = 4096  # the default cap of a window, in teacher tokens (lowered to what the tokenizer supports)
DEFAULT_CONTEXT_WORDS = 512  # words of article context the teacher reads by default (half before, half after)


class WindowError(HfWhisperContextError, ValueError):
    """A chunk that cannot be put in a teacher window (its text alone is longer than the window)."""


def max_tokens(tokenizer, requested: int | None = None) -> int:
    """Teacher tokens per window: `requested` (default `MAX_TOKENS`), at most the tokenizer's `model_max_length`."""
    limit = getattr(tokenizer, "model_max_length", None) or MAX_TOKENS
    return int(min(requested or MAX_TOKENS, limit))


def encode_window(tokenizer, before: str, text: str, after: str, max_length: int) -> dict:
    """Token ids of `before + text + after` with the chunk's position and character spans."""
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id else []
    lead = " " if before else ""
    enc = tokenizer(lead + text, add_special_tokens=False, return_offsets_mapping=True)
    chunk_ids = enc["input_ids"]
    spans = [(max(0, s - len(lead)), max(0, e - len(lead))) for s, e in enc["offset_mapping"]]
    room = max_length - len(bos) - len(chunk_ids)
    if room < 0:
        raise WindowError(f"chunk text alone is {len(chunk_ids)} teacher tokens > max_length {max_length}")
    left = tokenizer(before, add_special_tokens=False)["input_ids"] if before else []
    right = tokenizer(" " + after, add_special_tokens=False)["input_ids"] if after else []
    keep_left = min(len(left), max(room // 2, room - len(right)))
    keep_right = min(len(right), room - keep_left)
    left = left[len(left) - keep_left :]
    ids = bos + left + chunk_ids + right[:keep_right]
    start = len(bos) + len(left)
    return {"input_ids": ids, "chunk_start": start, "chunk_len": len(chunk_ids), "spans": spans,
            "context_tokens": (len(left), keep_right)}  # fmt: skip


def teacher_window(row: dict, tokenizer, context_words: int, max_length: int, text_column: str = "text") -> dict:
    """The window of a chunk row (`context_before`, `<text_column>`, `context_after`); {} for an empty text."""
    text = (row[text_column] or "").strip()
    if not text:
        return {}
    half = context_words // 2
    before = " ".join((row.get("context_before") or "").split()[-half:]) if half else ""
    after = " ".join((row.get("context_after") or "").split()[:half]) if half else ""
    return encode_window(tokenizer, before, text, after, max_length)


def teacher_outputs(model, windows: list[dict], k: int, pooling: str, layer: int, pad_id: int) -> list[dict]:
    """One padded forward pass over `encode_window` results; per window, as tensors on the model's device: the
    chunk's `topk_logprobs`/`topk_ids` of the distribution predicting each chunk token, `valid` (False for a first
    token with nothing before it and for NaN/inf positions), the window `embedding`, and `nonfinite` (a count)."""
    import torch

    device = next(model.parameters()).device
    width = max(len(w["input_ids"]) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    for i, w in enumerate(windows):
        ids[i, : len(w["input_ids"])] = torch.as_tensor(w["input_ids"])
        mask[i, : len(w["input_ids"])] = 1
    # the backbone runs over every token, the LM head only at the chunk's positions (about a fifth of the FLOPs of
    # a SmolLM2 forward over a 750-token window would otherwise go to logits nobody reads)
    with torch.inference_mode():
        out = model.get_decoder()(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        head = model.get_output_embeddings()
        hidden = out.hidden_states[layer].float()
        results = []
        for i, w in enumerate(windows):
            n, start, length = len(w["input_ids"]), int(w["chunk_start"]), int(w["chunk_len"])
            # the distribution predicting token p is the output at p - 1; a chunk at position 0 has none for its first
            positions = torch.arange(start - 1, start + length - 1, device=device)
            results.append(_chunk_outputs(head(out.last_hidden_state[i, positions.clamp(min=0)]), positions,
                                          hidden[i, :n], k, pooling))  # fmt: skip
    return results


def _chunk_outputs(logits, positions, hidden, k: int, pooling: str) -> dict:
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    finite = torch.isfinite(logprobs).all(dim=-1)
    top = torch.topk(torch.nan_to_num(logprobs, nan=-1e4, neginf=-1e4), k, dim=-1)
    return {
        "topk_logprobs": top.values.clamp(min=-1e4),
        "topk_ids": top.indices,
        "valid": (positions >= 0) & finite,
        "embedding": hidden[-1] if pooling == "last" else hidden.mean(dim=0),
        "nonfinite": int((~finite).sum()),
    }


def mask_uncovered(teacher: dict) -> dict:
    """Mask the teacher positions past the text a row's target covers (`text_covered`: a row whose audio the
    collator cut short keeps only the text before the cut), in place; returns `teacher`."""
    if "teacher_mask" in teacher and "text_covered" in teacher:
        inside = teacher["teacher_spans"][..., 0] < teacher["text_covered"][:, None]
        teacher["teacher_mask"] = teacher["teacher_mask"] & inside
    return teacher


def pad_teacher(rows: list[dict | None], device=None) -> dict:
    """Pad per-row teacher outputs (cache rows or live results with `spans`) into batch tensors with masks; a row
    that is None or empty (nothing cached, empty text) is all masked."""
    import torch

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
