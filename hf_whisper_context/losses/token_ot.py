"""Token-level distillation across two tokenizers, aligned by optimal transport (docs/losses.md).

Student positions i (Whisper tokens of the reference text) and teacher positions j (LLaMA tokens of the same
text) are matched by an entropic OT plan over the cost

    C_ij = || sort(p_i)[:k] - sort(q_j)[:k] ||_1  +  lambda_pos * | c_i - c'_j |

(the sorted-probability distance of ULD, vocabulary-agnostic, plus the distance between the tokens' character-span
centres in the shared text, normalised by its length). Then

- `ot_cost` = sum_ij P_ij C_ij per sample, averaged over samples with mass;
- `kd_ot`   = T^2 * KL(q~_i || p_i) averaged over student positions, where q~_i = sum_j (P_ij / sum_j' P_ij') q_j is
  the teacher distribution transported to position i and mapped into Whisper's vocabulary (exact token-string
  matches; unmatched teacher mass dropped, q~_i renormalised; a position with no matched mass is skipped).
"""

from __future__ import annotations

import logging

import torch

from ..errors import ConfigError
from ..utils import tokenizer_hash
from .sinkhorn import import_pot, sinkhorn

logger = logging.getLogger(__name__)

_SPACE_MARKERS = {"▁": "Ġ"}  # sentencepiece's space marker -> byte-level BPE's


def _canonical(token: str) -> str:
    for marker, canonical in _SPACE_MARKERS.items():
        token = token.replace(marker, canonical)
    return token


def build_vocab_map(student_tokenizer, teacher_tokenizer, teacher_rows: int | None = None,
                    warn_below: float = 0.2) -> tuple[torch.Tensor, float]:  # fmt: skip
    """Teacher id -> student id (-1 where the teacher token has no exact student counterpart), and the coverage
    (share of teacher tokens matched). Space markers are unified (sentencepiece "▁" = byte-level "Ġ").

    Build it from the tokenizer that wrote the teacher cache (`TeacherCache.vocab_map`): an adapted teacher has tag
    tokens its base tokenizer lacks. `teacher_rows` (the teacher's LM-head rows) sizes the map when the head is
    padded beyond the tokenizer (Qwen2-style), so that every id the teacher can emit is inside it."""
    student = {_canonical(t): i for t, i in student_tokenizer.get_vocab().items()}
    teacher = teacher_tokenizer.get_vocab()
    mapping = torch.full((max(max(teacher.values()) + 1, teacher_rows or 0),), -1, dtype=torch.long)
    for token, i in teacher.items():
        mapping[i] = student.get(_canonical(token), -1)
    coverage = float((mapping[list(teacher.values())] >= 0).float().mean())
    # which tokenizer the map speaks for: a trainer checks it against the one that wrote the teacher cache
    mapping.teacher_tokenizer = (getattr(teacher_tokenizer, "name_or_path", ""), tokenizer_hash(teacher_tokenizer))
    if coverage < warn_below:
        logger.warning("only %.1f%% of the teacher's vocabulary maps onto the student's (unrelated tokenizers?)",
                       100 * coverage)  # fmt: skip
    return mapping, coverage


def sorted_cost(student_probs, teacher_probs, k: int):
    """L1 distance between the k largest probabilities of each student and teacher position: (B, n, m).
    student_probs: (B, n, V_s); teacher_probs: (B, m, k_t) (any order)."""
    k = min(k, student_probs.shape[-1], teacher_probs.shape[-1])
    p = torch.topk(student_probs, k, dim=-1).values
    q = torch.sort(teacher_probs, dim=-1, descending=True).values[..., :k]
    return torch.cdist(p, q.to(p.dtype), p=1)


def _centres(spans, lengths):
    return (spans[..., 0] + spans[..., 1]).float() / 2 / lengths.float().clamp(min=1)[:, None]


