"""OT token distillation and the representation loss: identities checked by hand (TRL style)."""

import pytest
import torch

from hf_whisper_context.losses import build_vocab_map, pool, representation_loss, sorted_cost, token_ot_distillation


def _problem(b=2, n=5, m=6, v=12, k=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, n, v, generator=g, requires_grad=True)
    teacher = torch.log_softmax(torch.randn(b, m, v, generator=g), -1)
    top = torch.topk(teacher, k, dim=-1)
    return logits, top.values.clone().requires_grad_(True), top.indices, torch.arange(v)


def test_identical_distributions_give_zero_kd():
    logits, _, _, identity = _problem()
    logits = logits.detach()[:, :1].expand(2, 5, 12).clone()  # every position the same distribution
    top = torch.topk(torch.log_softmax(logits[:, :4], -1), 12, dim=-1)  # the teacher says exactly the same
    out = token_ot_distillation(logits, torch.ones(2, 5, dtype=torch.bool), top.values, top.indices,
                                torch.ones(2, 4, dtype=torch.bool), identity)  # fmt: skip
    assert out["kd_ot"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["ot_cost"].item() == pytest.approx(0.0, abs=1e-6)


def test_position_term_aligns_the_plan_and_kd_vanishes():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 4, 12, generator=g) * 3
    top = torch.topk(torch.log_softmax(logits, -1), 12, dim=-1)
    spans = torch.tensor([[[0, 2], [3, 5], [6, 8], [9, 11]]])
    mask = torch.ones(1, 4, dtype=torch.bool)
    out = token_ot_distillation(logits, mask, top.values, top.indices, mask, torch.arange(12), student_spans=spans,
                                teacher_spans=spans, text_lengths=torch.tensor([11]), eps=0.01, lambda_pos=50.0,
                                n_iters=500)  # fmt: skip
    torch.testing.assert_close(out["plan"][0], torch.eye(4) / 4, atol=1e-4, rtol=0)
    assert out["kd_ot"].item() < 1e-3


def test_sorted_cost_ignores_vocabulary_order():
    logits, teacher, _, _ = _problem()
    probs = torch.softmax(logits, -1)
    cost = sorted_cost(probs, teacher.exp(), 8)
    permuted = sorted_cost(probs[..., torch.randperm(12)], teacher.exp()[..., torch.randperm(12)], 8)
    torch.testing.assert_close(cost, permuted)


def test_gradients_reach_the_student_only():
    logits, teacher, ids, identity = _problem()
    mask_s, mask_t = torch.ones(2, 5, dtype=torch.bool), torch.ones(2, 6, dtype=torch.bool)
    out = token_ot_distillation(logits, mask_s, teacher, ids, mask_t, identity)
    (out["kd_ot"] + out["ot_cost"]).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert teacher.grad is None or teacher.grad.abs().sum() == 0


def test_unmatched_teacher_tokens_are_dropped_and_renormalised():
    logits = torch.zeros(1, 1, 4)
    teacher_ids = torch.tensor([[[0, 1]]])
    logprobs = torch.log(torch.tensor([[[0.5, 0.5]]]))
    vocab_map = torch.tensor([2, -1])  # teacher 0 -> student 2; teacher 1 has no counterpart
    out = token_ot_distillation(logits, torch.ones(1, 1, dtype=torch.bool), logprobs, teacher_ids,
                                torch.ones(1, 1, dtype=torch.bool), vocab_map)  # fmt: skip
    # the target is all on student token 2: KL(onehot || uniform over 4) = log 4
    assert out["kd_ot"].item() == pytest.approx(torch.log(torch.tensor(4.0)).item(), abs=1e-5)
    nothing = token_ot_distillation(logits, torch.ones(1, 1, dtype=torch.bool), logprobs, teacher_ids,
                                    torch.ones(1, 1, dtype=torch.bool), torch.tensor([-1, -1]))  # fmt: skip
    assert nothing["kd_positions"] == 0 and nothing["kd_ot"].item() == 0.0


