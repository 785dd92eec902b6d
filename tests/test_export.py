"""CTranslate2 export for faster-whisper: the bundled tiny.en and a LoRA student, checked against the Hugging Face
model (same greedy ids, long-form WER, a round trip back through the project's converter), and the bad inputs."""

import json

import pytest
import torch
from safetensors.torch import load_file

from hf_whisper_context.bundled import BundledModelError
from hf_whisper_context.cli import main
from hf_whisper_context.convert import convert_ctranslate2_whisper
from hf_whisper_context.export import ExportError, check_clips, check_export, export_ctranslate2

pytestmark = pytest.mark.slow


def test_tiny_en_exports_with_equal_ids_and_comes_back_unchanged(tiny_en, tmp_path, capsys):
    """(faster-whisper's long-form WER against transformers' on a whole article: test_longform.py's backend test)"""
    out = tmp_path / "ct2"
    assert main(["export", str(tiny_en), "--output-dir", str(out), "--quantization", "float32"]) == 0
    assert "greedy ids equal to the checkpoint's on 3" in capsys.readouterr().out
    report = json.loads((out / "export_check.json").read_text())
    assert report["equal"] and report["mean_wer_export"] == 0.0 and len(report["clips"]) == 3
    assert {p.name for p in out.iterdir()} >= {"model.bin", "tokenizer.json", "vocabulary.json",
                                                "preprocessor_config.json", "README.md"}  # fmt: skip
    assert "from faster_whisper import WhisperModel" in (out / "README.md").read_text()

    back = convert_ctranslate2_whisper(out, tmp_path / "back")  # CTranslate2 -> transformers, this project's way
    original, returned = load_file(tiny_en / "model.safetensors"), load_file(back / "model.safetensors")
    assert set(returned) <= set(original)
    assert all(torch.equal(original[k], returned[k]) for k in returned)


def test_a_lora_trained_student_exports_merged_and_its_card_learns_faster_whisper(tiny_en, clips, tmp_path):
    from datasets import Dataset
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from hf_whisper_context import ContextDistillTrainer, ContextDistillTrainingArguments, DistillationCollator
    from hf_whisper_context.audio import load_audio
    from hf_whisper_context.hub import save_student

    processor = WhisperProcessor.from_pretrained(tiny_en)
    rows = Dataset.from_list([{"audio": {"array": load_audio(path)}, "text": text} for path, text in clips])
    args = ContextDistillTrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, learning_rate=1e-3,
                                           per_device_train_batch_size=3, lora_r=8, lora_alpha=16, report_to=[],
                                           save_strategy="no", use_cpu=True, kd_weight=0, ot_weight=0,
                                           rep_weight=0)  # fmt: skip
    trainer = ContextDistillTrainer(model=WhisperForConditionalGeneration.from_pretrained(tiny_en), args=args,
                                    train_dataset=rows, data_collator=DistillationCollator(processor))  # fmt: skip
    trainer.train()
    adapter = save_student(trainer.model, processor, tmp_path / "adapter", "adapter")
    merged = save_student(trainer.model, processor, tmp_path / "merged", "merged")
    (adapter / "README.md").write_text("# my student\n\n## Results\n\nnumbers\n")
    out = export_ctranslate2(adapter, tmp_path / "ct2", "float32", check=False)  # an adapter is merged first
    report = check_export(merged, out, "float32", check_clips()[1:])
    assert report["equal"] and report["mean_wer_export"] == 0.0
    card = (adapter / "README.md").read_text()
    assert card.count("## Run with faster-whisper") == 1 and "## Results" in card and str(out) in card
    export_ctranslate2(adapter, out, "int8", overwrite=True, check=False)  # a second export replaces the section
    card = (adapter / "README.md").read_text()
    assert card.count("## Run with faster-whisper") == 1 and "int8" in card
    int8 = check_export(merged, out, "int8", check_clips()[:1])
    print(f"int8 export vs the checkpoint: WER between them {int8['mean_wer_export']:.3f}")
    assert 0.0 <= int8["mean_wer_export"] < 1.0 and len(int8["clips"]) == 1  # int8: reported, not required equal


def test_bad_inputs_are_named(tiny_en, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ExportError, match="not a Whisper checkpoint: tokenizer.json, model.safetensors missing"):
        export_ctranslate2(tmp_path / "notes", tmp_path / "out")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    assert main(["export", str(tiny_en), "--output-dir", str(tmp_path / "taken"), "--no-check"]) == 1
    assert "is not empty: choose another folder or pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    with pytest.raises(BundledModelError, match="not a bundled model .*, an existing folder, or a Hub id"):
        export_ctranslate2(tmp_path / "missing", tmp_path / "out")
