"""The DistillationCollator on the real tiny.en processor and a teacher cache from a tiny random Llama."""

import re

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, WhisperProcessor

from hf_whisper_context import bundled
from hf_whisper_context.collator import DistillationCollator
from hf_whisper_context.teacher.cache import CacheConfig, TeacherCache, cache_teacher
from hf_whisper_context.teacher.window import mask_uncovered

from .conftest import tiny_llama

pytestmark = pytest.mark.slow
TEXTS = ["Albert Einstein was born in Ulm, in 1879.", "", "He moved to Princeton, New Jersey."]


@pytest.fixture(scope="module")
def setup(tiny_en, tmp_path_factory):
    processor = WhisperProcessor.from_pretrained(tiny_en)
    tok = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    torch.manual_seed(0)
    teacher = tiny_llama(tok)
    data = Dataset.from_dict({"text": TEXTS, "context_before": ["", "x y", "z"], "context_after": ["a", "", ""]})
    folder = cache_teacher(data, teacher.eval(), tok, tmp_path_factory.mktemp("cache"), CacheConfig(k=4))
    rows = [{"text": t, "row_index": i, "audio": {"array": np.zeros(16000 * (i + 1), dtype=np.float32)}}
            for i, t in enumerate(TEXTS)]  # fmt: skip
    return processor, TeacherCache(folder), rows


def test_labels_spans_and_masks(setup):
    processor, _, rows = setup
    batch = DistillationCollator(processor)([rows[0], rows[2]])
    tokenizer = processor.tokenizer
    assert batch["input_features"].shape == (2, 80, 3000)
    labels = batch["labels"]
    assert labels[0, 0] != tokenizer.convert_tokens_to_ids("<|startoftranscript|>")  # start token stripped
    assert (labels[1] == -100).any() and (labels[0] != -100).all()  # the shorter row is padded with -100
    text_ids = labels[0][batch["distill_mask"][0]]
    assert tokenizer.decode(text_ids) == " " + TEXTS[0]
    spans = batch["student_spans"][0][batch["distill_mask"][0]]
    assert "".join(TEXTS[0][s:e] for s, e in spans.tolist()) == TEXTS[0]
    assert batch["text_lengths"].tolist() == [len(TEXTS[0]), len(TEXTS[2])]


def test_teacher_tensors_are_padded_with_masks(setup):
    processor, cache, rows = setup
    batch = DistillationCollator(processor, cache)(rows)
    assert batch["teacher_topk_ids"].shape[:2] == batch["teacher_mask"].shape
    assert not batch["teacher_mask"][1].any()  # the empty row has no teacher signal
    n = len(cache[0]["token_ids"])
    # no context before row 0: its first token has no predicting position, so it is masked like the padding
    assert batch["teacher_mask"][0, :n].tolist() == cache[0]["valid"].tolist() == [False] + [True] * (n - 1)
    assert not batch["teacher_mask"][0, n:].any()
    torch.testing.assert_close(batch["teacher_topk_logprobs"][0, :n], torch.from_numpy(
        cache[0]["topk_logprobs"].astype(np.float32)))  # fmt: skip
    with pytest.raises(ValueError, match="no row of this batch is in the teacher cache"):
        DistillationCollator(processor, cache)([rows[1]])


