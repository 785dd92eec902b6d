"""Long-form evaluation: transcribe every article of a split with each model and strategy, score whole articles,
and write `results.json`, `results.md` (one column per run) and PNG plots (`report`).

Each article keeps its additive metric counts, whole and per window of about 30 s of speech (consecutive reference
words, as many as the article speaks in 30 s on average), so that `metrics.compare` can bootstrap two runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections import Counter
from pathlib import Path

from .errors import ConfigError
from .metrics import compute_all, scores_from_counts, summary
from .metrics.alignment import words
from .metrics.entities import resolve_mode
from .report import markdown_table, write_report
from .student_tags import tags_as_text
from .transcribe import Decoding, load_asr_pipeline, transcribe_long

WINDOW_S = 30.0

__all__ = ["article_entry", "evaluate_longform", "markdown_table", "run_entry"]


def window_words(reference: str, duration_s: float) -> int:
    """Reference words in about `WINDOW_S` seconds of this article's speech."""
    return max(1, round(len(words(reference)) * WINDOW_S / max(duration_s, 1e-9)))


def article_entry(article_id: str, reference: str, hypothesis: str, window: int, entity_mode: str = "tags",
                  tagger=None) -> dict:  # fmt: skip
    """One scored article: its headline scores, its counts, and its counts per window of `window` reference words."""
    result = compute_all([reference], [hypothesis], entity_mode, tagger, window_words=window)
    return {"article_id": article_id, "reference_sha256": hashlib.sha256(reference.encode()).hexdigest()[:16],
            "scores": summary(result), "counts": result["counts"], "windows": result["windows"][0]}  # fmt: skip


def run_entry(articles: list[dict], entity_mode: str) -> dict:
    """A run's corpus-level scores: the sum of its articles' counts."""
    counts = Counter()
    for article in articles:
        counts.update(article["counts"])  # update keeps zero counts (a formatting sum of 0.0), `+` would drop them
    corpus = {**scores_from_counts(counts, entity_mode), "entity_mode": entity_mode, "counts": dict(counts)}
    return {"summary": summary(corpus), "corpus": corpus, "articles": articles}


def run_labels(models, labels=None) -> list[str]:
    """One distinct label per model: `labels` as given, else the shortest path tail that tells the models apart
    ("seed0/merged", "seed1/merged")."""
    if labels is not None:
        if len(labels) != len(models) or len(set(labels)) != len(labels):
            raise ConfigError(f"labels {list(labels)} must name the {len(models)} models once each")
        return list(labels)
    parts = [Path(str(model)).parts or (str(model),) for model in models]
    for depth in range(1, max(map(len, parts)) + 1):
        tails = ["/".join(p[-depth:]) for p in parts]
        if len(set(tails)) == len(tails):
            return tails
    raise ConfigError(f"the same model is given twice: {[str(m) for m in models]}")


