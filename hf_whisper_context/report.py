"""Reports of evaluation results: metric names, Markdown tables and PNG plots, for the evaluate command, the model
cards and the main job alike. Results are `evaluation.evaluate_longform`'s (one run per model and strategy)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .metrics import HEADLINE, LOWER_IS_BETTER
from .utils import atomic_write

METRIC_NAMES = {
    "wer": "WER (normalised)",
    "wer_orthographic": "WER (orthographic)",
    "entity_f1": "Entity F1 (micro, strict)",
    "comma_f1": "Comma F1",
    "period_f1": "Period F1",
    "punctuation_error_rate": "Punctuation error rate",
    "capitalization_f1": "Capitalization F1",
    "loops": "Loops (repeated n-gram runs)",
    "insertion_bursts": "Insertion bursts (>= 10 words)",
    "deletion_runs": "Deletion runs (>= 20 words)",
}
COUNT_METRICS = frozenset({"loops", "insertion_bursts", "deletion_runs"})
PLOT_FILES = ("entity_f1_per_type.png", "punctuation_f1_per_mark.png", "wer_per_article.png", "loops_and_drops.png")


def arrow(metric: str) -> str:
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def fmt(metric: str, value) -> str:
    """A value as tables show it: counts as integers (means over seeds: one decimal), rates with 3 decimals, "–" where
    nothing was scored."""
    if value is None:
        return "–"
    if metric in COUNT_METRICS:
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{value:.3f}"


def _unsupported(scores: dict, count: str = "support") -> bool:
    """Nothing to score: no instance in the reference and none predicted (the F1 of 1.0 there means nothing)."""
    return scores.get(count, 0) == 0 and scores.get("fp", 0) == 0


def shown_summary(run: dict) -> dict:
    """The run's headline numbers as tables and cards show them: None ("–") where a metric had nothing to score."""
    corpus, out = run["corpus"], dict(run["summary"])
    marks = corpus["punctuation"]["per_mark_all_words"]
    empty = {"entity_f1": _unsupported(corpus["entities"]["micro"]),
             "comma_f1": _unsupported(marks[","], "reference_count"),
             "period_f1": _unsupported(marks["."], "reference_count"),
             "capitalization_f1": not corpus["capitalization"].get("defined", True)}  # fmt: skip
    return {k: None if empty.get(k) else v for k, v in out.items()}


def _per_type(run: dict) -> dict[str, float]:
    return {t: v["f1"] for t, v in run["corpus"]["entities"]["per_type"].items()}


def _per_mark(run: dict) -> dict[str, float | None]:
    """F1 per mark; None (shown "–") for a mark that occurs on neither side."""
    marks = run["corpus"]["punctuation"]["per_mark_all_words"]
    return {m: (v["f1"] if v["reference_count"] or v["fp"] else None) for m, v in marks.items()}


def _per_article(run: dict) -> dict[str, float]:
    return {a["article_id"]: a["scores"]["wer"] for a in run["articles"]}


def _per_reader(run: dict) -> dict[str, float]:
    """Normalised WER per reader (voice): the counts of the articles each one read, added up."""
    from collections import Counter

    from .metrics.wer import wer_from_counts

    counts: dict[str, Counter] = {}
    for article in run["articles"]:
        if article.get("reader"):
            counts.setdefault(article["reader"], Counter()).update(article["counts"])
    return {r: wer_from_counts(c, "normalised")["wer"] for r, c in counts.items()}


def _loops(run: dict) -> dict[str, float]:
    return {k: run["summary"][k] for k in sorted(COUNT_METRICS)}


def _rows(runs: dict, values) -> dict[str, list]:
    per_run = [values(run) for run in runs.values()]
    keys = sorted({k for v in per_run for k in v})
    return {k: [v.get(k) for v in per_run] for k in keys}


