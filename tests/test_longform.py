"""Long-form transcription of whole articles and the evaluate command."""

import json

import jiwer
import numpy as np
import pytest

from hf_whisper_context.audio import load_audio
from hf_whisper_context.cli import main
from hf_whisper_context.data.dataset import load_swc, load_swc_articles
from hf_whisper_context.errors import ConfigError
from hf_whisper_context.evaluation import run_labels
from hf_whisper_context.transcribe import Decoding, Transcript, audio_blocks, load_asr_pipeline, transcribe_long


def test_blocks_cut_in_the_quiet_and_cover_everything():
    rate = 16000
    audio = np.tile(np.concatenate([np.full(rate * 7, 0.5), np.zeros(rate // 2)]), 6).astype(np.float32)  # 45 s
    blocks = list(audio_blocks(audio, block_s=15))
    assert sum(len(b) for _, b in blocks) == len(audio)
    assert [o for o, _ in blocks] == [0.0, *np.cumsum([len(b) / rate for _, b in blocks[:-1]]).tolist()]
    for offset, _ in blocks[1:]:  # every cut lies in a silent gap
        assert audio[int(offset * rate) - 10 : int(offset * rate) + 10].max() == 0.0


def test_an_article_of_up_to_half_an_hour_is_decoded_in_one_block():
    """A cut between blocks leaves an almost empty last window where a fine-tuned student can hallucinate: the
    default block keeps the articles that are evaluated whole."""
    audio = np.full(25 * 60 * 16000, 0.1, dtype=np.float32)
    assert [offset for offset, _ in audio_blocks(audio)] == [0.0]


def test_blocks_stream_files_in_order(tmp_path):
    import soundfile as sf

    for i, seconds in enumerate((3, 4), start=1):
        sf.write(tmp_path / f"audio{i}.flac", np.full(seconds * 22050, 0.1 * i, dtype=np.float32), 22050)
    blocks = list(audio_blocks([tmp_path / "audio1.flac", tmp_path / "audio2.flac"], block_s=600))
    assert len(blocks) == 1 and abs(len(blocks[0][1]) - 7 * 16000) <= 2


@pytest.mark.slow
def test_empty_audio_and_unknown_strategy(tiny_en):
    asr = load_asr_pipeline(str(tiny_en))
    assert transcribe_long(np.zeros(0, dtype=np.float32), asr) == Transcript("", [])
    with pytest.raises(ValueError, match="known: chunked, sequential"):
        transcribe_long(np.zeros(10, dtype=np.float32), asr, strategy="magic")


def _in_article_time(transcript) -> bool:
    starts = [s["start"] for s in transcript.segments]
    return starts == sorted(starts) and starts[-1] > 30  # block offsets carried into article time


@pytest.mark.slow
def test_whole_article_transcripts(corpus, tiny_en):
    """Chunked here; sequential in the fallback test below (the same article, decoded once)."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    load_swc(corpus, test_articles=1)
    article = load_swc_articles(corpus, "test")[0]
    transcript = transcribe_long(article["audio_path"], load_asr_pipeline(str(tiny_en)), "chunked", block_s=40)
    normalize = EnglishTextNormalizer({})
    assert jiwer.wer(normalize(article["text"]), normalize(transcript.text)) < 0.35
    assert _in_article_time(transcript)


@pytest.mark.slow
def test_fallback_decoding_reaches_sequential_long_form_only(corpus, tiny_en):
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from hf_whisper_context.transcribe import FALLBACK

    load_swc(corpus, test_articles=1)
    article = load_swc_articles(corpus, "test")[0]
    asr, seen = load_asr_pipeline(str(tiny_en)), []

    def watched(inputs, **kwargs):  # the real pipeline, with the generate kwargs of each call kept
        seen.append((len(inputs["raw"]), kwargs["generate_kwargs"]))
        return asr(inputs, **kwargs)

    watched.model = asr.model
    safe = Decoding(fallback=True)
    transcript = transcribe_long(article["audio_path"], watched, "sequential", safe, block_s=40)
    assert all((n > 30 * 16_000) == (FALLBACK.items() <= kw.items()) for n, kw in seen) and seen[0][0] > 30 * 16_000
    normalize = EnglishTextNormalizer({})
    assert jiwer.wer(normalize(article["text"]), normalize(transcript.text)) < 0.35 and _in_article_time(transcript)
    seen.clear()
    transcribe_long(load_audio(article["audio_path"][0])[: 35 * 16_000], watched, "chunked", safe)
    assert seen and not any("compression_ratio_threshold" in kw for _, kw in seen)  # 30 s windows: no fallback
    assert "temperature fallback" in safe.describe() and Decoding().fallback_kwargs() == {}
    seen.clear()  # the previous text as prompt reaches sequential decoding, and only when asked
    prompted = Decoding(condition_on_prev=True)
    transcribe_long(load_audio(article["audio_path"][0])[: 35 * 16_000], watched, "sequential", prompted)
    assert [kw["condition_on_prev_tokens"] for _, kw in seen] == [True]
    assert "conditioned on the previous text" in prompted.describe()
    # without the timestamp-sum rule: set on the model's generation config, which builds the timestamp processor
    from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor

    plain = Decoding(timestamp_sum_rule=False)
    first = transcribe_long(load_audio(article["audio_path"][0])[: 35 * 16_000], watched, "sequential", plain)
    assert not WhisperTimeStampLogitsProcessor(asr.model.generation_config, 3)._detect_timestamp_from_logprob
    words = normalize(article["text"]).split()
    assert jiwer.wer(" ".join(words[: len(normalize(first.text).split())]), normalize(first.text)) < 0.35
    assert plain.describe() == "greedy, timestamp-sum rule off"
    # the jump guard: a student saved with it carries it in its generation config, which Decoding() leaves alone
    asr.model.generation_config.timestamp_jump_guard = True
    transcribe_long(load_audio(article["audio_path"][0])[: 35 * 16_000], watched, "sequential", plain)
    assert asr.model.generation_config.timestamp_jump_guard is True
    transcribe_long(load_audio(article["audio_path"][0])[: 35 * 16_000], watched, "sequential",
                    Decoding(timestamp_jump_guard=False))  # fmt: skip
    assert asr.model.generation_config.timestamp_jump_guard is False


@pytest.mark.slow
def test_the_faster_whisper_backend_transcribes_like_transformers(corpus, tiny_en, tmp_path, capsys):
    from hf_whisper_context.errors import ConfigError
    from hf_whisper_context.metrics import compute_all, summary

    load_swc(corpus, test_articles=1)
    article = load_swc_articles(corpus, "test")[0]
    fast = load_asr_pipeline("tiny.en", backend="faster-whisper")  # the bundled model's own CTranslate2 files
    texts = [transcribe_long(article["audio_path"], asr, "sequential").text
             for asr in (fast, load_asr_pipeline(str(tiny_en)))]  # fmt: skip
    wers = [summary(compute_all([article["text_tagged"]], [t]))["wer"] for t in texts]
    print(f"long-form WER on {article['article_id']}: faster-whisper {wers[0]:.4f}, transformers {wers[1]:.4f}")
    assert wers[0] < 0.35 and abs(wers[0] - wers[1]) <= 0.005, wers  # the same weights, the same text rules
    with pytest.raises(ConfigError, match="decodes sequentially"):
        transcribe_long(article["audio_path"], fast, "chunked")
    with pytest.raises(ConfigError, match="applies Whisper.s timestamp rules as they are"):
        transcribe_long(article["audio_path"], fast, "sequential", Decoding(timestamp_sum_rule=False))
    exported = load_asr_pipeline(str(tiny_en), backend="faster-whisper")  # a checkpoint folder: exported once
    assert (exported.folder / "model.bin").is_file() and "ct2-exports" in str(exported.folder)
    assert main(["evaluate", "--model", str(tiny_en), "--data", str(corpus), "--strategy", "sequential",
                 "--backend", "faster-whisper", "--output-dir", str(tmp_path / "eval")]) == 0  # fmt: skip
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert list(results["runs"]) == ["whisper-tiny.en (sequential, faster-whisper)"]
    assert "faster-whisper backend" in results["decoding"]


@pytest.mark.slow
def test_every_model_gets_its_own_run_name():
    """Three students all saved in a folder called `merged` once shared one name: only the last one's results were
    kept. Labels are the shortest path tails that tell the models apart."""
    assert run_labels(["tiny.en", "runs/ce/seed0/merged", "runs/ce/seed1/merged"]) == [
        "tiny.en", "seed0/merged", "seed1/merged"]  # fmt: skip
    assert run_labels(["a/x/merged", "b/x/merged", "base"]) == ["a/x/merged", "b/x/merged", "base"]
    with pytest.raises(ConfigError, match="the same model is given twice"):
        run_labels(["out/merged", "out/merged"])
    with pytest.raises(ConfigError, match="must name the 2 models once each"):
        run_labels(["a", "b"], ["ce", "ce"])


def test_evaluate_command_writes_one_column_per_run(corpus, tiny_en, tmp_path, capsys):
    """In two processes (one run each), transcribing as one process does."""
    load_swc(corpus, test_articles=1)
    out = tmp_path / "eval"
    argv = ["evaluate", "--model", str(tiny_en), "--data", str(corpus), "--strategy", "chunked", "sequential",
            "--output-dir", str(out), "--num_proc", "2"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["runs"]) == ["whisper-tiny.en (chunked)", "whisper-tiny.en (sequential)"]
    article, asr = load_swc_articles(corpus, "test")[0], load_asr_pipeline(str(tiny_en))
    here = transcribe_long(article["audio_path"], asr, "sequential").text  # the other process's run, here
    assert results["runs"]["whisper-tiny.en (sequential)"]["articles"][0]["hypothesis"] == here
    table = (out / "results.md").read_text()
    assert table.splitlines()[2] == "| metric | whisper-tiny.en (chunked) | whisper-tiny.en (sequential) |"
    wer = results["runs"]["whisper-tiny.en (chunked)"]["summary"]["wer"]
    assert f"| WER (normalised) ↓ | {wer:.3f} |" in table and wer < 0.35
    assert "| Loops (repeated n-gram runs) ↓ |" in table
    assert {p.name for p in out.glob("*.png")} == {"entity_f1_per_type.png", "punctuation_f1_per_mark.png",
                                                   "wer_per_article.png", "loops_and_drops.png"}  # fmt: skip
    assert "entity F1 by type (entities from: tagger)" in capsys.readouterr().out
    run = results["runs"]["whisper-tiny.en (chunked)"]
    assert run["corpus"]["entity_mode"] == "tagger" and len(run["articles"][0]["windows"]) >= 2

    # the two strategies compared, paired over 30 s windows
    assert main(["compare", str(out), str(out / "results.json"), "--run-a", "whisper-tiny.en (chunked)",
                 "--run-b", "whisper-tiny.en (sequential)", "--resamples", "2000", "--output",
                 str(tmp_path / "cmp.json")]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "Paired bootstrap over" in printed and "windows (1 article," in printed and "| wer ↓ |" in printed
    assert json.loads((tmp_path / "cmp.json").read_text())["unit"] == "window"
    assert main(["compare", str(out), str(out)]) == 1  # two runs in each file and none picked
    assert "pick one with --run-a/--run-b" in capsys.readouterr().err
