"""Teacher loading and the teacher cache, on a tiny random Llama with the real SmolLM2 tokenizer."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from hf_whisper_context import bundled
from hf_whisper_context.bnb import QuantizationError, quantization_config
from hf_whisper_context.teacher.cache import (
    CacheConfig,
    CacheError,
    TeacherCache,
    cache_teacher,
    fingerprint,
    teacher_identity,
)
from hf_whisper_context.teacher.load import TeacherError, ensure_pad_token
from hf_whisper_context.teacher.window import WindowError, encode_window, max_tokens, teacher_outputs

from .conftest import swc_chunk_dataset


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))


@pytest.fixture(scope="module")
def tiny_llama(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)  # fmt: skip
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def chunks():
    return swc_chunk_dataset()


def _direct(model, tokenizer, row, config):
    window = encode_window(tokenizer, " ".join(row["context_before"].split()[-config.context_words // 2 :]),
                           row["text"].strip(), " ".join(row["context_after"].split()[: config.context_words // 2]),
                           256)  # fmt: skip
    with torch.no_grad():
        logits = model(torch.tensor([window["input_ids"]])).logits[0]
    start, n = window["chunk_start"], window["chunk_len"]
    top = torch.topk(torch.log_softmax(logits[start - 1 : start + n - 1], -1), config.k)
    return window, top.values.numpy(), top.indices.numpy()


def test_cached_topk_equals_a_direct_forward(tiny_llama, tokenizer, chunks, tmp_path):
    config = CacheConfig(k=8, context_words=64, shard_size=4, batch_size=3)
    cache = TeacherCache(cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config))
    for i in (1, 7, 11):
        window, values, ids = _direct(tiny_llama, tokenizer, chunks[i], config)
        row = cache[i]
        np.testing.assert_array_equal(row["topk_ids"], ids)
        np.testing.assert_allclose(row["topk_logprobs"].astype(np.float32), values, rtol=1e-3, atol=1e-3)
        assert row["token_ids"].tolist() == window["input_ids"][window["chunk_start"] :][: window["chunk_len"]]
        assert row["valid"].all() and row["embedding"].shape == (32,)
    assert cache[5] is None  # the empty chunk


def test_spans_cover_the_chunk_text_exactly_once(tokenizer, chunks):
    for row in chunks:
        text = row["text"].strip()
        if not text:
            continue
        spans = encode_window(tokenizer, "some context", text, "more", 512)["spans"]
        assert spans[0][0] == 0 and spans[-1][1] == len(text)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # contiguous, no overlap
        assert "".join(text[s:e] for s, e in spans) == text


def test_context_is_trimmed_symmetrically_never_the_chunk(tokenizer):
    text = "Jack traveled to Sydney to find his father."
    alone = tokenizer(" " + text, add_special_tokens=False).input_ids
    long_side = " ".join(["word"] * 300)
    window = encode_window(tokenizer, long_side, text, long_side, 64)
    assert len(window["input_ids"]) == 64
    left, right = window["context_tokens"]
    assert abs(left - right) <= 1
    assert window["input_ids"][window["chunk_start"] : window["chunk_start"] + len(alone)] == alone
    short = encode_window(tokenizer, "two words", text, long_side, 64)  # a short side gives its room to the other
    assert short["context_tokens"][0] == 2 and len(short["input_ids"]) == 64
    with pytest.raises(WindowError, match="chunk text alone"):
        encode_window(tokenizer, "", long_side, "", 64)


def test_live_and_cached_windows_are_identical(tiny_llama, tokenizer, chunks, tmp_path):
    """The live teacher (the collator's windows, run by the trainer) reads exactly what the cache read."""
    from transformers import WhisperProcessor

    from hf_whisper_context.collator import DistillationCollator

    config = CacheConfig(k=8, context_words=64)
    cache = TeacherCache(cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config))
    processor = WhisperProcessor.from_pretrained(bundled.whisper("tiny.en"))
    collator = DistillationCollator(processor, teacher_tokenizer=tokenizer, context_words=config.context_words)
    rows = [{**chunks[i], "row_index": i, "audio": {"array": np.zeros(16000, dtype=np.float32)}} for i in (0, 3, 11)]
    windows = collator(rows)["teacher_windows"]
    assert max_tokens(tokenizer) == 4096 == max_tokens(tokenizer, None)
    live = teacher_outputs(tiny_llama, windows, config.k, config.pooling, config.layer, tokenizer.pad_token_id)
    for row, window, out in zip(rows, windows, live, strict=True):
        cached = cache[row["row_index"]]
        start = window["chunk_start"]
        assert window["input_ids"][start : start + window["chunk_len"]] == cached["token_ids"].tolist()
        assert [tuple(s) for s in cached["spans"].tolist()] == window["spans"]
        np.testing.assert_array_equal(out["topk_ids"].numpy(), cached["topk_ids"])
        np.testing.assert_allclose(out["embedding"].numpy(), cached["embedding"].astype(np.float32), atol=2e-3)


