"""Our batched Sinkhorn vs POT per sample (`ot.sinkhorn`, numpy and torch backends) on the same problems:
batch 16, n=128 student positions, m=160 teacher positions, 50 iterations. Ratios are against POT's fastest
per-sample call, measured in the same process; plans are checked to agree.

    python benchmarks/bench_ot.py [--device cuda] [--eps 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hf_whisper_context.losses.sinkhorn import import_pot, sinkhorn


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--m", type=int, default=160)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    ot = import_pot()
    rng = np.random.default_rng(0)
    costs = rng.random((args.batch, args.n, args.m))  # sorted-probability L1 costs lie in [0, 2]
    a, b = np.full(args.n, 1 / args.n), np.full(args.m, 1 / args.m)
    cost_t = torch.tensor(costs, dtype=torch.float32, device=args.device)
    a_t, b_t = torch.tensor(a, device=args.device), torch.tensor(b, device=args.device)

    def pot_numpy():
        return [ot.sinkhorn(a, b, c, args.eps, numItermax=args.iters, stopThr=0, warn=False) for c in costs]

    def pot_torch():
        return [ot.sinkhorn(a_t, b_t, cost_t[i].double(), args.eps, numItermax=args.iters, stopThr=0, warn=False)
                for i in range(args.batch)]  # fmt: skip

    runs = {
        "POT ot.sinkhorn per sample (numpy)": pot_numpy,
        "POT ot.sinkhorn per sample (torch)": pot_torch,
        "ours, batched, auto kernel": lambda: sinkhorn(cost_t, eps=args.eps, n_iters=args.iters),
        "ours, batched, multiplicative": lambda: sinkhorn(cost_t, eps=args.eps, n_iters=args.iters,
                                                          kernel="multiplicative"),
        "ours, batched, log domain": lambda: sinkhorn(cost_t, eps=args.eps, n_iters=args.iters, kernel="log"),
    }  # fmt: skip
    if args.device != "cpu":
        del runs["POT ot.sinkhorn per sample (numpy)"]
    times = {name: _best(fn, args.repeats) for name, fn in runs.items()}
    ours = sinkhorn(cost_t, eps=args.eps, n_iters=args.iters).double().cpu().numpy()
    agreement = max(np.abs(ours[i] - p).max() for i, p in enumerate(pot_numpy()))
    device = torch.cuda.get_device_name() if args.device != "cpu" else f"CPU, {torch.get_num_threads()} threads"
    print(f"batch {args.batch}, {args.n} x {args.m}, eps {args.eps}, {args.iters} iterations, {device}")
    fastest_pot = min(t for name, t in times.items() if name.startswith("POT"))
    for name, seconds in times.items():
        print(f"  {name:36s} {seconds * 1000:8.2f} ms   POT's fastest / this = {fastest_pot / seconds:5.2f}x")
    print(f"  max |plan difference| vs POT: {agreement:.1e}")


if __name__ == "__main__":
    main()
