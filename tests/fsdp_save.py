"""Run by tests/test_multiprocess.py under torchrun (2 processes, gloo): a student with its distillation projector
(LoRA, and fully fine-tuned) is sharded by FSDP2 as the FSDP accelerate config wraps it (`fully_shard` on every
encoder and decoder layer, then on the whole model) and saved merged by `hub.save_student` from every process; the
same student saved before sharding is the reference.

    torchrun --nproc_per_node 2 tests/fsdp_save.py STUDENT_FOLDER OUTPUT_FOLDER
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from transformers import WhisperForConditionalGeneration, WhisperProcessor

from hf_whisper_context.hub import save_student
from hf_whisper_context.lora import apply_lora, lora_config


def student(folder: str, lora: bool):
    """The same student in every process: trained-looking adapters (B is zero at initialisation) or weights."""
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration.from_pretrained(folder)
    model.add_module("distill_projector", torch.nn.Linear(8, model.config.d_model, bias=False))
    if lora:
        model = apply_lora(model, lora_config(4, 8), modules_to_save=["distill_projector"])
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name or not lora:
                parameter.add_(torch.randn_like(parameter) * 0.02)
    return model


def main() -> None:
    dist.init_process_group("gloo")
    folder, out = sys.argv[1], Path(sys.argv[2])
    processor = WhisperProcessor.from_pretrained(folder)
    for name, lora in (("lora", True), ("full", False)):
        model = student(folder, lora)
        if dist.get_rank() == 0:
            save_student(model, processor, out / f"{name}-unsharded")
        whisper = model.get_base_model() if lora else model
        for layer in (*whisper.model.encoder.layers, *whisper.model.decoder.layers):
            fully_shard(layer)
        fully_shard(model)
        assert save_student(model, processor, out / f"{name}-sharded") == out / f"{name}-sharded"
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
