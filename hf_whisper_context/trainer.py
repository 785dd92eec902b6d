"""`ContextDistillTrainer`: a `Seq2SeqTrainer` whose loss is a weighted sum of registered terms.

Built-in terms, registered like any other (`trainer.add_loss_term(name, fn, weight, needs_teacher)`):
- `ce`: label-smoothed cross-entropy over the label tokens (smoothing `label_smoothing_factor`);
- `kd_ot`: KL from the teacher distribution transported to each student position by an OT plan;
- `ot_cost`: the plan's cost <P, C>;
- `rep`: 1 - cos between the pooled decoder states and the projected teacher context embedding;
- `base_kl`: KL from the off-the-shelf model's own distribution on the same audio (the frozen base of a LoRA
  student, or a frozen copy), a guard against forgetting what the model knew (`base_kl_weight`);
- with `distill_mode="paper"`, the paper's wiring instead (`losses/paper.py`): `ce`, `paper_kd`, `paper_ot`,
  `paper_rep`, weighted as its convex combination.
Every term is normalised by the number of label tokens of the whole (accumulated) batch, so gradient accumulation
gives the same update as a bigger batch; per-sample terms (OT cost, REP) are weighted by the sample's token count.
Each term is logged at every logging step, averaged over the steps and processes since the last log. Terms are
computed inside the forward of the model the Trainer wraps (a forward hook), so that DDP reduces the gradients of the
distillation heads with the others; `train(resume_from_checkpoint=True)` resumes from the newest complete checkpoint.

The student is prepared by `prepare_student` (the distillation heads added, the encoder frozen, LoRA applied),
which the trainer calls on the model it is given; a model prepared beforehand is left as it is.
"""

from __future__ import annotations

import copy
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from transformers import Seq2SeqTrainer, TrainerCallback
from transformers.models.whisper.modeling_whisper import shift_tokens_right

from .errors import ConfigError, HfWhisperContextError
from .lora import apply_lora, is_quantized, lora_config
from .losses import (
    PaperProjections,
    dense_teacher_logits,
    paper_terms,
    paper_weights,
    representation_loss,
    token_ot_distillation,
)
from .teacher.window import TEACHER_KEYS, mask_uncovered, pad_teacher, teacher_outputs
from .utils import read_json

logger = logging.getLogger(__name__)


@dataclass
class LossContext:
    """What a loss term sees: the model, its inputs and outputs, the labels, the teacher tensors, the token count to
    divide by, and `cache`, where terms share what they compute once per step."""

    model: nn.Module
    inputs: dict
    outputs: object
    labels: torch.Tensor
    teacher: dict
    n_items: torch.Tensor
    cache: dict = field(default_factory=dict)

    @property
    def log_probs(self) -> torch.Tensor:
        """log_softmax of the student logits in float32, computed once for all terms."""
        if "log_probs" not in self.cache:
            self.cache["log_probs"] = torch.log_softmax(self.outputs.logits.float(), dim=-1)
        return self.cache["log_probs"]


@dataclass
class LossTerm:
    fn: Callable[[object, LossContext], torch.Tensor]
    weight: float
    needs_teacher: bool = True  # skipped for a batch without teacher tensors
    in_forward: bool = True  # computed inside the model's forward (see `ContextDistillTrainer.compute_loss`)


def cross_entropy_term(trainer, ctx: LossContext) -> torch.Tensor:
    eps = trainer.args.label_smoothing_factor
    log_p = ctx.log_probs
    valid = ctx.labels != -100
    nll = -log_p.gather(-1, ctx.labels.clamp(min=0)[..., None])[..., 0]
    smooth = -log_p.mean(-1)
    return (((1 - eps) * nll + eps * smooth) * valid).sum() / ctx.n_items