def test_interrupted_then_resumed_equals_one_run(tiny_llama, tokenizer, chunks, tmp_path):
    config = CacheConfig(k=4, context_words=64, shard_size=2)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path / "a", config, stop_after_shards=2)  # "crash"
    assert len(list((tmp_path / "a").glob("shard-*.safetensors"))) == 2
    with pytest.raises(CacheError, match="missing"):
        TeacherCache(tmp_path / "a")
    (tmp_path / "a" / ".shard-00003.safetensors.half").write_bytes(b"half-written")  # a leftover temp file
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path / "a", config)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path / "b", config)
    resumed, single = TeacherCache(tmp_path / "a"), TeacherCache(tmp_path / "b")
    for i in range(len(chunks)):
        if single[i] is None:
            assert resumed[i] is None
            continue
        for key, value in single[i].items():
            np.testing.assert_array_equal(resumed[i][key], value)


def test_two_processes_write_disjoint_shards_that_make_one_cache(tiny_llama, tokenizer, chunks, tmp_path):
    config = CacheConfig(k=4, context_words=64, shard_size=3)
    for rank in (1, 0):  # as under `accelerate launch` with 2 processes (rank 0 writes the manifest)
        cache_teacher(chunks, tiny_llama, tokenizer, tmp_path / "two", config, process_index=rank, num_processes=2)
    shards = sorted(p.name for p in (tmp_path / "two").glob("shard-*"))
    assert shards == [f"shard-0000{i}.safetensors" for i in range(4)]
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path / "one", config)
    two, one = TeacherCache(tmp_path / "two"), TeacherCache(tmp_path / "one")
    assert all((two[i] is None) == (one[i] is None) for i in range(len(chunks)))
    np.testing.assert_array_equal(two[11]["topk_ids"], one[11]["topk_ids"])


def test_more_processes_than_shards_is_said_not_hung(tiny_llama, tokenizer, chunks, tmp_path, caplog):
    config = CacheConfig(k=4, context_words=64, shard_size=6)  # 12 rows: 2 shards for 8 processes
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config, process_index=5, num_processes=8)
    assert "process 5 of 8 has no shard to write: 12 rows make 2 shards of 6" in caplog.text
    assert not list(tmp_path.glob("shard-*"))


def test_a_run_that_wrote_no_shard_does_not_block_the_next(tiny_llama, tokenizer, chunks, tmp_path, caplog):
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, CacheConfig(k=8, context_words=64), stop_after_shards=0)
    assert (tmp_path / "cache.json").is_file() and not list(tmp_path.glob("shard-*"))  # failed before any row
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, CacheConfig(k=4, context_words=64))  # the retry
    assert "wrote no shard" in caplog.text and TeacherCache(tmp_path).info["k"] == 4


def test_fingerprints_separate_settings(tiny_llama, tokenizer, chunks, tmp_path):
    identity = teacher_identity("tiny", tiny_llama)
    base = fingerprint(identity, CacheConfig(), "data")
    assert fingerprint(identity, CacheConfig(k=32), "data") != base
    assert fingerprint(identity, CacheConfig(context_words=256), "data") != base
    assert fingerprint(identity, CacheConfig(pooling="mean"), "data") != base
    assert fingerprint(identity, CacheConfig(batch_size=1), "data") == base  # speed settings are not identity
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, CacheConfig(k=4, context_words=64))
    with pytest.raises(CacheError, match="holds a teacher cache of fingerprint"):
        cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, CacheConfig(k=8, context_words=64))
    with pytest.raises(CacheError, match="was built with fingerprint"):
        TeacherCache(tmp_path, expected_fingerprint="0" * 24)