def test_previous_text_prompt_is_fed_and_masked(setup):
    """With `prompt_words`, decoder inputs carry <|startofprev|> + the previous words + <|startoftranscript|>; the
    labels are the plain labels shifted by the prompt and the prompt is never a target."""
    processor, _, rows = setup
    tokenizer = processor.tokenizer
    with_context = [{**rows[0], "context_before": "one two three four five six"}, {**rows[2], "context_before": ""}]
    plain = DistillationCollator(processor)(with_context)
    batch = DistillationCollator(processor, prompt_words=3)(with_context)
    dec, labels = batch["decoder_input_ids"], batch["labels"]
    prev, start = (
        tokenizer.convert_tokens_to_ids("<|startofprev|>"),
        tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
    )
    prompt = tokenizer(" four five six", add_special_tokens=False).input_ids
    skip = 1 + len(prompt)
    assert dec[0, :skip].tolist() == [prev, *prompt] and dec[0, skip] == start
    assert (labels[0, :skip] == -100).all() and not batch["distill_mask"][0, :skip].any()
    n = int((plain["labels"][0] != -100).sum())
    assert torch.equal(labels[0, skip : skip + n], plain["labels"][0, :n])  # the same targets after the prompt
    assert torch.equal(dec[0, skip + 1 : skip + n], plain["labels"][0, : n - 1])  # teacher forcing: shifted by one
    assert torch.equal(batch["distill_mask"][0, skip : skip + n], plain["distill_mask"][0, :n])
    # a row with no previous text gets no prompt: exactly the decoder inputs the model would build itself
    m = int((plain["labels"][1] != -100).sum())
    assert dec[1, 0] == start and torch.equal(dec[1, 1:m], plain["labels"][1, : m - 1])
    assert torch.equal(labels[1, :m], plain["labels"][1, :m])


def test_timestamped_targets(setup):
    """`timestamp_ratio=1`: the target as Whisper writes it with timestamps (no <|notimestamps|>), the timestamps
    outside the distillation mask, the text tokens' spans still pointing into the plain text."""
    processor, _, rows = setup
    tokenizer = processor.tokenizer
    row = {**rows[0], "text_segments": "<|0.00|> Albert Einstein was born in Ulm,<|1.20|><|1.50|> in 1879.<|2.40|>"}
    plain = DistillationCollator(processor)([row])
    batch = DistillationCollator(processor, timestamp_ratio=1.0)([row])
    labels, mask = batch["labels"][0], batch["distill_mask"][0]
    no_timestamps = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    assert no_timestamps in plain["labels"][0].tolist() and no_timestamps not in labels.tolist()
    assert tokenizer.decode(labels[labels != -100], decode_with_timestamps=True) == row["text_segments"] + \
        "<|endoftext|>"  # fmt: skip
    assert torch.equal(labels[mask], plain["labels"][0][plain["distill_mask"][0]])  # the same text tokens
    spans = batch["student_spans"][0][mask].tolist()
    assert [TEXTS[0][s:e] for s, e in spans] == [
        TEXTS[0][s:e] for s, e in plain["student_spans"][0][plain["distill_mask"][0]].tolist()
    ]
    # the share of rows drawn is seeded and close to the ratio
    many = [{**row, "row_index": i} for i in range(400)]
    collator = DistillationCollator(processor, timestamp_ratio=0.3, seed=1)
    drawn = [collator._timestamped(r) for r in many]
    assert drawn == [DistillationCollator(processor, timestamp_ratio=0.3, seed=1)._timestamped(r) for r in many]
    assert 0.22 < sum(drawn) / len(drawn) < 0.38