def _distillation(trainer, ctx: LossContext) -> dict:
    if "ot" not in ctx.cache:  # computed once per step, shared by kd_ot and ot_cost
        args, t = trainer.args, ctx.teacher
        ctx.cache["ot"] = token_ot_distillation(
            ctx.outputs.logits, t["distill_mask"], t["teacher_topk_logprobs"], t["teacher_topk_ids"],
            t["teacher_mask"], trainer.vocab_map, student_spans=t["student_spans"], teacher_spans=t["teacher_spans"],
            text_lengths=t["text_lengths"], temperature=args.distill_temperature, eps=args.ot_eps, k=args.ot_k,
            lambda_pos=args.ot_lambda_pos, n_iters=args.ot_iters, backend=args.ot_backend,
            student_log_probs=ctx.log_probs if args.distill_temperature == 1.0 else None,
        )  # fmt: skip
    return ctx.cache["ot"]


def kd_term(trainer, ctx: LossContext) -> torch.Tensor:
    return _distillation(trainer, ctx)["kd_sum"] / ctx.n_items


def ot_cost_term(trainer, ctx: LossContext) -> torch.Tensor:
    per_sample = _distillation(trainer, ctx)["ot_cost_per_sample"]
    return (per_sample * ctx.teacher["distill_mask"].sum(-1)).sum() / ctx.n_items


def rep_term(trainer, ctx: LossContext) -> torch.Tensor:
    hidden = ctx.outputs.decoder_hidden_states[-1]
    mask = ctx.teacher["distill_mask"]
    per_sample = representation_loss(hidden, mask, ctx.teacher["teacher_embedding"], ctx.model.distill_projector,
                                     trainer.args.rep_pooling, reduction="none")  # fmt: skip
    return (per_sample * mask.sum(-1)).sum() / ctx.n_items


def base_kl_term(trainer, ctx: LossContext) -> torch.Tensor:
    """KL(base || student) over the label tokens: the off-the-shelf model's distribution on the same inputs."""
    with torch.no_grad():
        base = trainer.base_model
        if base is None:  # a LoRA student: its frozen base is the model with the adapters switched off
            with ctx.model.disable_adapter():
                base_logits = ctx.model(**ctx.inputs).logits
        else:
            base_logits = base(**ctx.inputs).logits
        base_log_p = torch.log_softmax(base_logits.float(), dim=-1)
    valid = ctx.labels != -100
    kl = (base_log_p.exp() * (base_log_p - ctx.log_probs)).sum(-1)
    return (kl * valid).sum() / ctx.n_items


def _paper(trainer, ctx: LossContext) -> dict:
    if "paper" not in ctx.cache:  # the paper's wiring (losses/paper.py), computed once per step
        t = ctx.teacher
        dense = dense_teacher_logits(t["teacher_topk_logprobs"], t["teacher_topk_ids"], len(trainer.vocab_map))
        ctx.cache["paper"] = paper_terms(ctx.outputs.logits, dense, ctx.outputs.decoder_hidden_states[-1],
                                         t["teacher_embedding"], ctx.labels, ctx.model.distill_paper,
                                         trainer.args.distill_temperature)  # fmt: skip
    return ctx.cache["paper"]


def _paper_term(name: str) -> Callable:
    def term(trainer, ctx: LossContext) -> torch.Tensor:
        # the paper's per-batch means, rescaled so that accumulated micro-batches add up like the other terms
        return _paper(trainer, ctx)[name] * (ctx.labels != -100).sum() / ctx.n_items

    return term


