"""The one tag module: both syntaxes, only the 21 types, one writer, and no other module compiling a tag regex."""

import re
from pathlib import Path

from hf_whisper_context import tags


def test_both_syntaxes_and_only_the_21_types():
    assert tags.strip_tags("<PERSON>Bob</PERSON> and [GPE]Paris[/GPE]") == "Bob and Paris"
    assert (
        tags.strip_tags("See section [A] and <b>bold</b>, [PERSON>x") == "See section [A] and <b>bold</b>, [PERSON>x"
    )
    assert tags.parse("<PERSON>Bob Dylan</PERSON> sang in [GPE]Paris[/GPE].") == (
        "Bob Dylan sang in Paris.",
        [(0, 9, "PERSON"), (18, 23, "GPE")],
    )


def test_parse_unbalanced_tags():
    # an opening tag runs to the next opening tag or the end; a stray closer is dropped
    assert tags.parse("[PERSON]Bob and [GPE]Paris[/GPE] [/ORG]x") == (
        "Bob and Paris x",
        [(0, 8, "PERSON"), (8, 13, "GPE")],
    )
    assert tags.parse("[DATE]May 5") == ("May 5", [(0, 5, "DATE")])


def test_render_is_the_inverse_of_parse():
    text = "[PERSON]Bob Dylan[/PERSON] sang in [GPE]Paris[/GPE]."
    assert tags.render(*tags.parse(text)) == text


def test_balance():
    assert tags.balance("[PERSON]Bob[/PERSON] met [GPE]Paris and [/ORG]x") == "[PERSON]Bob[/PERSON] met Paris and x"
    assert tags.balance("a [DATE]1 May[/DATE] b") == "a [DATE]1 May[/DATE] b"
    assert tags.balance("[/GPE]") == ""
    assert tags.balance("<GPE>Rome</GPE> and [ORG]x") == "<GPE>Rome</GPE> and x"


def test_no_other_module_compiles_a_tag_regex():
    package = Path(tags.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "tags.py":
            continue
        for line in path.read_text().splitlines():
            if "re.compile" in line and re.search(r"ENTITY_TYPES|\[/\?|\\\[/|\[A-Z\]\[A-Z_\]", line):
                offenders.append(f"{path.relative_to(package)}: {line.strip()}")
    assert offenders == []
