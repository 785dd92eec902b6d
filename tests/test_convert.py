"""The CTranslate2 -> transformers converter: exact on tiny random models in every CT2 dtype, and faithful on the
real bundled models (same greedy tokens as CTranslate2 itself, and back to the original tensors bit for bit)."""

import shutil

import numpy as np
import pytest
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from hf_whisper_context import bundled
from hf_whisper_context.audio import load_audio
from hf_whisper_context.convert import convert_ctranslate2_whisper, read_ctranslate2

from .conftest import tiny_whisper_config

ctranslate2 = pytest.importorskip("ctranslate2")
from ctranslate2.converters import TransformersConverter  # noqa: E402


def _to_ct2(hf_dir, out_dir, quantization):
    TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"]).convert(
        str(out_dir), quantization=quantization, force=True
    )
    return out_dir


@pytest.fixture(scope="module")
def tiny_random(tmp_path_factory, tiny_en):
    """A random 2+2-layer Whisper with the real tiny.en tokenizer (CTranslate2's converter needs one)."""
    root = tmp_path_factory.mktemp("tiny_random")
    config = tiny_whisper_config(d_model=64, encoder_attention_heads=4, decoder_attention_heads=4,
                                 encoder_ffn_dim=128, decoder_ffn_dim=128)  # fmt: skip
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():  # biases are zero at init; randomize so a dropped or swapped bias cannot hide
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    model.save_pretrained(root / "hf")
    WhisperProcessor.from_pretrained(tiny_en).save_pretrained(root / "hf")
    return root, model


@pytest.mark.parametrize("quantization,atol", [("float32", 0.0), ("float16", 2e-3), ("int8", 0.05), ("int16", 1e-3)])
def test_random_model_survives_ct2_and_back(tiny_random, quantization, atol):
    root, model = tiny_random
    ct2_dir = _to_ct2(root / "hf", root / f"ct2-{quantization}", quantization)
    out = convert_ctranslate2_whisper(ct2_dir, root / f"back-{quantization}")
    back = WhisperForConditionalGeneration.from_pretrained(out)
    original = model.state_dict()
    restored = back.state_dict()
    assert set(original) == set(restored)
    for key, value in original.items():
        torch.testing.assert_close(restored[key], value, atol=atol, rtol=0.01 if atol else 0.0, msg=key)


def test_reader_resolves_aliases_and_scales(tiny_random):
    root, _ = tiny_random
    ct2_dir = _to_ct2(root / "hf", root / "ct2-int8-alias", "int8")
    variables = read_ctranslate2(ct2_dir / "model.bin")
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert not any(k.endswith("_scale") for k in variables)
    assert variables["encoder/layer_0/self_attention/linear_0/weight"].dtype == np.float32


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.bin is missing"):
        convert_ctranslate2_whisper(tmp_path, tmp_path / "out")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_converted_model_decodes_like_ctranslate2(name, clips):
    hf_dir, ct2_dir = bundled.whisper(name), bundled.ctranslate2_whisper(name)
    processor = WhisperProcessor.from_pretrained(hf_dir)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    reference = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32")
    multilingual = model.generation_config.is_multilingual
    kwargs = {"language": "en", "task": "transcribe"} if multilingual else {}
    tokenizer = processor.tokenizer
    if multilingual:
        tokenizer.set_prefix_tokens(language="english", task="transcribe")
    for path, _ in clips:
        features = processor(load_audio(path), sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ours = model.generate(features, num_beams=1, do_sample=False, **kwargs)[0].tolist()
            encoded = model.model.encoder(features).last_hidden_state.numpy()
        storage = ctranslate2.StorageView.from_array(features.numpy())
        theirs = reference.generate(storage, [tokenizer.prefix_tokens], beam_size=1)[0].sequences_ids[0]
        assert [t for t in ours if t < tokenizer.eos_token_id] == theirs
        assert len(theirs) > 5
        assert np.abs(np.array(reference.encode(storage, to_cpu=True)) - encoded).max() < 5e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_back_to_ctranslate2_reproduces_the_original_tensors(name, tmp_path):
    original = read_ctranslate2(bundled.ctranslate2_whisper(name) / "model.bin")
    again = read_ctranslate2(_to_ct2(bundled.whisper(name), tmp_path / "rt", "float16") / "model.bin")
    for key, value in original.items():
        assert np.array_equal(again[key], value), key
    shutil.rmtree(tmp_path / "rt")


@pytest.mark.slow
def test_tokenizer_specials_and_timestamps(tiny_en):
    from transformers import WhisperTokenizer

    tokenizer = WhisperTokenizer.from_pretrained(tiny_en)
    assert len(tokenizer) == 51864 and len(tokenizer.all_special_ids) == 107
    assert tokenizer.convert_ids_to_tokens(tokenizer.all_special_ids[-1]) == "<|notimestamps|>"
    begin = tokenizer.all_special_ids[-1] + 1
    ids = [begin, *tokenizer(" Hello world.", add_special_tokens=False).input_ids, begin + 50]
    assert tokenizer.decode(ids, decode_with_timestamps=True) == "<|0.00|> Hello world.<|1.00|>"
    assert tokenizer.decode(tokenizer(" Hello").input_ids, skip_special_tokens=True) == " Hello"
