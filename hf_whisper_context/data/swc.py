"""Read the Spoken Wikipedia Corpus (SWC): one folder per article with `aligned.swc`, audio and `info.json`.

`aligned.swc` (XML): `<t>` is an orthographic token whose text is its leading text (or its `text` attribute inside
`<extra>`) and whose trailing whitespace is its tail; `<n pronunciation start end>` children give the spoken form and,
when aligned, times in ms on the timeline of all audio files played one after another (`info.json` holds each file's
`offset` in seconds). `<ignored>` was not read aloud; `<extra>` is spoken boilerplate (intro/outro), kept apart.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HfWhisperContextError
from ..utils import read_json

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".ogg", ".flac", ".wav")
# Pretty-printed files (indentation in the tails) lose the original spacing; these rules put it back.
_NO_SPACE_BEFORE = re.compile(r"^[,.;:!?)\]}»“”%…]|^'s$|^n't$")
_NO_SPACE_AFTER = re.compile(r"[(\[{„«‚]$")


class SWCError(HfWhisperContextError, ValueError):
    """An article folder that cannot be read; the message says which and why."""


@dataclass
class Token:
    text: str
    tail: str  # whitespace after the token, as in the original text
    pronunciations: list[str] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def timed(self) -> bool:
        return self.start_ms is not None


@dataclass
class Sentence:
    tokens: list[Token]
    section: tuple[str, ...] = ()  # titles of the enclosing sections, outermost first
    title: bool = False  # a section title (read aloud, not part of a paragraph)

    @property
    def text(self) -> str:
        return join_tokens(self.tokens).strip()


@dataclass
class AudioFile:
    path: Path
    offset_s: float  # where the file starts on the article's timeline


@dataclass
class Article:
    identifier: str
    title: str
    language: str
    sentences: list[Sentence]  # what was read aloud, in order
    extra: list[Sentence]  # spoken boilerplate, kept apart
    audio: list[AudioFile]
    directory: Path
    duration_s: float | None = None  # length of the audio (files played one after another), when checked
    reader: str = ""  # who reads it (`reader.name`: a person, or a built corpus's engine:voice@rate)

    @property
    def tokens(self) -> list[Token]:
        return [t for s in self.sentences for t in s.tokens]

    @property
    def text(self) -> str:
        return "\n".join(s.text for s in self.sentences)

    def locate(self, ms: float) -> tuple[int, float]:
        """Map a time on the article's timeline to (audio file index, seconds into that file)."""
        index = max(i for i, a in enumerate(self.audio) if a.offset_s * 1000 <= ms or i == 0)
        return index, ms / 1000 - self.audio[index].offset_s


def resolved_tails(tokens: list[Token]) -> list[str]:
    """Each token's trailing whitespace; tails that are XML indentation (contain a newline) are re-derived."""
    tails = []
    for i, tok in enumerate(tokens):
        tail = tok.tail
        if "\n" in tail:
            following = tokens[i + 1].text if i + 1 < len(tokens) else ""
            glued = _NO_SPACE_AFTER.search(tok.text) or _NO_SPACE_BEFORE.search(following)
            tail = "" if glued else " "
        tails.append(tail)
    return tails


def join_tokens(tokens: list[Token]) -> str:
    """Rebuild text from tokens: text + tail."""
    return "".join(t.text + tail for t, tail in zip(tokens, resolved_tails(tokens), strict=True))


_MS = re.compile(r"[0-9]{1,10}", re.ASCII)  # milliseconds: plain ASCII digits, at most ~115 days


def _ms(value: str) -> int:
    if not _MS.fullmatch(value):
        raise SWCError(f"time {value[:40]!r} is not a whole number of milliseconds (ASCII digits)")
    return int(value)


def _token(element: ET.Element, in_extra: bool) -> Token:
    text = element.get("text") if in_extra and element.get("text") is not None else (element.text or "")
    tok = Token(text=text.strip(), tail=element.tail or "")
    for n in element.iter("n"):
        tok.pronunciations.append(n.get("pronunciation", ""))
        if n.get("start") is not None and n.get("end") is not None:
            start, end = _ms(n.get("start")), _ms(n.get("end"))
            if start > end:
                raise SWCError(f"token {tok.text[:40]!r} starts at {start} ms, after its end {end} ms")
            tok.start_ms = start if tok.start_ms is None else min(tok.start_ms, start)
            tok.end_ms = end if tok.end_ms is None else max(tok.end_ms, end)
    return tok