def prepare_student(model, args, *, teacher_dim: int | None = None, teacher_vocab: int | None = None,
                    peft_config=None, trainable_token_ids=()):  # fmt: skip
    """The student as the trainer trains it: the distillation heads added as submodules (saved with checkpoints),
    the encoder frozen but its last `args.freeze_encoder_layers` layers, and LoRA applied (`peft_config`, or one
    built from `args.lora_r`, ..., with no adapter in the frozen layers). Heads are initialised from `args.seed`
    without moving the global RNG, so that they are the same in every process and run, and LoRA's initialisation and
    the data order do not depend on them. A model that already has its heads (or
    is a peft model) is left as it is."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        return model
    paper = getattr(args, "distill_mode", "ot") == "paper"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(getattr(args, "seed", 0))  # the heads depend on the seed alone, in every process
        if teacher_dim and not paper and not hasattr(model, "distill_projector"):
            model.add_module("distill_projector", nn.Linear(teacher_dim, model.config.d_model, bias=False))
        if paper and teacher_dim and teacher_vocab and not hasattr(model, "distill_paper"):
            model.add_module("distill_paper", PaperProjections(model.config.vocab_size, teacher_vocab, teacher_dim,
                                                               model.config.d_model))  # fmt: skip
    if getattr(args, "freeze_encoder_layers", None) is not None:
        freeze_encoder(model, args.freeze_encoder_layers)
    heads = [m for m in ("distill_projector", "distill_paper") if hasattr(model, m)]
    if peft_config is None and getattr(args, "lora_r", None):
        targets = args.lora_target_modules.split(",")
        if getattr(args, "freeze_encoder_layers", None) is not None:
            # no adapters in the frozen encoder layers: they would train them (and cost their backward pass)
            layers = len(model.get_encoder().layers)
            kept = "|".join(str(i) for i in range(layers - args.freeze_encoder_layers, layers)) or "NONE"
            targets = rf".*(?:decoder\..*|encoder\.layers\.(?:{kept})\..*)\.(?:{'|'.join(targets)})"
        peft_config = lora_config(args.lora_r, args.lora_alpha, targets)
    if peft_config is None and is_quantized(model):
        raise ConfigError("the student is quantized (bitsandbytes): it trains LoRA adapters only; pass lora_r "
                          "(e.g. --lora_r 32), or load it unquantized for full fine-tuning")  # fmt: skip
    if peft_config is not None:
        model = apply_lora(model, peft_config, trainable_token_ids, heads)
    return model


def check_audio_columns(dataset) -> None:
    """Refuse, at start-up, a `datasets.Audio` column that would need torchcodec to decode when it is not installed
    (datasets' own error would come mid-epoch, from a dataloader worker)."""
    import importlib.util

    features = getattr(dataset, "features", None) or {}
    for name, feature in features.items():
        if type(feature).__name__ == "Audio" and feature.decode and importlib.util.find_spec("torchcodec") is None:
            raise ConfigError(f"column {name!r} is a `datasets.Audio` column, which needs torchcodec (and FFmpeg) to "
                              "decode: `pip install torchcodec`, or read it with soundfile instead: "
                              "`with_audio(prepare_dataset(ds))` from `hf_whisper_context.data`")  # fmt: skip


class ContextDistillTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` for distillation from a cached or live teacher (see `DistillationCollator`).

    Args (beyond Seq2SeqTrainer's): `vocab_map` (teacher id -> student id, `TeacherCache.vocab_map`),
    `teacher_dim` (size of the teacher embeddings), `teacher` (a live teacher from `load_teacher`, with a collator
    given `teacher_tokenizer`; otherwise the collator reads a cache), `peft_config` (LoRA for the student; or
    `lora_r` in the arguments), `trainable_token_ids` (embedding rows that train under LoRA, e.g. the 42 tag tokens
    from `student_tags.insert_tag_tokens`).
    """

    loss_is_scaled_for_ga = True  # every term is divided by the accumulated batch's label-token count

    def __init__(self, model=None, args=None, *extra, vocab_map=None, teacher_dim=None, teacher=None,
                 peft_config=None, trainable_token_ids=(), **kwargs):  # fmt: skip
        paper = getattr(args, "distill_mode", "ot") == "paper"
        base_kl = getattr(args, "base_kl_weight", 0.0)
        base_copy = None
        if model is not None:
            from peft import PeftModel
            from transformers import set_seed

            # seeded before the model is prepared (LoRA's initialisation draws from the global RNG), as the Trainer
            # seeds before `model_init`: the same seed gives the same student in every run and every process
            set_seed(getattr(args, "seed", 42))

            lora = peft_config is not None or getattr(args, "lora_r", None) or isinstance(model, PeftModel)
            if base_kl and not lora:  # full fine-tuning: the guard needs its own frozen copy of the base
                base_copy = copy.deepcopy(model).eval().requires_grad_(False)
            model = prepare_student(model, args, teacher_dim=teacher_dim, peft_config=peft_config,
                                    teacher_vocab=len(vocab_map) if vocab_map is not None else None,
                                    trainable_token_ids=trainable_token_ids)  # fmt: skip
        super().__init__(model, args, *extra, **kwargs)
        for dataset in (self.train_dataset, self.eval_dataset):
            check_audio_columns(dataset)
        cache = getattr(self.data_collator, "teacher_cache", None)
        if cache is not None:
            if self.train_dataset is not None:
                cache.check_dataset(self.train_dataset)  # never train against another dataset's teacher outputs
            if vocab_map is not None:
                cache.check_vocab_map(vocab_map)
        self.vocab_map = vocab_map
        self.teacher = teacher  # a live teacher (frozen, eval): used when the collator sends `teacher_windows`
        self.base_model = base_copy.to(self.args.device) if base_copy is not None else None
        self.loss_terms: dict[str, LossTerm] = {}
        self._logged: dict[str, torch.Tensor] = {}
        self._logged_steps = 0
        if paper and vocab_map is not None:
            weights = paper_weights(self.args.kd_weight, self.args.rep_weight, self.args.ot_weight)
            self.add_loss_term("ce", _paper_term("ce"), weights["ce"], needs_teacher=False)
            for name in ("kd", "ot", "rep"):
                self.add_loss_term(f"paper_{name}", _paper_term(name), weights[name])
        else:
            self.add_loss_term("ce", cross_entropy_term, 1.0, needs_teacher=False)
            if vocab_map is not None:
                self.add_loss_term("kd_ot", kd_term, getattr(self.args, "kd_weight", 0.0))
                self.add_loss_term("ot_cost", ot_cost_term, getattr(self.args, "ot_weight", 0.0))
            if teacher_dim:
                self.add_loss_term("rep", rep_term, getattr(self.args, "rep_weight", 0.0))
        self.add_loss_term("base_kl", base_kl_term, base_kl, needs_teacher=False, in_forward=False)

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """`Trainer.train`; `resume_from_checkpoint=True` resumes from the last *complete* checkpoint in `output_dir`
        (see `last_complete_checkpoint`), or starts from the beginning if there is none."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = last_complete_checkpoint(self.args.output_dir, remove=self.args.should_save)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def add_loss_term(self, name: str, fn: Callable[[object, LossContext], torch.Tensor], weight: float,
                      needs_teacher: bool = True, in_forward: bool = True) -> None:  # fmt: skip
        """Register (or replace) a term: `fn(trainer, ctx) -> scalar tensor`, already normalised by `ctx.n_items`;
        `needs_teacher`: skip it for batches that carry no teacher tensors; `in_forward=False` for a term that runs
        the model itself (it is then computed after the forward, and must use no trainable parameter outside it)."""
        self.loss_terms[name] = LossTerm(fn, weight, needs_teacher, in_forward)

    def _needs_hidden_states(self) -> bool:
        return any(self.loss_terms.get(n, LossTerm(None, 0)).weight for n in ("rep", "paper_rep"))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)  # the caller (prediction_step) still reads labels from its own dict
        teacher = {k: inputs.pop(k) for k in TEACHER_KEYS if k in inputs}
        windows = inputs.pop("teacher_windows", None)
        if windows is not None:
            teacher.update(self._live_teacher(windows, inputs["input_features"].device))
        mask_uncovered(teacher)  # rows the collator cut short distil only the text their target keeps
        labels = inputs.pop("labels")
        unwrapped = self.accelerator.unwrap_model(model)
        # decoder inputs instead of labels: the model would otherwise compute a cross-entropy we do not use
        if "decoder_input_ids" not in inputs:  # the collator sends them when it adds a previous-text prompt
            inputs["decoder_input_ids"] = shift_tokens_right(labels, unwrapped.config.pad_token_id,
                                                             unwrapped.config.decoder_start_token_id)  # fmt: skip
        n_items = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum()
        n_items = torch.as_tensor(n_items, device=labels.device).clamp(min=1)
        ctx = LossContext(unwrapped, inputs, None, labels, teacher, n_items)
        active = {n: t for n, t in self.loss_terms.items() if t.weight != 0 and (teacher or not t.needs_teacher)}

        def terms_in_forward(module, args, kwargs, output):
            # The terms run inside the forward of the model that DDP wraps, and their values are part of what it
            # returns: DDP then sees every parameter they use (the distillation heads) as used in the forward, and
            # reduces their gradients with the others (computed after the forward, they crash DDP's backward).
            ctx.outputs = output
            return output, {n: t.fn(self, ctx) for n, t in active.items() if t.in_forward}

        hook = unwrapped.register_forward_hook(terms_in_forward, with_kwargs=True)
        try:
            outputs, values = model(**inputs, output_hidden_states=self._needs_hidden_states())
        finally:
            hook.remove()
        values.update({n: t.fn(self, ctx) for n, t in active.items() if not t.in_forward})
        # With the token count summed over processes, each process holds its share of every term: scaled by the
        # process count, their mean (DDP's gradient average, the logged mean) is the whole batch's value.
        across = self.args.average_tokens_across_devices and num_items_in_batch is not None
        scale = self.accelerator.num_processes if across else 1
        total = torch.zeros((), device=labels.device)
        for name in active:  # registration order
            value = values[name] * scale
            total = total + active[name].weight * value
            if model.training:  # kept on the device; synchronised once per logging step, in `log`
                self._logged[name] = self._logged.get(name, 0) + value.detach()
        if model.training:
            self._logged_steps += 1
        return (total, outputs) if return_outputs else total

    def _live_teacher(self, windows: list[dict], device) -> dict:
        if self.teacher is None:
            raise ConfigError("the collator sends teacher windows but the trainer has no teacher: pass teacher=...")
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
            # per optimizer step, as the Trainer's own `loss` (micro-batch values add up within a step), averaged
            # over the processes
            steps = self._logged_steps / self.args.gradient_accumulation_steps
            names = list(self._logged)
            values = torch.stack([torch.as_tensor(self._logged[n], dtype=torch.float32) for n in names])
            values = self.accelerator.reduce(values.to(self.args.device), reduction="mean")
            logs.update({n: round(float(v) / steps, 6) for n, v in zip(names, values.tolist(), strict=True)})
            self._logged.clear()
            self._logged_steps = 0
        super().log(logs, start_time)


def last_complete_checkpoint(output_dir, remove: bool = False) -> str | None:
    """The newest `checkpoint-N` in `output_dir` that was written to the end: the Trainer writes its
    `trainer_state.json` last, so a checkpoint a kill interrupted has none (or a cut one). Those are skipped with a
    warning, and removed if `remove` (they would otherwise be taken for finished ones)."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    steps = {}
    for folder in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", folder.name)
        if match and folder.is_dir():
            steps[folder] = int(match.group(1))
    for folder in sorted(steps, key=steps.get, reverse=True):
        try:
            read_json(folder / "trainer_state.json")
            return str(folder)
        except HfWhisperContextError as e:  # missing or cut short
            logger.warning("%s is incomplete (%s)%s", folder, e, ": removed" if remove else "; skipped")
            if remove:
                shutil.rmtree(folder, ignore_errors=True)
    logger.info("no complete checkpoint in %s: training from the start", output_dir)
    return None


def freeze_encoder(model, keep_last: int) -> None:
    """Freeze the Whisper encoder except its last `keep_last` layers (and the final layer norm if any kept)."""
    encoder = model.get_encoder()
    encoder.requires_grad_(False)
    layers = encoder.layers
    for layer in layers[len(layers) - keep_last :] if keep_last > 0 else []:
        layer.requires_grad_(True)
    if keep_last > 0:
        encoder.layer_norm.requires_grad_(True)


class SaveStudentEvery(TrainerCallback):
    """Saves the student, merged (`hub.save_student`), in `folder/step<N>` every `every` steps before the last: the
    candidates of a checkpoint selection (the experiment harness's `select_every`; the last step is the run's own)."""

    def __init__(self, every: int, processor, folder: str | Path):
        self.every, self.processor, self.folder = every, processor, Path(folder)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        from .hub import save_student

        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            save_student(model, self.processor, self.folder_of(self.folder, state.global_step), overwrite=True)

    @staticmethod
    def folder_of(folder: str | Path, step: int) -> Path:
        """Where the student of `step` is saved under `folder`."""
        return Path(folder) / f"step{step}"
