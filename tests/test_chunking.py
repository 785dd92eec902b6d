import re

import numpy as np
import pytest

from hf_whisper_context.data.chunking import ChunkConfig, FlatArticle, chunk_article, flatten, interpolate_times
from hf_whisper_context.data.swc import read_article

from .test_swc import FIXTURES


def _synthetic(n_words=200, word_ms=300, gap_ms=100, entities=(), sentence_words=1000):
    starts = np.arange(n_words) * (word_ms + gap_ms)
    texts = [f"w{i}" for i in range(n_words)]
    ends = (np.arange(n_words) + 1) % sentence_words == 0
    return FlatArticle(texts, [" "] * n_words, starts.astype(float), (starts + word_ms).astype(float),
                       list(entities), np.ones(n_words, dtype=bool), ends)  # fmt: skip


def test_interpolation_by_hand():
    s, e = interpolate_times([0, None, None, 500], [100, None, None, 600])
    assert s.tolist() == [0, 100, 300, 500] and e.tolist() == [100, 300, 500, 600]
    s, e = interpolate_times([None, 1000], [None, 1100])
    assert s.tolist() == [600, 1000] and e.tolist() == [1000, 1100]
    s, e = interpolate_times([0, None], [100, None])  # trailing run: after its left neighbour
    assert s.tolist() == [0, 100] and e.tolist() == [100, 500]
    s, _ = interpolate_times([0, None, 100_000], [100, None, 100_100])  # a long gap is not stretched over
    assert s[1] == 100 and _[1] == 500
    with pytest.raises(ValueError, match="no timed tokens"):
        interpolate_times([None], [None])


def test_middles_tile_the_article_and_audio_fits():
    flat = _synthetic()
    chunks = chunk_article(flat, ChunkConfig(context_words=64))
    assert [c["middle"][0] for c in chunks[1:]] == [c["middle"][1] for c in chunks[:-1]]
    assert chunks[0]["middle"][0] == 0 and chunks[-1]["middle"][1] == 200
    assert all(c["end_ms"] - c["start_ms"] <= 30_000 for c in chunks)
    assert all(c["middle_end_ms"] - c["middle_start_ms"] <= 20_000 for c in chunks)
    assert " ".join(c["middle_text"] for c in chunks) == " ".join(flat.texts)
    second = chunks[1]
    assert second["start_ms"] >= second["middle_start_ms"] - 5000 and second["tokens"][0] < second["middle"][0]


def test_entity_crossing_a_boundary_goes_to_the_right_chunk():
    plain = chunk_article(_synthetic(), ChunkConfig(context_words=64))
    boundary = plain[1]["middle"][0]  # first token of the second middle
    flat = _synthetic(entities=[(boundary - 2, boundary + 1, "PERSON")])
    chunks = chunk_article(flat, ChunkConfig(context_words=64))
    assert chunks[1]["middle"][0] == boundary - 2
    assert chunks[1]["middle_text_tagged"].startswith(f"[PERSON]w{boundary - 2} w{boundary - 1} w{boundary}[/PERSON]")
    assert "[PERSON]" not in chunks[0]["middle_text_tagged"]
    for c in chunks:  # tags are balanced in every text
        for key in ("text_tagged", "middle_text_tagged", "text_timestamps"):
            assert c[key].count("[PERSON]") == c[key].count("[/PERSON]")


