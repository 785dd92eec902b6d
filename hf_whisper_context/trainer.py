"""`ContextDistillTrainer`: a `Seq2SeqTrainer` whose loss is a weighted sum of registered terms.

Built-in terms, registered like any other (`trainer.add_loss_term(name, fn, weight)`):
- `ce`: label-smoothed cross-entropy over the label tokens (smoothing `label_smoothing_factor`);
- `kd_ot`: KL from the teacher distribution transported to each student position by an OT plan;
- `ot_cost`: the plan's cost <P, C>;
- `rep`: 1 - cos between the pooled decoder states and the projected teacher context embedding.
Every term is normalised by the number of label tokens of the whole (accumulated) batch, so gradient accumulation
gives the same update as a bigger batch; per-sample terms (OT cost, REP) are weighted by the sample's token count.
Each term is logged at every logging step. The projector (teacher dim -> d_model) is a submodule of the model
(`distill_projector`), so checkpoints save it and resuming restores it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import Seq2SeqTrainer
from transformers.models.whisper.modeling_whisper import shift_tokens_right

from .collator import pad_teacher
from .losses import (
    PaperProjections,
    dense_teacher_logits,
    paper_compatible_loss,
    representation_loss,
    token_ot_distillation,
)
from .teacher.cache import teacher_outputs

TEACHER_KEYS = ("distill_mask", "student_spans", "text_lengths", "teacher_topk_logprobs", "teacher_topk_ids",
                "teacher_mask", "teacher_spans", "teacher_embedding")  # fmt: skip


@dataclass
class LossContext:
    """What a loss term sees: the model outputs, the labels, the teacher tensors and the token count to divide by."""

    model: nn.Module
    outputs: object
    labels: torch.Tensor
    teacher: dict
    n_items: torch.Tensor
    _log_probs: torch.Tensor | None = None

    @property
    def log_probs(self) -> torch.Tensor:
        """log_softmax of the student logits in float32, computed once for all terms."""
        if self._log_probs is None:
            self._log_probs = torch.log_softmax(self.outputs.logits.float(), dim=-1)
        return self._log_probs


@dataclass
class LossTerm:
    fn: Callable[[object, LossContext], torch.Tensor]
    weight: float


def cross_entropy_term(trainer, ctx: LossContext) -> torch.Tensor:
    eps = trainer.args.label_smoothing_factor
    log_p = ctx.log_probs
    valid = ctx.labels != -100
    nll = -log_p.gather(-1, ctx.labels.clamp(min=0)[..., None])[..., 0]
    smooth = -log_p.mean(-1)
    return (((1 - eps) * nll + eps * smooth) * valid).sum() / ctx.n_items


def _distillation(trainer, ctx: LossContext) -> dict:
    if "ot" not in ctx.teacher:  # computed once per step, shared by kd_ot and ot_cost
        args, t = trainer.args, ctx.teacher
        ctx.teacher["ot"] = token_ot_distillation(
            ctx.outputs.logits, t["distill_mask"], t["teacher_topk_logprobs"], t["teacher_topk_ids"],
            t["teacher_mask"], trainer.vocab_map, t["student_spans"], t["teacher_spans"], t["text_lengths"],
            temperature=args.distill_temperature, eps=args.ot_eps, k=args.ot_k, lambda_pos=args.ot_lambda_pos,
            n_iters=args.ot_iters, backend=args.ot_backend,
            student_log_probs=ctx.log_probs if args.distill_temperature == 1.0 else None,
        )  # fmt: skip
    return ctx.teacher["ot"]


def kd_term(trainer, ctx: LossContext) -> torch.Tensor:
    return _distillation(trainer, ctx)["kd_sum"] / ctx.n_items


def ot_cost_term(trainer, ctx: LossContext) -> torch.Tensor:
    per_sample = _distillation(trainer, ctx)["ot_cost_per_sample"]
    return (per_sample * ctx.teacher["distill_mask"].sum(-1)).sum() / ctx.n_items


def _paper(trainer, ctx: LossContext) -> dict:
    if "paper" not in ctx.teacher:  # the paper's wiring (losses/paper.py), computed once per step
        t, args = ctx.teacher, trainer.args
        dense = dense_teacher_logits(t["teacher_topk_logprobs"], t["teacher_topk_ids"], len(trainer.vocab_map))
        ctx.teacher["paper"] = paper_compatible_loss(ctx.outputs.logits, dense, ctx.model.distill_paper,
                                                     eps=args.ot_eps, n_iters=args.ot_iters,
                                                     temperature=args.distill_temperature)  # fmt: skip
    return ctx.teacher["paper"]


def paper_kd_term(trainer, ctx: LossContext) -> torch.Tensor:  # batch means, rescaled to the label-token count
    return _paper(trainer, ctx)["kd"] * (ctx.labels != -100).sum() / ctx.n_items


def paper_ot_term(trainer, ctx: LossContext) -> torch.Tensor:
    return _paper(trainer, ctx)["ot_cost"] * (ctx.labels != -100).sum() / ctx.n_items


def rep_term(trainer, ctx: LossContext) -> torch.Tensor:
    hidden = ctx.outputs.decoder_hidden_states[-1]
    mask = ctx.teacher["distill_mask"]
    per_sample = representation_loss(hidden, mask, ctx.teacher["teacher_embedding"], ctx.model.distill_projector,
                                     trainer.args.rep_pooling, reduction="none")  # fmt: skip
    return (per_sample * mask.sum(-1)).sum() / ctx.n_items


class ContextDistillTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` for distillation from a cached teacher (see `DistillationCollator`).

    Args (beyond Seq2SeqTrainer's): `vocab_map` (teacher id -> student id, `losses.build_vocab_map`),
    `teacher_dim` (size of the teacher embeddings; adds the projector when it is missing), `teacher` (a live
    teacher from `load_teacher`, with a collator given `teacher_tokenizer`; otherwise the collator reads a cache),
    `trainable_token_ids` (with `lora_r`: embedding rows that train, e.g. the 42 tag tokens from `add_tag_tokens`).
    """

    loss_is_scaled_for_ga = True  # every term is divided by the accumulated batch's label-token count

    def __init__(self, model=None, args=None, *extra, vocab_map=None, teacher_dim=None, teacher=None,
                 trainable_token_ids=(), **kwargs):  # fmt: skip
        if teacher_dim and model is not None and not hasattr(model, "distill_projector"):
            with torch.random.fork_rng(devices=[]):  # its init leaves the RNG (LoRA init, data order) as it was
                model.add_module("distill_projector", nn.Linear(teacher_dim, model.config.d_model, bias=False))
        paper = getattr(args, "distill_mode", "ot") == "paper" and vocab_map is not None
        if paper and model is not None and not hasattr(model, "distill_paper"):
            with torch.random.fork_rng(devices=[]):
                model.add_module("distill_paper", PaperProjections(model.config.vocab_size, len(vocab_map)))
        if args is not None and getattr(args, "freeze_encoder_layers", None) is not None and model is not None:
            freeze_encoder(model, args.freeze_encoder_layers)
        if args is not None and getattr(args, "lora_r", None) and model is not None:
            from .lora import apply_lora

            model = apply_lora(model, args.lora_r, args.lora_alpha, args.lora_target_modules.split(","),
                               trainable_token_ids, [m for m in ("distill_projector", "distill_paper")
                                                     if hasattr(model, m)])  # fmt: skip
        super().__init__(model, args, *extra, **kwargs)
        cache = getattr(self.data_collator, "teacher_cache", None)
        if cache is not None and self.train_dataset is not None:
            cache.check_dataset(self.train_dataset)  # never train against another dataset's teacher outputs
        self.vocab_map = vocab_map
        self.teacher = teacher  # a live teacher (frozen, eval): used when the collator sends `teacher_windows`
        self.loss_terms: dict[str, LossTerm] = {}
        self._logged = defaultdict(float)
        self._logged_steps = 0
        self.add_loss_term("ce", cross_entropy_term, 1.0)
        if vocab_map is not None:
            kd, ot = (("paper_kd", paper_kd_term), ("paper_ot", paper_ot_term)) if paper else \
                (("kd_ot", kd_term), ("ot_cost", ot_cost_term))  # fmt: skip
            self.add_loss_term(*kd, getattr(self.args, "kd_weight", 0.0))
            self.add_loss_term(*ot, getattr(self.args, "ot_weight", 0.0))
        if teacher_dim:
            self.add_loss_term("rep", rep_term, getattr(self.args, "rep_weight", 0.0))

    def add_loss_term(self, name: str, fn: Callable[[object, LossContext], torch.Tensor], weight: float) -> None:
        """Register (or replace) a term: `fn(trainer, ctx) -> scalar tensor`, already normalised by `ctx.n_items`."""
        self.loss_terms[name] = LossTerm(fn, weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)  # the caller (prediction_step) still reads labels from its own dict
        teacher = {k: inputs.pop(k) for k in TEACHER_KEYS if k in inputs}
        windows = inputs.pop("teacher_windows", None)
        if windows is not None:
            teacher.update(self._live_teacher(windows, inputs["input_features"].device))
        labels = inputs.pop("labels")
        config = self.accelerator.unwrap_model(model).config
        # decoder inputs instead of labels: the model would otherwise compute a cross-entropy we do not use
        if "decoder_input_ids" not in inputs:  # the collator sends them when it adds a previous-text prompt
            inputs["decoder_input_ids"] = shift_tokens_right(labels, config.pad_token_id,
                                                             config.decoder_start_token_id)  # fmt: skip
        needs_hidden = "rep" in self.loss_terms and self.loss_terms["rep"].weight != 0
        outputs = model(**inputs, output_hidden_states=needs_hidden)
        n_items = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
        n_items = torch.as_tensor(n_items, device=labels.device).clamp(min=1)
        ctx = LossContext(self.accelerator.unwrap_model(model), outputs, labels, teacher, n_items)
        total = torch.zeros((), device=labels.device)
        for name, term in self.loss_terms.items():
            if term.weight == 0 or (name != "ce" and not teacher):
                continue
            value = term.fn(self, ctx)
            total = total + term.weight * value
            if model.training:
                self._logged[name] += float(value.detach())
        if model.training:
            self._logged_steps += 1
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            total = total * self.accelerator.num_processes  # DDP averages gradients over processes
        return (total, outputs) if return_outputs else total

    def _live_teacher(self, windows: list[dict], device) -> dict:
        if self.teacher is None:
            raise ValueError("the collator sends teacher windows but the trainer has no teacher: pass teacher=...")
        present = [w for w in windows if w]
        outputs = iter(teacher_outputs(self.teacher, present, self.args.ot_k, self.args.teacher_pooling,
                                       self.args.teacher_layer, self.teacher.config.pad_token_id or 0))  # fmt: skip
        return pad_teacher([{**next(outputs), "spans": w["spans"]} if w else None for w in windows], device)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        """Evaluation as in Seq2SeqTrainer (generation when `predict_with_generate`, without a prompt); the teacher
        tensors are not model inputs, so the evaluation loss is the model's own cross-entropy."""
        drop = {*TEACHER_KEYS, "teacher_windows"}
        if self.args.predict_with_generate and not prediction_loss_only:
            drop.add("decoder_input_ids")  # they hold the reference: generation starts from the start token alone
        inputs = {k: v for k, v in inputs.items() if k not in drop}
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._logged_steps:
            # per optimizer step, as the Trainer's own `loss` (micro-batch values add up within a step)
            steps = self._logged_steps / self.args.gradient_accumulation_steps
            logs.update({name: round(value / steps, 6) for name, value in self._logged.items()})
            self._logged.clear()
            self._logged_steps = 0
        super().log(logs, start_time)


def freeze_encoder(model, keep_last: int) -> None:
    """Freeze the Whisper encoder except its last `keep_last` layers (and the final layer norm if any kept)."""
    encoder = model.get_encoder()
    encoder.requires_grad_(False)
    layers = encoder.layers
    for layer in layers[len(layers) - keep_last :] if keep_last > 0 else []:
        layer.requires_grad_(True)
    if keep_last > 0:
        encoder.layer_norm.requires_grad_(True)
