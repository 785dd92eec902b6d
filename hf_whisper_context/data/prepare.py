"""Any `datasets` speech corpus in: the rows this package trains on (`prepare_dataset`) and the whole recordings it
evaluates on (`prepare_articles`), with the text around each row as the teacher's context.

Training rows (one per utterance of at most 30 s; `load_swc` gives the same columns, and more, for SWC folders):

- `row_index`: the row's position in its split (what the teacher cache and the collator key on);
- `article_id`: the row's group (`group_by`: a chapter, a recording, a talk) or, without groups, the row's id;
  `chunk_index` / `n_chunks`: its position in the group and the group's size; `source_index`: its row in the input;
- `audio`: where the audio is, as `datasets.Audio(decode=False)` gives it (`{"path", "bytes"}`), or the input's
  `{"array", "sampling_rate"}`; `audio_start_s` / `audio_end_s`: the part of it this row is (0 and None: all of
  it; a span for a chunk cut from a long recording); `with_audio` decodes it to 16 kHz mono on access (soundfile:
  no ffmpeg for WAV, FLAC and Ogg); `duration_s`, `start_s`, `end_s`: its length and place on the group's timeline;
- `text`, `text_tagged` (inline entity tags `<PER>...</PER>`), `middle_text`, `middle_text_tagged` (the same: an
  utterance is its own middle), `middle_entities` (entity types);
- `text_segments`, `text_tagged_segments`: the target as Whisper writes it with timestamps, one segment over the
  whole utterance (`<|0.00|> text<|d|>`: utterances carry no word times);
- `context_before`, `context_after`: up to `context_words / 2` words of the group's other rows before and after
  the row, in `order_by` order (the same window the SWC path gives the teacher). Rows without a group get no
  context: the teacher then reads the row alone, and the representation loss matches the student to the teacher's
  vector of the row's own text (logged once).

Rows that cannot be used are skipped and counted by reason, never a crash mid-epoch: an empty transcript, audio that
cannot be decoded, holds NaN/inf samples, or lasts under 0.1 s.

A recording over 30 s with one transcript (a lecture, a podcast episode, an audiobook chapter) is cut into training
chunks when `cut_with` names a Whisper model (e.g. "tiny.en"): the model transcribes it with its own timestamps
(sequential long-form decoding), each of its words gets a time inside its segment, the transcript's words take the
times of the words the alignment pairs them with (the metrics' word alignment; unpaired words are interpolated),
and the SWC chunker cuts the transcript at word boundaries (5/20/5 s windows, <= 30 s, the recording's own text as
context). Only the times come from the model; the text is always the transcript's. A chunk where fewer than half
of the transcript's words were paired with the model's is skipped (the times there are guesses), as is a recording
where fewer than half are. Without `cut_with`, recordings over 30 s are skipped from training (they are evaluated
whole by `prepare_articles`).

Article rows (`prepare_articles`, one per group, or per row without groups): `article_id`, `title`, `audio` (the
group's sources in order, played one after another), `duration_s`, `text`, `text_tagged`, `entities`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np

from ..audio import SAMPLING_RATE, AudioError, decode_source
from ..errors import ConfigError
from ..metrics.alignment import align
from ..tags import render
from .chunking import ChunkConfig, FlatArticle, chunk_article, interpolate_times, stamp
from .dataset import MAX_AUDIO_S, _tag_cache
from .entities import DEFAULT_SPACY_MODEL, EntityTagger

logger = logging.getLogger(__name__)

AUDIO_COLUMNS = ("audio", "path", "audio_path", "file", "file_name")  # tried in this order when none is given
TEXT_COLUMNS = ("text", "sentence", "transcript", "transcription", "normalized_text", "raw_text")
MIN_AUDIO_S = 0.1
MIN_PAIRED = 0.5  # share of a cut chunk's (and recording's) transcript words paired with the model's words
TIMESTAMP_PRECISION_S = 0.02
_STRINGS = ("string", "large_string")
HOLDOUT_GROUPS = 1  # groups held out for evaluation when a corpus without splits is trained on


def _column(ds, given: str | None, candidates: tuple[str, ...], what: str) -> str:
    names = ds.column_names
    if given is not None:
        if given not in names:
            raise ConfigError(f"the dataset has no {what} column {given!r}; its columns: {', '.join(names)}")
        return given
    found = next((c for c in candidates if c in names), None)
    if found is None:
        raise ConfigError(f"no {what} column found (looked for {', '.join(candidates)}); the dataset's columns: "
                          f"{', '.join(names)}: pass {what}_column=")  # fmt: skip
    return found


def _undecoded(ds, column: str):
    """`ds` with `column` as audio sources that this package decodes itself (`Audio(decode=False)`)."""
    from datasets import Audio, Value

    feature = ds.features[column]
    if getattr(feature, "dtype", None) in _STRINGS:  # paths (Audio casts from "string" only, not "large_string")
        return ds.cast_column(column, Value("string")).cast_column(column, Audio(decode=False))
    if isinstance(feature, Audio):
        return ds.cast_column(column, Audio(decode=False))
    if isinstance(feature, dict) and ("array" in feature or "bytes" in feature or "path" in feature):
        return ds
    raise ConfigError(f"column {column!r} ({feature}) holds no audio: give a column of paths, an Audio column or "
                      "{'array', 'sampling_rate'} dicts")  # fmt: skip


def _inspect(batch, audio_column: str, text_column: str, max_audio_s: float | None):
    """Per row: seconds of audio and why it cannot be used ("" if it can)."""
    seconds, reasons = [], []
    for source, text in zip(batch[audio_column], batch[text_column], strict=True):
        length, reason = 0.0, ""
        if not isinstance(text, str) or not text.strip():
            reason = "empty transcript"
        else:
            try:
                length = len(decode_source(source)) / SAMPLING_RATE
            except AudioError as e:
                reason = f"unusable audio: {e}"
            if reason:
                pass
            elif length < MIN_AUDIO_S:
                reason = f"audio shorter than {MIN_AUDIO_S} s: {length:.3f} s"
            elif max_audio_s is not None and length > max_audio_s:
                reason = (f"longer than {max_audio_s:.0f} s with one transcript: {length:.1f} s (pass cut_with= a "
                          "Whisper model, e.g. tiny.en, to cut it by the model's timestamps)")  # fmt: skip
        seconds.append(length)
        reasons.append(reason)
    return {"_duration_s": seconds, "_skip": reasons}


def _checked(ds, audio_column: str, text_column: str, max_audio_s: float | None, what: str):
    """Usable row indices and their durations; every skip counted by reason and logged."""
    inspected = ds.map(_inspect, batched=True, batch_size=32, fn_kwargs=dict(audio_column=audio_column,
                       text_column=text_column, max_audio_s=max_audio_s), desc=f"checking {what}",
                       remove_columns=ds.column_names)  # fmt: skip
    durations, reasons = inspected["_duration_s"], inspected["_skip"]
    skipped = [(i, r) for i, r in enumerate(reasons) if r]
    if skipped:
        kinds = Counter(r.split(":")[0] for _, r in skipped)
        examples = "; ".join(f"row {i}: {r}" for i, r in skipped[:3])
        logger.warning("%s: skipped %d of %d rows (%s). First: %s", what, len(skipped), len(ds),
                       ", ".join(f"{n} {k}" for k, n in kinds.most_common()), examples)  # fmt: skip
    if len(skipped) == len(ds):
        raise ConfigError(f"{what}: none of its {len(ds)} rows can be used ({examples})")
    return [i for i, r in enumerate(reasons) if not r], durations


def _groups(ds, group_by: str | None, order_by: str | None, id_column: str | None) -> list[tuple[str, list[int]]]:
    """(group id, row indices in order) for every group, in order of first appearance."""
    for name in (group_by, order_by):
        if name is not None and name not in ds.column_names:
            raise ConfigError(f"the dataset has no column {name!r}; its columns: {', '.join(ds.column_names)}")
    order = ds[order_by] if order_by else None
    if order is not None and any(v is None for v in order):
        raise ConfigError(f"column {order_by!r} is empty in row {order.index(None)}: every row needs its position")
    ids = [str(v) for v in ds[id_column]] if id_column else [f"row-{i}" for i in range(len(ds))]
    if group_by is None:
        rows = sorted(range(len(ds)), key=order.__getitem__) if order else range(len(ds))
        return [(ids[i], [i]) for i in rows]
    if order is None:
        raise ConfigError(f"rows grouped by {group_by!r} need their order within the group: pass order_by=<column> "
                          f"(one of {', '.join(ds.column_names)}), or add a position column with "
                          "`ds.add_column('position', range(len(ds)))` if the rows are in order")  # fmt: skip
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(ds[group_by]):
        groups.setdefault(str(key), []).append(i)
    try:
        return [(key, sorted(rows, key=order.__getitem__)) for key, rows in groups.items()]
    except TypeError as e:
        raise ConfigError(f"column {order_by!r} mixes values that cannot be ordered ({e})") from None


def _contexts(texts: list[str], words_per_side: int) -> tuple[list[str], list[str]]:
    """For each text of a group, up to `words_per_side` words of the texts before it and after it."""
    words = [t.split() for t in texts]
    before, after = [], []
    for j in range(len(texts)):
        left, k = [], j - 1
        while k >= 0 and len(left) < words_per_side:
            left, k = words[k] + left, k - 1
        right, k = [], j + 1
        while k < len(texts) and len(right) < words_per_side:
            right, k = right + words[k], k + 1
        before.append(" ".join(left[-words_per_side:]) if words_per_side else "")
        after.append(" ".join(right[:words_per_side]))
    return before, after


def _tagged(texts: list[str], spacy_model: str | None, cache_dir) -> list[list]:
    if spacy_model is None:
        return [[] for _ in texts]
    return EntityTagger(spacy_model, cache_dir=_tag_cache(cache_dir)).tag(texts)


def _per_split(function, ds, **kwargs):
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        return DatasetDict({name: function(split, what=name, **kwargs) for name, split in ds.items()})
    return function(ds, **kwargs)


def prepare_dataset(ds, audio_column: str | None = None, text_column: str | None = None,
                    group_by: str | None = None, order_by: str | None = None, context_words: int = 4096,
                    spacy_model: str | None = DEFAULT_SPACY_MODEL, id_column: str | None = None,
                    max_audio_s: float = MAX_AUDIO_S, cut_with: str | None = None, cache_dir=None):  # fmt: skip
    """Training rows (the module's schema) from a `datasets.Dataset` or `DatasetDict` of utterances.

    `audio_column` / `text_column` default to the first of `AUDIO_COLUMNS` / `TEXT_COLUMNS` present; `group_by`
    names the column whose rows are read in sequence (a chapter, a recording), `order_by` their order in it;
    `context_words` (64..4096) words of the group's text around each row are kept for the teacher;
    `spacy_model=None` skips entity tagging; `id_column` names rows without a group; `cut_with` (a Whisper model)
    cuts recordings over `max_audio_s` into chunks (see the module's notes), which are skipped without it.
    """
    return _per_split(_prepare_split, ds, audio_column=audio_column, text_column=text_column, group_by=group_by,
                      order_by=order_by, context_words=context_words, spacy_model=spacy_model, id_column=id_column,
                      max_audio_s=max_audio_s, cut_with=cut_with, cache_dir=cache_dir)  # fmt: skip


def _prepare_split(ds, audio_column, text_column, group_by, order_by, context_words, spacy_model, id_column,
                   max_audio_s, cut_with, cache_dir, what="dataset"):  # fmt: skip
    if not 64 <= context_words <= 4096:
        raise ConfigError(f"context_words must be in 64..4096, got {context_words}")
    audio_column = _column(ds, audio_column, AUDIO_COLUMNS, "audio")
    text_column = _column(ds, text_column, TEXT_COLUMNS, "text")
    groups = _groups(ds, group_by, order_by, id_column)
    ds = _undecoded(ds, audio_column)
    usable, durations = _checked(ds, audio_column, text_column, None if cut_with else max_audio_s, what)
    usable = set(usable)
    texts = [t.strip() if isinstance(t, str) else "" for t in ds[text_column]]
    if group_by is None:
        logger.info("%s: rows have no group (group_by): no context; the teacher reads each row alone", what)
    spans = _tagged(texts, spacy_model, cache_dir)
    long = sorted(i for i in usable if durations[i] > max_audio_s)
    cutter = _Cutter(cut_with, ChunkConfig(context_words=context_words), ds, audio_column) if long else None
    rows_out, order = [], []
    for key, rows in groups:
        before, after = _contexts([texts[i] for i in rows], context_words // 2)
        elapsed = 0.0
        for position, i in enumerate(rows):
            if i in usable and durations[i] > max_audio_s:
                pieces = cutter.cut(i, texts[i], spans[i], durations[i], what)
            elif i in usable:
                last = stamp(durations[i] * 1000, TIMESTAMP_PRECISION_S)
                tagged = render(texts[i], spans[i])
                pieces = [{"audio_start_s": 0.0, "audio_end_s": None, "start_s": 0.0, "end_s": durations[i],
                           "text": texts[i], "text_tagged": tagged, "text_segments": f"<|0.00|> {texts[i]}{last}",
                           "text_tagged_segments": f"<|0.00|> {tagged}{last}", "middle_text": texts[i],
                           "middle_text_tagged": tagged, "context_before": before[position],
                           "context_after": after[position],
                           "middle_entities": [t for _, _, t in spans[i]]}]  # fmt: skip
            else:
                pieces = []
            for k, piece in enumerate(pieces):
                start, end = elapsed + piece["start_s"], elapsed + piece["end_s"]
                rows_out.append({**piece, "source_index": i, "article_id": key, "title": key,
                                 "chunk_index": k if len(pieces) > 1 else position,
                                 "n_chunks": len(pieces) if len(pieces) > 1 else len(rows),
                                 "duration_s": end - start, "start_s": start, "end_s": end})  # fmt: skip
                order.append(i)
            elapsed += durations[i]
    if not rows_out:
        raise ConfigError(f"{what}: no usable row is left (see the skips logged above)")
    out = ds.select(order).select_columns([audio_column])
    if audio_column != "audio":
        out = out.rename_column(audio_column, "audio")
    out = out.add_column("row_index", list(range(len(order))))
    for name in rows_out[0]:
        out = out.add_column(name, [r[name] for r in rows_out])
    return out


class _Cutter:
    """Cuts long recordings into training chunks by a Whisper model's timestamps (the module's notes)."""

    def __init__(self, model: str, config: ChunkConfig, ds, audio_column: str):
        from ..transcribe import load_asr_pipeline

        self.asr, self.config, self.ds, self.column = load_asr_pipeline(model), config, ds, audio_column

    def cut(self, index: int, text: str, spans: list, duration: float, what: str) -> list[dict]:
        from ..transcribe import transcribe_long

        transcript = transcribe_long(_playable(self.ds[index][self.column]), self.asr, "sequential")
        heard, starts, ends = _word_times(transcript.segments)
        tokens = list(re.finditer(r"\S+", text))
        first, last = [None] * len(tokens), [None] * len(tokens)
        paired = np.zeros(len(tokens), dtype=bool)
        for pair in align([t.group() for t in tokens], heard):
            if pair.ref is not None and pair.hyp is not None:
                first[pair.ref], last[pair.ref] = starts[pair.hyp], ends[pair.hyp]
                paired[pair.ref] = pair.op == "equal"
        if paired.mean() < MIN_PAIRED:
            logger.warning("%s: row %d skipped: only %.0f%% of its transcript's words match what %s heard (under "
                           "%.0f%%): no times to cut it by", what, index, 100 * paired.mean(),
                           self.asr.model.name_or_path, 100 * MIN_PAIRED)  # fmt: skip
            return []
        start_ms, end_ms = interpolate_times(first, last)
        flat = FlatArticle(
            texts=[t.group() for t in tokens], tails=[" "] * (len(tokens) - 1) + [""], start_ms=start_ms,
            end_ms=end_ms, entities=_token_spans(tokens, spans), word_starts=np.ones(len(tokens), dtype=bool),
            sentence_ends=np.array([bool(re.search(r"[.!?][\"')\]]*$", t.group())) for t in tokens]),
        )  # fmt: skip
        pieces, dropped = [], 0
        for chunk in chunk_article(flat, self.config):
            lo, hi = chunk["tokens"]
            start, end = chunk["start_ms"] / 1000, min(chunk["end_ms"] / 1000, duration)
            if paired[lo:hi].mean() < MIN_PAIRED or end <= start:
                dropped += 1
                continue
            mid_lo, mid_hi = chunk["middle"]
            keep = ("text", "text_tagged", "text_segments", "text_tagged_segments", "middle_text",
                    "middle_text_tagged", "context_before", "context_after")  # fmt: skip
            entities = [t for s, e, t in flat.entities if mid_lo <= s and e <= mid_hi]
            pieces.append({"audio_start_s": start, "audio_end_s": end, "start_s": start, "end_s": end,
                           **{k: chunk[k] for k in keep}, "middle_entities": entities})  # fmt: skip
        if dropped:
            logger.warning("%s: row %d: %d of its %d chunks skipped (under %.0f%% of their words paired)", what,
                           index, dropped, dropped + len(pieces), 100 * MIN_PAIRED)  # fmt: skip
        return pieces


def _word_times(segments: list[dict]) -> tuple[list[str], list[float], list[float]]:
    """The words of a timestamped transcript with a time (ms) each: a segment's time shared by character count."""
    heard, starts, ends = [], [], []
    for segment in segments:
        tokens = segment["text"].split()
        if not tokens:
            continue
        begin = segment["start"] * 1000
        finish = segment["end"] * 1000 if segment["end"] is not None else begin + 400 * len(tokens)
        edges = begin + (finish - begin) * np.concatenate([[0], np.cumsum([len(t) for t in tokens])]) / sum(
            len(t) for t in tokens
        )
        heard.extend(tokens)
        starts.extend(edges[:-1].tolist())
        ends.extend(edges[1:].tolist())
    return heard, starts, ends


def _token_spans(tokens: list, spans: list) -> list:
    """Character spans of entities as (first token, last token + 1, type) over whitespace tokens."""
    out = []
    for start, end, label in spans:
        covered = [k for k, t in enumerate(tokens) if t.start() < end and start < t.end()]
        if covered:
            out.append((covered[0], covered[-1] + 1, label))
    return out


def _playable(source):
    """A source as `transcribe_long` plays it: a file on disk is streamed, encoded bytes and arrays are decoded."""
    on_disk = (
        isinstance(source, dict) and source.get("path") and not source.get("bytes") and source.get("array") is None
    )
    return source["path"] if on_disk and Path(source["path"]).is_file() else decode_source(source)


def prepare_articles(ds, audio_column: str | None = None, text_column: str | None = None,
                     group_by: str | None = None, order_by: str | None = None,
                     spacy_model: str | None = DEFAULT_SPACY_MODEL, id_column: str | None = None,
                     cache_dir=None):  # fmt: skip
    """Long-form evaluation rows (one per group, its utterances played in order; one per row without groups) from a
    `datasets.Dataset` or `DatasetDict`, scored like SWC articles by `evaluate_longform(..., articles=...)`."""
    return _per_split(_articles_split, ds, audio_column=audio_column, text_column=text_column,
                      group_by=group_by, order_by=order_by, spacy_model=spacy_model, id_column=id_column,
                      cache_dir=cache_dir)  # fmt: skip


def _articles_split(ds, audio_column, text_column, group_by, order_by, spacy_model, id_column, cache_dir,
                    what="dataset"):  # fmt: skip
    from datasets import Dataset

    audio_column = _column(ds, audio_column, AUDIO_COLUMNS, "audio")
    text_column = _column(ds, text_column, TEXT_COLUMNS, "text")
    groups = _groups(ds, group_by, order_by, id_column)
    ds = _undecoded(ds, audio_column)
    usable, durations = _checked(ds, audio_column, text_column, None, what)
    usable = set(usable)
    texts = ds[text_column]
    rows = []
    for key, members in groups:
        members = [i for i in members if i in usable]
        if members:
            rows.append({"article_id": key, "title": key, "members": members,
                         "text": " ".join(texts[i].strip() for i in members)})  # fmt: skip
    spans = _tagged([r["text"] for r in rows], spacy_model, cache_dir)
    sources = ds[audio_column]
    return Dataset.from_list([
        {"article_id": r["article_id"], "title": r["title"], "audio": [sources[i] for i in r["members"]],
         "duration_s": sum(durations[i] for i in r["members"]), "text": r["text"],
         "text_tagged": render(r["text"], s), "entities": [t for _, _, t in s]}
        for r, s in zip(rows, spans, strict=True)
    ])  # fmt: skip


def article_audio(row: dict) -> list:
    """What `transcribe_long` plays for an article row: the SWC row's files, or a prepared row's sources (files on
    disk are streamed; encoded bytes and arrays are decoded)."""
    if "audio_path" in row:
        return list(row["audio_path"])
    return [_playable(s) for s in row["audio"]]


_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


def load_speech_dataset(path_or_id: str, split: str | None = None, config: str | None = None):
    """A `Dataset` (or, without `split`, whatever the source holds) from: a folder written by `save_to_disk`; an
    audio folder with `metadata.csv` / `metadata.jsonl` (a `file_name` column, as `audiofolder` reads it, read here
    without torchcodec); a `.parquet`, `.arrow`, `.csv`, `.json` or `.jsonl` file; or a Hub dataset id (online).
    Relative audio paths in a metadata or CSV/JSON file are taken from the file's folder."""
    from datasets import DatasetDict, load_dataset, load_from_disk

    path = Path(path_or_id).absolute()
    if path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file()):
        ds = load_from_disk(str(path))
    elif path.is_dir():
        metadata = next((path / n for n in ("metadata.csv", "metadata.jsonl") if (path / n).is_file()), None)
        if metadata is None:
            raise ConfigError(f"{path} is neither a saved dataset (state.json) nor an audio folder with "
                              "metadata.csv or metadata.jsonl (a file_name and a transcript column)")  # fmt: skip
        ds = _with_paths(load_dataset(_BUILDERS[metadata.suffix], data_files=str(metadata), split="train"), path)
    elif path.suffix in _BUILDERS and path.is_file():
        ds = _with_paths(load_dataset(_BUILDERS[path.suffix], data_files=str(path), split="train"), path.parent)
    elif path.exists() or path_or_id.startswith((".", "/")) or path.suffix in _BUILDERS:
        raise ConfigError(f"{path}: not a dataset folder, an audio folder or a {'/'.join(_BUILDERS)} file")
    else:
        try:
            ds = load_dataset(path_or_id, config, split=split)
        except Exception as e:  # the Hub's errors (offline, unknown id, gated) are many; say which and why
            raise ConfigError(f"could not load dataset {path_or_id!r} from the Hub ({type(e).__name__}: {e})") from e
        return ds
    if isinstance(ds, DatasetDict) and split is not None:
        if split not in ds:
            raise ConfigError(f"{path_or_id} has no split {split!r}; its splits: {', '.join(ds)}")
        return ds[split]
    return ds


