"""The SWC reader on the real German fixtures, checked against counts made here independently with xml.etree."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_whisper_context.data.swc import SWCError, read_article, read_swc

FIXTURES = Path(__file__).parent / "fixtures" / "swc"  # real Spoken Wikipedia files (CC BY-SA 4.0), see README

FIRST_SENTENCES = {
    # read aloud (outside <ignored>/<extra>), in order; Fonteius_Capito is an abridged, pretty-printed file
    "Fonteius_Capito": [
        "Fonteius Capito",
        "Im Jahr 67 n. Chr., unter Nero",
        "Nach dem Tod Neros wurde Fonteius Capito wegen angeblicher Umsturzpläne",
    ],
    "Philosophie": [
        "Portal: Philosophie – Übersicht zu Wikipedia-Inhalten zum Thema Philosophie",
        "Die Philosophie (griech. φιλοσοφία, philosophia wörtlich „Liebe zur Weisheit“) hat im Gegensatz zu den "
        "einzelnen Wissenschaften keinen klar bestimmbaren, begrenzten Gegenstandsbereich.",
        "Allgemein könnte man sie als den Versuch der kritisch-rationalen Selbstüberprüfung des Denkens bezeichnen, "
        "als eine methodische Reflexion.",
        "Der Versuch, Philosophie zu definieren, ist bereits Gegenstand der Philosophie selbst.",
        "Der Beginn des philosophischen Denkens im 6. vorchristlichen Jahrhundert markiert den eigentlichen Beginn "
        "der europäischen Geistesgeschichte.",
    ],
}


def _independent_counts(path: Path) -> tuple[int, int]:
    """(timed tokens, all tokens) outside <ignored> and <extra>, counted without the reader."""
    root = ET.parse(path).getroot()
    skipped = {id(t) for block in root.iter() if block.tag in ("ignored", "extra") for t in block.iter("t")}
    tokens = [t for t in root.iter("t") if id(t) not in skipped]
    timed = [t for t in tokens if any(n.get("start") is not None for n in t.iter("n"))]
    return len(timed), len(tokens)


@pytest.mark.parametrize("name", sorted(FIRST_SENTENCES))
def test_fixture_parses_and_rebuilds(name):
    article = read_article(FIXTURES / name, require_audio=False)
    assert article.language == "de" and article.identifier == name
    expected = FIRST_SENTENCES[name]
    assert [s.text for s in article.sentences[: len(expected)]] == expected
    timed, total = _independent_counts(FIXTURES / name / "aligned.swc")
    assert sum(t.timed for t in article.tokens) == timed and len(article.tokens) == total


def test_extra_is_kept_apart_and_rebuilds_from_its_text_attribute():
    article = read_article(FIXTURES / "Philosophie", require_audio=False)
    root = ET.parse(FIXTURES / "Philosophie" / "aligned.swc").getroot()
    assert [s.text for s in article.extra] == [s.get("text") for s in root.find("d/extra").iter("s")]
    assert not any("Sie hören den Artikel" in s.text for s in article.sentences)


def test_second_audio_file_maps_through_its_offset(tmp_path):
    folder = tmp_path / "Philosophie"
    shutil.copytree(FIXTURES / "Philosophie", folder)
    for i, seconds in ((1, 1094.402875), (2, 1200.0)):
        sf.write(folder / f"audio{i}.flac", np.zeros(int(seconds * 100), dtype=np.float32), 100)
    article = read_article(folder)
    assert [a.offset_s for a in article.audio] == [0.0, 1094.402875]
    late = next(t for t in article.tokens if t.timed and t.start_ms > 1094402.875)
    index, seconds = article.locate(late.start_ms)
    assert index == 1 and seconds == pytest.approx(late.start_ms / 1000 - 1094.402875)
    assert article.locate(1000.0) == (0, 1.0)


def test_bad_folders_are_skipped_with_reasons(tmp_path, caplog):
    good = tmp_path / "Philosophie"
    shutil.copytree(FIXTURES / "Philosophie", good)
    sf.write(good / "audio1.flac", np.zeros(100, dtype=np.float32), 100)
    sf.write(good / "audio2.flac", np.zeros(100 * 1200, dtype=np.float32), 100)
    (tmp_path / "NoAlignment").mkdir()
    (tmp_path / "Broken").mkdir()
    (tmp_path / "Broken" / "aligned.swc").write_text("<article><d><s>")
    (tmp_path / "Untimed").mkdir()
    untimed = "<article><d><p><s><t>Hallo<n pronunciation='Hallo'/></t></s></p></d></article>"
    (tmp_path / "Untimed" / "aligned.swc").write_text(untimed)
    (tmp_path / "Latin1").mkdir()
    latin1 = "<article><d><s><t>Grüße</t></s></d></article>".encode("latin-1")
    (tmp_path / "Latin1" / "aligned.swc").write_bytes(latin1)
    (tmp_path / "NoAudio").mkdir()
    shutil.copy(FIXTURES / "Fonteius_Capito" / "aligned.swc", tmp_path / "NoAudio")
    short = tmp_path / "ShortAudio"
    shutil.copytree(FIXTURES / "Philosophie", short)
    sf.write(short / "audio1.flac", np.zeros(100, dtype=np.float32), 100)
    sf.write(short / "audio2.flac", np.zeros(100, dtype=np.float32), 100)
    articles = read_swc(tmp_path)
    assert [a.identifier for a in articles] == ["Philosophie"]
    log = caplog.text
    assert "skipped 6 of 7 articles" in log
    reasons = (
        "NoAlignment: no aligned.swc",
        "Broken: aligned.swc is malformed XML",
        "Untimed: aligned.swc has no timed",
        "Latin1: aligned.swc is not UTF-8",
        "NoAudio: no audio file",
        "ShortAudio: audio ends at",
    )
    for reason in reasons:
        assert reason in log, reason


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(SWCError, match="is not a directory"):
        read_swc(tmp_path / "nope")


def test_info_json_must_be_json(tmp_path):
    folder = tmp_path / "A"
    shutil.copytree(FIXTURES / "Fonteius_Capito", folder)
    (folder / "info.json").write_text("{not json")
    with pytest.raises(SWCError, match="info.json is not valid JSON"):
        read_article(folder, require_audio=False)
    json.loads((FIXTURES / "Fonteius_Capito" / "info.json").read_text())  # the fixture itself is fine
