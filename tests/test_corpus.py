"""The offline spoken-Wikipedia corpus: built from real articles with flite, read back by the SWC reader."""

import json

import jiwer
import numpy as np
import pytest

from hf_whisper_context.data.corpus import CorpusConfig, build_corpus, clean_article, wikipedia_articles
from hf_whisper_context.data.dataset import chunk_audio, load_swc, load_swc_articles, make_splits
from hf_whisper_context.data.swc import read_swc
from hf_whisper_context.data.tts import TTSError
from hf_whisper_context.errors import ConfigError

pytestmark = pytest.mark.slow


def test_cleaning_keeps_prose_and_drops_reference_sections():
    wikitext = dict(wikipedia_articles())["Albert Einstein"]
    paragraphs = clean_article(wikitext)
    sections = {p.section[0] for p in paragraphs if p.section}
    assert "Biography" in sections and not sections & {"References", "External links", "See also"}
    text = " ".join(p.text for p in paragraphs)
    assert "14 March 1879" in text and "{{" not in text and "<ref" not in text and "[[" not in text


def test_reader_gives_back_the_cleaned_sentences(corpus):
    wikitext = dict(wikipedia_articles())
    for article in read_swc(corpus):
        spoken = " ".join(s.text for s in article.sentences)
        source = " ".join(p.text for p in clean_article(wikitext[article.title]))
        assert source.replace(" ", "").startswith(spoken.replace(" ", "")), article.title
        assert len(spoken.split()) >= 60
        assert sum(t.timed for t in article.tokens) > 0.8 * len(spoken.split())


def test_chunks_hold_speech_and_tile_the_article(corpus):
    data = load_swc(corpus, test_articles=1)
    splits = json.loads((corpus / "splits.json").read_text())
    assert set(splits["test"]).isdisjoint(splits["train"]) and len(splits["test"]) == 1
    assert make_splits(corpus, test_articles=1) == splits  # read back, not redrawn
    articles = {a.identifier: a for a in read_swc(corpus)}
    for split in data.values():
        for article_id in set(split["article_id"]):
            rows = sorted((r for r in split if r["article_id"] == article_id), key=lambda r: r["chunk_index"])
            assert " ".join(r["middle_text"] for r in rows).split() == articles[article_id].text.split()
            for row in rows:
                audio = chunk_audio(row)
                assert len(audio) / 16000 <= 30.0 and np.abs(audio).max() > 0.05
                assert len(audio) / 16000 == pytest.approx(row["end_s"] - row["start_s"], abs=0.01)
                # the window: the same audio from the same start, running on to 30 s (or the article's end)
                window = chunk_audio(row["window"])
                assert len(window) / 16000 == pytest.approx(min(30.0, articles[article_id].duration_s
                                                                - row["start_s"]), abs=0.01)  # fmt: skip
                np.testing.assert_array_equal(window[: len(audio) - 160], audio[: len(audio) - 160])
                assert row["window"]["text"].startswith(row["text"])
                # the shifted window: the same speech from a point inside the chunk, its words a run of the article's
                shifted = row["shifted_window"]
                offset = shifted["audio_start_s"][0] - row["window"]["audio_start_s"][0]
                assert shifted["audio_path"][0] == row["window"]["audio_path"][0] and 0 <= offset < len(audio) / 16000
                heard = chunk_audio(shifted)[:16000]
                at = round(offset * 16000)
                np.testing.assert_allclose(heard, window[at : at + len(heard)], atol=1e-4)
                assert " ".join(shifted["text"].split()) in " ".join(articles[article_id].text.split())
    again = load_swc(corpus, test_articles=1)
    assert again["train"]._fingerprint == data["train"]._fingerprint  # the Arrow cache is reused
    per_article = load_swc_articles(corpus, "test")
    assert per_article[0]["article_id"] == splits["test"][0] and per_article[0]["duration_s"] > 30


def test_a_corpus_of_held_out_articles_only(tmp_path):
    """Every article held out (an extra test set): a split with no training articles; more held out than there are
    is an error."""
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "aligned.swc").write_text("<article/>")
    assert make_splits(tmp_path, test_articles=2) == {"train": [], "validation": [], "test": ["A", "B"]}
    (tmp_path / "splits.json").unlink()
    with pytest.raises(ValueError, match="too few for 2 test \\+ 1 validation"):
        make_splits(tmp_path, test_articles=2, validation_articles=1)