def tables(results: dict) -> dict[str, str]:
    """Markdown tables, one column per run: `headline` metrics, `entities` (F1 per type), `punctuation` (F1 per
    mark), and `readers` (normalised WER per reader or voice, where the articles name one; "mixed": voices change
    inside the article)."""
    runs = results["runs"]
    names = list(runs)

    def table(title: str, rows: dict[str, list], metric=lambda key: "") -> str:
        lines = [f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines.extend(f"| {k} | " + " | ".join(fmt(metric(k), v) for v in values) + " |" for k, values in rows.items())
        return "\n".join(lines)

    shown = {n: shown_summary(runs[n]) for n in names}
    headline = {f"{METRIC_NAMES[k]} {arrow(k)}": [shown[n][k] for n in names] for k in HEADLINE}
    keys = {f"{METRIC_NAMES[k]} {arrow(k)}": k for k in HEADLINE}
    modes = " / ".join(sorted({run["corpus"]["entity_mode"] for run in runs.values()}))
    out = {
        "headline": table("metric", headline, keys.get),
        "entities": table(f"entity F1 by type (entities from: {modes})", _rows(runs, _per_type)),
        "punctuation": table("punctuation F1 by mark (– : on neither side)", _rows(runs, _per_mark)),
    }
    readers = _rows(runs, _per_reader)
    if readers:
        out["readers"] = table("WER (normalised) by reader", readers)
    return out


def markdown_table(results: dict) -> str:
    """Headline metrics, then entity F1 per type and punctuation F1 per mark: one column per run."""
    header = f"Decoding: {results['decoding']}; split {results['split']!r} of {results['data']}."
    return "\n\n".join([header, *tables(results).values()]) + "\n"


def plots(results: dict, out: Path) -> list[Path]:
    """Bar charts, one group of bars per run: entity F1 per type, punctuation F1 per mark, WER per article, and the
    loop and drop counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = results["runs"]
    names = list(runs)
    support = Counter()  # reference entities per type (the same references in every run): sort and label by it
    for t, v in next(iter(runs.values()))["corpus"]["entities"]["per_type"].items():
        support[t] = v["support"]
    kinds = (
        ("entity F1", _per_type),
        ("punctuation F1", _per_mark),
        ("normalised WER", _per_article),
        ("count", _loops),
    )
    figures = dict(zip(PLOT_FILES, kinds, strict=True))
    paths = []
    for filename, (ylabel, values) in figures.items():
        rows = _rows(runs, values)
        keys = list(rows)
        labels = keys
        if values is _per_type:  # most frequent types first, each with its number of reference entities
            keys = sorted(keys, key=lambda t: (-support[t], t))
            labels = [f"{t} ({support[t]})" for t in keys]
        fig, ax = plt.subplots(figsize=(min(12, max(6, 0.35 * len(keys) * len(names) + 2)), 4.5))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            heights = [rows[k][i] if rows[k][i] is not None else 0.0 for k in keys]
            ax.bar(np.arange(len(keys)) + i * width, heights, width, label=name)
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, labels, rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, not on them
        fig.tight_layout()
        paths.append(_save_png(fig, out / filename))
    return paths


def loss_plot(history: list[dict], path: Path) -> Path:
    """Training curves from a Trainer's `log_history`: the loss and every logged term, against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logged = [h for h in history if "loss" in h and "step" in h]
    terms = [k for k in logged[0] if k not in ("step", "epoch", "learning_rate", "grad_norm")] if logged else []
    fig, ax = plt.subplots(figsize=(7, 4))
    for term in terms:
        ax.plot([h["step"] for h in logged], [float(h[term]) for h in logged], label=term)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _save_png(fig, path)


def _save_png(fig, path: Path) -> Path:
    """Write a matplotlib figure as a PNG, atomically, and close it."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())


def write_report(results: dict, out: Path) -> None:
    import json

    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    atomic_write(out / "results.md", markdown_table(results) + "\n")
    plots(results, out)
