"""ContextDistillTrainer end to end on tiny random Whisper and Llama models (real tokenizers, real speech)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import (
    AutoTokenizer,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)

from hf_whisper_context import bundled
from hf_whisper_context.audio import load_audio
from hf_whisper_context.collator import DistillationCollator
from hf_whisper_context.config import ContextDistillTrainingArguments
from hf_whisper_context.losses import build_vocab_map
from hf_whisper_context.teacher.cache import CacheConfig, TeacherCache, cache_teacher
from hf_whisper_context.trainer import ContextDistillTrainer

from .conftest import tiny_llama, tiny_whisper_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parts(tiny_en, clips, tmp_path_factory):
    processor = WhisperProcessor.from_pretrained(tiny_en)
    teacher_tok = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    torch.manual_seed(0)
    teacher = tiny_llama(teacher_tok)
    texts = [text for _, text in clips] * 2
    context = {"context_before": ["A short article begins here."] * 6, "context_after": ["It ends here."] * 6}
    data = Dataset.from_dict({"text": texts, **context})
    cache = TeacherCache(cache_teacher(data, teacher, teacher_tok, tmp_path_factory.mktemp("cache"), CacheConfig(k=8)))
    audio = [load_audio(path) for path, _ in clips] * 2
    rows = [
        {"text": t, "row_index": i, "audio": {"array": a}} for i, (t, a) in enumerate(zip(texts, audio, strict=True))
    ]
    vocab_map, _ = build_vocab_map(processor.tokenizer, teacher_tok)
    rows = [{**r, **{k: v[i] for k, v in context.items()}} for i, r in enumerate(rows)]
    return SimpleNamespace(processor=processor, cache=cache, rows=rows, vocab_map=vocab_map, teacher=teacher,
                           teacher_tokenizer=teacher_tok)  # fmt: skip


def _model():
    torch.manual_seed(0)
    return WhisperForConditionalGeneration(tiny_whisper_config())


def _trainer(parts, out, rows=None, collator=None, **overrides):
    settings = dict(output_dir=str(out), per_device_train_batch_size=2, learning_rate=3e-3, max_steps=4,
                    logging_steps=1, save_strategy="no", report_to=[], seed=0, label_smoothing_factor=0.1,
                    kd_weight=0.5, ot_weight=0.1, rep_weight=0.2, use_cpu=True, dataloader_num_workers=0)  # fmt: skip
    settings.update(overrides)
    args = ContextDistillTrainingArguments(**settings)
    collator = collator or DistillationCollator(parts.processor, parts.cache)
    return ContextDistillTrainer(model=_model(), args=args, train_dataset=parts.rows if rows is None else rows,
                                 vocab_map=parts.vocab_map, teacher_dim=16, data_collator=collator)  # fmt: skip


def _losses(trainer):
    return [h for h in trainer.state.log_history if "loss" in h]


def test_training_reduces_the_loss_and_logs_every_term(parts, tmp_path):
    trainer = _trainer(parts, tmp_path, max_steps=30)
    trainer.train()
    logs = _losses(trainer)
    assert all({"ce", "kd_ot", "ot_cost", "rep"} <= set(h) for h in logs)
    first, last = np.mean([h["loss"] for h in logs[:3]]), np.mean([h["loss"] for h in logs[-3:]])
    assert last < first, (first, last)
    assert all(np.isfinite(h["loss"]) for h in logs)


def test_generation_evaluation_runs(parts, tmp_path):
    from hf_whisper_context.metrics import compute_metrics_factory

    trainer = _trainer(parts, tmp_path, predict_with_generate=True, generation_max_length=12,
                       per_device_eval_batch_size=3)  # fmt: skip
    trainer.compute_metrics = compute_metrics_factory(parts.processor.tokenizer, entity_mode="tags")
    metrics = trainer.evaluate(eval_dataset=parts.rows[:3])
    assert {"eval_loss", "eval_wer", "eval_entity_f1", "eval_comma_f1"} <= set(metrics)
    assert np.isfinite(metrics["eval_loss"])


def test_previous_text_prompt_trains_and_evaluates(parts, tmp_path):
    trainer = _trainer(parts, tmp_path, max_steps=2, predict_with_generate=True, generation_max_length=12)
    trainer.data_collator = DistillationCollator(parts.processor, parts.cache, prompt_words=4)
    trainer.train()
    assert all(np.isfinite(h["loss"]) and "kd_ot" in h for h in _losses(trainer))
    metrics = trainer.evaluate(eval_dataset=parts.rows[:2])  # generation starts without the reference
    assert np.isfinite(metrics["eval_loss"])


def test_paper_mode_trains_with_its_own_terms(parts, tmp_path):
    trainer = _trainer(parts, tmp_path, max_steps=3, distill_mode="paper", lora_r=4)
    trainer.train()
    logs = _losses(trainer)
    assert all({"ce", "paper_kd", "paper_ot", "paper_rep"} <= set(h) and "kd_ot" not in h for h in logs)
    assert all(np.isfinite(h["loss"]) for h in logs)
    assert any("distill_paper" in n for n, p in trainer.model.named_parameters() if p.requires_grad)


def test_base_kl_guard_starts_at_zero_and_grows(parts, tmp_path):
    """The forgetting guard: KL(off-the-shelf || student) is 0 before the student moves (LoRA's B starts at 0; a
    fully fine-tuned student is compared with a frozen copy), then grows as it trains."""
    for extra in ({"lora_r": 4, "lora_alpha": 8}, {}):
        trainer = _trainer(parts, tmp_path / str(len(extra)), max_steps=4, base_kl_weight=0.5, learning_rate=3e-2,
                           **extra)  # fmt: skip
        trainer.train()
        kl = [h["base_kl"] for h in _losses(trainer)]
        assert kl[0] == pytest.approx(0.0, abs=1e-6) and kl[-1] > 1e-4, (extra, kl)
        assert (trainer.base_model is None) == bool(extra)


def test_vocab_map_must_come_from_the_caching_tokenizer(parts, tmp_path):
    """A cache written by an adapted teacher (42 tag tokens more) and a map built from the base tokenizer: refused,
    naming both; the cache's own map covers every LM-head row, also for a padded head (Qwen2-style)."""
    import copy

    from transformers import LlamaConfig, LlamaForCausalLM

    from hf_whisper_context.data.entities import add_tag_tokens
    from hf_whisper_context.teacher.cache import CacheError

    tagged = copy.deepcopy(parts.teacher_tokenizer)
    add_tag_tokens(tagged)
    config = LlamaConfig(
        vocab_size=len(tagged) + 30,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )  # a head padded beyond the tokenizer
    torch.manual_seed(0)
    teacher = LlamaForCausalLM(config).eval()
    data = Dataset.from_dict({"text": [r["text"] for r in parts.rows]})
    cache = TeacherCache(cache_teacher(data, teacher, tagged, tmp_path / "cache", CacheConfig(k=8)))
    with pytest.raises(CacheError, match=r"built from the teacher tokenizer .*smollm2.*was written by the one in"):
        cache.check_vocab_map(parts.vocab_map)
    plain = parts.vocab_map.clone()  # a map without its stamp: caught by its size
    with pytest.raises(CacheError, match="LM-head rows"):
        cache.check_vocab_map(plain)
    with pytest.raises(CacheError, match=r"not by .*smollm2.*build the vocabulary map"):
        cache.check_tokenizer(parts.teacher_tokenizer)
    cache.check_tokenizer(tagged)
    vocab_map, _ = cache.vocab_map(parts.processor.tokenizer)
    assert len(vocab_map) == len(tagged) + 30 == cache.info["lm_head_rows"]
    cache.check_vocab_map(vocab_map)
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    with pytest.raises(CacheError, match="built from the teacher tokenizer"):
        ContextDistillTrainer(model=_model(), args=args, train_dataset=parts.rows, vocab_map=parts.vocab_map,
                              teacher_dim=16, data_collator=DistillationCollator(parts.processor, cache))  # fmt: skip


