"""Any `datasets` corpus in (`data.prepare`): real human speech (a telephone call with its STM transcript), Common
Voice- and LibriSpeech-shaped tables, the README's own-data example, and every bad input as an error or a counted
skip."""

import json
import logging
import re
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
import torch
from datasets import Audio, Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, WhisperForConditionalGeneration, WhisperProcessor

from hf_whisper_context import bundled
from hf_whisper_context.audio import SAMPLING_RATE, load_audio, resample
from hf_whisper_context.cli import main
from hf_whisper_context.collator import DistillationCollator
from hf_whisper_context.config import ContextDistillTrainingArguments
from hf_whisper_context.data.dataset import with_audio
from hf_whisper_context.data.prepare import load_speech_dataset, prepare_articles, prepare_dataset
from hf_whisper_context.errors import ConfigError
from hf_whisper_context.losses import build_vocab_map
from hf_whisper_context.trainer import ContextDistillTrainer

from .conftest import tiny_llama


def test_context_is_the_neighbouring_utterances(call):
    folder, rows = call
    ds = load_speech_dataset(str(folder))
    # shuffled on purpose: the order comes from `order_by`, not from the table
    prepared = prepare_dataset(ds.shuffle(seed=3), group_by="call", order_by="start", context_words=64)
    texts = [r["text"] for r in rows]
    assert prepared["text"] == texts and prepared["row_index"] == list(range(len(rows)))
    for k, row in enumerate(prepared):
        assert row["context_before"] == " ".join(" ".join(texts[:k]).split()[-32:])
        assert row["context_after"] == " ".join(" ".join(texts[k + 1 :]).split()[:32])
        assert row["article_id"] == "sample" and row["chunk_index"] == k and row["n_chunks"] == len(rows)
        assert row["text_segments"] == f"<|0.00|> {row['text']}<|{round(row['duration_s'] / 0.02) * 0.02:.2f}|>"
    assert "[GPE]New Jersey[/GPE]" in prepared[6]["text_tagged"] and "GPE" in prepared[6]["middle_entities"]
    audio = with_audio(prepared)[4]["audio"]
    assert audio["sampling_rate"] == SAMPLING_RATE and abs(len(audio["array"]) / SAMPLING_RATE - 0.942) < 0.01


