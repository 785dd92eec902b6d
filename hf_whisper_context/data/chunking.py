"""Cut an article into training chunks: left context, middle, right context (paper default 5/20/5 s, audio <= 30 s).

The article is first grouped into *units* that are never split: a word with the punctuation glued to it, and a whole
entity. Untimed tokens take their times from their timed neighbours. Middles tile the article: every unit lies in
exactly one middle, in order, and a unit that would end a middle past `middle_s` starts the next one - so an entity
crossing a boundary goes wholly to the right-hand chunk. The audio of a chunk is its middle plus the units that fit
in the `left_s` before and the `right_s` after it; its target text is the text of all those units.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import ConfigError
from ..tags import Span
from ..tags import render as render_tags
from .swc import Article, resolved_tails

UNTIMED_MS = 400.0  # a generous spoken-word length
SEGMENT_PAUSE_MS = 500.0  # a timestamped segment ends at a sentence end or at a pause at least this long
WINDOW_MS = 30_000.0  # Whisper's window: long-form decoding reads 30 s of audio from where the last one stopped


@dataclass(frozen=True)
class ChunkConfig:
    left_s: float = 5.0  # audio context before the middle
    middle_s: float = 20.0  # the middle: windows advance by about this much
    right_s: float = 5.0  # audio context after the middle
    # article text kept around each chunk (half before, half after): the widest window a teacher can read (64..4096);
    # how much of it a teacher does read is its own setting (`CacheConfig.context_words`)
    context_words: int = 4096
    timestamp_precision_s: float = 0.02  # Whisper's timestamp tokens, for the boundary markers
    # the longest timestamped segment of a target: None, a segment runs to a sentence end or a pause
    max_segment_s: float | None = None

    def __post_init__(self):
        if min(self.left_s, self.right_s) < 0 or self.middle_s <= 0:
            raise ConfigError(f"chunk windows must be non-negative with a positive middle, got {self}")
        if self.left_s + self.middle_s + self.right_s > 30.0:
            raise ConfigError(
                f"left + middle + right = {self.left_s + self.middle_s + self.right_s} s > Whisper's 30 s"
            )
        if not 64 <= self.context_words <= 4096:
            raise ConfigError(f"context_words must be in 64..4096, got {self.context_words}")
        if self.max_segment_s is not None and self.max_segment_s <= 0:
            raise ConfigError(f"max_segment_s must be positive (or None), got {self.max_segment_s}")


@dataclass
class FlatArticle:
    """An article's read tokens in one list, with resolved whitespace, interpolated times and entity spans."""

    texts: list[str]
    tails: list[str]
    start_ms: np.ndarray
    end_ms: np.ndarray
    entities: list[Span]  # token index start, end (exclusive), type
    word_starts: np.ndarray  # bool per token: a new whitespace word begins here
    sentence_ends: np.ndarray  # bool per token: the last token of a sentence

    def render(self, lo: int, hi: int, tags: bool = False) -> str:
        """Text of tokens lo..hi-1 (with inline entity tags if `tags`)."""
        entity_at = {s: (e, t) for s, e, t in self.entities} if tags else {}
        pieces, spans, pos, current = [], [], 0, None
        for i in range(lo, hi):
            if i in entity_at:
                current = (pos, *entity_at[i])
            pieces.append(self.texts[i])
            pos += len(self.texts[i])
            if current is not None and (i + 1 == current[1] or i + 1 == hi):
                spans.append((current[0], pos, current[2]))
                current = None
            tail = self.tails[i] if i + 1 < hi else ""
            pieces.append(tail)
            pos += len(tail)
        return render_tags("".join(pieces), spans).strip()


