"""`compute_all` on one long transcript (an audiobook-sized article, 100k words by default) against jiwer's plain WER
on the same texts in the same process (the alignment alone: the floor of any metric on a word alignment).

The reference is real Wikipedia text (the gensim sample), entity-tagged once by the package's tagger (not timed);
the hypothesis drops, substitutes and inserts words, loses some tags, and loops once. Prints seconds, the ratio to
jiwer, and the process's peak resident memory after each step; `--tagger` also times the tagger mode.

    python benchmarks/bench_metrics.py [--words 100000] [--tagger]
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import jiwer

from hf_whisper_context.data.corpus import wikipedia_articles
from hf_whisper_context.data.entities import EntityTagger
from hf_whisper_context.metrics import compute_all, summary
from hf_whisper_context.metrics.entities import tag_texts
from hf_whisper_context.tags import strip_tags


def _text(n_words: int) -> str:
    import re

    words = []
    for _, wikitext in wikipedia_articles():
        prose = re.sub(r"\{\{[^{}]*\}\}|\[\[(?:[^|\]]*\|)?([^\]]*)\]\]|<[^>]+>|'{2,}|=+", r"\1", wikitext)
        words += [w for w in prose.split() if w.isascii() and w[0].isalnum()]
        if len(words) >= n_words:
            return " ".join(words[:n_words])
    return " ".join((words * (n_words // max(len(words), 1) + 1))[:n_words])


def _hypothesis(reference: str, rng: random.Random) -> str:
    out = []
    for word in reference.split():
        r = rng.random()
        if r < 0.03:
            continue
        out.append(strip_tags(word) if r < 0.06 else word.lower() if r < 0.09 else word)
        if r > 0.99:
            out.append("um")
    middle = len(out) // 2
    return " ".join(out[:middle] + ["the"] * 8 + out[middle:])


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--tagger", action="store_true", help="also time entity_mode='tagger' (spaCy on both)")
    args = parser.parse_args()

    plain = _text(args.words)
    reference = tag_texts([plain], EntityTagger())[0]
    hypothesis = _hypothesis(reference, random.Random(0))
    print(f"{len(plain.split())} reference words, {len(strip_tags(hypothesis).split())} hypothesis words")

    compute_all(["warm up"], ["warm up"], entity_mode="tags")  # imports (transformers' normaliser) not timed
    _, baseline, _ = _timed(lambda: jiwer.wer(plain, strip_tags(hypothesis)))
    result, seconds, peak = _timed(lambda: compute_all([reference], [hypothesis], entity_mode="tags"))
    print(f"jiwer.wer (alignment only):  {baseline:7.2f} s")
    print(f"compute_all, tags mode:      {seconds:7.2f} s  ({seconds / baseline:.1f}x jiwer), "
          f"peak RSS {peak / 2**20:.0f} MiB")  # fmt: skip
    windows, seconds_w, _ = _timed(lambda: compute_all([reference], [hypothesis], "tags", window_words=80))
    print(f"  with 30 s window counts:   {seconds_w:7.2f} s  ({len(windows['windows'][0])} windows)")
    print({k: round(v, 4) for k, v in summary(result).items()})
    if args.tagger:
        _, seconds_t, peak_t = _timed(lambda: compute_all([reference], [strip_tags(hypothesis)], "tagger"))
        print(f"compute_all, tagger mode:    {seconds_t:7.2f} s  ({seconds_t / baseline:.1f}x jiwer), "
              f"peak RSS {peak_t / 2**20:.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
