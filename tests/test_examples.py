"""The example scripts run end to end (the real tiny.en student; a tiny random Llama teacher with SmolLM2's
tokenizer), the distillation under `accelerate launch` with the CPU config."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import pipeline

from hf_whisper_context.audio import load_audio

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(*argv, launcher=(sys.executable,)):
    done = subprocess.run([*launcher, *map(str, argv)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_examples_adapt_cache_distill_evaluate(corpus, clips, tiny_models, tmp_path, capsys):
    """The four example scripts chained as examples/README.md chains them, on the real tiny.en student; the teacher
    is the tiny random Llama with SmolLM2's tokenizer (the real teacher's adaptation is tests/test_teacher.py's)."""
    adapter, teacher = tmp_path / "adapter", tiny_models / "teacher"
    report = _run(
        EXAMPLES / "adapt_teacher.py",
        "--data",
        corpus,
        "--teacher",
        teacher,
        "--output_dir",
        adapter,
        "--test_articles",
        1,
        "--max_steps",
        1,
        "--batch_size",
        2,
        "--max_length",
        64,
        "--export_dir",
        tmp_path / "shipped",
    )
    assert "eval_loss_after" in report and (tmp_path / "shipped" / "README.md").is_file()
    cache = tmp_path / "cache"
    _run(EXAMPLES / "cache_teacher.py", "--data", corpus, "--output_dir", cache, "--test_articles", 1,
         "--teacher", teacher, "--adapter", adapter, "--dtype", "auto", "--context_words", 64, "--k", 16)  # fmt: skip
    assert json.loads((cache / "train" / "cache.json").read_text())["k"] == 16

    out = tmp_path / "run"
    launch = (sys.executable, "-m", "accelerate.commands.launch", "--config_file",
              str(EXAMPLES / "accelerate_configs" / "cpu.yaml"))  # fmt: skip
    stdout = _run(EXAMPLES / "distill.py", "--data", corpus, "--test_articles", 1, "--teacher_cache", cache / "train",
                  "--output_dir", out, "--max_steps", 2, "--per_device_train_batch_size", 2, "--logging_steps", 1,
                  "--save_strategy", "no", "--report_to", "none", "--predict_with_generate",
                  "--generation_max_length", 64, "--max_eval_chunks", 2, "--dataloader_num_workers", 0,
                  "--lora_r", 4, "--lora_alpha", 8, launcher=launch)  # fmt: skip
    assert "'eval_wer'" in stdout and "'kd_ot'" in stdout and (out / "adapter_model.safetensors").is_file()
    merged = out / "merged"
    from huggingface_hub import ModelCard

    from hf_whisper_context.cli import main

    for folder in (out, merged):  # cards that name the Hub base, so that both folders can be pushed
        card = ModelCard.load(folder / "README.md")
        assert card.data.base_model == "openai/whisper-tiny.en" and "Not evaluated yet" in card.text
        assert "| lora_r | `4` |" in card.text
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HF_HUB_OFFLINE", "1")  # fails fast after the card check, before any network
            assert main(["push", str(folder), "--repo-id", "someone/whisper-tiny.en-distilled"]) == 1
        assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err
    assert pipeline("automatic-speech-recognition", model=str(merged))(load_audio(clips[0][0]))["text"].strip()
    assert json.loads((merged / "generation_config.json").read_text())["timestamp_jump_guard"] is True
    assert "load_asr_pipeline(" in (merged / "README.md").read_text()

    table = _run(EXAMPLES / "evaluate_longform.py", "--data", corpus, "--models", merged, "--limit", 1,
                 "--output_dir", tmp_path / "eval")  # fmt: skip
    assert "| WER (normalised) ↓ |" in table and (tmp_path / "eval" / "results.json").is_file()


def test_accelerate_configs_load_and_defer_to_the_training_arguments():
    from accelerate.commands.config.config_args import load_config_from_file

    paths = (EXAMPLES / "accelerate_configs").glob("*.yaml")
    configs = {path.stem: load_config_from_file(str(path)) for path in paths}
    assert set(configs) == {"cpu", "single_gpu", "multi_gpu_ddp", "fsdp", "deepspeed_zero2"}
    deepspeed = configs["deepspeed_zero2"].deepspeed_config
    # a number here that disagrees with --gradient_accumulation_steps is DeepSpeed's known trap
    assert deepspeed["gradient_accumulation_steps"] == "auto" and deepspeed["gradient_clipping"] == "auto"
    # save_model and the merged save need full weights on process 0 (a sharded state dict is no loadable checkpoint)
    assert configs["fsdp"].fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
