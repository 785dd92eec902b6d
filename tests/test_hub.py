"""Hub artifacts: merged and adapter checkpoints load with pipeline() and transcribe like the trained model; the
generated card parses, validates and carries the evaluation's numbers; bad input fails clearly and changes nothing."""

import copy
import json
import os

import pytest
import torch
from huggingface_hub import ModelCard, ModelCardData
from safetensors import safe_open
from transformers import WhisperForConditionalGeneration, WhisperProcessor, pipeline

from hf_whisper_context import bundled, hub
from hf_whisper_context.audio import load_audio
from hf_whisper_context.lora import apply_lora, lora_config
from hf_whisper_context.metrics import HEADLINE, compute_all, summary
from hf_whisper_context.report import COUNT_METRICS
from hf_whisper_context.transcribe import Decoding, load_asr_pipeline

from .conftest import tiny_whisper_config


def _rates(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in COUNT_METRICS}


REFERENCE = "[PERSON]Ada Lovelace[/PERSON] was born in [GPE]London[/GPE] in [DATE]1815[/DATE]. She wrote notes."
HYPOTHESIS = "Ada Lovelace was born in london in 1815, she wrote notes"


@pytest.fixture(scope="module")
def trained(tiny_en):
    """The real tiny.en with LoRA adapters and a projector whose weights moved (as after training)."""
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration.from_pretrained(tiny_en)
    model.add_module("distill_projector", torch.nn.Linear(16, model.config.d_model, bias=False))
    model = apply_lora(model, lora_config(4, 8), modules_to_save=["distill_projector"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model.eval(), WhisperProcessor.from_pretrained(tiny_en)


def _results(name="distilled (chunked)"):
    corpus = compute_all([REFERENCE], [HYPOTHESIS])
    run = {
        "summary": summary(corpus),
        "corpus": corpus,
        "articles": [{"article_id": "a", "duration_s": 60.0}],
        "strategy": "chunked",
    }
    other = {**run, "summary": {k: 0.5 for k in HEADLINE}}
    return {"data": "/x/corpus", "split": "test", "decoding": "greedy", "runs": {"off-the-shelf (chunked)": other,
                                                                               name: run}}  # fmt: skip


@pytest.mark.slow
def test_merged_and_adapter_checkpoints_transcribe_like_the_trained_model(trained, clips, tmp_path):
    model, processor = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    merged = hub.save_student(model, processor, tmp_path / "merged", "merged", Decoding())
    adapter = hub.save_student(model, processor, tmp_path / "adapter", "adapter", Decoding(timestamp_jump_guard=True))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the caller's model is untouched
    assert (merged / "model.safetensors").is_file() and (adapter / "adapter_model.safetensors").is_file()
    for file in (merged / "model.safetensors", adapter / "adapter_model.safetensors"):
        with safe_open(str(file), "pt") as f:
            assert not any("distill_projector" in k for k in f.keys())  # training-only: not shipped
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.rglob("*.bin"))
    plain = WhisperForConditionalGeneration.from_pretrained(merged)
    assert not hasattr(plain, "distill_projector")

    for path, _ in clips[:2]:
        audio = load_audio(path)
        features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ids = model.generate(input_features=features, num_beams=1, do_sample=False)
        expected = processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
        for folder in (merged, adapter):
            asr = pipeline("automatic-speech-recognition", model=str(folder), device="cpu")
            assert asr(audio.copy())["text"].strip() == expected, folder.name
    # the adapter's own generation config, not its base model's, is the one `load_asr_pipeline` decodes with
    assert load_asr_pipeline(str(adapter)).model.generation_config.timestamp_jump_guard is True
    base = WhisperForConditionalGeneration.from_pretrained(model.peft_config["default"].base_model_name_or_path)
    q_proj = lambda m: m.model.decoder.layers[0].self_attn.q_proj.weight  # noqa: E731
    assert not torch.allclose(q_proj(base), q_proj(plain))  # the LoRA update is in the merged weights


def test_card_parses_validates_and_carries_the_evaluation_numbers(trained, tmp_path):
    model, processor = trained
    results = _results()
    for form in ("merged", "adapter"):
        folder = hub.save_student(model, processor, tmp_path / form, form)
        hub.write_student_card(folder, results, "distilled (chunked)", base_model="openai/whisper-tiny.en",
                               teacher="SmolLM2", data="built corpus", settings={"max_steps": 3, "kd_weight": 0.05},
                               method="distillation.", history=[{"loss": 2.0, "ce": 1.9, "step": 1},
                                                                {"loss": 1.5, "ce": 1.4, "step": 2}])  # fmt: skip
        assert (folder / "plots" / "training_loss.png").is_file()
        card = ModelCard.load(folder / "README.md")
        data = ModelCardData(**card.data.to_dict())  # validates (model-index -> eval results)
        assert data.pipeline_tag == "automatic-speech-recognition" and data.base_model == "openai/whisper-tiny.en"
        assert data.library_name == ("peft" if form == "adapter" else "transformers")
        values = {r.metric_type: r.metric_value for r in data.eval_results}  # percent, rounded (the Hub's way)
        rates = _rates(results["runs"]["distilled (chunked)"]["summary"])
        assert values == {k: round(100 * v, 2) for k, v in rates.items()} and "%" in data.eval_results[0].metric_name
        assert "@inproceedings{altinok2025whispering" in card.text and "arxiv.org/abs/2508.13376" in card.text
        assert "(1 article, " in card.text and "plots/training_loss.png" in card.text
        assert "| PERSON |" in card.text and "| , |" in card.text and "`0.05`" in card.text
        assert "in 30 s windows with a 5 s stride" in card.text  # the strategy of the run
        assert f'model="{folder.resolve()}"' in card.text
    with pytest.raises(hub.HubError, match="no run"):
        hub.write_student_card(folder, results, "missing", base_model="b", teacher="t", data="d", settings={})


def test_the_card_shows_the_call_its_numbers_were_measured_with(trained, clips, tmp_path):
    """A sequential run decoded with the fallback and the timestamp-jump guard: the card's usage code is that
    decoding, and it runs as written on the saved checkpoint (audio over 30 s, so that Whisper's long-form loop and
    its fallback are what runs) with the guard in the processors `generate` builds."""
    import numpy as np

    from hf_whisper_context.timestamp_guard import GuardedTimestamps

    model, processor = trained
    results = _results("distilled (sequential)")
    results["runs"]["distilled (sequential)"]["strategy"] = "sequential"
    results["fallback"] = json.loads(json.dumps(Decoding(fallback=True).fallback_kwargs()))  # as read back
    cards = {}
    for guard in (True, False):
        folder = hub.save_student(model, processor, tmp_path / f"guard{guard}", "merged",
                                  Decoding(fallback=True, timestamp_jump_guard=guard))  # fmt: skip
        hub.write_student_card(folder, results, "distilled (sequential)", base_model="openai/whisper-tiny.en",
                               teacher="t", data="d", settings={})  # fmt: skip
        text = (folder / "README.md").read_text()
        cards[guard] = text, text.split("```python\n", 1)[1].split("```", 1)[0]
    text, code = cards[False]
    assert "from transformers import pipeline" in code and "Timestamp-jump guard" not in text
    text, code = cards[True]
    assert "load_asr_pipeline(" in code and "Timestamp-jump guard" in text
    call = next(line for line in code.splitlines() if line.startswith("print(asr("))
    assert '"compression_ratio_threshold": 1.35' in call and "chunk_length_s" not in call
    audio = np.concatenate([load_audio(path) for path, _ in clips] * 4)
    assert len(audio) > 30 * 16000
    scope = {"speech": {"raw": audio, "sampling_rate": 16000}}
    exec(code.replace('"speech.wav"', "speech").replace("print(", "transcript = ("), scope)
    assert "Einstein" in scope["transcript"]  # the call ends in ["text"]
    config = copy.deepcopy(scope["asr"].model.generation_config)  # as `generate` fills it in
    config.return_timestamps, config.no_speech_threshold = True, None
    built = scope["asr"].model._retrieve_logit_processors(config, None, 3, 1, "cpu")
    assert any(type(p) is GuardedTimestamps for p in built)
    assert "chunk_length_s=30, stride_length_s=5" in hub.usage_call()  # not evaluated: the chunked call


def test_existing_folders_are_refused_and_saves_are_atomic(trained, tmp_path):
    model, processor = trained
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(hub.HubError, match="not empty.*overwrite"):
        hub.save_student(model, processor, tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"

    class BrokenProcessor:
        def save_pretrained(self, folder):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        hub.save_student(model, BrokenProcessor(), tmp_path / "taken", overwrite=True)
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"  # the old folder survives a failed save
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary folder left behind
    hub.save_student(model, processor, tmp_path / "taken", overwrite=True)
    assert not (tmp_path / "taken" / "keep.txt").exists()
    with pytest.raises(hub.HubError, match="no LoRA adapter"):
        hub.save_student(WhisperForConditionalGeneration(tiny_whisper_config()), processor, tmp_path / "p", "adapter")


def test_push_fails_fast_and_changes_nothing(trained, tmp_path, monkeypatch):
    model, processor = trained
    folder = hub.save_student(model, processor, tmp_path / "ckpt")
    hub.write_student_card(folder, _results(), "distilled (chunked)", base_model="openai/whisper-tiny.en",
                           teacher="t", data="d", settings={})  # fmt: skip
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for repo_id in ("", "no-namespace", "a/b/c", "bad id/x"):
        with pytest.raises(hub.HubError, match="malformed"):
            hub.push_to_hub(folder, repo_id)
    with pytest.raises(hub.HubError, match="no Hugging Face token"):
        hub.push_to_hub(folder, "someone/model")
    with pytest.raises(hub.HubError, match="no README.md"):
        hub.push_to_hub(tmp_path, "someone/model", token="hf_x")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE"):
        hub.push_to_hub(folder, "someone/model", token="hf_x")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(hub.HubError, match="cannot reach the Hugging Face Hub"):  # no network here
        hub.push_to_hub(folder, "someone/model", token="hf_not_a_real_token")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.rglob("*")) == listing
    assert "hf_not_a_real_token" not in os.environ.get("HF_TOKEN", "")


def test_cli_push_reports_a_clear_error(tmp_path, capsys):
    from hf_whisper_context.cli import main

    assert main(["push", str(tmp_path), "--repo-id", "not valid"]) == 1
    assert "malformed" in capsys.readouterr().err


def test_hub_id_of_bundled_models(tiny_en):
    assert bundled.hub_id("tiny.en") == bundled.hub_id(tiny_en) == "openai/whisper-tiny.en"
    assert bundled.hub_id("someone/model") == "someone/model"


def test_plots_keep_a_readable_shape(tmp_path):
    from PIL import Image

    from hf_whisper_context.evaluation import article_entry, run_entry
    from hf_whisper_context.report import write_report

    run = {**run_entry([article_entry("a", REFERENCE, HYPOTHESIS, 5, "tagger")], "tagger"), "strategy": "chunked"}
    write_report({"data": "x", "split": "test", "decoding": "greedy", "runs": {"a": run, "b": run}}, tmp_path)
    width, height = Image.open(tmp_path / "entity_f1_per_type.png").size
    assert width <= 1200 and height == 450  # was a 3060x400 strip with many types; now capped, legend beside


def test_a_quantized_teacher_ships_its_whole_bitsandbytes_config(tmp_path):
    """`quantization.json` once said only {"method": "4bit"}; it now carries `BitsAndBytesConfig.to_dict()`, and a
    shipped teacher loads with exactly that config."""
    from transformers import BitsAndBytesConfig

    from hf_whisper_context.teacher.load import _shipped_adapter

    base = "meta-llama/Llama-3.2-1B"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
    out = hub.export_teacher(adapter, tmp_path / "shipped", base, {}, {"quantization": "4bit"}, "a corpus")
    info = json.loads((out / "quantization.json").read_text())
    recorded = info["bitsandbytes"]
    assert info["method"] == "4bit" and recorded["load_in_4bit"] and recorded["bnb_4bit_quant_type"] == "nf4"
    assert recorded["bnb_4bit_use_double_quant"] and recorded["bnb_4bit_compute_dtype"] == "bfloat16"
    assert BitsAndBytesConfig.from_dict(recorded).to_dict() == recorded
    assert '"bnb_4bit_quant_type": "nf4"' in (out / "README.md").read_text()  # the card shows it too
    assert _shipped_adapter(out)[1] == (base, recorded)  # load_teacher loads the base with exactly this config
