"""SWC folders -> `datasets` objects: one row per chunk (training), one row per article (long-form evaluation).

The split is by article, deterministic (seeded), and saved as `splits.json` next to the data so that later runs,
and other tools, use the same one; no article is in two splits. Audio is referenced by path and decoded with
soundfile (`chunk_audio`, `with_audio`), so no ffmpeg/torchcodec is needed. Rows are built with
`Dataset.from_generator`, whose fingerprint covers the files' sizes and mtimes and every setting: a second load
with the same inputs reads the Arrow cache.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..audio import SAMPLING_RATE, SPAN_SLACK_S, decode_source, read_span
from ..errors import ConfigError
from ..utils import atomic_write
from .chunking import ChunkConfig, chunk_article, flatten
from .entities import DEFAULT_SPACY_MODEL, TAGGER_VERSION, EntityTagger
from .swc import SWCError, read_article

logger = logging.getLogger(__name__)

DATA_VERSION = "7"
MAX_AUDIO_S = 30.0
SPLITS = ("train", "validation", "test")
WINDOWS = ("window", "shifted_window")  # a chunk row's long-form windows (chunking.chunk_article)
WINDOW_TEXTS = ("text", "text_tagged", "text_segments", "text_tagged_segments")  # a chunk row's windows hold these


def _signature(folder: Path) -> list:
    files = sorted(p for p in folder.iterdir() if p.name == "aligned.swc" or p.name.startswith("audio"))
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def article_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "aligned.swc").is_file())


def make_splits(root: str | Path, test_articles: int = 3, validation_articles: int = 0, seed: int = 0) -> dict:
    """Article ids per split, read from `root/splits.json` when it lists exactly these articles, else drawn
    (seeded) and saved there."""
    root = Path(root)
    ids = [p.name for p in article_folders(root)]
    path = root / "splits.json"
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if sorted(a for s in SPLITS for a in saved.get(s, [])) == sorted(ids):
            return saved
        logger.warning("%s lists other articles than %s holds; drawing a new split", path, root)
    if test_articles + validation_articles > len(ids):
        raise ConfigError(
            f"{root} has {len(ids)} articles: too few for {test_articles} test + {validation_articles} validation "
            "articles"
        )
    if test_articles + validation_articles == len(ids):
        logger.info("%s: every article is held out (no training split): a corpus to evaluate on", root)
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    n_test, n_val = test_articles, validation_articles
    splits = {
        "train": sorted(order[n_test + n_val :]),
        "validation": sorted(order[n_test : n_test + n_val]),
        "test": sorted(order[:n_test]),
    }
    atomic_write(path, json.dumps(splits, indent=2))
    return splits


def _tagged_articles(folders: list[str], spacy_model: str | None, tag_cache: str | None):
    """(article, flattened article with entity spans) per readable folder; unreadable ones are skipped and logged."""
    tagger = EntityTagger(spacy_model, cache_dir=tag_cache) if spacy_model else None
    skipped = []
    for folder in folders:
        try:
            article = read_article(folder)
        except SWCError as e:
            skipped.append(str(e))
            logger.warning("skipped %s", e)
            continue
        spans = tagger.tag([s.text for s in article.sentences]) if tagger else None
        yield article, flatten(article, spans)
    if skipped:
        logger.warning("skipped %d of %d articles: %s", len(skipped), len(folders), "; ".join(skipped))


def _segments(article, start_ms: float, end_ms: float) -> tuple[list[str], list[float], list[float]]:
    """Audio files and file-relative second spans covering [start_ms, end_ms] of the article's timeline."""
    (first, t0), (last, t1) = article.locate(start_ms), article.locate(end_ms)
    paths, starts, ends = [], [], []
    for i in range(first, last + 1):
        paths.append(str(article.audio[i].path))
        starts.append(t0 if i == first else 0.0)
        ends.append(t1 if i == last else float("inf"))
    return paths, starts, ends


