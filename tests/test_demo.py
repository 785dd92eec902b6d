"""The main job's whole path at toy size: tiny random Whisper and Llama (real tokenizers), real built articles."""

import json

import pytest
from huggingface_hub import ModelCard

from hf_whisper_context.demo import RUNS, DemoConfig, run_demo
from hf_whisper_context.experiment import Recipe
from hf_whisper_context.hub import HubError
from hf_whisper_context.report import COUNT_METRICS, shown_summary
from hf_whisper_context.teacher.load import load_teacher


def _rates(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in COUNT_METRICS}


pytestmark = pytest.mark.slow


def test_main_job_runs_end_to_end_at_toy_size(corpus, tiny_models, tmp_path):
    recipe = Recipe(student=str(tiny_models / "student"), steps=2, batch_size=2)
    config = DemoConfig(output_dir=str(tmp_path / "demo"), recipe=recipe, teacher=str(tiny_models / "teacher"),
                        corpus=str(corpus), test_articles=1, validation_articles=0, adapt_steps=1,
                        adapt_max_length=32, context_words=64, k=4, sample=False, eval_batch_size=2)  # fmt: skip
    summary = run_demo(config)
    out = tmp_path / "demo"
    assert list(summary["table"]) == list(RUNS)
    results = json.loads((out / "evaluation" / "results.json").read_text())
    assert json.loads((out / "demo.json").read_text())["table"] == summary["table"]
    assert [c["names"] for c in summary["comparisons"]] == [list(RUNS[:2]), list(RUNS[1:])]
    for run in RUNS[1:]:
        for form, library in (("merged", "transformers"), ("adapter", "peft")):
            folder = out / "checkpoints" / f"{run}-{form}"
            card = ModelCard.load(folder / "README.md")
            assert card.data.library_name == library
            values = {r.metric_type: r.metric_value for r in card.data.eval_results}  # percent, rounded
            shown = shown_summary(results["runs"][f"{run} (sequential)"])
            assert values == {k: round(100 * v, 2) for k, v in _rates(shown).items() if v is not None}
            assert (folder / "plots" / "wer_per_article.png").is_file()
            assert (folder / "plots" / "training_loss.png").is_file()
            # the recipe's decoding is what the checkpoint carries and its card shows
            generation = json.loads((folder / "generation_config.json").read_text())
            assert generation["timestamp_jump_guard"] is True and "load_asr_pipeline(" in card.text
    assert "timestamp jumps guarded" in results["decoding"]
    teacher_folder = out / "checkpoints" / "teacher-adapter"
    assert json.loads((teacher_folder / "quantization.json").read_text()) == {"method": "none"}
    model, tokenizer = load_teacher(str(teacher_folder))  # a shipped teacher loads by its folder alone
    assert "[PERSON]" in tokenizer.get_vocab() and hasattr(model, "peft_config")

    with pytest.raises(HubError, match="not empty"):  # a second run does not overwrite the first by accident
        run_demo(config)
