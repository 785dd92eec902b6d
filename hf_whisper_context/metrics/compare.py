"""Is model B really better than model A? A paired bootstrap over articles or 30 s windows, with 95% intervals.

Both runs must have transcribed the same articles (same ids, same reference words). The unit resampled is the
article when there are at least `MIN_ARTICLES` of them, else the window of about 30 s of read speech (consecutive
reference words, as many as the article speaks in 30 s on average; see `evaluation`); the result says which.
Each resample draws units with replacement, the *same* units for A and B (paired), sums their counts and computes
every headline metric from the sums (`scores_from_counts`): counts are resampled, never text, so 10,000 resamples
take well under a second. With several runs per side (seeds), run i of A is paired with run i of B and the seeds
are resampled too, so the interval covers seed-to-seed spread as well as test-set spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import HfWhisperContextError
from . import HEADLINE, LOWER_IS_BETTER, scores_from_counts, summary

MIN_ARTICLES = 20


class CompareError(HfWhisperContextError, ValueError):
    """Two results that cannot be compared (other articles or references, no window counts)."""


def _units(run: dict, unit: str) -> list[dict]:
    if unit == "article":
        return [a["counts"] for a in run["articles"]]
    return [w for a in run["articles"] for w in a["windows"]]


def _check(runs: Sequence[tuple[str, dict]]) -> list[str]:
    """Article ids shared by every run, or a CompareError that names the mismatch."""
    first_name, first = runs[0]
    ids = [a["article_id"] for a in first["articles"]]
    for name, run in runs:
        if any("windows" not in a or "counts" not in a for a in run["articles"]):
            raise CompareError(f"{name} holds no per-window counts: re-run `hf-whisper-context evaluate` with this "
                               "version to compare it")  # fmt: skip
        other = [a["article_id"] for a in run["articles"]]
        if other != ids:
            missing, extra = sorted(set(ids) - set(other)), sorted(set(other) - set(ids))
            raise CompareError(
                f"{first_name} and {name} were evaluated on different articles (only in the first: "
                f"{missing or 'none'}; only in the second: {extra or 'none'}; or another order)"
            )
        for a, b in zip(first["articles"], run["articles"], strict=True):
            if a.get("reference_sha256") != b.get("reference_sha256") or len(a["windows"]) != len(b["windows"]):
                raise CompareError(f"article {a['article_id']!r} has another reference text in {name} than in "
                                   f"{first_name}: the test sets differ")  # fmt: skip
    return ids


def _matrix(runs: Sequence[dict], unit: str, keys: list[str]) -> np.ndarray:
    """(seeds, units, keys) counts."""
    return np.array([[[u.get(k, 0) for k in keys] for u in _units(run, unit)] for run in runs], dtype=float)


def compare(runs_a: Sequence[dict], runs_b: Sequence[dict], names: tuple[str, str] = ("A", "B"), unit: str = "auto",
            n_resamples: int = 10_000, seed: int = 0, confidence: float = 0.95) -> dict:  # fmt: skip
    """Paired bootstrap of B - A for every headline metric.

    `runs_a`/`runs_b`: runs of `evaluate_longform`'s results (`results["runs"][name]`), one per seed, paired by
    position. Returns the unit used, the counts of units and seeds, and per metric A's and B's values (on all the
    data; count metrics such as loops per seed, as in the experiment's mean), B - A, the interval of B - A and
    whether it excludes 0 (and so which side is better).
    """
    if not runs_a or len(runs_a) != len(runs_b):
        raise CompareError(f"need the same number of runs on both sides (seeds), got {len(runs_a)} and {len(runs_b)}")
    labelled = [(f"{names[0]}[{i}]", r) for i, r in enumerate(runs_a)] + \
        [(f"{names[1]}[{i}]", r) for i, r in enumerate(runs_b)]  # fmt: skip
    ids = _check(labelled)
    if unit == "auto":
        unit = "article" if len(ids) >= MIN_ARTICLES else "window"
    if unit not in ("article", "window"):
        raise CompareError(f"unit must be auto, article or window, not {unit!r}")
    keys = sorted({k for _, r in labelled for u in _units(r, unit) for k in u})
    a, b = _matrix(runs_a, unit, keys), _matrix(runs_b, unit, keys)
    n_seeds, n_units = a.shape[0], a.shape[1]
    rng = np.random.default_rng(seed)
    unit_weights = rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=n_resamples).astype(float)
    seed_weights = (rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_resamples).astype(float)
                    if n_seeds > 1 else np.ones((n_resamples, 1)))  # fmt: skip
    mode_a, mode_b = runs_a[0]["corpus"]["entity_mode"], runs_b[0]["corpus"]["entity_mode"]

    def headline(x: np.ndarray, unit_w: np.ndarray, seed_w: np.ndarray) -> dict[str, np.ndarray]:
        sums = np.einsum("ru,suk,rs->rk", unit_w, x, seed_w) / n_seeds  # counts per seed; rates are unchanged
        values = summary(scores_from_counts({k: sums[:, j] for j, k in enumerate(keys)}))
        return {k: np.broadcast_to(np.asarray(v, dtype=float), (len(sums),)) for k, v in values.items()}

    resampled_a, resampled_b = headline(a, unit_weights, seed_weights), headline(b, unit_weights, seed_weights)
    observed_a = headline(a, np.ones((1, n_units)), np.ones((1, n_seeds)))
    observed_b = headline(b, np.ones((1, n_units)), np.ones((1, n_seeds)))
    tail = (1 - confidence) / 2 * 100
    metrics = {}
    for name in HEADLINE:
        diff = resampled_b[name] - resampled_a[name]
        low, high = np.percentile(diff, [tail, 100 - tail])
        excludes = bool(low > 0 or high < 0)
        b_better = (high < 0) if name in LOWER_IS_BETTER else (low > 0)
        metrics[name] = {
            "a": float(observed_a[name][0]), "b": float(observed_b[name][0]),
            "difference": float(observed_b[name][0] - observed_a[name][0]),
            "ci_low": float(low), "ci_high": float(high), "excludes_zero": excludes,
            "better": (names[1] if b_better else names[0]) if excludes else None,
        }  # fmt: skip
    return {"names": list(names), "unit": unit, "units": n_units, "articles": len(ids), "seeds": n_seeds,
            "resamples": n_resamples, "confidence": confidence, "entity_modes": [mode_a, mode_b],
            "metrics": metrics}  # fmt: skip


def compare_table(result: dict) -> str:
    """Markdown: one row per headline metric, A, B, B - A and its interval."""
    a, b = result["names"]
    pct = round(result["confidence"] * 100)
    articles = f"{result['articles']} article" + ("s" if result["articles"] != 1 else "")
    lines = [f"Paired bootstrap over {result['units']} {result['unit']}s ({articles}, "
             f"{result['seeds']} run(s) per side, {result['resamples']} resamples); entity F1 modes: "
             f"{' / '.join(result['entity_modes'])}.", "",
             f"| metric | {a} | {b} | {b} − {a} | {pct}% CI | excludes 0 |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in result["metrics"].items():
        arrow = "↓" if name in LOWER_IS_BETTER else "↑"
        verdict = f"yes ({m['better']} better)" if m["excludes_zero"] else "no"
        lines.append(f"| {name} {arrow} | {m['a']:.4g} | {m['b']:.4g} | {m['difference']:+.4f} | "
                     f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}] | {verdict} |")  # fmt: skip
    return "\n".join(lines)