def test_live_teacher_gives_the_cached_losses(parts, tmp_path):
    cached = _trainer(parts, tmp_path / "cached", max_steps=1, ot_k=8)  # the cache holds the top 8
    collator = DistillationCollator(parts.processor, teacher_tokenizer=parts.teacher_tokenizer)
    live = ContextDistillTrainer(model=_model(), args=cached.args, train_dataset=parts.rows, vocab_map=parts.vocab_map,
                                 teacher_dim=16, teacher=parts.teacher, data_collator=collator)  # fmt: skip
    cached.train()
    live.train()
    a, b = _losses(cached)[0], _losses(live)[0]
    for term in ("ce", "kd_ot", "ot_cost", "rep"):  # the cache stores fp16: equal up to that rounding
        assert b[term] == pytest.approx(a[term], rel=2e-2, abs=1e-3), term


def test_rows_cut_mid_chunk_distil_the_same_from_the_cache_and_the_live_teacher(parts, tmp_path):
    """Every row cut after its first segment (`cut_ratio=1`): both teacher paths mask the positions past the kept
    text alike, and every term stays finite."""
    rows = []
    for r in parts.rows:
        words = r["text"].split()
        half = len(words) // 2
        segments = f"<|0.00|> {' '.join(words[:half])}<|0.80|><|0.90|> {' '.join(words[half:])}<|1.80|>"
        rows.append({**r, "text_segments": segments})
    cut = dict(timestamp_ratio=1.0, cut_ratio=1.0)
    cached = _trainer(parts, tmp_path / "cached", rows, DistillationCollator(parts.processor, parts.cache, **cut),
                      max_steps=1, ot_k=8)  # fmt: skip
    collator = DistillationCollator(parts.processor, teacher_tokenizer=parts.teacher_tokenizer, **cut)
    live = ContextDistillTrainer(model=_model(), args=cached.args, train_dataset=rows, vocab_map=parts.vocab_map,
                                 teacher_dim=16, teacher=parts.teacher, data_collator=collator)  # fmt: skip
    assert all(collator._draw(r)[1] is not None for r in rows)
    cached.train()
    live.train()
    a, b = _losses(cached)[0], _losses(live)[0]
    for term in ("ce", "kd_ot", "ot_cost", "rep"):
        assert np.isfinite(a[term]) and b[term] == pytest.approx(a[term], rel=2e-2, abs=1e-3), term


