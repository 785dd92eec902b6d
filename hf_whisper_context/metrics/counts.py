"""Every metric as additive counts: each metric lists (pair index, counter, amount) events along one alignment, the
events are summed over a corpus (or over a window of it), and the scores are computed from the sums.

Counts add up, so a corpus is scored by summing its texts' counts, and a paired bootstrap resamples counts of
articles or windows instead of re-aligning text (`metrics.compare`). The score functions take plain numbers or
numpy arrays of resampled sums alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

Event = tuple[int, str, float]  # pair index, counter name, amount


def ratio(num, den, empty: float):
    """num / den, or `empty` where den is 0; plain floats for plain numbers, arrays for arrays."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, float(empty))
    np.divide(num, den, out=out, where=den != 0)
    return float(out) if out.ndim == 0 else out


def error_rate(errors, n):
    """errors / n; with n = 0: 0.0 without an error, 1.0 with one."""
    rate = ratio(errors, n, 0.0) + (np.asarray(n) == 0) * (np.asarray(errors) > 0)
    return float(rate) if np.ndim(rate) == 0 else rate


def prf(tp, fp, fn) -> dict:
    """Precision, recall, F1. Nothing predicted: precision 1.0 (no false alarm); nothing to find: recall 1.0."""
    precision, recall = ratio(tp, tp + fp, 1.0), ratio(tp, tp + fn, 1.0)
    return {"precision": precision, "recall": recall, "f1": ratio(2 * precision * recall, precision + recall, 0.0),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


def total(events: Iterable[Event], into: Counter | None = None) -> Counter:
    counts = into if into is not None else Counter()
    for _, key, amount in events:
        counts[key] += amount
    return counts


def windows(events: Iterable[Event], window_of_pair: list[int], n_windows: int) -> list[Counter]:
    """The events summed per window (`window_of_pair[i]` is the window of pair i)."""
    out = [Counter() for _ in range(n_windows)]
    for pair, key, amount in events:
        out[window_of_pair[pair] if window_of_pair else 0][key] += amount
    return out


def get(counts: Mapping, key: str):
    return counts.get(key, 0)
