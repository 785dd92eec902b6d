"""The experiment's tables: mean ± std over seeds per arm, and paired bootstrap intervals (`metrics.compare`) of each
arm against `ce` and of `ce` against the off-the-shelf model, per evaluated corpus and decoding strategy, and over
the evaluated corpora that hold other articles pooled (`pooled`: more test articles narrow the intervals)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .metrics import HEADLINE
from .metrics.compare import compare
from .report import METRIC_NAMES, arrow, fmt
from .utils import atomic_write

SHOWN = ("wer", "wer_orthographic", "entity_f1", "comma_f1", "period_f1", "capitalization_f1", "loops",
         "insertion_bursts", "deletion_runs")  # fmt: skip


def _collect(out: Path) -> dict:
    """{(corpus, strategy): {group label: {seed: run results}}}, a group being an arm at one context size (seed None:
    an untrained arm)."""
    groups: dict = {}
    for done in sorted((out / "runs").rglob("done.json")):
        info = json.loads(done.read_text())
        label = info["arm"] + (f" [{info['context_words']} words]" if info["context_words"] is not None else "")
        for corpus, path in info["results"].items():
            results = json.loads(Path(path).read_text())
            for run in results["runs"].values():
                key = (corpus, run["strategy"])
                groups.setdefault(key, {}).setdefault(label, {})[info["seed"]] = run
    return groups


def pooled(groups: dict, corpora: list[str]) -> dict:
    """`groups` with, per decoding strategy, one more group over the articles of several corpora: the first of
    `corpora` and each later one whose articles none of those taken holds (more test articles, not the same articles
    in another voice); each arm's run per seed is its runs' articles joined. Only arms with the same seeds on every
    pooled corpus are pooled."""
    out = dict(groups)
    for strategy in sorted({s for _, s in groups}):
        taken, seen = [], set()
        for corpus in corpora:
            by_label = groups.get((corpus, strategy))
            if not by_label:
                continue
            ids = {a["article_id"] for runs in by_label.values() for run in runs.values() for a in run["articles"]}
            if not ids & seen:
                taken.append(corpus)
                seen |= ids
        if len(taken) < 2:
            continue
        pool = {}
        for label, runs in groups[taken[0], strategy].items():
            per_corpus = [groups[c, strategy].get(label, {}) for c in taken]
            if all(set(r) == set(runs) for r in per_corpus):
                pool[label] = {seed: {**runs[seed], "articles": [a for r in per_corpus for a in r[seed]["articles"]]}
                               for seed in runs}  # fmt: skip
        out["+".join(taken), strategy] = pool
    return out


def _mean_std(runs: dict) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (ddof 1; 0 for a single run) over seeds."""
    values = {m: np.array([r["summary"][m] for r in runs.values()], dtype=float) for m in HEADLINE}
    return {m: (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0) for m, v in values.items()}


def _comparisons(by_label: dict, baseline: str, off_the_shelf: str) -> list[dict]:
    """`ce` against the off-the-shelf model, and every other arm against `ce` on the seeds both have."""
    out = []
    base = by_label.get(baseline, {})
    if base and off_the_shelf in by_label:
        ots = by_label[off_the_shelf][None]
        out.append(compare([ots] * len(base), list(base.values()), (off_the_shelf, baseline)))
    for label, runs in by_label.items():
        seeds = sorted(set(base) & set(runs))
        if seeds and label not in (baseline, off_the_shelf):
            out.append(compare([base[s] for s in seeds], [runs[s] for s in seeds], (baseline, label)))
    return out


def write_tables(config, out: Path) -> dict:
    from .experiment import BASELINE, OFF_THE_SHELF, decoding

    groups = pooled(_collect(out), [Path(c).name for c in (config.data, *config.extra_eval)])
    summary = {"config": {k: v for k, v in vars(config).items()}, "results": []}
    lines = [
        f"# Experiment: {', '.join(config.arms)}; seeds {config.seeds}; split {config.eval_split!r}; "
        f"decoding: {decoding(config).describe()}",
        "",
    ]
    for (corpus, strategy), by_label in sorted(groups.items()):
        stats = {label: _mean_std(runs) for label, runs in by_label.items()}
        lines += [f"## {corpus}, {strategy} decoding", "",
                  "| arm | seeds | " + " | ".join(f"{METRIC_NAMES[m]} {arrow(m)}" for m in SHOWN) + " |",
                  "|---" * (len(SHOWN) + 2) + "|"]  # fmt: skip
        for label, values in stats.items():
            n = len(by_label[label])
            cells = [f"{fmt(m, values[m][0])} ± {fmt(m, values[m][1])}" if n > 1 else fmt(m, values[m][0])
                     for m in SHOWN]  # fmt: skip
            lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
        comparisons = _comparisons(by_label, BASELINE, OFF_THE_SHELF)
        for result in comparisons:
            a, b = result["names"]
            lines += ["", f"**{b} − {a}** (paired bootstrap over {result['units']} {result['unit']}s and "
                      f"{result['seeds']} seed pair(s)):", "", "| metric | " + a + " | " + b + " | difference | "
                      "95% CI | excludes 0 |", "|---|---|---|---|---|---|"]  # fmt: skip
            for m in SHOWN:
                c = result["metrics"][m]
                verdict = f"yes: {c['better']} better" if c["excludes_zero"] else "no"
                lines.append(f"| {METRIC_NAMES[m]} {arrow(m)} | {c['a']:.4f} | {c['b']:.4f} | {c['difference']:+.4f} "
                             f"| [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {verdict} |")  # fmt: skip
        lines.append("")
        summary["results"].append({"corpus": corpus, "strategy": strategy, "mean_std": stats,
                                   "comparisons": comparisons})  # fmt: skip
    text = "\n".join(lines) + "\n"
    atomic_write(out / "experiment.md", text)
    atomic_write(out / "experiment.json", json.dumps(summary, indent=2))
    _plot(groups, out)
    print(text)
    return summary


def _plot(groups: dict, out: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("wer", "entity_f1", "comma_f1", "period_f1", "capitalization_f1", "loops")
    for (corpus, strategy), by_label in groups.items():
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6))
        labels = list(by_label)
        for ax, metric in zip(axes, metrics, strict=True):
            stats = [_mean_std(by_label[label])[metric] for label in labels]
            ax.bar(range(len(labels)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3)
            ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="small")
            ax.set_title(f"{METRIC_NAMES[metric].split(' (')[0]} {arrow(metric)}", fontsize="small")
        fig.suptitle(f"{corpus}, {strategy}: mean ± std over seeds")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        atomic_write(out / f"experiment_{corpus}_{strategy}.png", buffer.getvalue())
