"""The batched Sinkhorn solver against POT, and its edge cases."""

import numpy as np
import pytest
import torch

from hf_whisper_context.losses.sinkhorn import import_pot, sinkhorn

ot = import_pot()


def _problem(rng, n_max=20, m_max=24):
    n, m = int(rng.integers(1, n_max + 1)), int(rng.integers(1, m_max + 1))
    return rng.random((n, m)), n, m


def _padded(problems, n_pad, m_pad):
    cost = torch.full((len(problems), n_pad, m_pad), 7.0, dtype=torch.float64)  # padding holds junk on purpose
    rows = torch.zeros(len(problems), n_pad, dtype=torch.bool)
    cols = torch.zeros(len(problems), m_pad, dtype=torch.bool)
    for i, (c, n, m) in enumerate(problems):
        cost[i, :n, :m] = torch.from_numpy(c)
        rows[i, :n], cols[i, :m] = True, True
    return cost, rows, cols


@pytest.mark.parametrize("eps", [1.0, 0.1, 0.05, 0.01])
def test_batched_plans_equal_pot_per_sample(eps):
    rng = np.random.default_rng(int(eps * 1000))
    problems = [_problem(rng) for _ in range(8)]  # 4 x 8 = 32 random masked problems
    cost, rows, cols = _padded(problems, 20, 24)
    plan = sinkhorn(cost, rows, cols, eps=eps, n_iters=30000, tol=1e-6)
    for i, (c, n, m) in enumerate(problems):
        reference = ot.bregman.sinkhorn_log(np.full(n, 1 / n), np.full(m, 1 / m), c, eps, numItermax=30000,
                                            stopThr=1e-12)  # fmt: skip
        np.testing.assert_allclose(plan[i, :n, :m].numpy(), reference, atol=1e-6)
        assert plan[i, n:].abs().sum() == 0 and plan[i, :, m:].abs().sum() == 0


@pytest.mark.parametrize("kernel", ["multiplicative", "log"])
def test_marginals_are_the_masks_uniform_weights(kernel):
    cost = torch.rand(3, 6, 5)
    rows = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    cols = torch.tensor([[1, 1, 0, 0, 0], [1] * 5, [1, 1, 1, 1, 0]], dtype=torch.bool)
    plan = sinkhorn(cost, rows, cols, eps=0.5, n_iters=500, kernel=kernel)
    torch.testing.assert_close(plan.sum(-1), rows.float() / rows.sum(-1, keepdim=True), atol=1e-5, rtol=0)
    torch.testing.assert_close(plan.sum(-2), cols.float() / cols.sum(-1, keepdim=True), atol=1e-5, rtol=0)


def test_kernels_agree_and_auto_picks_the_safe_one():
    cost = torch.rand(4, 9, 11)
    mult = sinkhorn(cost, eps=0.2, n_iters=300, kernel="multiplicative")
    log = sinkhorn(cost, eps=0.2, n_iters=300, kernel="log")
    torch.testing.assert_close(mult, log, atol=1e-6, rtol=1e-4)
    huge = sinkhorn(cost * 1000, eps=0.01, n_iters=50)  # range / eps = 1e5: only the log domain survives
    assert torch.isfinite(huge).all() and huge.sum(dim=(1, 2)).sub(1).abs().max() < 1e-3


def test_edge_cases_never_nan():
    rng = torch.Generator().manual_seed(0)
    for _ in range(2000):
        b, n, m = (int(torch.randint(1, 4, (1,), generator=rng)) for _ in range(3))
        cost = torch.rand(b, n, m, generator=rng) * float(torch.rand(1, generator=rng) * 100)
        rows = torch.rand(b, n, generator=rng) > 0.3
        cols = torch.rand(b, m, generator=rng) > 0.3
        for eps in (1e-3, 0.1):
            plan = sinkhorn(cost.to(torch.bfloat16), rows, cols, eps=eps, n_iters=20)
            assert torch.isfinite(plan).all()
            empty = ~(rows.any(-1) & cols.any(-1))
            assert plan[empty].abs().sum() == 0  # a sample with no valid pair moves nothing


def test_no_gradient_flows_through_the_plan():
    cost = torch.rand(2, 3, 4, requires_grad=True)
    plan = sinkhorn(cost, eps=0.1)
    assert not plan.requires_grad
    (plan * cost).sum().backward()  # the gradient reaches the cost through <P, C> only
    torch.testing.assert_close(cost.grad, plan)


def test_too_few_iterations_warn(caplog):
    cost = torch.rand(2, 30, 40, generator=torch.Generator().manual_seed(0)) * 10
    plan = sinkhorn(cost, eps=1e-3, n_iters=1)
    assert torch.isfinite(plan).all() and "did not converge" in caplog.text
    caplog.clear()
    sinkhorn(cost, eps=1.0, n_iters=200)
    assert "did not converge" not in caplog.text


def test_bad_eps():
    with pytest.raises(ValueError, match="eps must be > 0"):
        sinkhorn(torch.rand(1, 2, 2), eps=0)