def test_tiny_en_understands_a_built_chunk(corpus, tiny_en):
    from transformers import pipeline
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    row = load_swc(corpus, test_articles=1)["train"][1]
    asr = pipeline("automatic-speech-recognition", model=str(tiny_en))
    hypothesis = asr(chunk_audio(row), generate_kwargs={"num_beams": 1})["text"]
    normalize = EnglishTextNormalizer({})
    wer = jiwer.wer(normalize(row["text"]), normalize(hypothesis))
    print(f"normalised WER of tiny.en on a built chunk: {wer:.3f}")
    assert wer < 0.35, (row["text"], hypothesis)


def test_espeak_word_times_come_from_the_engine(tmp_path):
    report = build_corpus(tmp_path, CorpusConfig(tts="espeak", titles=("Albedo",), max_words=80, min_words=40))
    assert report.built == ["Albedo"]
    (article,) = read_swc(tmp_path)
    info = json.loads((tmp_path / "Albedo" / "info.json").read_text())
    assert info["timing"] == "espeak-word-events" and info["tts"]["engine"] == "espeak"
    starts = [t.start_ms for t in article.tokens if t.timed]
    assert starts == sorted(starts) and len(set(starts)) > 0.9 * len(starts)
    assert article.tokens[0].start_ms < 500  # the first word starts where the engine put it, near the start


def test_voices_mix_engines_per_paragraph_and_are_scored_per_reader(tmp_path):
    from hf_whisper_context.evaluation import article_entry, run_entry
    from hf_whisper_context.report import tables

    config = CorpusConfig(titles=("Albedo",), max_words=150, min_words=40, voices=["flite:slt", "espeak:en-us+f3"],
                          voice_unit="paragraph", rates=[1.0], seed=4)  # fmt: skip
    assert build_corpus(tmp_path, config).built == ["Albedo"]
    info = json.loads((tmp_path / "Albedo" / "info.json").read_text())
    assert info["tts"]["voices"] == ["espeak:en-us+f3", "flite:slt"] and info["tts"]["voice"] == "mixed"
    assert info["timing"] == "espeak-word-events+apportioned"
    (article,) = read_swc(tmp_path)
    assert article.reader == "mixed@1.0"
    starts = [t.start_ms for t in article.tokens if t.timed]
    assert starts == sorted(starts)
    # per-reader WER: the counts of each reader's articles added up (here: one reader makes no mistake)
    reference = "The cat sat on the mat. It was warm."
    articles = [
        {**article_entry("a", reference, reference, 3), "reader": "flite:slt@1.0"},
        {**article_entry("b", reference, "The cat sat on the mat. It was.", 3), "reader": "espeak:en-us@1.0"},
    ]
    table = tables({"runs": {"model": {**run_entry(articles, "tagger"), "strategy": "chunked"}}})["readers"]
    assert "| flite:slt@1.0 | 0.000 |" in table and "| espeak:en-us@1.0 | 0.111 |" in table
    with pytest.raises(ConfigError, match="voice_unit must be"):
        build_corpus(tmp_path / "x", CorpusConfig(voice_unit="sentence"))


def test_missing_engine_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TTSError, match="apt-get install espeak-ng"):
        build_corpus(tmp_path / "c", CorpusConfig(tts="espeak", articles=1))


def test_like_speaks_the_held_out_articles_again_in_another_engine(corpus, tmp_path):
    splits = make_splits(corpus, test_articles=1, validation_articles=1)
    report = build_corpus(tmp_path, CorpusConfig(tts="espeak", like=str(corpus)))
    assert report.skipped == [] and len(report.built) == len(splits["validation"]) + len(splits["test"])
    again = json.loads((tmp_path / "splits.json").read_text())
    assert again == {"train": [], "validation": splits["validation"], "test": splits["test"]}
    text = {a.directory.name: a.text for a in read_swc(corpus)}
    assert {a.directory.name: a.text for a in read_swc(tmp_path)} == {
        a: text[a] for a in again["validation"] + again["test"]
    }  # the same words, another voice
    assert len(load_swc_articles(tmp_path, "test")) == len(splits["test"])


def test_like_needs_a_built_corpus(tmp_path):
    with pytest.raises(ValueError, match="not a built corpus"):
        build_corpus(tmp_path / "c", CorpusConfig(tts="espeak", like=str(tmp_path)))