def token_ot_distillation(
    student_logits,
    student_mask,
    teacher_topk_logprobs,
    teacher_topk_ids,
    teacher_mask,
    vocab_map,
    *,
    student_spans=None,
    teacher_spans=None,
    text_lengths=None,
    temperature: float = 1.0,
    eps: float = 0.1,
    k: int | None = None,
    lambda_pos: float = 0.0,
    n_iters: int = 50,
    backend: str = "torch",
    student_log_probs=None,
) -> dict:
    """OT token distillation for a batch.

    Args:
        student_logits: (B, n, V_s); student_mask: (B, n) bool, valid label positions.
        teacher_topk_logprobs: (B, m, k_t) log-probs (from the cache); teacher_topk_ids: (B, m, k_t) teacher ids;
            teacher_mask: (B, m) bool. Positions with NaN/inf log-probs are masked (and counted in the result).
        vocab_map: (V_t,) long, teacher id -> student id or -1 (`build_vocab_map`).
        student_spans / teacher_spans: (B, n, 2) / (B, m, 2) character spans in the shared text; text_lengths: (B,).
        backend: "torch" (batched Sinkhorn), "pot" (POT's `ot.sinkhorn` per sample) or "emd" (exact, per sample).
        student_log_probs: log_softmax(student_logits / T) in float32 if the caller already has it (saves a pass).
    Returns:
        dict with `kd_ot` and `ot_cost` (scalars with gradients to `student_logits`), `ot_cost_per_sample` (B,),
        `kd_sum` and `kd_positions` (for normalising by the number of label tokens), `plan` and
        `masked_teacher_positions`.
    """
    t = temperature
    teacher_topk_logprobs = teacher_topk_logprobs.detach()  # the teacher is a constant target
    finite = torch.isfinite(teacher_topk_logprobs).all(-1)
    teacher_mask = teacher_mask.bool() & finite
    masked = int((~finite).sum())
    student_mask = student_mask.bool()
    log_p = student_log_probs if student_log_probs is not None else torch.log_softmax(student_logits.float() / t, -1)
    q = torch.softmax(torch.nan_to_num(teacher_topk_logprobs.float(), nan=-1e4, posinf=-1e4, neginf=-1e4) / t, -1)
    q = q * teacher_mask[..., None]
    cost = sorted_cost(log_p.exp(), q, k or q.shape[-1])
    if lambda_pos and student_spans is not None and teacher_spans is not None:
        centres_s, centres_t = _centres(student_spans, text_lengths), _centres(teacher_spans, text_lengths)
        cost = cost + lambda_pos * (centres_s[:, :, None] - centres_t[:, None, :]).abs()
    plan = _plan(cost, student_mask, teacher_mask, eps, n_iters, backend)
    has_mass = plan.flatten(1).sum(-1) > 0
    per_sample = (plan * cost).flatten(1).sum(-1)
    ot_cost = per_sample[has_mass].mean() if has_mass.any() else cost.sum() * 0.0

    # transport the teacher distributions to the student positions, in the student's vocabulary
    weights = plan / plan.sum(-1, keepdim=True).clamp(min=1e-30)  # (B, n, m), rows sum to 1 where there is mass
    student_ids = vocab_map.to(teacher_topk_ids.device)[teacher_topk_ids.long().clamp(min=0)]  # (B, m, k_t)
    matched = (student_ids >= 0) & teacher_mask[..., None]
    values = (q * matched).flatten(1)  # (B, m * k_t)
    contributions = weights.repeat_interleave(q.shape[-1], dim=-1) * values[:, None, :]  # (B, n, m * k_t)
    index = student_ids.clamp(min=0).flatten(1)[:, None, :].expand(-1, weights.shape[1], -1)
    mass = contributions.sum(-1)  # matched teacher mass reaching each student position
    use = student_mask & (mass > 1e-12)
    share = contributions / mass.clamp(min=1e-30)[..., None]  # the normalised target, as (id, weight) pairs
    # KL(target || p) = sum t log t - sum t log p. The second part only needs log p at the target's ids (a gather,
    # not a dense target with autograd); the first is a constant, computed densely without a graph.
    cross = (share * log_p.gather(-1, index)).sum(-1)
    with torch.no_grad():
        target = torch.zeros_like(log_p).scatter_add_(-1, index, share)
        entropy_part = (target * torch.log(target.clamp(min=1e-30))).sum(-1)
    kl = (entropy_part - cross) * t * t
    kd_sum = (kl * use).sum()
    positions = int(use.sum())
    return {
        "kd_ot": kd_sum / max(positions, 1),
        "ot_cost": ot_cost,
        "ot_cost_per_sample": per_sample,
        "kd_sum": kd_sum,
        "kd_positions": positions,
        "plan": plan,
        "masked_teacher_positions": masked,
    }


def _plan(cost, student_mask, teacher_mask, eps, n_iters, backend):
    if backend == "torch":
        return sinkhorn(cost, student_mask, teacher_mask, eps=eps, n_iters=n_iters)
    if backend not in ("pot", "emd"):
        raise ConfigError(f"backend must be 'torch', 'pot' or 'emd', not {backend!r}")
    ot = import_pot()
    plan = torch.zeros_like(cost, dtype=torch.float32)
    for b in range(cost.shape[0]):
        rows, cols = student_mask[b].nonzero().squeeze(-1), teacher_mask[b].nonzero().squeeze(-1)
        if len(rows) == 0 or len(cols) == 0:
            continue
        c = cost[b][rows][:, cols].detach().double().cpu().numpy()
        a, w = [1 / len(rows)] * len(rows), [1 / len(cols)] * len(cols)
        p = ot.emd(a, w, c) if backend == "emd" else ot.sinkhorn(a, w, c, eps, numItermax=n_iters, warn=False)
        plan[b, rows[:, None], cols[None, :]] = torch.as_tensor(p, dtype=torch.float32, device=cost.device)
    return plan