def evaluate_longform(models, data, split="test", strategies=("chunked",), output_dir="eval", decoding=Decoding(),
                      batch_size=4, device=None, cache=None, limit=None, labels=None,
                      entity_mode="auto", data_name=None, backend="transformers", num_proc=1) -> dict:  # fmt: skip
    """Run every (model, strategy) over the split's articles; returns (and writes) the results. `data` is an SWC
    folder (its `split` is read) or article rows of `data.prepare.prepare_articles` (any `datasets` corpus). Runs
    are named "<label> (<strategy>)", the label being `labels[i]` for `models[i]` or `run_labels`' path tail.
    `entity_mode` as in `compute_all` ("auto": the model's own tags if it writes any, else the references' tagger).
    `backend="faster-whisper"` transcribes with the models' CTranslate2 exports (sequential only; tag tokens are
    special tokens there and are dropped, so entities come from the tagger). `num_proc` > 1 transcribes articles in
    that many processes, torch's threads shared out among them (on a CPU, where one small model's decoding barely
    uses a second thread); the transcripts are those of `num_proc=1`, the real-time factors those of a process."""
    from .data.dataset import load_swc_articles
    from .data.prepare import article_audio

    if isinstance(data, (str, os.PathLike)):
        articles = load_swc_articles(data, split)
    else:
        articles, data = data, data_name or "dataset"
    if limit:
        articles = articles.select(range(min(limit, len(articles))))
    if len(articles) == 0:
        raise ConfigError(f"{data}: the {split!r} split has no article")
    labels = run_labels(models, labels)
    # every model decoded alike: a student's own generation config does not turn the guard on for it alone
    decoding = dataclasses.replace(decoding, timestamp_jump_guard=bool(decoding.timestamp_jump_guard))
    jobs = ((str(model), device, cache, backend, strategy, decoding, batch_size, article_audio(article))
            for model in models for strategy in strategies for article in articles)  # fmt: skip
    done = iter(_transcribe(jobs, len(models) * len(strategies) * len(articles), num_proc))
    runs = {}
    for model, label in zip(models, labels, strict=True):
        for strategy in strategies:
            name = f"{label} ({strategy})" if backend == "transformers" else f"{label} ({strategy}, {backend})"
            transcripts, seconds = zip(*(next(done) for _ in articles), strict=True)
            mode = resolve_mode(entity_mode, [t.text for t in transcripts])
            rows = []
            for article, transcript, took in zip(articles, transcripts, seconds, strict=True):
                reference = article["text_tagged"]
                entry = article_entry(article["article_id"], reference, transcript.text,
                                      window_words(reference, article["duration_s"]), mode)  # fmt: skip
                rows.append(
                    {
                        **entry,
                        "duration_s": article["duration_s"],
                        "reader": article.get("reader") or "",
                        "real_time_factor": took / article["duration_s"],
                        "hypothesis": transcript.text,
                        "segments": transcript.segments,
                    }
                )
            runs[name] = {"model": str(model), "strategy": strategy, **run_entry(rows, mode)}
    described = decoding.describe() + ("" if backend == "transformers" else f", {backend} backend (CTranslate2)")
    results = {"data": str(data), "split": split, "decoding": described, "fallback": decoding.fallback_kwargs(),
               "runs": runs}  # fmt: skip
    write_report(results, Path(output_dir))
    return results


_LOADED: dict = {}  # this process's pipeline: a worker keeps its model from one article to the next


def _transcribe_article(job) -> tuple:
    """(transcript, seconds) of one article: job = (model, device, cache, backend, strategy, decoding, batch_size,
    audio)."""
    model, device, cache, backend, strategy, decoding, batch_size, audio = job
    if _LOADED.get("key") != (model, device, cache, backend):
        _LOADED.clear()  # one model in memory at a time
        asr = load_asr_pipeline(model, device, cache, backend)
        if backend == "transformers":  # a student that writes entity tags is scored on its own tags
            asr.tokenizer = tags_as_text(asr.tokenizer)
        _LOADED.update(key=(model, device, cache, backend), asr=asr)
    if decoding.fallback:  # fallback windows are sampled: the same seed gives the same transcript, in any process
        from transformers import set_seed

        set_seed(0)
    started = time.perf_counter()
    transcript = transcribe_long(audio, _LOADED["asr"], strategy, decoding, batch_size)
    return transcript, time.perf_counter() - started


def _worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _transcribe(jobs, total: int, num_proc: int) -> list[tuple]:
    """`_transcribe_article`'s results over the jobs (an iterable: their audio is read as they are handed out), in
    order: here, or in `num_proc` spawned processes with at most two jobs each in flight."""
    from tqdm.auto import tqdm

    done = []
    with tqdm(total=total, desc="transcribing", unit="article") as bar:
        if num_proc <= 1 or total <= 1:
            try:
                for job in jobs:
                    done.append(_transcribe_article(job))
                    bar.update()
            finally:
                _LOADED.clear()  # the model is not kept once the evaluation is over
            return done
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        import torch

        threads = max(1, torch.get_num_threads() // num_proc)
        with ProcessPoolExecutor(min(num_proc, total), multiprocessing.get_context("spawn"), _worker_threads,
                                 (threads,)) as pool:  # fmt: skip
            pending = deque()
            for job in jobs:
                pending.append(pool.submit(_transcribe_article, job))
                while len(pending) >= 2 * num_proc or (pending and pending[0].done()):
                    done.append(pending.popleft().result())
                    bar.update()
            for future in pending:
                done.append(future.result())
                bar.update()
    return done
