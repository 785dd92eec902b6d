"""The paper's loss wiring, as its released code computes it — kept to reproduce and compare with, not the default.

"Whispering Context" (arXiv 2508.13376), released training code (`distill/`):
- cross-entropy with label smoothing 0.1 spread as smoothing / (V - 1) over the other tokens, mean over the label
  tokens (`ce`);
- both sides' full logits projected to 128 dimensions by learned linear maps (`PaperProjections`); the OT term is
  geomloss's debiased Sinkhorn divergence (`SamplesLoss("sinkhorn", blur=0.05)`: p = 2, cost |x - y|^2 / 2) between
  the projected student and teacher positions of the whole batch flattened, padding included (`ot`);
- the "distillation" KL's target is the output projection (128 -> student vocabulary) of the **student's own**
  projected logits, not detached: `T^2 * KL(softmax(target / T) || softmax(student / T))` with
  `reduction="batchmean"` (summed over every position and token, divided by the batch size), T = 2 (`kd`);
- the representation loss is the MSE of L2-normalised vectors: the decoder's last hidden state at the last
  (possibly padded) position against `Linear(d_teacher, d_model, bias=True)` of the teacher's context embedding,
  mean over batch and dimensions, i.e. (2 - 2 cos) / d (`rep`);
- total = alpha * kd + beta * rep + 0.001 * ot + (1 - alpha - beta - 0.001) * ce, evaluated at alpha = beta = 0.0005.
The teacher reaches the student only through the OT cost; `token_ot_distillation` is this package's answer to that.
Differences forced by a top-k cache: the teacher's full logits are rebuilt from its top-k log-probabilities
(`dense_teacher_logits`; log-probs differ from logits by a per-position constant, which the learned projection
absorbs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAPER_DIM = 128
PAPER_TEMPERATURE = 2.0
PAPER_BLUR = 0.05
PAPER_SMOOTHING = 0.1
PAPER_OT_WEIGHT = 0.001
PAPER_ALPHA = PAPER_BETA = 0.0005


class PaperProjections(nn.Module):
    """The learned maps: student logits -> 128, teacher logits -> 128, 128 -> student logits (the KL target), and
    the teacher embedding -> d_model (with a bias) for the representation loss."""

    def __init__(self, student_vocab: int, teacher_vocab: int, teacher_dim: int, d_model: int, dim: int = PAPER_DIM):
        super().__init__()
        self.student = nn.Linear(student_vocab, dim)
        self.teacher = nn.Linear(teacher_vocab, dim)
        self.output = nn.Linear(dim, student_vocab)
        self.embedding = nn.Linear(teacher_dim, d_model)


def dense_teacher_logits(topk_logprobs, topk_ids, vocab_size: int):
    """Full-vocabulary teacher log-probs from a top-k cache: (B, m, k) -> (B, m, V_t). Tokens outside the top k
    get the position's k-th log-prob (an upper bound of their true value); non-finite entries become -30."""
    values = torch.nan_to_num(topk_logprobs.float(), nan=-30.0, posinf=-30.0, neginf=-30.0)
    floor = values.min(-1, keepdim=True).values
    dense = floor.expand(*values.shape[:-1], vocab_size).clone()
    return dense.scatter_(-1, topk_ids.long().clamp(min=0), values)


def paper_cross_entropy(logits, labels, smoothing: float = PAPER_SMOOTHING):
    """(B, n, V), (B, n) with -100 ignored -> mean over label tokens of -sum_v q_v log p_v, where q puts
    1 - smoothing on the label and smoothing / (V - 1) on every other token."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    valid = labels != -100
    target_lp = log_p.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    others = log_p.sum(-1) - target_lp
    per_token = -((1 - smoothing) * target_lp + smoothing / (log_p.shape[-1] - 1) * others)
    return (per_token * valid).sum() / valid.sum().clamp(min=1)


def paper_kd(student_logits, target_logits, temperature: float = PAPER_TEMPERATURE):
    """T^2 * KL(softmax(target / T) || softmax(student / T)), summed over every position and token, divided by the
    batch size (torch's `kl_div(..., reduction="batchmean")` on (B, n, V))."""
    log_p = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    target = torch.softmax(target_logits.float() / temperature, dim=-1)
    return F.kl_div(log_p, target, reduction="batchmean") * temperature**2


def paper_representation(student_hidden, teacher_embedding):
    """MSE of the L2-normalised vectors, mean over batch and dimensions: (B, d), (B, d) -> scalar."""
    return F.mse_loss(F.normalize(student_hidden.float(), dim=1), F.normalize(teacher_embedding.float(), dim=1))


def sinkhorn_divergence(x, y, blur: float = PAPER_BLUR):
    """geomloss's debiased Sinkhorn divergence between two point clouds (N, D), (M, D) with uniform weights."""
    from geomloss import SamplesLoss

    x, y = x.float(), y.float()
    both = torch.cat([x, y]).detach()
    # geomloss's own diameter estimate (the bounding box's diagonal), kept >= blur: it takes log(0) when every point
    # coincides, which a degenerate batch can do
    diameter = max(float((both.max(0).values - both.min(0).values).norm()), blur)
    return SamplesLoss("sinkhorn", p=2, blur=blur, diameter=diameter, backend="tensorized")(x, y)


def paper_terms(student_logits, teacher_logits, student_hidden, teacher_embedding, labels,
                projections: PaperProjections, temperature: float = PAPER_TEMPERATURE) -> dict:  # fmt: skip
    """The paper's four terms for a batch (weights are applied by the caller).

    student_logits: (B, n, V_s); teacher_logits: (B, m, V_t); student_hidden: (B, n, d_model) decoder output;
    teacher_embedding: (B, D); labels: (B, n) with -100 ignored.
    """
    s = projections.student(student_logits.to(projections.student.weight.dtype))
    q = projections.teacher(teacher_logits.detach().to(projections.teacher.weight.dtype))
    return {
        "ce": paper_cross_entropy(student_logits, labels),
        "kd": paper_kd(student_logits, projections.output(s), temperature),
        "ot": sinkhorn_divergence(s.flatten(0, 1), q.flatten(0, 1)),
        "rep": paper_representation(student_hidden[:, -1], projections.embedding(teacher_embedding.to(
            projections.embedding.weight.dtype))),
    }  # fmt: skip


def paper_weights(alpha: float = PAPER_ALPHA, beta: float = PAPER_BETA, ot_weight: float = PAPER_OT_WEIGHT) -> dict:
    """The weights of the convex combination: alpha * kd + beta * rep + ot_weight * ot + (1 - ...) * ce."""
    return {"ce": 1 - alpha - beta - ot_weight, "kd": alpha, "rep": beta, "ot": ot_weight}