def _window_row(article, window: dict) -> dict:
    """A chunk's long-form window as a row value: its audio spans and its texts."""
    spans = _segments(article, window["start_ms"], window["end_ms"])
    return {**dict(zip(("audio_path", "audio_start_s", "audio_end_s"), spans, strict=True)),
            **{k: window[k] for k in WINDOW_TEXTS}}  # fmt: skip


def _chunk_rows(folders: list[str], config: dict, spacy_model: str | None, tag_cache: str | None, **_fingerprint):
    chunk_config = ChunkConfig(**config)
    row_index = 0  # the row's position in its split: what the teacher cache and the collator key on
    for article, flat in _tagged_articles(folders, spacy_model, tag_cache):
        chunks = chunk_article(flat, chunk_config, audio_end_ms=article.duration_s * 1000)
        for index, chunk in enumerate(chunks):
            seconds = (chunk["end_ms"] - chunk["start_ms"]) / 1000
            if seconds > MAX_AUDIO_S:
                logger.warning("%s chunk %d: %.1f s of audio > 30 s; skipped", article.identifier, index, seconds)
                continue
            if chunk["end_ms"] / 1000 > article.duration_s + SPAN_SLACK_S:
                logger.warning("%s chunk %d: its words run to %.1f s, past the end of the audio (%.1f s; untimed "
                               "words at the end); skipped", article.identifier, index, chunk["end_ms"] / 1000,
                               article.duration_s)  # fmt: skip
                continue
            lo, hi = chunk["middle"]
            paths, starts, ends = _segments(article, chunk["start_ms"], chunk["end_ms"])
            windows = {key: _window_row(article, chunk[key]) for key in WINDOWS}
            yield {
                "row_index": row_index,
                "article_id": article.identifier,
                "title": article.title,
                "chunk_index": index,
                "n_chunks": len(chunks),
                "audio_path": paths,
                "audio_start_s": starts,
                "audio_end_s": ends,
                "start_s": chunk["start_ms"] / 1000,
                "end_s": chunk["end_ms"] / 1000,
                "middle_start_s": chunk["middle_start_ms"] / 1000,
                "middle_end_s": chunk["middle_end_ms"] / 1000,
                "text": chunk["text"],
                "text_tagged": chunk["text_tagged"],
                "text_timestamps": chunk["text_timestamps"],
                "text_segments": chunk["text_segments"],
                "text_tagged_segments": chunk["text_tagged_segments"],
                "middle_text": chunk["middle_text"],
                "middle_text_tagged": chunk["middle_text_tagged"],
                "context_before": chunk["context_before"],
                "context_after": chunk["context_after"],
                "middle_entities": [t for s, e, t in flat.entities if lo <= s and e <= hi],
                **windows,
            }
            row_index += 1


def _article_rows(folders: list[str], spacy_model: str | None, tag_cache: str | None, **_fingerprint):
    for article, flat in _tagged_articles(folders, spacy_model, tag_cache):
        yield {
            "article_id": article.identifier,
            "title": article.title,
            "audio_path": [str(a.path) for a in article.audio],
            "audio_offset_s": [a.offset_s for a in article.audio],
            "duration_s": article.duration_s,
            "reader": article.reader,
            "text": flat.render(0, len(flat.texts)),
            "text_tagged": flat.render(0, len(flat.texts), tags=True),
            "entities": [t for _, _, t in flat.entities],
        }


def _build(generator, folders: list[str], cache_dir, **kwargs):
    from datasets import Dataset

    fingerprint = {"data_version": DATA_VERSION, "tagger_version": TAGGER_VERSION}
    fingerprint["files"] = [_signature(Path(f)) for f in folders]
    return Dataset.from_generator(
        generator, gen_kwargs={"folders": folders, **kwargs, **fingerprint}, cache_dir=cache_dir
    )


def _tag_cache(cache_dir) -> str:
    from ..bundled import cache_dir as package_cache

    return str(Path(cache_dir) / "entities" if cache_dir else package_cache() / "entities")


