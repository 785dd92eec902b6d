"""Entity tags: the 21 types, both inline syntaxes, and every helper that reads or writes them.

`[PERSON]Bob Dylan[/PERSON]` is this package's syntax (its 42 tag tokens are added to both tokenizers);
`<PERSON>Bob Dylan</PERSON>` is the paper's, and is read everywhere too. Only the 21 types are tags: "[A]" or "<b>"
are text. This module imports nothing from the package, so that everyone can import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

ENTITY_TYPES = (
    "CARDINAL", "DATE", "EMAIL", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP",
    "NUMERIC", "ORDINAL", "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "URL", "WORK_OF_ART",
)  # fmt: skip
NUMERIC_TYPES = frozenset({"CARDINAL", "NUMERIC", "MONEY", "PERCENT", "QUANTITY", "TIME", "URL", "EMAIL"})
TAG_TOKENS = tuple(f"[{t}]" for t in ENTITY_TYPES) + tuple(f"[/{t}]" for t in ENTITY_TYPES)
CLOSING_TAG_TOKENS = TAG_TOKENS[len(ENTITY_TYPES) :]
# the trained embedding rows of the tag tokens, saved beside a LoRA adapter (a LoRA file cannot hold them)
TAG_ROWS_FILE = "tag_embeddings.safetensors"

# `[TYPE]`, `[/TYPE]`, `<TYPE>` or `</TYPE>` (the closer must match the opener's bracket); groups: bracket, "/", type
TAG = re.compile(r"(?:(\[)|<)(/?)(" + "|".join(ENTITY_TYPES) + r")(?(1)\]|>)")

OPENING = re.compile(r"(?:(?P<square>\[)|<)(" + "|".join(ENTITY_TYPES) + r")(?(square)\]|>)")
Span = tuple[int, int, str]  # character start, end (exclusive), type


def open_tag(label: str) -> str:
    return f"[{label}]"


def close_tag(label: str) -> str:
    return f"[/{label}]"


def iter_tags(text: str) -> Iterator[tuple[int, int, bool, str]]:
    """(start, end, closing, type) of every tag in `text`, in order."""
    for m in TAG.finditer(text):
        yield m.start(), m.end(), bool(m.group(2)), m.group(3)


def has_tags(text: str) -> bool:
    return TAG.search(text or "") is not None


def strip_tags(text: str) -> str:
    """Remove the tags; the whitespace around them stays as it was."""
    return TAG.sub("", text or "")


def space_after_opening_tags(text: str) -> str:
    """Move the whitespace before each opening tag to after it: "in [GPE]Ulm" -> "in[GPE] Ulm". A student that writes
    tags then keeps the word tokens it writes without them (Whisper's word tokens start with their space); read as
    tags, both texts have the same words and spans."""
    return re.sub(r"(\s+)(" + OPENING.pattern + ")", r"\2\1", text)


def render(text: str, spans: Sequence[Span]) -> str:
    """Write `spans` (sorted, non-overlapping character spans of `text`) as inline tags."""
    pieces, pos = [], 0
    for start, end, label in spans:
        pieces += [text[pos:start], open_tag(label), text[start:end], close_tag(label)]
        pos = end
    return "".join([*pieces, text[pos:]])


def parse(text: str) -> tuple[str, list[Span]]:
    """The text without its tags, and the entity spans the tags mark in it.

    An opening tag without its closing tag runs to the next opening tag or the end of the text; a closing tag
    without an opening one is ignored (it is still removed from the text)."""
    plain, spans, pos, length = [], [], 0, 0
    current: tuple[int, str] | None = None
    for start, end, closing, label in iter_tags(text):
        plain.append(text[pos:start])
        length += start - pos
        pos = end
        if current is not None and (not closing or label == current[1]):
            spans.append((current[0], length, current[1]))
            current = None
        if not closing:
            current = (length, label)
    plain.append(text[pos:])
    length += len(text) - pos
    if current is not None:
        spans.append((current[0], length, current[1]))
    return "".join(plain), [s for s in spans if s[0] < s[1]]


def balance(text: str) -> str:
    """Drop the tags a join left unmatched (an opening tag never closed, a closing tag never opened), so that every
    tag that stays encloses its entity; whitespace is collapsed."""
    keep = [True] * len(text)
    opened: list[tuple[str, int, int]] = []
    unmatched: list[tuple[int, int]] = []
    for start, end, closing, label in iter_tags(text):
        if not closing:
            opened.append((label, start, end))
        elif opened and opened[-1][0] == label:
            opened.pop()
        else:
            unmatched.append((start, end))
    for start, end in unmatched + [(s, e) for _, s, e in opened]:
        keep[start:end] = [False] * (end - start)
    return " ".join("".join(c for c, k in zip(text, keep, strict=True) if k).split())
