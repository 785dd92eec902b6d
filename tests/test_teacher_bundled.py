"""The bundled SmolLM2 teacher: the exported safetensors folder is the GGUF model, and it is a real language model."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_whisper_context import bundled

pytestmark = pytest.mark.slow

# Lead of the English Wikipedia article "Albert Einstein" (CC BY-SA 4.0).
PARAGRAPH = (
    "Albert Einstein (14 March 1879 – 18 April 1955) was a German-born theoretical physicist who is best known for "
    "developing the theory of relativity. Einstein also made important contributions to quantum mechanics. His "
    "mass–energy equivalence formula E = mc2, which arises from special relativity, has been called \"the world's "
    'most famous equation". He received the 1921 Nobel Prize in Physics for his services to theoretical physics, '
    "and especially for his discovery of the law of the photoelectric effect."
)


@pytest.fixture(scope="module")
def exported():
    path = bundled.teacher("smollm2-135m")
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _perplexity(model, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return math.exp(model(ids, labels=ids).loss.item())


def test_export_equals_gguf_model(exported):
    model, tokenizer = exported
    gguf = bundled.gguf_file("smollm2-135m")
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = tokenizer(PARAGRAPH, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original(ids).logits)
    assert model.config.architectures == ["LlamaForCausalLM"] and model.config.tie_word_embeddings


def test_perplexity_separates_text_from_shuffled_tokens(exported):
    model, tokenizer = exported
    ids = tokenizer(PARAGRAPH, return_tensors="pt").input_ids
    shuffled = ids[:, torch.randperm(ids.shape[1], generator=torch.Generator().manual_seed(0))]
    real, noise = _perplexity(model, ids), _perplexity(model, shuffled)
    print(f"perplexity: paragraph {real:.2f}, shuffled {noise:.1f}")
    assert real < 20 < 50 < noise


def test_bfloat16_folder_is_the_same_model(exported):
    model, tokenizer = exported
    half = AutoModelForCausalLM.from_pretrained(bundled.teacher("smollm2-135m", "bfloat16")).eval()
    assert half.dtype == torch.bfloat16
    ids = tokenizer(PARAGRAPH, return_tensors="pt").input_ids
    with torch.no_grad():
        agree = (half(ids).logits.argmax(-1) == model(ids).logits.argmax(-1)).float().mean().item()
    assert agree > 0.9
    assert _perplexity(half, ids) < 20