def _with_paths(ds, folder: Path):
    """A metadata/CSV/JSON table's audio paths made absolute (from `folder`); `file_name` becomes `audio`."""
    if "file_name" in ds.column_names and "audio" not in ds.column_names:
        ds = ds.rename_column("file_name", "audio")
    column = next((c for c in AUDIO_COLUMNS if c in ds.column_names), None)
    if column is None or getattr(ds.features[column], "dtype", None) not in _STRINGS:
        return ds
    return ds.map(lambda row: {column: str(folder / row[column]) if row[column] else row[column]},
                  desc="resolving audio paths")  # fmt: skip


def load_prepared(args, split: str | None = None, articles: bool = False, holdout_groups: int = 0):
    """`args.dataset` (a `SpeechDatasetArguments`) loaded and prepared: training rows, or article rows with
    `articles`. `split` picks one split of a source that has several. With `holdout_groups` > 0 a source without
    splits is divided before preparation: its last `holdout_groups` groups (rows, without `group_by`) become
    "test", the rest "train"."""
    from datasets import DatasetDict

    ds = load_speech_dataset(args.dataset, split, args.dataset_config)
    if holdout_groups and not isinstance(ds, DatasetDict):
        groups = _groups(ds, args.group_by, args.order_by, args.id_column)
        if len(groups) <= holdout_groups:
            raise ConfigError(f"{args.dataset} has {len(groups)} groups: too few to hold {holdout_groups} out for "
                              "evaluation and train on the rest")  # fmt: skip
        test = sorted(i for _, rows in groups[-holdout_groups:] for i in rows)
        train = sorted(i for _, rows in groups[:-holdout_groups] for i in rows)
        ds = DatasetDict({"train": ds.select(train), "test": ds.select(test)})
    columns = dict(audio_column=args.audio_column, text_column=args.text_column, group_by=args.group_by,
                   order_by=args.order_by, id_column=args.id_column)  # fmt: skip
    return prepare_articles(ds, **columns) if articles else prepare_dataset(ds, cut_with=args.cut_with, **columns)


def training_source(data_args, dataset_args):
    """What the command line names to train on: `--dataset` prepared (its last group held out as "test" when it
    has no splits), else the `--data` SWC folder (a path)."""
    if not dataset_args.dataset:
        return data_args.folder()
    splits = load_prepared(dataset_args, holdout_groups=HOLDOUT_GROUPS)
    if "train" not in splits or not {"validation", "test"} & set(splits):
        raise ConfigError(f"{dataset_args.dataset} has the splits {', '.join(splits)}: training needs 'train' and "
                          "'validation' or 'test' (or no splits: then its last group is held out)")  # fmt: skip
    return splits


def evaluation_source(data_args, dataset_args, split: str):
    """What the command line names to evaluate: `--dataset`'s `split` as article rows (one long recording per
    group), else the `--data` SWC folder (a path; its `split` is read by `evaluate_longform`)."""
    return load_prepared(dataset_args, split, articles=True) if dataset_args.dataset else data_args.folder()