def test_cut_rows_end_as_whisper_writes_a_window_cut_mid_speech(setup):
    """`cut_ratio=1`: the audio ends at the drawn second; the target keeps the segments that ended by then and ends
    on the start time of the interrupted one; the teacher positions past the kept text are masked in the trainer."""
    from hf_whisper_context.collator import _cut_target

    processor, cache, rows = setup
    tokenizer = processor.tokenizer
    segments = "<|0.00|> Albert Einstein<|1.00|><|1.20|> was born in Ulm,<|2.00|><|2.40|> in 1879.<|3.00|>"
    assert _cut_target(segments, 1.5) == ("<|0.00|> Albert Einstein<|1.00|><|1.20|>", segments.index("<|1.00|>"))
    assert _cut_target(segments, 2.2)[0] == "<|0.00|> Albert Einstein<|1.00|><|1.20|> was born in Ulm,<|2.00|>"
    row = {**rows[0], "text_segments": segments, "audio": {"array": np.ones(16000 * 3, dtype=np.float32)}}
    collator = DistillationCollator(processor, cache, timestamp_ratio=1.0, cut_ratio=1.0, seed=3)
    timestamped, cut, window = collator._draw(row)
    assert timestamped and 1.0 <= cut <= 3.0 and not window
    batch = collator([row])
    labels = batch["labels"][0]
    want, closed_end = _cut_target(segments, cut)
    assert tokenizer.decode(labels[labels != -100], decode_with_timestamps=True) == want + "<|endoftext|>"
    kept = re.sub(r"<\|[\d.]+\|>", " ", want).split()
    assert TEXTS[0][: batch["text_covered"][0]].split() == kept and len(kept) < len(TEXTS[0].split())
    assert collator([rows[0] | {"text_segments": segments}])["text_covered"][0] < len(TEXTS[0])
    # the audio ends at the cut second (the feature extractor pads it with silence to 30 s)
    audio = np.ones(round(cut * 16000), dtype=np.float32)
    want_features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    torch.testing.assert_close(batch["input_features"], want_features)
    # the trainer distils only the teacher positions inside the kept text
    teacher = {k: batch[k] for k in ("teacher_mask", "teacher_spans", "text_covered")}
    masked = mask_uncovered(dict(teacher))["teacher_mask"][0]
    starts = batch["teacher_spans"][0, :, 0]
    assert torch.equal(masked, batch["teacher_mask"][0] & (starts < batch["text_covered"][0]))
    assert masked.sum() < batch["teacher_mask"][0].sum()
    # no cut when a row has a single segment: nothing to keep before the cut
    one = {**row, "text_segments": "<|0.00|> Albert Einstein was born in Ulm, in 1879.<|3.00|>"}
    assert collator._draw(one) == (True, None, None)


def test_window_rows_train_on_the_30_s_from_the_chunk_start(setup, tmp_path):
    """`window_ratio=1`: the row's `window` audio (read from its files) and target; the words past the chunk's text
    are not distilled; a window whose end interrupts the chunk's own words covers the text up to its last closed
    segment; rows without a `window`, or whose window has no closed segment, are handled as they say."""
    import soundfile as sf

    from hf_whisper_context.errors import ConfigError

    processor, cache, rows = setup
    tokenizer = processor.tokenizer
    audio = np.sin(np.arange(16000 * 30) / 50).astype(np.float32) * 0.1
    sf.write(tmp_path / "article.wav", audio, 16000, subtype="FLOAT")
    segments = ("<|0.00|> Albert Einstein<|1.00|><|1.20|> was born in Ulm,<|2.00|><|2.40|> in 1879.<|3.00|>"
                "<|3.50|> He moved to Princeton,<|5.00|><|29.50|>")  # fmt: skip
    window = {"audio_path": [str(tmp_path / "article.wav")], "audio_start_s": [0.0], "audio_end_s": [30.0],
              "text": TEXTS[0] + " He moved to Princeton, New Jersey.", "text_segments": segments}  # fmt: skip
    row = {**rows[0], "window": window}
    collator = DistillationCollator(processor, cache, timestamp_ratio=1.0, window_ratio=1.0)
    assert collator._draw(row) == (True, None, "window")
    batch = collator([row])
    labels = batch["labels"][0]
    assert tokenizer.decode(labels[labels != -100], decode_with_timestamps=True) == segments + "<|endoftext|>"
    spans = batch["student_spans"][0][batch["distill_mask"][0]].tolist()
    assert "".join(TEXTS[0][s:e] for s, e in spans) == TEXTS[0]  # "He moved to Princeton," is not distilled
    assert batch["text_covered"][0] == len(TEXTS[0])
    want = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    torch.testing.assert_close(batch["input_features"], want)
    # the window's end interrupts the chunk's last words: the teacher's positions past "Ulm," are not distilled
    cut = {**window, "text_segments": "<|0.00|> Albert Einstein<|1.00|><|1.20|> was born in Ulm,<|2.00|><|2.40|>"}
    batch = collator([{**row, "window": cut}])
    assert batch["text_covered"][0] == TEXTS[0].index("Ulm,") + len("Ulm,")
    assert mask_uncovered(dict(batch))["teacher_mask"][0].sum() < batch["teacher_mask"][0].sum()
    # no segment ends inside the window: the chunk, as a timestamped row
    assert collator._draw({**row, "window": {**window, "text_segments": ""}}) == (True, None, None)
    with pytest.raises(ConfigError, match="need the `window` column"):
        collator(rows[:1])
    assert DistillationCollator(processor, timestamp_ratio=1.0)._draw(row) == (True, None, None)
    # `shift_ratio=1`: the row's `shifted_window`, 30 s from inside the chunk; none of its words is distilled
    shifted = {
        **window,
        "text": "born in Ulm, in 1879.",
        "text_segments": "<|0.14|> born in Ulm,<|0.80|><|1.20|> in 1879.<|1.80|><|2.30|>",
    }
    shifting = DistillationCollator(processor, cache, timestamp_ratio=1.0, shift_ratio=1.0, window_ratio=1.0)
    assert shifting._draw({**row, "shifted_window": shifted}) == (True, None, "shifted_window")
    batch = shifting([{**row, "shifted_window": shifted}])
    labels = batch["labels"][0]
    assert tokenizer.decode(labels[labels != -100], decode_with_timestamps=True) == (
        shifted["text_segments"] + "<|endoftext|>")  # fmt: skip
    assert not batch["distill_mask"].any() and batch["text_covered"][0] == 0
    assert not mask_uncovered(dict(batch))["teacher_mask"].any()
    torch.testing.assert_close(batch["input_features"], want)
    with pytest.raises(ConfigError, match="shift_ratio > 0 .* need the `shifted_window` column"):
        shifting([row])


