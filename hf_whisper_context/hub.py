"""Hub artifacts: a trained student saved merged or as a peft adapter, the adapted teacher, generated model cards
(templates in `model_cards/`), and `push_to_hub`.

Every folder is written beside its target and renamed into place (never half written); an existing non-empty
folder is refused unless `overwrite=True`. Nothing here reaches the network except `push_to_hub`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
from pathlib import Path

from .bundled import hub_id
from .errors import HfWhisperContextError
from .report import COUNT_METRICS, METRIC_NAMES, PLOT_FILES, loss_plot, shown_summary, tables
from .tags import TAG_ROWS_FILE
from .utils import atomic_folder, atomic_write

TEMPLATE_DIRS = (
    Path(__file__).resolve().parents[1] / "model_cards",  # a source checkout / editable install
    Path(sys.prefix) / "share" / "hf_whisper_context" / "model_cards",  # a wheel install (setup.cfg data_files)
)
ENTITY_MODES = {
    "tags": "read from the entity tags the model writes itself",
    "tagger": "the hypotheses tagged by the references' tagger (spaCy + rules), as the model writes no tags",
}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


HEADS = ("distill_projector", "distill_paper")  # the distillation heads: training only, never in a saved student


class HubError(HfWhisperContextError, ValueError):
    """A checkpoint cannot be saved or pushed as asked; the message says why and what to do."""


def check_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse a folder that exists and is not empty, unless `overwrite`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HubError(f"{path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise HubError(f"{path} exists and is not empty: choose another folder or pass overwrite (--overwrite)")
    return path


def _template(name: str) -> Path:
    for folder in TEMPLATE_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise HubError(f"model card template {name} not found in {', '.join(map(str, TEMPLATE_DIRS))}")


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def save_student(model, processor, output_dir, form: str = "merged", decoding=None, overwrite: bool = False) -> Path:
    """Save a trained student for `pipeline("automatic-speech-recognition", model=output_dir)`.

    form="merged": a plain `WhisperForConditionalGeneration` (LoRA merged into a copy, the distillation projector
    left out) in safetensors; form="adapter": the peft adapter (LoRA weights only, `base_model_name_or_path` as
    trained). Both get the processor and a generation config with `decoding` (a `transcribe.Decoding`).
    A model sharded by FSDP2 is gathered first: then every process must call this, and process 0 writes.
    """
    from .lora import is_quantized
    from .transcribe import Decoding

    if form not in ("merged", "adapter"):
        raise HubError(f"form must be 'merged' or 'adapter', not {form!r}")
    if form == "adapter" and not _is_peft(model):
        raise HubError("the model has no LoRA adapter (train with lora_r): save it with form='merged'")
    if form == "adapter" and getattr(model, "trainable_token_ids", None):
        raise HubError("the trained tag-token embedding rows are not part of a LoRA adapter: save form='merged'")
    state = _gathered(model)  # the full weights of a sharded model (every process takes part), else None
    if state == {}:  # a process other than 0 of a sharded model: process 0 writes
        return Path(output_dir)
    out = check_output_dir(output_dir, overwrite)
    decoding = decoding or Decoding()
    with atomic_folder(out) as tmp:
        if form == "merged":  # merging changes weights in place: a copy, so that the caller keeps its model
            plain = _rebuilt(model, state) if state or is_quantized(model) else copy.deepcopy(model)
            plain = plain.merge_and_unload() if _is_peft(plain) else plain
            for head in HEADS:
                if hasattr(plain, head):
                    delattr(plain, head)
            _record(plain.generation_config, decoding, plain)
            plain.save_pretrained(tmp)
        else:
            model.save_pretrained(tmp, state_dict=state)
            _drop_projector(Path(tmp))
            base = model.get_base_model()
            generation = copy.deepcopy(base.generation_config)
            _record(generation, decoding, base)
            generation.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return out


def _record(generation, decoding, model) -> None:
    """Write `decoding` into a student's generation config: the search, and the timestamp-jump guard when it is set
    (read back by `transcribe.load_asr_pipeline`; transformers' own `pipeline` ignores it)."""
    from .transcribe import is_multilingual

    generation.update(**decoding.generate_kwargs(is_multilingual(model)))
    if decoding.timestamp_jump_guard is not None:
        generation.timestamp_jump_guard = decoding.timestamp_jump_guard


def _gathered(model) -> dict | None:
    """The full state dict of a model whose parameters FSDP2 shards (DTensors), on the CPU of process 0 and {} on
    the others (a collective: every process must call it); None for a model that is not sharded."""
    from torch.distributed.tensor import DTensor

    if not any(isinstance(p, DTensor) for p in model.parameters()):
        return None
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return state if dist.get_rank() == 0 else {}


def _rebuilt(model, state: dict | None = None):
    """The student rebuilt in float32 on the CPU from `state` (its full state dict: default its own), the
    distillation heads left out: a QLoRA student on its base reloaded unquantized, with the trained adapters and
    embedding rows (the adapters merge into the original weights, not into their 4-/8-bit approximation); an
    FSDP-sharded student from its gathered weights."""
    import torch
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import WhisperForConditionalGeneration

    state = model.state_dict() if state is None else state

    def student_only(weights: dict) -> dict:  # in float32 on the CPU; only the tensors used are converted
        return {k: (v.float() if v.is_floating_point() else v).cpu() for k, v in weights.items()
                if not any(head in k for head in HEADS)}  # fmt: skip

    if not _is_peft(model):  # full fine-tuning
        plain = WhisperForConditionalGeneration(copy.deepcopy(model.config)).float()
        plain.load_state_dict(student_only(state))
        plain.generation_config = copy.deepcopy(model.generation_config)
        return plain
    config = copy.deepcopy(model.peft_config["default"])
    config.modules_to_save = [m for m in config.modules_to_save or [] if m not in HEADS] or None
    base = WhisperForConditionalGeneration.from_pretrained(config.base_model_name_or_path, dtype=torch.float32)
    embeddings = next(v for k, v in state.items() if k.endswith("decoder.embed_tokens.weight"))
    if base.get_input_embeddings().num_embeddings != embeddings.shape[0]:
        base.resize_token_embeddings(embeddings.shape[0])
    with torch.no_grad():
        base.get_input_embeddings().weight.copy_(embeddings.float().cpu())  # trained tag rows, if any
    plain = get_peft_model(base, config, autocast_adapter_dtype=False)
    set_peft_model_state_dict(plain, student_only(get_peft_model_state_dict(model, state_dict=state)))
    return plain


def _drop_projector(folder: Path) -> None:
    """The projector only serves training: leave it out of an exported adapter (plain Whisper cannot hold it)."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / "adapter_model.safetensors"))
    save_file({k: v for k, v in weights.items() if "distill_projector" not in k},
              str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    config = json.loads((folder / "adapter_config.json").read_text())
    config["modules_to_save"] = [m for m in config.get("modules_to_save") or [] if m != "distill_projector"] or None
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _writes_tags(folder: Path) -> bool:
    from transformers import AutoTokenizer

    from .student_tags import tag_ids

    return bool(tag_ids(AutoTokenizer.from_pretrained(folder)))


def _guarded(folder: Path) -> bool:
    """Whether the student's generation config asks for the timestamp-jump guard (`save_student`)."""
    from transformers import GenerationConfig

    from .timestamp_guard import asked_for

    return (folder / "generation_config.json").is_file() and asked_for(GenerationConfig.from_pretrained(folder))


def _settings_table(settings: dict) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines.extend(f"| {k} | `{v}` |" for k, v in settings.items())
    return "\n".join(lines)


def _write_card(folder: Path, card) -> None:
    atomic_write(folder / "README.md", str(card))


STRATEGY_DESCRIPTIONS = {
    "chunked": "in 30 s windows with a 5 s stride, batched, the windows merged",
    "sequential": "with Whisper's own sequential long-form decoding (30 s windows moved on by the predicted "
    "timestamps)",
}


CARD_SETTINGS = ("max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
                 "learning_rate", "warmup_steps", "lr_scheduler_type", "label_smoothing_factor", "lora_r",
                 "lora_alpha", "freeze_encoder_layers", "distill_mode", "kd_weight", "ot_weight", "rep_weight",
                 "base_kl_weight", "seed", "bf16")  # fmt: skip


def usage_call(strategy: str = "chunked", fallback: dict | None = None) -> str:
    """The `asr(...)` call a card shows: the long-form decoding the card's numbers were measured with."""
    if strategy == "chunked":
        return 'asr("speech.wav", chunk_length_s=30, stride_length_s=5, return_timestamps=True)'
    extra = f", generate_kwargs={json.dumps(fallback)}" if fallback else ""
    return f'asr("speech.wav", return_timestamps=True{extra})'


def training_settings(args) -> dict:
    """The training arguments a card lists (`CARD_SETTINGS`), from `ContextDistillTrainingArguments`."""
    values = args.to_sanitized_dict()
    return {k: values[k] for k in CARD_SETTINGS if k in values}


def write_student_card(folder, results: dict | None = None, run_name: str | None = None, *, base_model: str,
                       teacher: str, data: str, settings: dict, method: str = "", model_name: str | None = None,
                       model_id: str | None = None, eval_dir=None, summary: str = "", language: str = "en",
                       data_limitations: str = "one test split, of one kind of speech.",
                       decoding: str = "greedy", history: list | None = None) -> object:  # fmt: skip
    """Write `README.md` into a saved student folder (merged or adapter) from `model_cards/student.md`.

    `results` is the `evaluate_longform` result and `run_name` this model's run in it (its numbers go into the
    `model-index`, in percent); the card's tables show every run, so the baseline is beside it. Plots found in
    `eval_dir` are copied into `plots/`, and `history` (a Trainer's `log_history`) is drawn as
    `plots/training_loss.png`; `data_limitations` says what the test data is not. Without `results` the
    card says the model is not evaluated yet (and how to), and has no model-index: enough to push. `base_model` is
    the Hub id (a bundled name's is `bundled.hub_id`). Returns the `ModelCard`.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    if results is not None and run_name not in results["runs"]:
        raise HubError(f"no run {run_name!r} in the results; runs: {', '.join(results['runs'])}")
    adapter = (folder / "adapter_config.json").is_file()
    evaluation, evals, usage = {"evaluated": results is not None}, [], usage_call()
    if results is not None:
        run = results["runs"][run_name]
        data_name = Path(results["data"]).name
        evals = [  # the Hub's convention: percent (WER 14.52, not 0.1452), rounded; nothing to score: left out
            EvalResult(task_type="automatic-speech-recognition", task_name="Long-form speech recognition",
                       dataset_type="long-form-speech", dataset_name=f"{data_name} ({data})",
                       dataset_split=results["split"], metric_type=metric, metric_name=f"{METRIC_NAMES[metric]} (%)",
                       metric_value=round(100 * value, 2))
            for metric, value in shown_summary(run).items()
            if metric not in COUNT_METRICS and value is not None
        ]  # fmt: skip
        plots = []
        if eval_dir is not None:
            (folder / "plots").mkdir(exist_ok=True)
            for plot in PLOT_FILES:
                if (Path(eval_dir) / plot).is_file():
                    shutil.copyfile(Path(eval_dir) / plot, folder / "plots" / plot)
                    plots.append(plot)
        if history:
            (folder / "plots").mkdir(exist_ok=True)
            plots.append(loss_plot(history, folder / "plots" / "training_loss.png").name)
        articles, table = run["articles"], tables(results)
        decoding, usage = results["decoding"], usage_call(run["strategy"], results.get("fallback"))
        evaluation.update(
            split=results["split"], data_name=data_name, run_name=run_name, results_table=table["headline"],
            entity_table=table["entities"], punctuation_table=table["punctuation"], plots=plots,
            test_articles=f"{len(articles)} article{'s' if len(articles) != 1 else ''}",
            test_minutes=f"{sum(a['duration_s'] for a in articles) / 60:.1f}",
            strategy_description=STRATEGY_DESCRIPTIONS[run["strategy"]], data_limitations=data_limitations,
            entity_mode_description=ENTITY_MODES[run["corpus"]["entity_mode"]],
        )  # fmt: skip
    name = model_name or folder.name
    card_data = ModelCardData(
        language=language, license="apache-2.0", library_name="peft" if adapter else "transformers",
        pipeline_tag="automatic-speech-recognition", base_model=base_model, model_name=name,
        eval_results=evals or None, metrics=["wer"],
        tags=["whisper", "distillation", "hf_whisper_context", *(["lora"] if adapter else [])],
    )  # fmt: skip
    card = ModelCard.from_template(
        card_data, template_path=str(_template("student.md")), model_name=name,
        form="adapter" if adapter else "merged",
        summary=summary or "Whisper fine-tuned for long speech transcripts: words, named entities, capitalization "
        "and punctuation.",
        form_description="LoRA adapter" if adapter else "checkpoint (LoRA merged into the weights)",
        method_description=method or "see the training settings below.", base_model=base_model,
        teacher_description=teacher, data_description=data, decoding=decoding, usage_call=usage,
        model_id=model_id or str(folder.resolve()), settings_table=_settings_table(settings),
        tagged=_writes_tags(folder), guarded=_guarded(folder), **evaluation,
    )  # fmt: skip
    _write_card(folder, card)
    return card


def export_teacher(adapter_dir, output_dir, teacher: str, report: dict, settings: dict, data: str,
                   overwrite: bool = False) -> Path:  # fmt: skip
    """Ship an adapted teacher (the folder `adapt_teacher` wrote): a copy with `quantization.json` (how its base
    weights were loaded, so `load_teacher(folder)` reproduces it) and a generated card."""
    from huggingface_hub import ModelCard, ModelCardData
    from safetensors.torch import load_file

    from .bundled import identify

    adapter_dir, out = Path(adapter_dir), check_output_dir(output_dir, overwrite)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise HubError(f"{adapter_dir} is not an adapter folder (no adapter_config.json)")
    found = identify(teacher)
    if found:
        quantization = {"method": "gguf", "bundled": found[0], "origin": found[1].origin}
        weights = f"dequantized from the GGUF file of `{found[1].origin}` (bundled as `{found[0]}`)"
    else:
        quantization = {"method": settings.get("quantization") or "none"}
        if quantization["method"] != "none":  # the whole config, so that the shipped teacher loads as it was adapted
            from .bnb import bitsandbytes_config

            quantization["bitsandbytes"] = bitsandbytes_config(quantization["method"]).to_dict()
        weights = f"`{teacher}` ({quantization['method']})"
    base = hub_id(teacher)
    tag_rows = adapter_dir / TAG_ROWS_FILE
    tag_count = len(load_file(str(tag_rows))["tag_ids"]) if tag_rows.is_file() else 0
    rows = "| metric | before | after |\n|---|---|---|\n" + "\n".join(
        f"| {k} | {report.get(f'{k}_before', float('nan')):.4g} | {report.get(f'{k}_after', float('nan')):.4g} |"
        for k in ("eval_loss", "closing_tag_probability")
    )
    card = ModelCard.from_template(
        ModelCardData(language="en", license="apache-2.0", library_name="peft", pipeline_tag="text-generation",
                      base_model=base, tags=["hf_whisper_context", "teacher", "lora", "named-entities"]),
        template_path=str(_template("teacher.md")), model_name=out.name, base_model=base,
        weights_description=weights, data_description=data, tag_count=tag_count,
        quantization_json=json.dumps(quantization, indent=2), model_id=str(out.resolve()), results_table=rows,
        settings_table=_settings_table(settings), steps=settings.get("max_steps", "?"),
        size_description=settings.get("size", "small"),
    )  # fmt: skip
    with atomic_folder(out) as tmp:
        for item in adapter_dir.iterdir():
            if item.is_file() and item.name != "README.md":
                shutil.copyfile(item, Path(tmp) / item.name)
        (Path(tmp) / "quantization.json").write_text(json.dumps(quantization, indent=2) + "\n")
        card.save(str(Path(tmp) / "README.md"))
    return out


def push_to_hub(folder, repo_id: str, private: bool = False, token: str | None = None,
                commit_message: str = "Upload with hf_whisper_context") -> str:  # fmt: skip
    """Create `repo_id` (if needed) and upload `folder` in one commit; returns the repo URL.

    Fails fast, before creating anything, on a malformed repo id, no token (`hf auth login`, `HF_TOKEN`, or
    `token=`), `HF_HUB_OFFLINE=1`, or no network. An adapter whose base is a local folder is uploaded with the base
    model's Hub id (from the card) so that others can load it.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    folder = Path(folder)
    try:
        validate_repo_id(repo_id)  # the Hub's own rules: characters, no '--' or '..', no '.'/'-' at the ends
        if not REPO_ID.match(repo_id):
            raise HFValidationError("it needs a namespace")
    except HFValidationError as e:
        raise HubError(f"repo id {repo_id!r} is malformed ({e}): write it as 'user-or-org/model-name'") from e
    if not (folder / "README.md").is_file():
        raise HubError(f"{folder} has no README.md model card: save it with hub.save_student/export_teacher")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise HubError("HF_HUB_OFFLINE is set: unset it to push to the Hub")
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or pass token=...")
    api = HfApi(token=token)
    try:
        api.whoami()
    except Exception as e:  # httpx/requests connection errors and 401s alike
        raise HubError(f"cannot reach the Hugging Face Hub with this token ({type(e).__name__}: {e})") from None
    operations = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        if path.name == "README.md":  # the usage snippet names the repo, not this machine's folder
            data = data.replace(str(folder.resolve()).encode(), repo_id.encode())
        if path.name == "adapter_config.json":
            config = json.loads(data)
            if Path(config.get("base_model_name_or_path") or "").exists():  # a local folder: name the Hub base
                config["base_model_name_or_path"] = ModelCard.load(folder / "README.md").data.base_model
                data = (json.dumps(config, indent=2) + "\n").encode()
        operations.append(CommitOperationAdd(path_in_repo=str(path.relative_to(folder)), path_or_fileobj=data))
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.create_commit(repo_id, operations, commit_message=commit_message)
    return str(url)
