"""Load the teacher: a frozen, eval-mode causal LM (LLaMA family) and its tokenizer, with a pad token.

Quantization: bitsandbytes NF4 (double quantization, bf16 compute) or 8-bit (`bnb`: CUDA, or the CPU, slowly);
GGUF files are dequantized by transformers; the bundled SmolLM2 loads by name with no Hub access.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..bnb import guard_cpu_kernels, quantization_config
from ..errors import HfWhisperContextError
from ..tags import TAG_ROWS_FILE

logger = logging.getLogger(__name__)

LLAMA_FAMILY = {
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
    "phi3",
    "olmo",
    "smollm3",
}


class TeacherError(HfWhisperContextError, ValueError):
    """The teacher cannot be loaded as asked; the message says why and what to do."""


def resolve_teacher(name_or_path: str | os.PathLike, dtype: str = "float32", cache=None) -> str:
    from .. import bundled

    return bundled.resolve(name_or_path, "teacher", dtype, cache)


def ensure_pad_token(tokenizer) -> None:
    """Batching needs a pad token: use the EOS token when the tokenizer has none; fail clearly if it has neither."""
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is None:
        raise TeacherError(
            f"the teacher tokenizer {tokenizer.name_or_path!r} has neither a pad nor an eos token; "
            "set one (tokenizer.pad_token = ...) before loading"
        )
    tokenizer.pad_token = tokenizer.eos_token


def auto_dtype() -> str:
    """bfloat16 on a GPU that computes it natively, else float32: a CPU without bf16 units emulates it (a bf16
    matmul takes 7x the float32 time on an AVX2 CPU; `benchmarks/bench_teacher_cache.py` times the teacher)."""
    import torch

    return "bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "float32"


def load_teacher(name_or_path="smollm2-135m", quantization=None, gguf_file=None, dtype="float32", device_map=None,
                 revision=None, adapter=None, trust_remote_code=False, cache=None):  # fmt: skip
    """Return `(model, tokenizer)`: frozen, eval mode, tokenizer with a pad token.

    Args:
        name_or_path: a bundled name ("smollm2-135m"), a local folder, or a Hub id (e.g. meta-llama/Llama-3.2-1B).
        quantization: None, "4bit" or "8bit" (bitsandbytes), or a `BitsAndBytesConfig.to_dict()`.
        gguf_file: a GGUF file name inside `name_or_path` (dequantized by transformers; needs `gguf`, `accelerate`).
        dtype: "float32", "bfloat16" or "float16" for unquantized weights, or "auto" (`auto_dtype`).
        adapter: a peft adapter folder (e.g. from `adapt_teacher`), applied on top.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = auto_dtype() if dtype == "auto" else dtype
    shipped = _shipped_adapter(name_or_path, revision) if adapter is None else None
    if shipped:  # a teacher shipped by `hub.export_teacher`: its base and quantization come with it
        adapter, (name_or_path, quantization) = shipped
    path = resolve_teacher(name_or_path, dtype, cache)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code, "device_map": device_map}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(
        adapter or path, **{k: v for k, v in kwargs.items() if k != "device_map"}
    )
    model = guard_cpu_kernels(
        AutoModelForCausalLM.from_pretrained(
            path, dtype=getattr(torch, dtype), quantization_config=quantization_config(quantization), **kwargs
        )
    )
    if model.config.model_type not in LLAMA_FAMILY:
        logger.warning("teacher model type %r is not of the LLaMA family; proceeding", model.config.model_type)
    if adapter:
        from peft import PeftModel
        from safetensors.torch import load_file

        if len(tokenizer) != model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
        rows = Path(adapter) / TAG_ROWS_FILE  # the tag tokens' trained rows (see teacher.adapt)
        if rows.is_file():
            saved = load_file(str(rows))
            with torch.no_grad():
                weight = model.get_input_embeddings().weight
                weight[saved["tag_ids"]] = saved["rows"].to(weight.dtype)
                if "output_rows" in saved:  # an untied LM head's own tag rows
                    head = model.get_output_embeddings().weight
                    head[saved["tag_ids"]] = saved["output_rows"].to(head.dtype)
        model = PeftModel.from_pretrained(model, adapter)
    ensure_pad_token(tokenizer)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


def _shipped_adapter(name_or_path, revision=None) -> tuple[str, tuple[str, str | None]] | None:
    """`(adapter folder, (base, quantization))` for a folder or Hub repo holding an adapter and its
    `quantization.json`, else None."""
    import json

    folder = Path(name_or_path)
    if not folder.is_dir() and "/" in str(name_or_path) and not str(name_or_path).startswith((".", "/")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        try:  # a Hub repo: download it only if it is an adapter
            from huggingface_hub import hf_hub_download

            hf_hub_download(str(name_or_path), "adapter_config.json", revision=revision)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            return None
        folder = Path(snapshot_download(str(name_or_path), revision=revision))
    if not (folder / "adapter_config.json").is_file():
        return None
    base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
    info = json.loads((folder / "quantization.json").read_text()) if (folder / "quantization.json").is_file() else {}
    method = info.get("method")
    quantization = info.get("bitsandbytes") or method  # the full config where one was recorded
    return str(folder), (info.get("bundled") or base, quantization if method in ("4bit", "8bit") else None)
