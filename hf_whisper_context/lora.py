"""LoRA for the student (and the teacher's adaptation): adapters in the model's dtype, chosen embedding rows trainable;
QLoRA students (`load_student` with a bitsandbytes quantization: the base frozen in 4 or 8 bits, adapters in fp32).

peft's default `autocast_adapter_dtype=True` keeps LoRA weights in fp32 on a bf16 model and casts activations at
every adapted layer: 1.7x the step time on an H200 (docs/gpu.md). Here adapters follow the model's dtype.
"""

from __future__ import annotations

import torch

WHISPER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def train_rows_only(weight: torch.nn.Parameter, rows: list[int]) -> torch.nn.Parameter:
    """Make `weight` trainable but let gradients reach only `rows` (e.g. new tag tokens); the other rows stay exactly
    as they were (Adam moves nothing with a zero gradient; weight decay must be 0, the Trainer's default)."""
    keep = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
    keep[list(rows)] = 1
    weight.requires_grad_(True)
    weight.register_hook(lambda grad: grad * keep)
    return weight


def lora_config(r: int = 32, alpha: int = 64, target_modules=WHISPER_TARGETS):
    """A `LoraConfig` (dropout 0); `target_modules`: module names, or one regex over the full module paths."""
    from peft import LoraConfig

    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)


def apply_lora(model, config, trainable_token_ids=(), modules_to_save=()):
    """Wrap `model` with the adapters of `config` (a peft `LoraConfig`), in the model's dtype; `trainable_token_ids`
    rows of the input embeddings train too (tied output rows with them); `modules_to_save` (e.g. the distillation
    projector) are trained fully and saved with the adapter."""
    import copy

    from peft import get_peft_model

    config = copy.deepcopy(config)
    config.modules_to_save = [*(config.modules_to_save or []), *modules_to_save] or None
    peft_model = get_peft_model(model, config, autocast_adapter_dtype=False)
    if trainable_token_ids:
        train_rows_only(peft_model.get_input_embeddings().weight, list(trainable_token_ids))
        peft_model.trainable_token_ids = list(trainable_token_ids)  # not in the adapter: export such a model merged
    return peft_model


def load_student(name_or_path, quantization: str | None = None, cache=None):
    """The Whisper student to train: a bundled name, folder or Hub id, as saved or with its linear layers quantized
    by bitsandbytes ("4bit" NF4 or "8bit", `bnb`) and prepared for QLoRA training (peft's
    `prepare_model_for_kbit_training`: the base frozen, norms and embeddings in float32). A quantized student trains
    LoRA adapters only (`lora_r`); `hub.save_student` merges them into the unquantized base."""
    from transformers import WhisperForConditionalGeneration

    from .bnb import guard_cpu_kernels, quantization_config
    from .transcribe import resolve_model

    path = resolve_model(name_or_path, cache)
    if quantization is None:
        return WhisperForConditionalGeneration.from_pretrained(path)
    from accelerate import PartialState
    from peft import prepare_model_for_kbit_training

    cuda = torch.cuda.is_available()  # each process of a multi-GPU run loads its copy onto its own GPU
    model = WhisperForConditionalGeneration.from_pretrained(
        path, quantization_config=quantization_config(quantization, "bfloat16" if cuda else "float32"),
        device_map={"": PartialState().local_process_index if cuda else "cpu"},
    )  # fmt: skip
    return prepare_model_for_kbit_training(guard_cpu_kernels(model), use_gradient_checkpointing=False)


def is_quantized(model) -> bool:
    """Whether `model` (or the base under its adapters) holds bitsandbytes-quantized weights."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_quantized", False) or getattr(base, "quantization_method", None))