def _spacing_from(text: str, tokens: list[Token]) -> None:
    """Set tails from a sentence's own `text` attribute (SWC writes one inside <extra>, with bare tokens)."""
    pos = 0
    ends = []
    for tok in tokens:
        found = text.find(tok.text, pos)
        if found < 0:
            return  # the attribute does not spell the tokens: keep the tails as they are
        pos = found + len(tok.text)
        ends.append((found, pos))
    for i, tok in enumerate(tokens):
        following = ends[i + 1][0] if i + 1 < len(tokens) else len(text)
        gap = text[ends[i][1] : following]
        tok.tail = gap[: len(gap) - len(gap.lstrip())]  # only whitespace: text with no token is not spoken


def _read_tokens(element: ET.Element) -> list[ET.Element]:
    """The <t> elements under `element`, in order, leaving out those inside <ignored> (iterative: any depth)."""
    found, stack = [], [iter(element)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif child.tag == "t":
            found.append(child)
        elif child.tag != "ignored":
            stack.append(iter(child))
    return found


def _walk(body: ET.Element, out: list[Sentence], extra: list[Sentence]) -> None:
    """Sentences of the document in reading order; iterative, so any nesting depth is read."""
    stack = [(iter(body), (), False)]  # (children left, enclosing section titles, inside <extra>)
    while stack:
        children, section, in_extra = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag
        if tag == "ignored":
            continue
        if tag == "extra":
            stack.append((iter(child), section, True))
        elif tag == "s":
            tokens = [_token(t, in_extra) for t in _read_tokens(child)]
            if child.get("text") is not None:
                _spacing_from(child.get("text"), tokens)
            if tokens:
                (extra if in_extra else out).append(Sentence(tokens, section))
        elif tag == "section":
            title_el = child.find("sectiontitle")
            title_tokens = [_token(t, in_extra) for t in _read_tokens(title_el)] if title_el is not None else []
            inner = (*section, join_tokens(title_tokens).strip())
            if title_tokens and not in_extra:
                out.append(Sentence(title_tokens, inner, title=True))
            content = child.find("sectioncontent")
            if content is not None:
                stack.append((iter(content), inner, in_extra))
        elif tag not in ("sectiontitle", "t", "n", "ph"):
            stack.append((iter(child), section, in_extra))


def _find_audio(directory: Path, stems: list[str]) -> Path | None:
    found = [directory / f"{stem}{ext}" for stem in stems for ext in AUDIO_EXTENSIONS]
    return next((p for p in found if p.is_file()), None)


def _offsets(info: dict) -> list[float]:
    """Each audio file's start on the article's timeline, from info.json (`[0.0]` for one file): finite, >= 0 and
    increasing, or `SWCError`."""
    files = info.get("audio_files", [])
    if files is None or not isinstance(files, list) or not all(isinstance(a, dict) for a in files):
        raise SWCError(f"info.json: audio_files must be a list of objects, not {type(files).__name__}")
    offsets = []
    for a in files:
        offset = a.get("offset", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not 0 <= offset < float("inf"):
            raise SWCError(f"info.json: audio file offset {offset!r} is not a number of seconds >= 0")
        offsets.append(float(offset))
    if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise SWCError(f"info.json: audio file offsets {offsets} do not increase")
    return offsets or [0.0]


def _audio_files(directory: Path, offsets: list[float]) -> list[AudioFile]:
    """`audio.<ext>` for a one-file article, else `audio1..N.<ext>` at `offsets`; [] if one is missing."""
    stems = [["audio", "audio1"]] if len(offsets) == 1 else [[f"audio{i}"] for i in range(1, len(offsets) + 1)]
    paths = [_find_audio(directory, names) for names in stems]
    return [] if None in paths else [AudioFile(p, o) for p, o in zip(paths, offsets, strict=True)]


def _check_audio(audio: list[AudioFile], tokens: list[Token]) -> float:
    """The article's audio length in seconds; `SWCError` if a file cannot be decoded, overlaps the next one, or the
    times do not fit the audio."""
    from ..audio import AudioError, duration

    if not audio:
        raise SWCError("no audio file (audio.ogg/flac/wav, or audio1..N with info.json offsets)")
    try:
        lengths = [duration(a.path) for a in audio]
    except AudioError as e:
        raise SWCError(str(e)) from e
    for a, b, length in zip(audio, audio[1:], lengths, strict=False):
        if a.offset_s + length > b.offset_s + 1.0:
            raise SWCError(f"{a.path.name} ({length:.1f} s from {a.offset_s:.1f} s) overlaps {b.path.name} "
                           f"(from {b.offset_s:.1f} s)")  # fmt: skip
    end_s = audio[-1].offset_s + lengths[-1]
    last_ms = max(t.end_ms for t in tokens if t.timed)
    if last_ms / 1000 > end_s + 1.0:
        raise SWCError(f"audio ends at {end_s:.1f} s, before the last timestamp {last_ms / 1000:.1f} s")
    return end_s


def _check_order(tokens: list[Token]) -> None:
    """Timed tokens start in reading order (an aligner's output does; shuffled times would pair text with the wrong
    audio)."""
    starts = [t.start_ms for t in tokens if t.timed]
    back = next((i for i in range(1, len(starts)) if starts[i] < starts[i - 1]), None)
    if back is not None:
        raise SWCError(f"timed token {back + 1} starts at {starts[back]} ms, before the one read before it "
                       f"({starts[back - 1]} ms): times out of reading order")  # fmt: skip


def read_article(directory: str | Path, require_audio: bool = True) -> Article:
    """Read one SWC article folder. Raises `SWCError` naming the folder and the problem."""
    directory = Path(directory)
    try:
        return _read_article(directory, require_audio)
    except SWCError as e:
        raise SWCError(f"{directory.name}: {e}") from e


def _read_article(directory: Path, require_audio: bool) -> Article:
    swc = directory / "aligned.swc"
    if not swc.is_file():
        raise SWCError("no aligned.swc")
    try:
        root = ET.parse(swc).getroot()
    except ET.ParseError as e:
        try:
            swc.read_bytes().decode("utf-8")
        except UnicodeDecodeError as bad:
            raise SWCError(f"aligned.swc is not UTF-8 (byte {bad.start}); re-encode it") from e
        raise SWCError(f"aligned.swc is malformed XML ({e})") from e
    except UnicodeDecodeError as e:
        raise SWCError(f"aligned.swc is not valid UTF-8 ({e})") from e
    meta = {p.get("key"): p.get("value") for p in root.iter("prop")}
    info = read_json(directory / "info.json", SWCError) if (directory / "info.json").is_file() else {}
    if not isinstance(info, dict):
        raise SWCError(f"info.json must hold an object, not {type(info).__name__}")
    article_info = info.get("article", {})
    if not isinstance(article_info, dict):
        raise SWCError(f"info.json: article must be an object, not {type(article_info).__name__}")
    body = root.find("d")
    if body is None:
        raise SWCError("aligned.swc has no <d> (document) element")
    sentences: list[Sentence] = []
    extra: list[Sentence] = []
    try:
        _walk(body, sentences, extra)
    except SWCError as e:
        raise SWCError(f"aligned.swc: {e}") from e
    tokens = [t for s in sentences for t in s.tokens]
    if not any(t.timed for t in tokens):
        raise SWCError("aligned.swc has no timed tokens")
    _check_order(tokens)
    audio = _audio_files(directory, _offsets(info))
    length = _check_audio(audio, tokens) if require_audio else None
    return Article(
        identifier=_text(meta.get("DC.identifier") or article_info.get("identifier")) or directory.name,
        title=_text(meta.get("DC.title") or article_info.get("title")) or directory.name,
        language=_text(meta.get("DC.language") or article_info.get("language")) or "en",
        sentences=sentences,
        extra=extra,
        audio=audio,
        directory=directory,
        duration_s=length,
        reader=_text(meta.get("reader.name")) or "",
    )


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def read_swc(root: str | Path, require_audio: bool = True) -> list[Article]:
    """Read every article folder under `root`; unreadable ones are skipped, counted and logged with the reason."""
    root = Path(root)
    if not root.is_dir():
        raise SWCError(f"{root} is not a directory")
    articles, skipped = [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        try:
            articles.append(read_article(folder, require_audio))
        except SWCError as e:
            skipped.append(str(e))
            logger.warning("skipped %s", e)
    if skipped:
        logger.warning("skipped %d of %d articles: %s", len(skipped), len(folders), "; ".join(skipped))
    return articles