def test_nan_teacher_positions_are_masked_and_counted():
    logits, teacher, ids, identity = _problem()
    poisoned = teacher.detach().clone()
    poisoned[0, 2, 0] = float("nan")
    out = token_ot_distillation(logits, torch.ones(2, 5, dtype=torch.bool), poisoned, ids,
                                torch.ones(2, 6, dtype=torch.bool), identity)  # fmt: skip
    assert out["masked_teacher_positions"] == 1 and out["plan"][0, :, 2].sum() == 0
    assert torch.isfinite(out["kd_ot"]) and torch.isfinite(out["ot_cost"])


def test_no_nan_over_random_problems():
    g = torch.Generator().manual_seed(0)
    for trial in range(3000):
        b, n, m = (int(torch.randint(1, 4, (1,), generator=g)) for _ in range(3))
        dtype = torch.bfloat16 if trial % 2 else torch.float32
        logits = (torch.randn(b, n, 10, generator=g) * 10).to(dtype).requires_grad_(True)
        top = torch.topk(torch.log_softmax(torch.randn(b, m, 10, generator=g) * 10, -1), 4, dim=-1)
        mask_s, mask_t = torch.rand(b, n, generator=g) > 0.3, torch.rand(b, m, generator=g) > 0.3
        eps = (1e-3, 0.1, 1.0)[trial % 3]
        out = token_ot_distillation(logits, mask_s, top.values.to(dtype), top.indices, mask_t, torch.arange(10),
                                    eps=eps, n_iters=20)  # fmt: skip
        total = out["kd_ot"] + out["ot_cost"]
        assert torch.isfinite(total), (trial, b, n, m)
        total.backward()
        assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("backend", ["pot", "emd"])
def test_pot_backends_give_the_same_losses(backend):
    logits, teacher, ids, identity = _problem(b=3)
    mask_s = torch.tensor([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]], dtype=torch.bool)
    mask_t = torch.tensor([[1] * 6, [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    ours = token_ot_distillation(logits, mask_s, teacher, ids, mask_t, identity, eps=0.05, n_iters=2000)
    if backend == "pot":
        theirs = token_ot_distillation(logits, mask_s, teacher, ids, mask_t, identity, eps=0.05, n_iters=2000,
                                       backend="pot")  # fmt: skip
        torch.testing.assert_close(ours["plan"], theirs["plan"], atol=1e-5, rtol=0)
    else:  # exact OT: the entropic cost is close to it for a small eps, and never below it
        exact = token_ot_distillation(logits, mask_s, teacher, ids, mask_t, identity, backend="emd")
        assert exact["ot_cost"] <= ours["ot_cost"] + 1e-6


def test_representation_loss_by_hand():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.tensor([[2.0, 0.0]]))
    torch.testing.assert_close(pool(hidden, mask, "last"), torch.tensor([[3.0, 0.0]]))
    projector = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        projector.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    aligned = representation_loss(hidden, mask, torch.tensor([[5.0, 0.0, 7.0]]), projector)
    orthogonal = representation_loss(hidden, mask, torch.tensor([[0.0, 5.0, 7.0]]), projector)
    assert aligned.item() == pytest.approx(0.0, abs=1e-6) and orthogonal.item() == pytest.approx(1.0, abs=1e-6)
    empty = representation_loss(hidden, torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 3), projector)
    assert empty.item() == 0.0


@pytest.mark.slow
def test_vocab_map_between_whisper_and_smollm2(tiny_en):
    from transformers import AutoTokenizer

    from hf_whisper_context import bundled

    whisper = AutoTokenizer.from_pretrained(tiny_en)
    smol = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    mapping, coverage = build_vocab_map(whisper, smol)
    print(f"SmolLM2 -> Whisper vocabulary coverage: {coverage:.3f}")
    assert 0.2 < coverage < 1.0
    the = smol.convert_tokens_to_ids("Ġthe")
    assert whisper.convert_ids_to_tokens(int(mapping[the])) == "Ġthe"


def test_paper_terms_on_hand_computed_values():
    """The released code's wiring, number by number: CE with smoothing / (V - 1), KL batchmean at T = 2 with a target
    from the student itself, the MSE of L2-normalised vectors, geomloss's Sinkhorn divergence, the weights."""
    import math

    from hf_whisper_context.losses import paper_weights
    from hf_whisper_context.losses.paper import (
        paper_cross_entropy,
        paper_kd,
        paper_representation,
        sinkhorn_divergence,
    )

    # CE: one token, V = 3, label 0: q = (0.9, 0.05, 0.05); a -100 position is ignored
    logits = torch.tensor([[[2.0, 1.0, 0.0], [5.0, 5.0, 5.0]]])
    lp = [2 - math.log(math.exp(2) + math.exp(1) + 1), 1 - math.log(math.exp(2) + math.exp(1) + 1)]
    lp.append(lp[1] - 1)
    expected = -(0.9 * lp[0] + 0.05 * lp[1] + 0.05 * lp[2])
    assert paper_cross_entropy(logits, torch.tensor([[0, -100]])).item() == pytest.approx(expected, rel=1e-6)
    # KD: batchmean = summed over positions and tokens, divided by B (here 2), times T^2 = 4
    student, target = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]]]), torch.tensor([[[0.0, 2.0]], [[0.0, 0.0]]])
    p = torch.softmax(student / 2, -1)
    q = torch.softmax(target / 2, -1)
    kl = (q * (q.log() - p.log())).sum()
    assert paper_kd(student, target).item() == pytest.approx(4 * kl.item() / 2, rel=1e-6)
    # REP: (2 - 2 cos) / d, averaged over the batch
    a, b = torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert paper_representation(a, b).item() == pytest.approx((2 - 2 / math.sqrt(2)) / 4, rel=1e-6)
    # OT: between two single points the debiased Sinkhorn divergence is the cost |x - y|^2 / 2
    x, y = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])
    assert sinkhorn_divergence(x, y).item() == pytest.approx(12.5, rel=1e-4)
    assert sinkhorn_divergence(x.repeat(3, 1), x.repeat(5, 1)).item() == pytest.approx(0.0, abs=1e-6)
    assert paper_weights() == pytest.approx({"ce": 1 - 0.0005 - 0.0005 - 0.001, "kd": 0.0005, "rep": 0.0005,
                                             "ot": 0.001})  # fmt: skip