@pytest.mark.slow
def test_real_speech_trains_with_the_teacher_and_evaluates_long_form(call, tiny_en, tmp_path):
    folder, rows = call
    prepared = prepare_dataset(load_speech_dataset(str(folder)), group_by="call", order_by="start")
    processor = WhisperProcessor.from_pretrained(tiny_en)
    teacher_path = bundled.teacher("smollm2-135m")
    teacher_tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_path).eval()
    rows_of_head = teacher.get_output_embeddings().weight.shape[0]
    vocab_map, _ = build_vocab_map(processor.tokenizer, teacher_tokenizer, rows_of_head)
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=2,
                                           max_steps=2, learning_rate=1e-5, logging_steps=1, save_strategy="no",
                                           report_to=[], use_cpu=True, kd_weight=0.5, ot_weight=0.1,
                                           rep_weight=0.2)  # fmt: skip
    trainer = ContextDistillTrainer(
        model=WhisperForConditionalGeneration.from_pretrained(tiny_en),
        args=args,
        train_dataset=with_audio(prepared),
        vocab_map=vocab_map,
        teacher_dim=teacher.config.hidden_size,
        teacher=teacher,
        data_collator=DistillationCollator(processor, teacher_tokenizer=teacher_tokenizer, timestamp_ratio=0.5),
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == 2 and all(np.isfinite(h[t]) and h[t] > 0 for h in logged for t in ("ce", "kd_ot", "rep"))

    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(folder), "--group-by", "call", "--order-by", "start", "--model",
                 str(tiny_en), "--strategy", "sequential", "--output-dir", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    (run,) = results["runs"].values()
    (article,) = run["articles"]
    assert article["article_id"] == "sample" and results["data"] == str(folder)
    assert 0 < article["scores"]["wer"] < 0.5  # tiny.en on a real phone call, whole
    assert {"wer", "wer_orthographic", "entity_f1", "comma_f1", "capitalization_f1", "loops"} <= set(run["summary"])
    assert (out / "results.md").is_file() and list(out.glob("*.png"))


@pytest.mark.slow
def test_a_long_recording_is_cut_by_whisper_timestamps(call, tiny_en, tmp_path):
    from transformers import pipeline
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    from hf_whisper_context.data.dataset import chunk_audio

    audio = load_audio(bundled.phone_call() / "sample.wav")
    sf.write(tmp_path / "twice.wav", np.concatenate([audio, audio]), SAMPLING_RATE)  # 60 s, the call twice
    transcript = " ".join(r["text"] for r in call[1])
    ds = Dataset.from_dict({"audio": [str(tmp_path / "twice.wav")], "text": [f"{transcript} {transcript}"]})
    with pytest.raises(ConfigError, match="none of its 1 rows can be used .*pass cut_with="):
        prepare_dataset(ds, spacy_model=None)
    prepared = prepare_dataset(ds, cut_with=str(tiny_en))
    assert len(prepared) >= 3 and prepared["row_index"] == list(range(len(prepared)))
    assert " ".join(prepared["middle_text"]).split() == f"{transcript} {transcript}".split()  # every word, once
    spans = list(zip(prepared["audio_start_s"], prepared["audio_end_s"], strict=True))
    assert all(0 <= a < b <= 60.0 and b - a <= 30.0 for a, b in spans) and spans == sorted(spans)
    second = next(r for r in prepared if r["start_s"] > 30 and "New Jersey" in r["middle_text"])
    assert "[GPE]New Jersey[/GPE]" in second["text_tagged"] and "Hello?" in second["context_before"]
    asr, normalize = pipeline("automatic-speech-recognition", model=str(tiny_en)), EnglishTextNormalizer({})
    for row in prepared:  # the cut audio says the chunk's text: the times are right
        heard = asr(chunk_audio(row), generate_kwargs={"num_beams": 1})["text"]
        assert jiwer.wer(normalize(row["text"]), normalize(heard)) < 0.35, (row["text"], heard)


def _shaped(call, layout: str) -> Dataset:
    """The call's utterances laid out as Common Voice or LibriSpeech rows (real audio, their columns)."""
    folder, rows = call
    paths = [str(folder / r["file_name"]) for r in rows]
    if layout == "common_voice":  # Common Voice ships 48 kHz clips: resampled to 16 kHz on access
        for k, path in enumerate(paths):
            paths[k] = str(folder / f"cv48k_{Path(path).stem}.flac")
            sf.write(paths[k], resample(load_audio(path), SAMPLING_RATE, 48_000), 48_000)
        table = {"client_id": [r["speaker"] for r in rows], "path": [Path(p).name for p in paths], "audio": paths,
                 "sentence": [r["text"] for r in rows], "up_votes": [2] * len(rows)}  # fmt: skip
    else:
        table = {"file": paths, "audio": paths, "text": [re.sub(r"[^\w' ]", "", r["text"]).upper() for r in rows],
                 "speaker_id": [84 if r["speaker"] == "Diane" else 121 for r in rows],
                 "chapter_id": [121123] * len(rows),
                 "id": [f"84-121123-{k:04d}" for k in range(len(rows))]}  # fmt: skip
    return Dataset.from_dict(table).cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))


