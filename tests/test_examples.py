"""The example scripts run end to end (tiny.en student, SmolLM2 teacher cache, a few steps)."""

import subprocess
import sys
from pathlib import Path

import pytest

from hf_whisper_context.cli import main

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_distill_example_trains_and_evaluates(corpus, tmp_path):
    cache = tmp_path / "cache"
    assert main(["teacher", "cache", "--data", str(corpus), "--output-dir", str(cache), "--test-articles", "1",
                 "--dtype", "bfloat16", "--context-words", "64"]) == 0  # fmt: skip
    out = tmp_path / "run"
    argv = [sys.executable, str(EXAMPLES / "distill.py"), "--data", str(corpus), "--test_articles", "1",
            "--teacher_cache", str(cache / "train"), "--output_dir", str(out), "--max_steps", "2",
            "--per_device_train_batch_size", "2", "--logging_steps", "1", "--save_strategy", "no",
            "--report_to", "none", "--use_cpu", "--predict_with_generate", "--generation_max_length", "64",
            "--max_eval_chunks", "2", "--dataloader_num_workers", "0"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'eval_wer'" in done.stdout and (out / "model.safetensors").is_file()
