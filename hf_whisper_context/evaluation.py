"""Long-form evaluation: transcribe every article of a split with each model and strategy, score whole articles,
and write `results.json`, `results.md` (one column per run) and PNG plots."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from .metrics import compute_all, summary
from .transcribe import Decoding, load_asr_pipeline, transcribe_long

HEADLINE = ("wer", "wer_orthographic", "entity_f1", "comma_f1", "period_f1", "punctuation_error_rate",
            "capitalization_f1")  # fmt: skip


def _write(path: Path, data: str | bytes) -> None:
    """Write a file atomically (temporary file beside it, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def evaluate_longform(models, data, split="test", strategies=("chunked",), output_dir="eval", decoding=Decoding(),
                      batch_size=4, device=None, cache=None, limit=None, labels=None) -> dict:  # fmt: skip
    """Run every (model, strategy) over the split's articles; returns (and writes) the results. Runs are named
    "<label> (<strategy>)", the label being `labels[i]` for `models[i]` or the model folder's name."""
    from tqdm.auto import tqdm

    from .data.dataset import load_swc_articles

    articles = load_swc_articles(data, split)
    if limit:
        articles = articles.select(range(min(limit, len(articles))))
    if len(articles) == 0:
        raise ValueError(f"{data}: the {split!r} split has no article")
    runs = {}
    for i, model in enumerate(models):
        asr = load_asr_pipeline(model, device, cache)
        label = labels[i] if labels else Path(str(model)).name
        for strategy in strategies:
            name = f"{label} ({strategy})"
            rows = []
            for article in tqdm(articles, desc=f"transcribing with {name}", unit="article"):
                started = time.perf_counter()
                transcript = transcribe_long(article["audio_path"], asr, strategy, decoding, batch_size)
                seconds = time.perf_counter() - started
                rows.append({
                    "article_id": article["article_id"],
                    "duration_s": article["duration_s"],
                    "real_time_factor": seconds / article["duration_s"],
                    "hypothesis": transcript.text,
                    "segments": transcript.segments,
                    "scores": summary(compute_all([article["text_tagged"]], [transcript.text])),
                })  # fmt: skip
            corpus = compute_all(list(articles["text_tagged"]), [r["hypothesis"] for r in rows])
            runs[name] = {"model": str(model), "strategy": strategy, "summary": summary(corpus), "corpus": corpus,
                          "articles": rows}  # fmt: skip
    results = {"data": str(data), "split": split, "decoding": decoding.describe(), "runs": runs}
    write_report(results, Path(output_dir))
    return results


def _rows(runs: dict, values) -> dict[str, list[float]]:
    per_run = [values(run) for run in runs.values()]
    keys = sorted({k for v in per_run for k in v})
    return {k: [v.get(k, 0.0) for v in per_run] for k in keys}


def tables(results: dict) -> dict[str, str]:
    """Markdown tables, one column per run: `headline` metrics, `entities` (F1 per type), `punctuation` (F1 per
    mark)."""
    runs = results["runs"]
    names = list(runs)

    def table(title: str, rows: dict[str, list[float]]) -> str:
        lines = [f"| {title} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines.extend(f"| {k} | " + " | ".join(f"{v:.3f}" for v in values) + " |" for k, values in rows.items())
        return "\n".join(lines)

    return {
        "headline": table("metric", {k: [runs[n]["summary"][k] for n in names] for k in HEADLINE}),
        "entities": table("entity F1 by type", _rows(runs, _per_type)),
        "punctuation": table("punctuation F1 by mark", _rows(runs, _per_mark)),
    }


def markdown_table(results: dict) -> str:
    """Headline metrics, then entity F1 per type and punctuation F1 per mark: one column per run."""
    header = f"Decoding: {results['decoding']}; split {results['split']!r} of {results['data']}."
    return "\n\n".join([header, *tables(results).values()]) + "\n"


def _per_type(run: dict) -> dict[str, float]:
    return {t: v["f1"] for t, v in run["corpus"]["entities"]["per_type"].items()}


def _per_mark(run: dict) -> dict[str, float]:
    return {m: v["f1"] for m, v in run["corpus"]["punctuation"]["per_mark_all_words"].items()}


def _per_article(run: dict) -> dict[str, float]:
    return {a["article_id"]: a["scores"]["wer"] for a in run["articles"]}


def _plots(results: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    runs = results["runs"]
    names = list(runs)
    figures = {
        "entity_f1_per_type.png": ("entity F1", _per_type),
        "punctuation_f1_per_mark.png": ("punctuation F1", _per_mark),
        "wer_per_article.png": ("normalised WER", _per_article),
    }
    paths = []
    for filename, (ylabel, values) in figures.items():
        rows = _rows(runs, values)
        keys = list(rows)
        fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(keys) * len(names)), 4))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.bar(np.arange(len(keys)) + i * width, [rows[k][i] for k in keys], width, label=name)
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, rotation=45, ha="right")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fd, tmp = tempfile.mkstemp(dir=out, suffix=".png")
        os.close(fd)
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, out / filename)
        paths.append(out / filename)
    return paths


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _write(out / "results.md", markdown_table(results) + "\n")
    _plots(results, out)
