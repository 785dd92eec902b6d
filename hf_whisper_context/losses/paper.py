"""The paper's loss wiring (DESIGN.md section 5), kept for reproduction and comparison — not the default.

As described for the released code of "Whispering Context":
- both sides' full logits are projected to 128 dimensions by learned linear maps (`PaperProjections`);
- one Sinkhorn problem is solved over the whole batch flattened (student positions of every sample against teacher
  positions of every sample), on the Euclidean distance of the projected vectors; `ot_cost = <P, C>`;
- the "distillation" KL's target is the output projection of the **student's own** projected logits, so the teacher
  reaches the student only through the OT cost, weighted 0.001;
- padding is not masked (pass masks to drop padded positions before flattening: `mask_padding=True`).
These are the flaws `token_ot_distillation` fixes; this function reproduces them on purpose.
"""

from __future__ import annotations

import torch
from torch import nn

from .sinkhorn import sinkhorn

PAPER_DIM = 128


class PaperProjections(nn.Module):
    """The learned maps: student logits -> 128, teacher logits -> 128, and 128 -> student logits (the KL target)."""

    def __init__(self, student_vocab: int, teacher_vocab: int, dim: int = PAPER_DIM):
        super().__init__()
        self.student = nn.Linear(student_vocab, dim)
        self.teacher = nn.Linear(teacher_vocab, dim)
        self.output = nn.Linear(dim, student_vocab)

    def forward(self, student_logits, teacher_logits):
        """(B, n, V_s), (B, m, V_t) -> projected student (B, n, 128), projected teacher (B, m, 128), and the KL
        target's logits (B, n, V_s)."""
        dtype = self.student.weight.dtype
        s = self.student(student_logits.to(dtype))
        return s, self.teacher(teacher_logits.to(dtype)), self.output(s)


def dense_teacher_logits(topk_logprobs, topk_ids, vocab_size: int):
    """Full-vocabulary teacher log-probs from a top-k cache: (B, m, k) -> (B, m, V_t). Tokens outside the top k
    get the position's k-th log-prob (an upper bound of their true value); non-finite entries become -30."""
    values = torch.nan_to_num(topk_logprobs.float(), nan=-30.0, posinf=-30.0, neginf=-30.0)
    floor = values.min(-1, keepdim=True).values
    dense = floor.expand(*values.shape[:-1], vocab_size).clone()
    return dense.scatter_(-1, topk_ids.long().clamp(min=0), values)


def paper_compatible_loss(student_logits, teacher_logits, projections: PaperProjections, student_mask=None,
                          teacher_mask=None, eps: float = 0.1, n_iters: int = 50, temperature: float = 1.0,
                          mask_padding: bool = False) -> dict:  # fmt: skip
    """The paper's terms for a batch.

    Args:
        student_logits: (B, n, V_s); teacher_logits: (B, m, V_t) (e.g. `dense_teacher_logits` of a cache).
        student_mask / teacher_mask: (B, n) / (B, m) bool; used only with `mask_padding=True` (not in the paper).
    Returns:
        dict with `kd` (mean KL(target || student) over the flattened positions; the target is computed from the
        student, not detached), `ot_cost` (<P, C>, gradients to both projections and the student) and `plan`
        ((B*n', B*m') over the flattened batch).
    """
    t = temperature
    s, q, target_logits = projections(student_logits, teacher_logits.detach())
    log_p = torch.log_softmax(student_logits.float() / t, -1)
    target = torch.softmax(target_logits.float() / t, -1)
    if mask_padding and student_mask is not None and teacher_mask is not None:
        s, q, log_p, target = s[student_mask.bool()], q[teacher_mask.bool()], log_p[student_mask.bool()], \
            target[student_mask.bool()]  # fmt: skip
    else:
        s, q = s.flatten(0, 1), q.flatten(0, 1)
        log_p, target = log_p.flatten(0, 1), target.flatten(0, 1)
    if len(s) == 0 or len(q) == 0:
        zero = student_logits.sum() * 0.0
        return {"kd": zero, "ot_cost": zero, "plan": torch.zeros(len(s), len(q))}
    cost = torch.cdist(s.float(), q.float())  # every student position against every teacher position, all samples
    plan = sinkhorn(cost[None] / cost.detach().max().clamp(min=1e-12), eps=eps, n_iters=n_iters)[0]
    kl = (target * (torch.log(target.clamp(min=1e-30)) - log_p)).sum(-1) * t * t
    return {"kd": kl.mean(), "ot_cost": (plan * cost).sum(), "plan": plan}
