"""bitsandbytes quantization for the teacher and for QLoRA students: 4-bit NF4 (double quantization) or 8-bit.

The `BitsAndBytesConfig` is built anywhere; loading a model with it needs the `bitsandbytes` package (the `gpu`
extra). It runs on CUDA and, since bitsandbytes 0.48, on the CPU too (much slower: tests and small runs).
"""

from __future__ import annotations

from .errors import HfWhisperContextError

QUANTIZATIONS = ("4bit", "8bit")


class QuantizationError(HfWhisperContextError, ValueError):
    """A quantization that cannot be used as asked; the message says why and what to do."""


def bitsandbytes_config(quantization: str | dict, compute_dtype: str = "bfloat16"):
    """The `BitsAndBytesConfig` of "4bit" (NF4, double quantization, `compute_dtype` matmuls) or "8bit", or of a
    recorded one (`BitsAndBytesConfig.to_dict()`, as a shipped teacher's `quantization.json` holds it)."""
    import torch
    from transformers import BitsAndBytesConfig

    if isinstance(quantization, dict):
        return BitsAndBytesConfig.from_dict(quantization)
    if quantization not in QUANTIZATIONS:
        raise QuantizationError(f"quantization must be None, '4bit' or '8bit', not {quantization!r}")
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=getattr(torch, compute_dtype))  # fmt: skip


def quantization_config(quantization: str | dict | None, compute_dtype: str = "bfloat16"):
    """`bitsandbytes_config(...)` for loading, after checking that bitsandbytes is installed; None for None."""
    import importlib.util

    if quantization is None:
        return None
    config = bitsandbytes_config(quantization, compute_dtype)
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationError(
            f"{'4bit' if config.load_in_4bit else '8bit'} quantization needs bitsandbytes: "
            "`pip install 'hf_whisper_context[gpu]'` (bitsandbytes >= 0.48; CUDA, or the CPU), or load unquantized"
        )
    return config


def guard_cpu_kernels(model):
    """Keep bitsandbytes' generic CPU path for 4-bit layers its AVX512-BF16 kernel cannot take; returns `model`.

    On a CPU with AVX512-BF16, bitsandbytes (0.50) repacks a 4-bit layer's weights on its first inference forward, and
    the repacking fails with a reshape error when the layer's input width is not a multiple of the quantization block
    (64): tiny models, or odd widths. Those layers are left on the generic path; every other layer keeps the kernel.
    """
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None and getattr(module, "support_avx512bf16_for_cpu", False):
            if module.in_features % state.blocksize:
                module.support_avx512bf16_for_cpu = False
    return model