def load_swc(
    root: str | Path,
    chunk_config: ChunkConfig = ChunkConfig(),
    spacy_model: str | None = DEFAULT_SPACY_MODEL,
    test_articles: int = 3,
    validation_articles: int = 0,
    seed: int = 0,
    cache_dir: str | Path | None = None,
):
    """A `DatasetDict` of chunks, split by article. `spacy_model=None` skips entity tagging (tags stay empty);
    `cache_dir` holds the Arrow files and the entity tags (default: datasets' cache and the package cache).

    Columns: row_index (position in the split), article_id, title, chunk_index, n_chunks,
    audio_path/audio_start_s/audio_end_s (file segments, seconds
    into each file), start_s/end_s and middle_start_s/middle_end_s (article timeline), text, text_tagged,
    text_timestamps, text_segments, text_tagged_segments (targets with Whisper timestamps), middle_text,
    middle_text_tagged, context_before, context_after, middle_entities.
    """
    from datasets import DatasetDict

    root = Path(root)
    splits = make_splits(root, test_articles, validation_articles, seed)
    tag_cache = _tag_cache(cache_dir)
    return DatasetDict(
        {
            name: _build(
                _chunk_rows,
                [str(root / a) for a in ids],
                cache_dir,
                config=asdict(chunk_config),
                spacy_model=spacy_model,
                tag_cache=tag_cache,
            )
            for name, ids in splits.items()
            if ids
        }
    )


def load_swc_articles(root: str | Path, split: str = "test", spacy_model: str | None = DEFAULT_SPACY_MODEL,
                      cache_dir: str | Path | None = None):  # fmt: skip
    """One row per article of `split` (from `splits.json`, see `make_splits`), for long-form evaluation."""
    root = Path(root)
    if not (root / "splits.json").is_file():
        raise FileNotFoundError(f"{root}/splits.json is missing: call load_swc (or `corpus stats`) first")
    ids = json.loads((root / "splits.json").read_text(encoding="utf-8"))[split]
    tag_cache = _tag_cache(cache_dir)
    return _build(_article_rows, [str(root / a) for a in ids], cache_dir, spacy_model=spacy_model,
                  tag_cache=tag_cache)  # fmt: skip


def chunk_audio(row: dict, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode a chunk row's audio (soundfile, any of wav/flac/ogg), mono, at `sampling_rate`: the file segments of
    an SWC row, or the `audio` source of a `prepare_dataset` row; `AudioError` if a segment is not inside its file
    or the audio is damaged."""
    if "audio_path" not in row:
        return decode_source(row["audio"], sampling_rate, row["audio_start_s"], row["audio_end_s"])
    segments = zip(row["audio_path"], row["audio_start_s"], row["audio_end_s"], strict=True)
    return np.concatenate([read_span(path, start, end, sampling_rate) for path, start, end in segments])


def with_audio(dataset, sampling_rate: int = SAMPLING_RATE):
    """The dataset with an `audio` column ({"array", "sampling_rate"}) decoded on access."""

    def decode(batch):
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        batch["audio"] = [{"array": chunk_audio(r, sampling_rate), "sampling_rate": sampling_rate} for r in rows]
        return batch

    decoded = dataset.with_transform(decode)
    # same rows, audio decoded on access: keep the identity that the teacher cache was fingerprinted with
    decoded._fingerprint = dataset._fingerprint
    return decoded


def corpus_stats(dataset_dict) -> dict:
    """Articles, hours of speech (to each article's last chunk end), chunks and entities per type, per split."""
    stats = {}
    for name, ds in dataset_dict.items():
        ends: dict[str, float] = {}
        for article, end in zip(ds["article_id"], ds["end_s"], strict=True):
            ends[article] = max(end, ends.get(article, 0.0))
        stats[name] = {
            "articles": len(ends),
            "chunks": len(ds),
            "hours": round(sum(ends.values()) / 3600, 3),
            "entities": dict(Counter(t for types in ds["middle_entities"] for t in types).most_common()),
        }
    return stats