def test_context_window_is_half_before_half_after_and_clipped():
    chunks = chunk_article(_synthetic(), ChunkConfig(context_words=64))
    assert chunks[0]["context_before"] == "" and chunks[-1]["context_after"] == ""
    middle = chunks[len(chunks) // 2]
    assert len(middle["context_before"].split()) == 32 and len(middle["context_after"].split()) == 32
    lo, hi = middle["tokens"]
    assert middle["context_before"].split()[-1] == f"w{lo - 1}" and middle["context_after"].split()[0] == f"w{hi}"


def test_boundary_timestamps_mark_the_middle():
    chunk = chunk_article(_synthetic(), ChunkConfig(context_words=64))[1]
    marked = chunk["text_timestamps"]
    assert marked.count("<|") == 2
    rel = (chunk["middle_start_ms"] - chunk["start_ms"]) / 1000
    assert f"<|{round(rel / 0.02) * 0.02:.2f}|>w{chunk['middle'][0]}" in marked


def test_timestamped_segments_end_at_sentences_and_pauses():
    flat = _synthetic(n_words=60, sentence_words=10, entities=[(12, 14, "PERSON")])
    flat.start_ms[35:] += 800  # a pause before w35, inside the fourth sentence
    flat.end_ms[35:] += 800
    chunk = chunk_article(flat, ChunkConfig(context_words=64))[0]
    segments = chunk["text_segments"]
    assert segments.startswith("<|0.00|> w0 w1 w2 w3 w4 w5 w6 w7 w8 w9<|3.90|><|4.00|> w10 ")
    assert "w34<|13.90|><|14.80|> w35" in segments  # the pause ends a segment mid-sentence

    assert re.sub(r"<\|[\d.]+\|>", " ", segments).split() == chunk["text"].split()
    stamps = [float(t) for t in re.findall(r"<\|([\d.]+)\|>", segments)]
    assert stamps == sorted(stamps) and len(stamps) == 2 * 7
    assert "[PERSON]w12 w13[/PERSON]" in chunk["text_tagged_segments"]
    # `max_segment_s`: a segment is also cut before a word that would make it longer; entities stay whole
    capped = chunk_article(flat, ChunkConfig(context_words=64, max_segment_s=2.0))[0]
    assert capped["text_segments"].startswith("<|0.00|> w0 w1 w2 w3 w4<|1.90|><|2.00|> w5 w6 w7 w8 w9<|3.90|>")
    assert re.sub(r"<\|[\d.]+\|>", " ", capped["text_segments"]).split() == chunk["text"].split()
    stamps = [float(t) for t in re.findall(r"<\|([\d.]+)\|>", capped["text_segments"])]
    assert max(b - a for a, b in zip(stamps[0::2], stamps[1::2], strict=True)) <= 2.0
    assert "[PERSON]w12 w13[/PERSON]" in capped["text_tagged_segments"]
    assert capped["window"]["text_segments"].startswith(capped["text_segments"][:60])


def test_a_window_is_the_30_s_whisper_reads_from_the_chunk_start():
    """The window runs past the chunk: segments that end inside 30 s, then the start time of the one its end cuts
    (Whisper's ending where speech goes on); clipped at the audio's end; empty when no segment ends inside it."""
    flat = _synthetic(n_words=90, sentence_words=10, entities=[(64, 66, "PERSON")])  # sentences of 4 s
    chunk = chunk_article(flat, ChunkConfig(context_words=64))[0]
    assert chunk["tokens"] == (0, 62) and chunk["text_segments"].endswith(" w60 w61<|24.70|>")
    window = chunk["window"]
    assert window["end_ms"] == 30_000 and window["text_segments"].endswith(" w69<|27.90|><|28.00|>")
    assert window["text_segments"].startswith(chunk["text_segments"][: chunk["text_segments"].index("w60")])
    assert window["text"] == " ".join(f"w{i}" for i in range(70)) and window["text"].startswith(chunk["text"])
    assert "[PERSON]w64 w65[/PERSON]" in window["text_tagged_segments"]
    short = chunk_article(flat, ChunkConfig(context_words=64), audio_end_ms=26_000)[0]["window"]
    assert short["end_ms"] == 26_000 and short["text_segments"].endswith(" w59<|23.90|><|24.00|>")
    assert short["text"] == chunk["text"]  # the words the target writes, never fewer than the chunk's
    last = chunk_article(flat, ChunkConfig(context_words=64))[-1]
    assert last["window"]["text_segments"].endswith(" w89<|%.2f|>" % ((89 * 400 + 300 - last["start_ms"]) / 1000))
    one_sentence = chunk_article(_synthetic(n_words=90), ChunkConfig(context_words=64))[0]["window"]
    assert one_sentence["text_segments"] == "" and one_sentence["text_tagged_segments"] == ""


def test_a_shifted_window_starts_inside_the_chunk_at_the_first_word_heard_whole():
    """`shifted_window`: 30 s from a point drawn inside the chunk (the same on every build), its target from the first
    word that starts after that point, stamped relative to it, ending as a long-form window's does."""
    flat = _synthetic(n_words=600, sentence_words=10)  # words every 400 ms, sentences of 4 s
    chunks = chunk_article(flat, ChunkConfig(context_words=64))
    assert [c["shifted_window"] for c in chunks] == [c["shifted_window"] for c in chunk_article(flat, ChunkConfig())]
    shifts = []
    for chunk in chunks:
        shifted = chunk["shifted_window"]
        start = shifted["start_ms"]
        assert chunk["start_ms"] <= start < chunk["end_ms"] and shifted["end_ms"] == start + 30_000
        first = int(np.ceil(start / 400))  # the first word that starts at or after the shift
        stamps = [float(t) for t in re.findall(r"<\|([\d.]+)\|>", shifted["text_segments"])]
        assert stamps[0] == round((first * 400 - start) / 20) * 0.02  # relative to the shift, on the 0.02 s grid
        assert shifted["text"].split()[0] == f"w{first}"
        assert re.sub(r"<\|[\d.]+\|>", " ", shifted["text_segments"]).split() == shifted["text"].split()
        # the first segment ends at the sentence end the shift fell into
        assert shifted["text_segments"].split("<|")[1].split()[-1] == f"w{first // 10 * 10 + 9}"
        shifts.append((start - chunk["start_ms"]) / (chunk["end_ms"] - chunk["start_ms"]))
    assert min(shifts) < 0.3 and max(shifts) > 0.7  # drawn across the chunk, not at one place
    assert any(s["shifted_window"]["start_ms"] % 400 > 300 for s in chunks)  # some fall into a pause


def test_real_fixture_chunks():
    article = read_article(FIXTURES / "Philosophie", require_audio=False)
    flat = flatten(article)
    chunks = chunk_article(flat)
    assert all(c["end_ms"] - c["start_ms"] <= 30_000 for c in chunks)
    assert " ".join(c["middle_text"] for c in chunks).split() == article.text.split()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"middle_s": 0}, "positive middle"),
        ({"left_s": 10, "right_s": 10}, "30 s"),
        ({"context_words": 10}, "64..4096"),
        ({"max_segment_s": 0}, "max_segment_s must be positive"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChunkConfig(**kwargs)