def test_broken_shard_is_recomputed(tiny_llama, tokenizer, chunks, tmp_path):
    config = CacheConfig(k=4, context_words=64, shard_size=6)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config)
    good = TeacherCache(tmp_path)[0]["topk_logprobs"].copy()
    shard = tmp_path / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated by a crash outside our atomic rename
    with pytest.raises(CacheError, match="missing, damaged or from another cache"):
        TeacherCache(tmp_path)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config)
    np.testing.assert_array_equal(TeacherCache(tmp_path)[0]["topk_logprobs"], good)


def test_a_bit_flip_in_a_shard_is_caught_and_rewritten(tiny_llama, tokenizer, chunks, tmp_path, caplog):
    from safetensors import safe_open

    config = CacheConfig(k=4, context_words=64, shard_size=6)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config)
    good = {k: v.copy() for k, v in TeacherCache(tmp_path)[1].items()}
    shard = tmp_path / "shard-00000.safetensors"
    with safe_open(str(shard), framework="numpy") as f:  # find the first token id's bytes in the file
        first_id = int(f.get_tensor("token_ids")[0])
    data = bytearray(shard.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    position = data.index(np.int32(first_id).tobytes(), header)
    data[position] ^= 1  # token id 5183 -> 5182 or 5184: still a valid file, with a wrong number in it
    shard.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"shards \[0\] are missing, damaged"):
        TeacherCache(tmp_path)
    assert "does not match the checksum" in caplog.text
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config)  # rewrites only the damaged shard
    for key, value in good.items():
        np.testing.assert_array_equal(TeacherCache(tmp_path)[1][key], value)


def test_a_damaged_manifest_is_named(tiny_llama, tokenizer, chunks, tmp_path):
    config = CacheConfig(k=4, context_words=64, shard_size=6)
    cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config)
    manifest = tmp_path / "cache.json"
    manifest.write_text(manifest.read_text()[:40])
    for call in (
        lambda: TeacherCache(tmp_path),
        lambda: cache_teacher(chunks, tiny_llama, tokenizer, tmp_path, config),
    ):
        with pytest.raises(CacheError, match=r"cache.json is not valid JSON"):
            call()


def test_nonfinite_teacher_logits_are_masked(tiny_llama, tokenizer, chunks, tmp_path, caplog):
    def poison(module, inputs, output):
        output[:, 10] = float("nan")
        return output

    handle = tiny_llama.lm_head.register_forward_hook(poison)
    try:
        cache_teacher(chunks.select([0]), tiny_llama, tokenizer, tmp_path, CacheConfig(k=4, context_words=64))
    finally:
        handle.remove()
    row = TeacherCache(tmp_path)[0]
    assert not row["valid"].all() and np.isfinite(row["topk_logprobs"].astype(np.float32)).all()
    assert "NaN/inf" in caplog.text


def test_teacher_errors(tokenizer):
    bare = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    bare.pad_token = None
    ensure_pad_token(bare)
    assert bare.pad_token == bare.eos_token
    bare.pad_token = bare.eos_token = None
    with pytest.raises(TeacherError, match="neither a pad nor an eos token"):
        ensure_pad_token(bare)
    with pytest.raises(QuantizationError, match="'4bit' or '8bit'"):
        quantization_config("3bit")


@pytest.mark.slow
def test_real_teacher_reads_the_context(corpus):
    """SmolLM2 predicts a chunk better when it reads the article before it."""
    import math

    from hf_whisper_context.data.dataset import load_swc
    from hf_whisper_context.teacher.load import load_teacher

    def chunk_nll(model, tokenizer, before: str, text: str) -> tuple[float, int]:
        """Summed NLL (nats) of the chunk's tokens after `before` (its first token never scored, so that runs with
        and without context score the same tokens), and how many were scored."""
        window = encode_window(tokenizer, before, text, "", 2048)
        ids = torch.tensor([window["input_ids"]])
        with torch.inference_mode():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        start, n = window["chunk_start"], window["chunk_len"]
        return -float(logprobs[start : start + n - 1].gather(1, ids[0, start + 1 : start + n, None]).sum()), n - 1

    model, tokenizer = load_teacher("smollm2-135m")
    rows = [r for r in load_swc(corpus, test_articles=1)["train"] if r["context_before"]]
    with_context = [chunk_nll(model, tokenizer, r["context_before"], r["text"]) for r in rows]
    without = [chunk_nll(model, tokenizer, "", r["text"]) for r in rows]
    ppl_with = math.exp(sum(n for n, _ in with_context) / sum(c for _, c in with_context))
    ppl_without = math.exp(sum(n for n, _ in without) / sum(c for _, c in without))
    print(f"teacher perplexity on {len(rows)} chunks: {ppl_with:.2f} with context, {ppl_without:.2f} without")
    assert ppl_with < ppl_without