def test_paper_kl_target_is_the_student_itself():
    """The paper's flaw, reproduced on purpose: changing the teacher leaves its "distillation" term unchanged; the
    teacher reaches the student only through the OT cost, over the flattened batch."""
    from hf_whisper_context.losses import PaperProjections, dense_teacher_logits, paper_terms

    torch.manual_seed(0)
    proj = PaperProjections(50, 70, teacher_dim=6, d_model=4, dim=8)
    student = torch.randn(2, 5, 50, requires_grad=True)
    hidden, embedding, labels = torch.randn(2, 5, 4), torch.randn(2, 6), torch.randint(0, 50, (2, 5))
    out = paper_terms(student, torch.randn(2, 6, 70), hidden, embedding, labels, proj)
    other = paper_terms(student, torch.randn(2, 6, 70) * 10, hidden, embedding, labels, proj)
    torch.testing.assert_close(other["kd"], out["kd"])
    assert not torch.allclose(other["ot"], out["ot"])
    (out["kd"] + 0.001 * out["ot"] + out["rep"]).backward()
    assert student.grad.abs().sum() > 0 and proj.teacher.weight.grad.abs().sum() > 0
    assert proj.embedding.bias.grad.abs().sum() > 0  # the projector of the teacher embedding has a bias

    logprobs = torch.log_softmax(torch.randn(1, 2, 4), -1).sort(-1, descending=True).values
    dense = dense_teacher_logits(logprobs, torch.tensor([[[3, 1, 0, 2], [5, 6, 7, 4]]]), 9)
    assert dense.shape == (1, 2, 9) and dense[0, 0, 3] == logprobs[0, 0, 0]
    assert dense[0, 0, 8] == logprobs[0, 0, -1]  # outside the top k: the k-th value
