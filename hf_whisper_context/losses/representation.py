"""Representation loss between sentence embeddings: REP = 1 - cos(pool(h_student), W e_teacher).

`pool` is the masked mean (or the last valid position) of the decoder's final hidden states; `W` a trainable
projector (teacher dim -> d_model) that is saved and restored with the student. Equivalent to half the squared
distance of the L2-normalised vectors.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def pool(hidden, mask, pooling: str = "mean"):
    """hidden: (B, n, d); mask: (B, n) bool -> (B, d). A row with no valid position pools to zeros."""
    mask = mask.bool()
    if pooling == "mean":
        weights = mask.to(hidden.dtype)[..., None]
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    if pooling == "last":
        last = (mask.long().cumsum(1) * mask).argmax(1)  # index of the last True (0 when there is none)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last] * mask.any(1, keepdim=True)
    raise ConfigError(f"pooling must be 'mean' or 'last', not {pooling!r}")


def representation_loss(student_hidden, student_mask, teacher_embedding, projector, pooling="mean", reduction="mean"):
    """1 - cos(pool(student_hidden), projector(teacher_embedding)): averaged over samples with a valid position
    (`reduction="mean"`), or per sample (`"none"`: (B,), 0 where a sample has no valid position).

    student_hidden: (B, n, d_model); student_mask: (B, n); teacher_embedding: (B, D); projector: D -> d_model.
    """
    pooled = pool(student_hidden.float(), student_mask, pooling)
    target = projector(teacher_embedding.to(projector.weight.dtype)).float()
    cosine = torch.nn.functional.cosine_similarity(pooled, target, dim=-1, eps=1e-8)
    has = student_mask.bool().any(1)
    if reduction == "none":
        return (1 - cosine) * has
    return (1 - cosine)[has].mean() if has.any() else pooled.sum() * 0.0
