"""Step time of distillation vs plain fine-tuning on the same batches (CPU): the bundled tiny.en student, a
SmolLM2 teacher cache, batch 4 x 30 s. Plain = label-smoothed CE only; distillation = CE + KD_ot + OT cost + REP.
Live teacher runs add the SmolLM2 forward (`--context-words` of article context, 512 by default) inside the step.
All run forward, backward and an AdamW step through `ContextDistillTrainer.compute_loss`; ratios against plain
fine-tuning are printed, with the cores each kept busy (CPU time / wall time: below `--threads`, a step leaves room
for other work, e.g. a teacher forward overlapped with it).

    python benchmarks/bench_step.py --data outputs/corpus [--steps 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import AutoTokenizer, WhisperForConditionalGeneration, WhisperProcessor

from hf_whisper_context import bundled
from hf_whisper_context.collator import DistillationCollator
from hf_whisper_context.config import ContextDistillTrainingArguments
from hf_whisper_context.data.dataset import chunk_audio, load_swc
from hf_whisper_context.losses import build_vocab_map
from hf_whisper_context.teacher.cache import CacheConfig, TeacherCache, cache_teacher
from hf_whisper_context.teacher.load import load_teacher
from hf_whisper_context.trainer import ContextDistillTrainer


def _step_times(trainer, batch, steps: int) -> tuple[float, float]:
    """Median seconds per step, and the cores the steps kept busy on average (process CPU time / wall time)."""
    model = trainer.model
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times, cpu = [], []
    for i in range(steps + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=(batch["labels"] != -100).sum())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), sum(cpu) / sum(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context-words", type=int, default=512, help="article context the teacher reads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_swc(args.data)["train"].select(range(args.batch))
    teacher, teacher_tok = load_teacher("smollm2-135m")
    with tempfile.TemporaryDirectory() as out:
        cache = TeacherCache(
            cache_teacher(data, teacher, teacher_tok, out, CacheConfig(k=64, context_words=args.context_words))
        )
        processor = WhisperProcessor.from_pretrained(bundled.whisper("tiny.en"))
        rows = [{**r, "row_index": i, "audio": {"array": chunk_audio(r)}} for i, r in enumerate(data)]
        batch = DistillationCollator(processor, cache)(rows)
        live_batch = DistillationCollator(processor, teacher_tokenizer=teacher_tok,
                                          context_words=args.context_words)(rows)  # fmt: skip
    vocab_map, coverage = build_vocab_map(processor.tokenizer, AutoTokenizer.from_pretrained(teacher.name_or_path))
    runs = {
        "plain fine-tuning (CE)": ((0.0, 0.0, 0.0), None, batch),
        "distillation (cache)": ((0.5, 0.001, 0.1), None, batch),
        "distillation (live, fp32)": ((0.5, 0.001, 0.1), teacher, live_batch),
        "distillation (live, bf16)": (
            (0.5, 0.001, 0.1),
            load_teacher("smollm2-135m", dtype="bfloat16")[0],
            live_batch,
        ),
    }
    results = {}
    for name, ((kd, ot, rep), live_teacher, inputs) in runs.items():
        targs = ContextDistillTrainingArguments(
            output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, label_smoothing_factor=0.1,
            kd_weight=kd, ot_weight=ot, rep_weight=rep,
        )  # fmt: skip
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration.from_pretrained(bundled.whisper("tiny.en"))
        trainer = ContextDistillTrainer(model=model, args=targs, vocab_map=vocab_map, teacher_dim=576,
                                        teacher=live_teacher)  # fmt: skip
        results[name] = _step_times(trainer, inputs, args.steps)
    base = results["plain fine-tuning (CE)"][0]
    labels = int((batch["labels"] != -100).sum())
    print(f"tiny.en student, batch {args.batch} x 30 s, {labels} label tokens, k=64, {args.context_words} context "
          f"words, {args.threads} threads")  # fmt: skip
    for name, (seconds, busy) in results.items():
        print(f"  {name:28s} {seconds * 1000:8.0f} ms/step   ratio {seconds / base:.2f}x   cores busy {busy:.2f}")


if __name__ == "__main__":
    main()
