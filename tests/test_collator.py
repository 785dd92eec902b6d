"""The DistillationCollator on the real tiny.en processor and a teacher cache from a tiny random Llama."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, WhisperProcessor

from hf_whisper_context import bundled
from hf_whisper_context.collator import DistillationCollator
from hf_whisper_context.teacher.cache import CacheConfig, TeacherCache, cache_teacher

pytestmark = pytest.mark.slow
TEXTS = ["Albert Einstein was born in Ulm, in 1879.", "", "He moved to Princeton, New Jersey."]


@pytest.fixture(scope="module")
def setup(tiny_en, tmp_path_factory):
    processor = WhisperProcessor.from_pretrained(tiny_en)
    tok = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    torch.manual_seed(0)
    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    teacher = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), num_key_value_heads=1, **sizes))
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