@pytest.mark.slow
def test_adaptation_learns_the_tags(corpus, tmp_path):
    from hf_whisper_context.data.dataset import load_swc, load_swc_articles
    from hf_whisper_context.teacher.adapt import adapt_teacher, tagged_passages
    from hf_whisper_context.teacher.load import load_teacher

    load_swc(corpus, test_articles=1)
    train = tagged_passages(load_swc_articles(corpus, "train")["text_tagged"], 60)
    held_out = tagged_passages(load_swc_articles(corpus, "test")["text_tagged"], 60)
    report = adapt_teacher(train, tmp_path / "adapter", eval_texts=held_out, max_steps=12, batch_size=4,
                           max_length=128, learning_rate=1e-3, logging_steps=4, merge=True)  # fmt: skip
    print(report)
    assert report["eval_loss_after"] < report["eval_loss_before"]
    assert report["closing_tag_probability_after"] > report["closing_tag_probability_before"]
    model, tokenizer = load_teacher("smollm2-135m", adapter=tmp_path / "adapter")  # reloads with the tag rows
    assert tokenizer.convert_tokens_to_ids("[/PERSON]") >= 49152 and not model.training
    merged, _ = load_teacher(report["merged"])  # the merged weights hold the adapter and the tag rows
    ids = tokenizer(held_out[0], return_tensors="pt").input_ids[:, :64]
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, model(ids).logits, atol=1e-3, rtol=1e-3)
    from peft import AutoPeftModelForCausalLM  # plain peft, tied embeddings: the same teacher

    plain = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "adapter", dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, model(ids).logits, atol=1e-3, rtol=1e-3)


@pytest.mark.slow
def test_cache_command(corpus, tiny_llama, tokenizer, tmp_path, capsys):
    from hf_whisper_context.cli import main

    tiny_llama.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    argv = ["teacher", "cache", "--data", str(corpus), "--teacher", str(tmp_path / "tiny"), "--test-articles", "1",
            "--output-dir", str(tmp_path / "cache"), "--k", "4", "--context-words", "64"]  # fmt: skip
    assert main(argv) == 0
    assert "train: cached in" in capsys.readouterr().out
    cache = TeacherCache(tmp_path / "cache" / "train")
    assert cache[0]["topk_ids"].shape[1] == 4 and cache.info["identity"]["teacher"] == str(tmp_path / "tiny")


def test_adaptation_is_deterministic(tiny_llama, tokenizer, chunks, tmp_path):
    """The same seed gives the same adapter and tag rows, byte for byte (on CPU), whatever ran before."""
    from hf_whisper_context.teacher.adapt import adapt_teacher

    tiny_llama.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    texts = [f"[PERSON]{t}[/PERSON] and more." for t in chunks["text"] if t.strip()]
    for run in ("a", "b"):
        torch.randn(7)  # the global RNG is in another state for the second run
        adapt_teacher(texts, tmp_path / run, str(tmp_path / "base"), max_steps=2, batch_size=2, max_length=32)
    for name in ("adapter_model.safetensors", "tag_embeddings.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

    # plain peft loads the trained tag rows from the adapter itself (not randomly resized ones)
    from peft import AutoPeftModelForCausalLM
    from safetensors.torch import load_file

    from hf_whisper_context.teacher.load import load_teacher

    plain = AutoPeftModelForCausalLM.from_pretrained(tmp_path / "a")
    saved = load_file(str(tmp_path / "a" / "tag_embeddings.safetensors"))
    assert torch.equal(plain.get_input_embeddings().weight[saved["tag_ids"]], saved["rows"])
    ours, _ = load_teacher(str(tmp_path / "base"), adapter=str(tmp_path / "a"), dtype="float32")
    x = torch.tensor([[1, int(saved["tag_ids"][0]), 5, int(saved["tag_ids"][3])]])
    with torch.no_grad():
        assert torch.allclose(plain(x).logits, ours(x).logits, atol=1e-5)
