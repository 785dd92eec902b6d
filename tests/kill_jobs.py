"""Jobs that `test_kill.py` runs as child processes (`python -m tests.kill_jobs JOB ...`) and kills with SIGKILL.

- `cache OUT RANK PROCESSES DELAY_S`: cache a tiny random Llama (real SmolLM2 tokenizer) over real SWC chunk texts
  into OUT, one row per shard, as process RANK of PROCESSES; each teacher forward waits DELAY_S so that a kill lands
  in the middle of the run.
- `train OUT CACHE ROWS_JSON KILL_AT`: train a tiny random Whisper student with the distillation terms from the
  teacher cache CACHE on the rows in ROWS_JSON (audio path, text, contexts), a checkpoint every step, resuming from
  the last complete checkpoint; KILL_AT > 0 kills the process while checkpoint KILL_AT is being written (after its
  weights and optimizer, before its trainer state). Writes OUT/final.safetensors.
"""

import json
import os
import signal
import sys
import time


def cache(out: str, rank: str, processes: str, delay: str) -> None:
    import torch
    from transformers import AutoTokenizer

    from hf_whisper_context import bundled
    from hf_whisper_context.teacher.cache import CacheConfig, cache_teacher

    from .conftest import swc_chunk_dataset, tiny_llama

    tokenizer = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    torch.manual_seed(0)
    model = tiny_llama(tokenizer)
    model.register_forward_hook(lambda *_: time.sleep(float(delay)))
    config = CacheConfig(k=4, context_words=64, shard_size=1, batch_size=1)
    cache_teacher(swc_chunk_dataset(), model, tokenizer, out, config, process_index=int(rank),
                  num_processes=int(processes))  # fmt: skip


def train(out: str, cache_dir: str, rows_json: str, kill_at: str) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from hf_whisper_context import bundled
    from hf_whisper_context.audio import load_audio
    from hf_whisper_context.collator import DistillationCollator
    from hf_whisper_context.config import ContextDistillTrainingArguments
    from hf_whisper_context.teacher.cache import TeacherCache
    from hf_whisper_context.trainer import ContextDistillTrainer
    from hf_whisper_context.utils import atomic_path

    from .conftest import tiny_whisper_config

    processor = WhisperProcessor.from_pretrained(bundled.whisper("tiny.en"))
    teacher_cache = TeacherCache(cache_dir)
    rows = json.loads(open(rows_json).read())
    rows = [{**r, "row_index": i, "audio": {"array": load_audio(r.pop("path"))}} for i, r in enumerate(rows)]
    vocab_map, _ = teacher_cache.vocab_map(processor.tokenizer)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(tiny_whisper_config())
    args = ContextDistillTrainingArguments(
        output_dir=out, per_device_train_batch_size=2, learning_rate=3e-3, max_steps=5, save_strategy="steps",
        save_steps=1, logging_steps=1, report_to=[], seed=0, kd_weight=0.5, ot_weight=0.1, rep_weight=0.2,
        lora_r=4, lora_alpha=8, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = ContextDistillTrainer(
        model=model, args=args, train_dataset=rows, vocab_map=vocab_map,
        teacher_dim=teacher_cache.embedding_dim, data_collator=DistillationCollator(processor, teacher_cache),
    )  # fmt: skip
    if int(kill_at):
        save_rng_state = trainer._save_rng_state

        def killed_while_saving(output_dir):
            if trainer.state.global_step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)
            save_rng_state(output_dir)

        trainer._save_rng_state = killed_while_saving
    trainer.train(resume_from_checkpoint=True)
    weights = {n: p.detach().contiguous() for n, p in trainer.model.named_parameters()}
    with atomic_path(os.path.join(out, "final.safetensors")) as tmp:
        save_file(weights, str(tmp))


if __name__ == "__main__":
    {"cache": cache, "train": train}[sys.argv[1]](*sys.argv[2:])