def interpolate_times(start: list[int | None], end: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Fill untimed tokens: a run of them follows its timed left neighbour (or precedes the first timed token),
    sharing the gap evenly, at most `UNTIMED_MS` each."""
    n = len(start)
    s = np.array([np.nan if v is None else v for v in start], dtype=float)
    e = np.array([np.nan if v is None else v for v in end], dtype=float)
    timed = np.flatnonzero(~np.isnan(s))
    if timed.size == 0:
        raise ConfigError("no timed tokens to interpolate from")
    i = 0
    while i < n:
        if not np.isnan(s[i]):
            i += 1
            continue
        j = i
        while j < n and np.isnan(s[j]):
            j += 1
        # at most UNTIMED_MS a token: a long gap around unaligned words is mostly silence or unread text
        span = UNTIMED_MS * (j - i)
        if i == 0:
            edges = np.linspace(s[j] - span, s[j], j - i + 1).clip(min=0)
        else:
            right = s[j] if j < n else e[i - 1] + span
            edges = np.linspace(e[i - 1], max(e[i - 1], min(right, e[i - 1] + span)), j - i + 1)
        s[i:j], e[i:j] = edges[:-1], edges[1:]
        i = j
    return s, np.maximum(e, s)


def flatten(article: Article, sentence_spans: list[list[Span]] | None = None) -> FlatArticle:
    """Flatten an article; `sentence_spans` are character spans per sentence (from `EntityTagger.tag`)."""
    texts, tails, starts, ends, entities, word_starts, sentence_ends = [], [], [], [], [], [], []
    for k, sentence in enumerate(article.sentences):
        offset = len(texts)
        s_tails = resolved_tails(sentence.tokens)
        if s_tails and s_tails[-1] == "":
            s_tails[-1] = " "  # sentences are separate words even where the XML glues them
        positions, pos = [], 0
        for tok, tail in zip(sentence.tokens, s_tails, strict=True):
            word_starts.append(not tails or tails[-1] != "")
            positions.append((pos, pos + len(tok.text)))
            pos += len(tok.text) + len(tail)
            texts.append(tok.text)
            tails.append(tail)
            starts.append(tok.start_ms)
            ends.append(tok.end_ms)
            sentence_ends.append(False)
        if sentence.tokens:
            sentence_ends[-1] = True
        for c_start, c_end, label in sentence_spans[k] if sentence_spans else []:
            covered = [i for i, (a, b) in enumerate(positions) if a < c_end and c_start < b]
            if covered:
                entities.append((offset + covered[0], offset + covered[-1] + 1, label))
    s, e = interpolate_times(starts, ends)
    return FlatArticle(texts, tails, s, e, entities, np.array(word_starts, dtype=bool),
                       np.array(sentence_ends, dtype=bool))  # fmt: skip


def _units(flat: FlatArticle) -> list[tuple[int, int]]:
    """Token ranges that no chunk boundary may cut: whitespace words, widened to whole entities."""
    inside = np.zeros(len(flat.texts) + 1, dtype=bool)
    for s, e, _ in flat.entities:
        inside[s + 1 : e] = True
    cuts = [i for i in range(1, len(flat.texts)) if flat.word_starts[i] and not inside[i]]
    bounds = [0, *cuts, len(flat.texts)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def chunk_article(flat: FlatArticle, config: ChunkConfig = ChunkConfig(), audio_end_ms: float = np.inf) -> list[dict]:
    """Chunks of one flattened article, in order. Times are ms on the article's timeline.

    Each chunk: `tokens` (lo, hi) of its whole audio and `middle` (lo, hi); `start_ms`/`end_ms` of its audio;
    `text`, `text_tagged`, `middle_text`, `middle_text_tagged`; `text_timestamps` (the middle marked with Whisper
    timestamp tokens relative to the audio start); `text_segments`/`text_tagged_segments` (the whole text as Whisper
    writes it with timestamps: `<|t0|> segment<|t1|><|t2|> next segment<|t3|>`, segments ending at sentence ends
    and pauses, and before a word that would make one longer than `max_segment_s`, times relative to the audio start
    on the 0.02 s grid); `context_before`/`context_after` (half of `context_words` each); `window`: the 30 s of audio
    from the chunk's start (up to `audio_end_ms`) as Whisper's long-form decoder reads it, speech running on past the
    chunk: `start_ms`, `end_ms`, `text`, `text_tagged` (the words its target writes, the chunk's text first) and
    `text_segments`, `text_tagged_segments` (its target: the segments that end inside the window, then the start time
    of one the window's end interrupts, as Whisper's own training targets end there; empty when no segment ends inside
    it); `shifted_window`: the same from a point drawn inside the chunk (mid-sentence, often mid-word, as a long-form
    window starts where the last one's 30 s ran out), its words those heard from their start.
    """
    units = _units(flat)
    u_start = np.array([flat.start_ms[a] for a, _ in units])
    u_end = np.array([flat.end_ms[a:b].max() for a, b in units])
    word_index = np.cumsum(flat.word_starts) - 1
    words_per_side = config.context_words // 2
    max_ms = np.inf if config.max_segment_s is None else config.max_segment_s * 1000
    chunks, i = [], 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and u_end[j + 1] - u_start[i] <= config.middle_s * 1000:
            j += 1
        left = i
        while left > 0 and u_start[i] - u_start[left - 1] <= config.left_s * 1000:
            left -= 1
        right = j
        while right + 1 < len(units) and u_end[right + 1] - u_end[j] <= config.right_s * 1000:
            right += 1
        lo, hi = units[left][0], units[right][1]
        mid_lo, mid_hi = units[i][0], units[j][1]
        start_ms, end_ms = float(u_start[left]), float(u_end[left : right + 1].max())
        chunks.append(
            {
                "tokens": (lo, hi),
                "middle": (mid_lo, mid_hi),
                "start_ms": start_ms,
                "end_ms": end_ms,
                "middle_start_ms": float(u_start[i]),
                "middle_end_ms": float(u_end[i : j + 1].max()),
                "text": flat.render(lo, hi),
                "text_tagged": flat.render(lo, hi, tags=True),
                "middle_text": flat.render(mid_lo, mid_hi),
                "middle_text_tagged": flat.render(mid_lo, mid_hi, tags=True),
                "context_before": _context(flat, word_index, lo, -words_per_side),
                "context_after": _context(flat, word_index, hi, words_per_side),
            }
        )
        chunks[-1]["text_timestamps"] = _with_timestamps(flat, chunks[-1], config.timestamp_precision_s)
        spans = list(_segment_spans(flat, units[left : right + 1], max_ms))
        for tags, key in ((False, "text"), (True, "text_tagged")):
            chunks[-1][f"{key}_segments"] = _segments(flat, spans, start_ms, config.timestamp_precision_s, tags)[0]
        window = partial(_window, flat, units, max_ms=max_ms, precision_s=config.timestamp_precision_s,
                         audio_end_ms=audio_end_ms)  # fmt: skip
        chunks[-1]["window"] = window(left, start_ms, text_hi=hi)
        # a point drawn inside the chunk, in a word or a pause, the same on every build
        shift_ms = random.Random(f"{start_ms:.0f}-{end_ms:.0f}").uniform(start_ms, end_ms)
        first = int(np.searchsorted(u_start, shift_ms, side="left"))  # the first unit heard from its start
        chunks[-1]["shifted_window"] = window(first, shift_ms)
        i = j + 1
    return chunks


def _window(flat: FlatArticle, units: list[tuple[int, int]], first: int, start_ms: float, max_ms: float,
            precision_s: float, audio_end_ms: float, text_hi: int = 0) -> dict:  # fmt: skip
    """The 30 s from `start_ms` (up to `audio_end_ms`) as Whisper's long-form decoder reads them, speech running on
    past the chunk, its words from unit `first` on: `start_ms`, `end_ms`, and per rendering (`text`, `text_tagged`)
    the words its target writes (at least up to token `text_hi`) and `<key>_segments`, its target (the segments that
    end inside the window, then the start time of one the window's end interrupts; empty when none ends inside it)."""
    end_ms = min(start_ms + WINDOW_MS, audio_end_ms)
    window = {"start_ms": start_ms, "end_ms": end_ms}
    spans = list(_segment_spans(flat, units[first:], max_ms, until_ms=end_ms))
    lo = units[first][0] if first < len(units) else len(flat.texts)
    for tags, key in ((False, "text"), (True, "text_tagged")):
        target, written = _segments(flat, spans, start_ms, precision_s, tags, end_ms - start_ms)
        window[f"{key}_segments"] = target if written else ""
        window[key] = flat.render(lo, max(text_hi, written, lo), tags)
    return window


def _context(flat: FlatArticle, word_index: np.ndarray, edge: int, n_words: int) -> str:
    """`n_words` whole words before token `edge` (n_words < 0) or from it on (n_words > 0), clipped at the article."""
    if n_words < 0:
        if edge == 0:
            return ""
        first_word = max(0, word_index[edge - 1] + n_words + 1)
        lo = int(np.searchsorted(word_index, first_word, side="left"))
        return flat.render(lo, edge)
    if edge >= len(flat.texts):
        return ""
    last_word = word_index[edge] + n_words
    hi = int(np.searchsorted(word_index, last_word, side="left"))
    return flat.render(edge, hi)


def stamp(ms: float, precision_s: float) -> str:
    """A Whisper timestamp token for `ms` after the audio start, on the `precision_s` grid, within 0..30 s."""
    return f"<|{min(max(round(ms / 1000 / precision_s) * precision_s, 0.0), 30.0):.2f}|>"


def _segment_spans(flat: FlatArticle, units: list[tuple[int, int]], max_ms: float = np.inf,
                   until_ms: float = np.inf):  # fmt: skip
    """Token ranges (lo, hi) of the units' timestamped segments that start before `until_ms`: one per sentence or
    pause-delimited phrase, cut before a unit that would make it last longer than `max_ms`; the last unit closes
    one."""
    first = 0
    for k, (a, b) in enumerate(units):
        if flat.start_ms[units[first][0]] >= until_ms:
            return
        last = k + 1 == len(units)
        pause = 0.0 if last else flat.start_ms[units[k + 1][0]] - flat.end_ms[a:b].max()
        too_long = not last and flat.end_ms[slice(*units[k + 1])].max() - flat.start_ms[units[first][0]] > max_ms
        if last or flat.sentence_ends[b - 1] or pause >= SEGMENT_PAUSE_MS or too_long:
            yield units[first][0], b
            first = k + 1


def _segments(flat: FlatArticle, spans, origin_ms: float, precision_s: float, tags: bool,
              limit_ms: float = np.inf) -> tuple[str, int]:  # fmt: skip
    """The segments' text as Whisper writes it with timestamps, times relative to `origin_ms`, up to `limit_ms`:
    segments that end by then, then the start time of one that ends after it (the spans start before it). Also the
    token where the written text ends."""
    out, written = [], 0
    for lo, hi in spans:
        start, end = flat.start_ms[lo] - origin_ms, flat.end_ms[lo:hi].max() - origin_ms
        if end > limit_ms:
            out.append(stamp(start, precision_s))
            break
        out.append(f"{stamp(start, precision_s)} {flat.render(lo, hi, tags)}{stamp(end, precision_s)}")
        written = hi
    return "".join(out), written


def _with_timestamps(flat: FlatArticle, chunk: dict, precision_s: float) -> str:
    """The paper's boundary markers: `left <|t0|>middle<|t1|> right`, times relative to the chunk's audio start."""

    def mark(ms: float) -> str:
        return stamp(ms - chunk["start_ms"], precision_s)

    (lo, hi), (mid_lo, mid_hi) = chunk["tokens"], chunk["middle"]
    parts = [
        flat.render(lo, mid_lo, tags=True),
        mark(chunk["middle_start_ms"]) + flat.render(mid_lo, mid_hi, tags=True) + mark(chunk["middle_end_ms"]),
        flat.render(mid_hi, hi, tags=True),
    ]
    return " ".join(p for p in parts if p)
