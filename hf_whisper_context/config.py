"""`ContextDistillTrainingArguments`: `Seq2SeqTrainingArguments` plus the distillation settings (the new ones only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments

from .errors import ConfigError
from .lora import WHISPER_TARGETS


@dataclass
class ContextDistillTrainingArguments(Seq2SeqTrainingArguments):
    """Total loss `CE_ls + kd_weight * KD_ot + ot_weight * OT_cost + rep_weight * REP + base_kl_weight * BASE_KL`
    (label smoothing from `label_smoothing_factor`, 0.1 by default as in the paper). With `distill_mode="paper"`
    the weights are the paper's convex combination: alpha = kd_weight, beta = rep_weight, ot_weight (paper: 0.0005,
    0.0005, 0.001) and 1 - alpha - beta - ot_weight for the cross-entropy. Every term is logged at each logging
    step."""

    # 0.05, not the paper's larger alpha: with the bundled SmolLM2 teacher the KL is 6-9 nats against a CE of ~0.4,
    # and 50 steps at alpha=0.5 took tiny.en's chunk WER from 0.09 to 1.35; at 0.05 it stayed at 0.086 (measured)
    kd_weight: float = field(default=0.05, metadata={"help": "Weight of the OT-aligned KL to the teacher (alpha)."})
    ot_weight: float = field(default=0.001, metadata={"help": "Weight of the OT cost <P, C> (gamma; paper 0.001)."})
    rep_weight: float = field(default=0.1, metadata={"help": "Weight of the sentence-embedding loss (beta)."})
    distill_temperature: float = field(default=1.0, metadata={"help": "Softmax temperature T of both sides."})
    ot_eps: float = field(default=0.1, metadata={"help": "Entropic regularisation of the Sinkhorn plan."})
    ot_iters: int = field(default=50, metadata={"help": "Sinkhorn iterations."})
    ot_k: int = field(default=64, metadata={"help": "Top-k probabilities compared in the sorted cost."})
    ot_lambda_pos: float = field(default=1.0, metadata={"help": "Weight of the character-offset term in the cost."})
    ot_backend: str = field(default="torch", metadata={"help": "torch (batched), pot or emd (per sample, POT)."})
    distill_mode: str = field(
        default="ot", metadata={"help": "ot (this package's losses) or paper (the paper's wiring: losses/paper.py)."}
    )
    rep_pooling: str = field(default="mean", metadata={"help": "Student pooling for REP: mean or last."})
    teacher_cache: str | None = field(default=None, metadata={"help": "Folder written by `teacher cache`."})
    teacher_pooling: str = field(default="last", metadata={"help": "Live teacher: window embedding, last or mean."})
    teacher_layer: int = field(default=-1, metadata={"help": "Live teacher: hidden layer pooled for the embedding."})
    lora_r: int | None = field(default=None, metadata={"help": "LoRA rank for the student; None trains all weights."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha."})
    lora_target_modules: str = field(
        default=",".join(WHISPER_TARGETS), metadata={"help": "Comma-separated module names to adapt."}
    )
    freeze_encoder_layers: int | None = field(
        default=None, metadata={"help": "Freeze the encoder but its last N layers (paper: 2). None trains it all."}
    )
    base_kl_weight: float = field(
        default=0.0,
        metadata={
            "help": "Weight of KL(off-the-shelf model || student) on the same audio: a guard against forgetting."
        },
    )
    label_smoothing_factor: float = field(
        default=0.1,
        metadata={"help": "Label smoothing of the cross-entropy (paper: 0.1; the Trainer's default is 0)."},
    )

    def __post_init__(self):
        super().__post_init__()
        self.remove_unused_columns = False  # the collator needs the teacher and text columns
        if self.ot_backend not in ("torch", "pot", "emd"):
            raise ConfigError(f"ot_backend must be torch, pot or emd, not {self.ot_backend!r}")
        if self.distill_mode not in ("ot", "paper"):
            raise ConfigError(f"distill_mode must be ot or paper, not {self.distill_mode!r}")
        if self.rep_pooling not in ("mean", "last"):
            raise ConfigError(f"rep_pooling must be mean or last, not {self.rep_pooling!r}")
