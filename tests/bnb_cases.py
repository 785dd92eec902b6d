"""bitsandbytes on the CPU: a 4-bit teacher, a 4-bit (QLoRA) student, and the distillation example training one.

Not collected by the main test run (the name does not start with test_): `test_bitsandbytes.py` runs this file in
its own pytest process with bitsandbytes on the path. Installed in the venv, bitsandbytes would be imported by every
process that imports peft, seconds each; the Makefile installs it beside the venv instead.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hf_whisper_context.bnb import QuantizationError, quantization_config
from hf_whisper_context.config import ContextDistillTrainingArguments

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(*argv):
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_teacher_loads_in_4_bits_and_names_the_package_it_needs(tiny_models, monkeypatch):
    """bitsandbytes quantizes on the CPU too (slowly): the tiny teacher in NF4 predicts like the float32 one (on a CPU
    with AVX512-BF16 too, whose repacking kernel cannot take the tiny model's narrow layers: `guard_cpu_kernels`)."""
    from hf_whisper_context.teacher.load import load_teacher

    quantized, tokenizer = load_teacher(tiny_models / "teacher", quantization="4bit")
    plain, _ = load_teacher(tiny_models / "teacher")
    assert type(quantized.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    ids = tokenizer("Ada Lovelace was born in London in 1815.", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = plain(ids).logits, quantized(ids).logits.float()
    assert torch.allclose(a, b, atol=0.1) and not torch.equal(a, b)  # close, and really quantized
    find_spec = importlib.util.find_spec  # bitsandbytes not installed:
    missing = lambda name, *rest: None if name == "bitsandbytes" else find_spec(name, *rest)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", missing)
    with pytest.raises(QuantizationError, match="needs bitsandbytes: `pip install 'hf_whisper_context\\[gpu\\]'`"):
        quantization_config("8bit")


def test_a_quantized_student_trains_adapters_only(tiny_models, tmp_path):
    """bitsandbytes 4-bit on the CPU: the student loads quantized, and without lora_r there is nothing it can train."""
    from hf_whisper_context.errors import ConfigError
    from hf_whisper_context.lora import is_quantized, load_student
    from hf_whisper_context.trainer import prepare_student

    model = load_student(tiny_models / "student", "4bit")
    assert is_quantized(model) and type(model.model.decoder.layers[0].fc1).__name__ == "Linear4bit"
    assert not is_quantized(load_student(tiny_models / "student"))
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    with pytest.raises(ConfigError, match="quantized .* LoRA adapters only; pass lora_r"):
        prepare_student(model, args)
    trained = prepare_student(model, ContextDistillTrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                                                     report_to=[], lora_r=2))  # fmt: skip
    assert is_quantized(trained) and all("lora_" in n for n, p in trained.named_parameters() if p.requires_grad)


def test_examples_on_a_datasets_corpus(call, tiny_models, tmp_path):
    """The same route on a `datasets` audio folder of real speech (the phone call): cache, then distil a QLoRA student
    (its base in 4 bits by bitsandbytes, on the CPU here), whose merged checkpoint is the full-precision base plus the
    trained adapters, exactly (the long-form evaluation of a `--dataset`, which evaluate_longform.py shares with the
    CLI, is tested in test_prepare.py)."""
    folder, rows = call
    by_speaker = ("--dataset", folder, "--group_by", "speaker", "--order_by", "start")  # 2 groups: one held out
    cache = tmp_path / "cache"
    _run(EXAMPLES / "cache_teacher.py", *by_speaker, "--output_dir", cache, "--teacher", tiny_models / "teacher",
         "--context_words", 64, "--k", 8)  # fmt: skip
    info = json.loads((cache / "train" / "cache.json").read_text())
    speakers = [r["speaker"] for r in rows]
    assert info["rows"] == speakers.count(rows[0]["speaker"]) and (cache / "test" / "cache.json").is_file()
    out = tmp_path / "run"
    stdout = _run(EXAMPLES / "distill.py", *by_speaker, "--teacher_cache", cache / "train", "--student",
                  tiny_models / "student", "--output_dir", out, "--max_steps", 1, "--per_device_train_batch_size", 2,
                  "--logging_steps", 1, "--save_strategy", "no", "--report_to", "none", "--use_cpu",
                  "--dataloader_num_workers", 0, "--lora_r", 4, "--lora_alpha", 8,
                  "--student_quantization", "4bit")  # fmt: skip
    assert "'kd_ot'" in stdout
    adapter = load_file(str(out / "adapter_model.safetensors"))
    merged = load_file(str(out / "merged" / "model.safetensors"))
    base = load_file(str(tiny_models / "student" / "model.safetensors"))
    assert "quantization_config" not in json.loads((out / "merged" / "config.json").read_text())
    lora_a = [k for k in adapter if "lora_A" in k]
    assert lora_a and any(adapter[k.replace("lora_A", "lora_B")].abs().max() > 0 for k in lora_a)  # it trained
    for key in lora_a:  # W = W_base (float32, not its 4-bit copy) + (alpha / r) B A
        weight = key.replace("base_model.model.", "").replace(".lora_A.weight", ".weight")
        expected = base[weight] + 2.0 * adapter[key.replace("lora_A", "lora_B")] @ adapter[key]
        assert merged[weight].dtype == torch.float32 and torch.allclose(merged[weight], expected, atol=1e-6), weight