@pytest.mark.parametrize("layout", ["common_voice", "librispeech"])
def test_hub_shaped_tables_train_one_step(call, tiny_models, layout, tmp_path):
    grouping = {"group_by": "chapter_id", "order_by": "id"} if layout == "librispeech" else {}
    prepared = prepare_dataset(_shaped(call, layout), spacy_model=None, **grouping)
    assert len(prepared) == 13 and prepared[0]["text"]
    decoded = with_audio(prepared)[6]["audio"]  # 1.64 s of speech, at 16 kHz whatever the file's rate
    assert decoded["sampling_rate"] == SAMPLING_RATE and abs(len(decoded["array"]) - 1.642 * SAMPLING_RATE) < 40
    assert bool(prepared[5]["context_before"]) == (layout == "librispeech")  # no group: no context
    processor = WhisperProcessor.from_pretrained(tiny_models / "student")
    teacher_tokenizer = AutoTokenizer.from_pretrained(tiny_models / "teacher")
    torch.manual_seed(0)
    teacher = tiny_llama(teacher_tokenizer)
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1,
                                           logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
                                           kd_weight=0.5, rep_weight=0.2)  # fmt: skip
    trainer = ContextDistillTrainer(
        model=WhisperForConditionalGeneration.from_pretrained(tiny_models / "student"),
        args=args,
        train_dataset=with_audio(prepared),
        vocab_map=build_vocab_map(processor.tokenizer, teacher_tokenizer)[0],
        teacher_dim=16,
        teacher=teacher,
        data_collator=DistillationCollator(processor, teacher_tokenizer=teacher_tokenizer),
    )
    trainer.train()
    (logged,) = [h for h in trainer.state.log_history if "loss" in h]
    assert np.isfinite(logged["loss"]) and logged["kd_ot"] > 0


def test_the_readme_own_data_example_runs_as_written(capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme[readme.index("## Your own data") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "New Jersey" in printed and "Hello?" in printed


def test_missing_columns_and_groups_without_order_are_named(call):
    folder, rows = call
    ds = load_speech_dataset(str(folder))
    with pytest.raises(
        ConfigError,
        match=r"no text column found \(looked for text, sentence.*\); the dataset's "
        r"columns: audio, words, speaker, call, start",
    ):
        prepare_dataset(ds.rename_column("text", "words"), spacy_model=None)
    with pytest.raises(ConfigError, match="no audio column 'wav'; its columns: audio, text, speaker, call, start"):
        prepare_dataset(ds, audio_column="wav", spacy_model=None)
    with pytest.raises(ConfigError, match="need their order within the group: pass order_by="):
        prepare_dataset(ds, group_by="call", spacy_model=None)
    with pytest.raises(ConfigError, match="no column 'chapter'"):
        prepare_articles(ds, group_by="chapter", order_by="start", spacy_model=None)
    with pytest.raises(ConfigError, match="neither a saved dataset"):
        load_speech_dataset(str(folder.parent))


def test_unusable_rows_are_counted_skips(call, tmp_path, caplog):
    folder, rows = call
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav file")
    nan = np.zeros(SAMPLING_RATE, dtype=np.float32)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SAMPLING_RATE, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", np.zeros(800, dtype=np.float32), SAMPLING_RATE)
    sf.write(tmp_path / "long.wav", np.tile(load_audio(folder / "u06.wav"), 40), SAMPLING_RATE)
    good = str(folder / "u06.wav")
    table = {"audio": [good, str(tmp_path / "broken.wav"), str(tmp_path / "nan.wav"), str(tmp_path / "short.wav"),
                       str(tmp_path / "long.wav"), good, str(tmp_path / "missing.wav")],
             "text": ["This is Diane.", "a", "b", "c", "d", "   ", "e"]}  # fmt: skip
    with caplog.at_level(logging.WARNING):
        prepared = prepare_dataset(Dataset.from_dict(table), spacy_model=None)
    assert prepared["source_index"] == [0]
    message = caplog.text
    assert "skipped 6 of 7 rows" in message and "3 unusable audio" in message and "1 empty transcript" in message
    assert "1 longer than 30 s with one transcript" in message and "1 audio shorter than 0.1 s" in message
    assert "missing.wav does not exist" in message or "broken.wav" in message
    # evaluation takes the long recording whole; the short clip is still too short to score
    articles = prepare_articles(Dataset.from_dict(table), spacy_model=None)
    assert articles["article_id"] == ["row-0", "row-4"] and articles["duration_s"][1] > 30
    with pytest.raises(ConfigError, match="none of its 2 rows can be used"):
        prepare_dataset(Dataset.from_dict({"audio": [str(tmp_path / "short.wav")] * 2, "text": ["x", "y"]}))
