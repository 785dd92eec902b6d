"""Adapt the teacher to entity-tagged article text: LoRA (QLoRA on CUDA) SFT with TRL's `SFTTrainer`.

Paper recipe as defaults (`AdaptConfig`): r=16, alpha=32 on q_proj/v_proj, lr 2e-4, 3 epochs. The 42 tag tokens are
added to the teacher's tokenizer and embeddings first; their rows are trained while the rest of the model stays
frozen. The adapter is saved with its tokenizer; `merge=True` also writes merged weights.

The tag rows are trained in place - the embedding matrix is made trainable and a gradient hook zeroes every other
row - rather than with peft's `trainable_token_indices`: TRL's fused LM head reads `lm_head.weight` directly, which
bypasses peft's token wrapper on tied-embedding models such as SmolLM2 (and fails on its missing `bias`). For the
saved adapter the trained rows are moved into peft's own form afterwards (`_shippable`): the adapter is rebuilt with
`trainable_token_indices` set to the tag ids, so that plain peft (`AutoPeftModelForCausalLM.from_pretrained`)
loads the trained rows, not freshly resized random ones. They are also saved as `TAG_ROWS_FILE`, which
`load_teacher` reads for adapters written before this.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..bnb import guard_cpu_kernels, quantization_config
from ..data.entities import add_tag_tokens
from ..lora import train_rows_only
from ..tags import CLOSING_TAG_TOKENS, TAG_ROWS_FILE, TAG_TOKENS
from .load import auto_dtype, ensure_pad_token, resolve_teacher

logger = logging.getLogger(__name__)


def tagged_passages(texts, words_per_passage: int = 200) -> list[str]:
    """Cut tagged article texts into passages of about `words_per_passage` words, never inside a tag span."""
    passages = []
    for text in texts:
        words, current, depth = text.split(), [], 0
        for word in words:
            current.append(word)
            depth += word.count("[") - 2 * word.count("[/")
            if len(current) >= words_per_passage and depth <= 0:
                passages.append(" ".join(current))
                current, depth = [], 0
        if len(current) >= 20:
            passages.append(" ".join(current))
    return passages


def closing_tag_probability(model, tokenizer, texts: list[str], max_length: int = 512) -> float:
    """Mean probability the model gives each closing tag token where it truly comes in `texts` (tagged text)."""
    import torch

    closing = set(tokenizer.convert_tokens_to_ids(list(CLOSING_TAG_TOKENS)))
    device = next(model.parameters()).device
    probs = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length).input_ids.to(device)
        with torch.inference_mode():
            logits = model(ids).logits[0].float()
        p = torch.softmax(logits[:-1], dim=-1)
        targets = ids[0, 1:]
        at = [i for i, t in enumerate(targets.tolist()) if t in closing]
        probs.extend(p[at, targets[at]].tolist())
    return sum(probs) / len(probs) if probs else math.nan


@dataclass
class AdaptConfig:
    """How the teacher is adapted to tagged text (the paper's recipe by default)."""

    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    target_modules: str = field(default="q_proj,v_proj", metadata={"help": "Comma-separated modules to adapt."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (linear decay)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs (unless max_steps > 0)."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after N steps (default: num_train_epochs)."})
    batch_size: int = field(default=4, metadata={"help": "Passages per step."})
    max_length: int = field(default=512, metadata={"help": "Teacher tokens per tagged passage."})
    quantization: str | None = field(default="auto", metadata={
        "help": "auto (4bit QLoRA on CUDA, none on CPU), 4bit, 8bit or none."})  # fmt: skip
    merge: bool = field(default=False, metadata={"help": "Also write merged weights."})
    seed: int = field(default=0, metadata={"help": "Seed of the tag rows, LoRA's initialisation and data order."})
    logging_steps: int = field(default=10, metadata={"help": "Log every N steps."})


def adapt_teacher(train_texts: list[str], output_dir: str | Path, teacher: str = "smollm2-135m",
                  eval_texts: list[str] | None = None, config: AdaptConfig | None = None,
                  **overrides) -> dict:  # fmt: skip
    """LoRA-SFT the teacher on tagged text with `config` (fields may be overridden as keywords); returns the adapter
    path, the settings used, and held-out loss / closing-tag probability before and after (given `eval_texts`)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    config = replace(config or AdaptConfig(), **overrides)
    set_seed(config.seed)  # before the tag rows (sampled by mean resizing) and LoRA's initialisation: the same adapter
    quantization = None if config.quantization == "none" else config.quantization
    if quantization == "auto":
        quantization = "4bit" if torch.cuda.is_available() else None
    path = resolve_teacher(teacher)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ensure_pad_token(tokenizer)
    bf16 = auto_dtype() == "bfloat16"
    model = guard_cpu_kernels(
        AutoModelForCausalLM.from_pretrained(
            path,
            quantization_config=quantization_config(quantization),
            dtype=torch.bfloat16 if bf16 else torch.float32,
        )
    )
    added = add_tag_tokens(tokenizer, model)
    if quantization:
        model = prepare_model_for_kbit_training(model)
    tag_ids = tokenizer.convert_tokens_to_ids(list(TAG_TOKENS))
    lora = LoraConfig(r=config.r, lora_alpha=config.lora_alpha, target_modules=config.target_modules.split(","),
                      task_type="CAUSAL_LM")  # fmt: skip
    args = SFTConfig(
        output_dir=str(output_dir), dataset_text_field="text", max_length=config.max_length,
        learning_rate=config.learning_rate, num_train_epochs=config.num_train_epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        logging_steps=config.logging_steps, save_strategy="no", report_to=[], seed=config.seed, bf16=bf16,
        use_cpu=not torch.cuda.is_available(), lr_scheduler_type="linear",
        gradient_checkpointing=torch.cuda.is_available(),  # TRL's default; on CPU memory is not the limit, time is
    )  # fmt: skip
    eval_dataset = Dataset.from_dict({"text": eval_texts}) if eval_texts else None
    model = get_peft_model(model, lora)
    embeddings = train_rows_only(model.get_input_embeddings().weight, tag_ids)
    # an untied LM head (Llama-3) has its own tag rows: trained too, or the teacher's tag logits stay random
    head = model.get_output_embeddings().weight
    outputs = None if head is embeddings else train_rows_only(head, tag_ids)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": list(train_texts)}),
                         eval_dataset=eval_dataset, processing_class=tokenizer)  # fmt: skip
    report = {"added_tag_tokens": added, "quantization": quantization, "train_passages": len(train_texts),
              "settings": {**asdict(config), "quantization": quantization}}  # fmt: skip
    if eval_texts:
        report["eval_loss_before"] = trainer.evaluate()["eval_loss"]
        with trainer.model.disable_adapter():
            report["closing_tag_probability_before"] = closing_tag_probability(trainer.model, tokenizer, eval_texts)
    trainer.train()
    if eval_texts:
        report["eval_loss_after"] = trainer.evaluate()["eval_loss"]
        report["closing_tag_probability_after"] = closing_tag_probability(trainer.model, tokenizer, eval_texts)
    out = Path(output_dir)
    rows = {"tag_ids": torch.tensor(tag_ids), "rows": embeddings.detach()[tag_ids].cpu().contiguous()}
    if outputs is not None:
        rows["output_rows"] = outputs.detach()[tag_ids].cpu().contiguous()
    shipped = _shippable(trainer.model, lora, tag_ids, untied=outputs is not None)
    shipped.save_pretrained(out, save_embedding_layers=False)  # LoRA weights and the tag rows, nothing else
    tokenizer.save_pretrained(out)
    save_file(rows, str(out / TAG_ROWS_FILE))
    report["adapter"] = str(out)
    if config.merge:
        merged = shipped.merge_and_unload()
        merged.save_pretrained(out / "merged")
        tokenizer.save_pretrained(out / "merged")
        report["merged"] = str(out / "merged")
    logger.info("teacher adaptation: %s", report)
    return report


def _shippable(model, lora, tag_ids: list[int], untied: bool):
    """The trained LoRA model rebuilt with peft's `trainable_token_indices` holding the trained tag rows (read from
    the embedding matrices they were trained in; the LM head's too when it is not tied), so that its saved adapter
    carries them."""
    import torch
    from peft import get_peft_model

    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    base = model.unload()
    indices = list(tag_ids)
    if untied:
        names = {id(m): n.rsplit(".", 1)[-1] for n, m in base.named_modules()}
        indices = {names[id(base.get_input_embeddings())]: list(tag_ids),
                   names[id(base.get_output_embeddings())]: list(tag_ids)}  # fmt: skip
    rebuilt = get_peft_model(base, replace(lora, trainable_token_indices=indices))
    params = dict(rebuilt.named_parameters())
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    return rebuilt


def adapt_corpus(data, output_dir, teacher: str = "smollm2-135m", test_articles: int = 3, config=None,
                 **overrides) -> dict:  # fmt: skip
    """`adapt_teacher` on the tagged articles of an SWC folder: train split to train, test split held out."""
    from ..data.dataset import load_swc, load_swc_articles

    load_swc(data, test_articles=test_articles)  # writes splits.json on first use
    train = tagged_passages(load_swc_articles(data, "train")["text_tagged"])
    held_out = tagged_passages(load_swc_articles(data, "test")["text_tagged"])
    return adapt_teacher(train, output_dir, teacher, eval_texts=held_out, config=config, **overrides)