def test_other_rates_and_channels_are_made_whisper_audio(setup, caplog):
    """48 kHz stereo in: the same features as the 16 kHz mono it holds, with one warning; NaN is refused."""
    from hf_whisper_context.audio import AudioError, resample

    processor, _, rows = setup
    rng = np.random.default_rng(0)
    mono = rng.normal(0, 0.1, 16_000).astype(np.float32)
    high = resample(mono, 16_000, 48_000)
    stereo = {"array": np.stack([high, high]), "sampling_rate": 48_000}
    collator = DistillationCollator(processor)
    with caplog.at_level("WARNING"):
        got = collator([{**rows[0], "audio": stereo}, {**rows[0], "audio": stereo}])["input_features"]
    assert caplog.text.count("resampled to Whisper's 16000 Hz") == 1
    want = collator([{**rows[0], "audio": {"array": resample(high, 48_000, 16_000), "sampling_rate": 16_000}}])
    assert torch.allclose(got[0], want["input_features"][0], atol=1e-5)
    broken = np.array(mono)
    broken[5] = np.nan
    with pytest.raises(AudioError, match="1 of 16000 samples are NaN"):
        collator([{**rows[0], "audio": {"array": broken, "sampling_rate": 16_000}}])


def test_an_audio_column_that_needs_torchcodec_is_refused_at_start(tiny_models, tmp_path):
    import importlib.util

    from datasets import Audio
    from transformers import WhisperForConditionalGeneration

    from hf_whisper_context.config import ContextDistillTrainingArguments
    from hf_whisper_context.errors import ConfigError
    from hf_whisper_context.trainer import ContextDistillTrainer

    if importlib.util.find_spec("torchcodec") is not None:
        pytest.skip("torchcodec is installed here: datasets can decode the column itself")
    ds = Dataset.from_dict({"audio": [str(tmp_path / "a.wav")], "text": ["x"]}).cast_column("audio", Audio())
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    processor = WhisperProcessor.from_pretrained(tiny_models / "student")
    with pytest.raises(ConfigError, match="needs torchcodec .*pip install torchcodec.*prepare_dataset"):
        ContextDistillTrainer(model=WhisperForConditionalGeneration.from_pretrained(tiny_models / "student"),
                              args=args, train_dataset=ds, data_collator=DistillationCollator(processor))  # fmt: skip