def test_lora_trains_adapters_projector_and_tag_rows_only(parts, tmp_path):
    from hf_whisper_context.tags import TAG_TOKENS

    tag_ids = [51864 - 42 + i for i in range(42)]  # pretend the last 42 rows are the tag tokens
    trainer = _trainer(parts, tmp_path, max_steps=2, lora_r=4, lora_alpha=8)
    assert trainer.model.peft_config  # wrapped
    trainer = ContextDistillTrainer(model=_model(), args=trainer.args, train_dataset=parts.rows,
                                    vocab_map=parts.vocab_map, teacher_dim=16, trainable_token_ids=tag_ids,
                                    data_collator=DistillationCollator(parts.processor, parts.cache))  # fmt: skip
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert any("lora_" in n for n in changed) and any("distill_projector" in n for n in changed)
    assert not any(n.endswith("q_proj.base_layer.weight") for n in changed)  # base weights frozen
    embedding = [n for n in before if n.endswith("embed_tokens.weight") and "decoder" in n][0]
    moved = (before[embedding] != after[embedding]).any(-1).nonzero()[:, 0].tolist()
    assert moved and set(moved) <= set(tag_ids)  # only the tag rows of the embeddings train
    assert len(TAG_TOKENS) == 42
    from hf_whisper_context.lora import apply_lora, lora_config

    half = apply_lora(_model().to(torch.bfloat16), lora_config(2, 4))  # adapters follow the model's dtype
    assert {p.dtype for n, p in half.named_parameters() if "lora_" in n} == {torch.bfloat16}


def test_a_cache_of_another_dataset_is_refused(parts, tmp_path):
    from hf_whisper_context.teacher.cache import CacheError

    with pytest.raises(CacheError, match="has 6 rows, the dataset 5"):
        _trainer(parts, tmp_path, rows=parts.rows[:5])


def test_gradient_accumulation_equals_a_bigger_batch(parts, tmp_path):
    big = _trainer(parts, tmp_path / "big", per_device_train_batch_size=4, max_steps=1)
    small = _trainer(parts, tmp_path / "small", per_device_train_batch_size=2, gradient_accumulation_steps=2,
                     max_steps=1)  # fmt: skip
    big.train()
    small.train()
    for (name, a), (_, b) in zip(big.model.named_parameters(), small.model.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)


def test_resume_continues_the_same_loss_curve(parts, tmp_path):
    whole = _trainer(parts, tmp_path / "whole", max_steps=6)
    whole.train()
    first = _trainer(parts, tmp_path / "parts", max_steps=6, save_strategy="steps", save_steps=3)
    first.train()
    resumed = _trainer(parts, tmp_path / "parts", max_steps=6)
    resumed.train(resume_from_checkpoint=str(tmp_path / "parts" / "checkpoint-3"))
    expected = [round(h["loss"], 4) for h in _losses(whole)]
    assert [round(h["loss"], 4) for h in _losses(resumed)] == expected  # history restored, then continued
    assert len(expected) == 6
    saved = json.loads((tmp_path / "parts" / "checkpoint-3" / "config.json").read_text())
    assert saved["d_model"] == 32
    assert "distill_projector.weight" in dict(resumed.model.named_parameters())


def test_the_same_seed_trains_the_same_student(parts, tmp_path):
    """Bit for bit on CPU: the seed fixes LoRA's initialisation, the heads and the data order."""
    weights = []
    for run in ("a", "b"):
        torch.randn(3)  # the global RNG in another state before the second run
        trainer = _trainer(parts, tmp_path / run, max_steps=3, lora_r=4, lora_alpha=8)
        trainer.train()
        weights.append({n: p.detach().clone() for n, p in trainer.model.named_parameters()})
    assert all(torch.equal(weights[0][n], weights[1][n]) for n in weights[0])


def test_frozen_encoder_layers_get_no_adapters(tmp_path):
    from hf_whisper_context.trainer import prepare_student

    args = ContextDistillTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], lora_r=2,
                                           freeze_encoder_layers=1)  # fmt: skip
    trainable = [n for n, p in prepare_student(_model(), args).named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not any("encoder.layers.0." in n for n in trainable)  # the frozen layer: no adapter to train
    assert any("encoder.layers.1." in n for n in trainable) and any("decoder.layers.0." in n for n in trainable)
