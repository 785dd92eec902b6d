"""Training step at Whisper-large-v3 / Llama-3.1-8B shapes (random init; throughput does not depend on the weights):
plain LoRA fine-tuning vs distillation with a live teacher (teacher forward + OT + KD + REP), through
`ContextDistillTrainer.compute_loss`, with bf16 adapters. Prints ms per step, the ratio, the teacher forward alone,
and the fraction of the bf16 matmul peak measured in the same run (docs/gpu.md has reference figures from an H200).

    python benchmarks/gpu_step.py                  # a GPU: batch 16 x 30 s, 128 label tokens, 160 teacher tokens
    python benchmarks/gpu_step.py --tiny --steps 1  # tiny shapes: checks the script on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration

from hf_whisper_context.config import ContextDistillTrainingArguments
from hf_whisper_context.trainer import ContextDistillTrainer

LARGE_V3 = dict(d_model=1280, encoder_layers=32, decoder_layers=32, encoder_attention_heads=20,
                decoder_attention_heads=20, encoder_ffn_dim=5120, decoder_ffn_dim=5120)  # fmt: skip
LLAMA_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                num_key_value_heads=8)  # fmt: skip
TINY_WHISPER = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                    decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128)  # fmt: skip
TINY_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2)  # fmt: skip


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_ms(fn, steps: int, device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def matmul_peak_tflops(device, dtype, n: int) -> float:
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    ms = _median_ms(lambda: [a @ b for _ in range(10)], 3, device)
    return 10 * 2 * n**3 / (ms / 1000) / 1e12


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (a CPU check of the script)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--label-tokens", type=int, default=128)
    parser.add_argument("--teacher-tokens", type=int, default=160)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--lora-r", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--output", help="write the figures as JSON here")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    student_cfg = WhisperConfig(vocab_size=51866, num_mel_bins=128, decoder_start_token_id=50258, pad_token_id=50257,
                                **(TINY_WHISPER if args.tiny else LARGE_V3))  # fmt: skip
    teacher_cfg = LlamaConfig(vocab_size=128256, **(TINY_LLAMA if args.tiny else LLAMA_8B))
    with torch.device(device):
        teacher = LlamaForCausalLM._from_config(teacher_cfg, dtype=dtype).eval().requires_grad_(False)
    b, n, m = args.batch, args.label_tokens, args.teacher_tokens
    text_len = 6 * m
    offsets = lambda count: torch.arange(count) * text_len // count  # noqa: E731  (spans spread over the text)
    batch = {
        "input_features": torch.randn(b, 128, 3000, device=device, dtype=dtype),
        "labels": torch.randint(0, 50000, (b, n), device=device),
        "distill_mask": torch.ones(b, n, dtype=torch.bool, device=device),
        "student_spans": (offsets(n)[:, None] + torch.tensor([0, 4])).expand(b, n, 2).contiguous().to(device),
        "text_lengths": torch.full((b,), text_len, device=device),
    }  # fmt: skip
    spans = [(int(o), int(o) + 5) for o in offsets(m)]
    windows = [{"input_ids": torch.randint(0, 128000, (m + 1,)).tolist(), "chunk_start": 1, "chunk_len": m,
                "spans": spans} for _ in range(b)]  # fmt: skip
    vocab_map = torch.where(torch.rand(teacher_cfg.vocab_size) < 0.75, torch.randint(0, 51866, (128256,)), -1)

    results = {}
    for name, weights in (("plain", (0.0, 0.0, 0.0)), ("distill", (0.05, 0.001, 0.1))):
        torch.manual_seed(0)
        with torch.device(device):
            student = WhisperForConditionalGeneration._from_config(student_cfg, dtype=dtype)
        targs = ContextDistillTrainingArguments(
            output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=device.type == "cpu", bf16=dtype == torch.bfloat16,
            kd_weight=weights[0], ot_weight=weights[1], rep_weight=weights[2], lora_r=args.lora_r,
            lora_alpha=2 * args.lora_r, ot_k=args.k, label_smoothing_factor=0.1,
        )  # fmt: skip
        live = name == "distill"
        trainer = ContextDistillTrainer(model=student, args=targs, vocab_map=vocab_map if live else None,
                                        teacher_dim=teacher_cfg.hidden_size if live else None,
                                        teacher=teacher if live else None)  # fmt: skip
        model = trainer.model.to(device)
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        inputs = {**batch, "teacher_windows": windows} if live else batch

        def step(model=model, trainer=trainer, optimizer=optimizer, inputs=inputs):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                loss = trainer.compute_loss(model, dict(inputs), num_items_in_batch=torch.tensor(b * n))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        results[f"{name}_ms"] = _median_ms(step, args.steps, device)
        if live:
            results["teacher_forward_ms"] = _median_ms(lambda t=trainer: t._live_teacher(windows, device), args.steps,
                                                       device)  # fmt: skip
        encoder, decoder = _params(student.model.encoder), _params(student.model.decoder)
        del trainer, model, optimizer, student
        if device.type == "cuda":
            torch.cuda.empty_cache()

    # model FLOPs: forward 2 x params x tokens; a training step ~3 x forward (student); the teacher forward only
    flops_plain = 3 * 2 * b * (encoder * 1500 + decoder * n)
    flops_distill = flops_plain + 2 * b * _params(teacher) * (m + 1)
    peak = matmul_peak_tflops(device, dtype, 256 if args.tiny else 8192)
    results.update(
        device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu", dtype=str(dtype), tiny=args.tiny,
        ratio=results["distill_ms"] / results["plain_ms"], peak_tflops=peak,
        plain_tflop=flops_plain / 1e12, distill_tflop=flops_distill / 1e12,
        plain_fraction_of_peak=flops_plain / (results["plain_ms"] / 1000) / 1e12 / peak,
        distill_fraction_of_peak=flops_distill / (results["distill_ms"] / 1000) / 1e12 / peak,
    )  # fmt: skip
    shapes = "tiny" if args.tiny else "Whisper-large-v3 + Llama-3.1-8B"
    lines = [
        f"{results['device']} ({dtype}), {shapes}, batch {b} x 30 s, {n} label / {m} teacher tokens, "
        f"LoRA r={args.lora_r}",
        f"  plain LoRA step          {results['plain_ms']:9.1f} ms   {results['plain_fraction_of_peak']:.1%} of peak",
        f"  distillation (live)      {results['distill_ms']:9.1f} ms   {results['distill_fraction_of_peak']:.1%} "
        f"of peak   ratio {results['ratio']:.2f}x",
        f"  teacher forward alone    {results['teacher_forward_ms']:9.1f} ms",
        f"  {dtype} matmul peak measured: {peak:.1f} TFLOP/s; step model FLOPs {results['distill_tflop']:.2f} TFLOP",
    ]  # fmt: skip
    print("\n".join(lines))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
