"""Tag tokens for a Whisper student: inserted before <|notimestamps|>, so that decoding with and without timestamps
is unchanged, pipelines read clean text by default and the tags on request."""

import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor, pipeline

from hf_whisper_context.audio import load_audio
from hf_whisper_context.student_tags import insert_tag_tokens, tag_ids, tags_as_text
from hf_whisper_context.tags import TAG_TOKENS

pytestmark = pytest.mark.slow


def test_tags_inserted_before_the_timestamps_leave_decoding_unchanged(tiny_en, clips, tmp_path):
    processor = WhisperProcessor.from_pretrained(tiny_en)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_en)
    features = processor(load_audio(clips[0][0]), sampling_rate=16000, return_tensors="pt").input_features
    before = {ts: model.generate(features, return_timestamps=ts)[0].tolist() for ts in (False, True)}
    n = processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    tokenizer = insert_tag_tokens(model, processor.tokenizer)
    assert tag_ids(tokenizer) == list(range(n, n + 42)) and len(tokenizer) == model.config.vocab_size == 51864 + 42
    assert tokenizer.convert_tokens_to_ids(["<|notimestamps|>", "<|0.00|>"]) == [n + 42, n + 43]
    assert tokenizer.all_special_ids[-1] == n + 42  # Whisper's tokenizer starts timestamps after its last special
    for timestamps, ids in before.items():  # the same output, ids at or after <|notimestamps|> shifted by 42
        with torch.no_grad():
            after = model.generate(features, return_timestamps=timestamps)[0].tolist()
        assert after == [i + 42 if i >= n else i for i in ids]
    assert insert_tag_tokens(model, tokenizer) is tokenizer  # twice is once

    processor.tokenizer = tokenizer
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path))
    assert tag_ids(asr.tokenizer) and "[" not in asr(load_audio(clips[0][0]), return_timestamps=True)["text"]
    ids = tokenizer("[PERSON]Bob[/PERSON] sang", add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids("[PERSON]") and len([i for i in ids if i >= n]) == 2
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Bob sang"
    assert tags_as_text(tokenizer).decode(ids) == "[PERSON]Bob[/PERSON] sang"
    assert set(TAG_TOKENS) <= set(tokenizer.all_special_tokens)  # the original keeps them special


def test_a_tagged_student_learns_to_write_tags(tiny_en, clips, tmp_path):
    """Trained on tagged targets for a few steps at a high rate, the student's own output carries tags, read by the
    evaluation's tokenizer (`tags_as_text`)."""
    from datasets import Dataset

    from hf_whisper_context.experiment import Recipe, train_student

    rows = {"text": [t for _, t in clips], "text_tagged": [
        "[PERSON]Albert Einstein[/PERSON] was born in [GPE]Ulm[/GPE], in the [GPE]Kingdom of Württemberg[/GPE], on "
        "[DATE]the fourteenth of March 1879[/DATE].",
        "The [PRODUCT]Apollo 11[/PRODUCT] mission landed on the [LOC]Moon[/LOC] in [DATE]July 1969[/DATE], with "
        "[PERSON]Neil Armstrong[/PERSON] and [PERSON]Buzz Aldrin[/PERSON].",
        "[PERSON]Abraham Lincoln[/PERSON] was the [ORDINAL]sixteenth[/ORDINAL] president of the [GPE]United "
        "States[/GPE], from [DATE]1861 until 1865[/DATE]."]}  # fmt: skip
    rows["row_index"] = list(range(3))
    rows["audio_path"] = [[str(path)] for path, _ in clips]
    rows["audio_start_s"], rows["audio_end_s"] = [[0.0]] * 3, [[float("inf")]] * 3
    recipe = Recipe(student=str(tiny_en), steps=12, batch_size=3, learning_rate=3e-3, tagged=True,
                    timestamp_ratio=0.0, warmup=0, freeze_encoder_layers=0)  # fmt: skip
    trained = train_student(recipe, "ce", Dataset.from_dict(rows), tmp_path, seed=0)
    asr = pipeline("automatic-speech-recognition", model=str(trained["merged"]))
    asr.tokenizer = tags_as_text(asr.tokenizer)
    text = asr(load_audio(clips[0][0]))["text"]
    assert "[PERSON]" in text or "[GPE]" in text, text
