"""The experiment harness (`hf-whisper-context experiment`): named arms x seeds x context sizes, each student
trained with the same recipe, steps and data, evaluated long-form with both decoding strategies, and one table with
mean ± std over seeds, the loop and drop counts, and paired 95% intervals of each arm against `ce` (and of `ce`
against the off-the-shelf model).

An arm is a name from `ARMS` (the loss terms it trains with), optionally followed by `@key=value,key=value`
overrides of the recipe (`Recipe` fields or `ContextDistillTrainingArguments` fields): `ce@learning_rate=1e-4`.
Every finished run writes `done.json` in its folder; a rerun skips it, so an interrupted grid resumes at the first
unfinished run. A run in progress is claimed (`.running`, the process id), so several processes can work through one
grid side by side (e.g. one per core with `OMP_NUM_THREADS=1`). The teacher is adapted once and cached once per
context size, shared by every arm and seed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import HfWhisperContextError
from .utils import atomic_write

logger = logging.getLogger(__name__)

OFF_THE_SHELF = "off-the-shelf"
BASELINE = "ce"
_NO_TEACHER = {"kd_weight": 0.0, "ot_weight": 0.0, "rep_weight": 0.0}
ARMS: dict[str, dict | None] = {
    OFF_THE_SHELF: None,  # no training
    "ce": _NO_TEACHER,  # plain fine-tuning: label-smoothed cross-entropy
    "ce+kd": {**_NO_TEACHER, "kd_weight": 0.05},
    "ce+rep": {**_NO_TEACHER, "rep_weight": 0.1},
    "ce+kd+ot+rep": {"kd_weight": 0.05, "ot_weight": 0.001, "rep_weight": 0.1},
    "paper": {"distill_mode": "paper", "kd_weight": 0.0005, "rep_weight": 0.0005, "ot_weight": 0.001},
}


class ExperimentError(HfWhisperContextError, ValueError):
    """An experiment that cannot run as asked (unknown arm or setting, missing data)."""


@dataclass
class Recipe:
    """How every student is trained (the defaults are the recipe chosen on the dev split; see docs/recipe.md)."""

    student: str = field(default="tiny.en", metadata={"help": "Bundled name, folder or Hub id of the student."})
    steps: int = field(default=150, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=4, metadata={"help": "Chunks per step."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (linear decay)."})
    warmup: float = field(default=0.1, metadata={"help": "Warm-up: a share of the steps if < 1, else steps."})
    lora_r: int | None = field(default=32, metadata={"help": "LoRA rank; None trains every weight."})
    freeze_encoder_layers: int | None = field(default=2, metadata={
        "help": "Freeze the encoder but its last N layers (paper: 2); None trains it all."})  # fmt: skip
    label_smoothing_factor: float = field(default=0.1, metadata={"help": "Label smoothing of the cross-entropy."})
    timestamp_ratio: float = field(
        default=0.5,
        metadata={"help": "Share of chunks trained on timestamped targets (long-form decoding asks for timestamps)."},
    )
    cut_ratio: float = field(default=0.0, metadata={
        "help": "Share of the timestamped chunks whose audio is cut mid-chunk, the target ending as Whisper's does "
                "where a long-form window cuts speech (the start time of the interrupted segment)."})  # fmt: skip
    window_ratio: float = field(default=0.0, metadata={
        "help": "Share of the timestamped chunks trained on the 30 s of audio from their start instead (speech "
                "running on past the chunk, as in a long-form window; Whisper's target for it)."})  # fmt: skip
    shift_ratio: float = field(default=0.0, metadata={
        "help": "Share of the timestamped chunks trained on 30 s of audio from a point drawn inside them instead "
                "(mid-sentence, often mid-word: where a long-form window starts after the last one)."})  # fmt: skip
    max_segment_s: float | None = field(default=None, metadata={
        "help": "Longest timestamped segment in the targets (s; Whisper's own are subtitle lines of a few seconds); "
                "None: a segment runs to a sentence end or a pause."})  # fmt: skip
    base_kl_weight: float = field(default=0.0, metadata={"help": "Forgetting guard: KL(off-the-shelf || student)."})
    tagged: bool = field(
        default=False,
        metadata={"help": "The student writes entity tags itself (42 tag tokens added, targets from text_tagged)."},
    )
    train_data: str | None = field(default=None, metadata={
        "help": "Corpus whose train split trains the students (e.g. the same articles in more voices, "
                "`corpus build --voices`); none of its training articles may be evaluated here."})  # fmt: skip
    select_every: int = field(default=0, metadata={
        "help": "Save the student every N steps and keep the saved one (or the last) with the lowest normalised "
                "WER on the dev split (`validation`, whole articles, sequential decoding); 0: the last."})  # fmt: skip


@dataclass
class ExperimentConfig:
    data: str = field(metadata={"help": "SWC folder with a splits.json holding train, validation and test articles."})
    output_dir: str = field(default="outputs/experiment", metadata={"help": "Where runs and tables are written."})
    arms: list[str] = field(default_factory=lambda: [OFF_THE_SHELF, "ce", "ce+kd+ot+rep"], metadata={
        "help": f"Arms: {', '.join(ARMS)} (each may carry @key=value,... overrides)."})  # fmt: skip
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Training seeds."})
    context_words: list[int] = field(default_factory=lambda: [512], metadata={
        "help": "Teacher context sizes (words, 64..4096); arms without a teacher run once."})  # fmt: skip
    eval_split: str = field(default="test", metadata={"help": "Split evaluated (validation = dev, for choices)."})
    extra_eval: list[str] = field(
        default_factory=list,
        metadata={
            "help": "More corpora whose `eval_split` is evaluated too (e.g. the test articles in an unseen voice)."
        },
    )
    strategies: list[str] = field(default_factory=lambda: ["chunked", "sequential"], metadata={
        "help": "Long-form decoding strategies."})  # fmt: skip
    fallback: bool = field(default=False, metadata={
        "help": "Whisper's temperature fallback in sequential decoding (every arm and off the shelf)."})  # fmt: skip
    condition_on_prev: bool = field(default=False, metadata={
        "help": "Sequential decoding prompted with the text before each window (every model)."})  # fmt: skip
    no_timestamp_sum_rule: bool = field(default=False, metadata={
        "help": "Decode without Whisper's rule that forces a timestamp wherever the timestamps' total probability "
                "beats the likeliest text token (every model)."})  # fmt: skip
    timestamp_jump_guard: bool = field(default=False, metadata={
        "help": "Decode with the timestamp-sum rule kept from forcing a segment shut with a timestamp out of reach "
                "of its text (every model; `timestamp_guard`)."})  # fmt: skip
    students_from: str | None = field(default=None, metadata={
        "help": "output_dir of an earlier grid: the students it finished are evaluated again (e.g. with --fallback) "
                "instead of trained anew; runs it does not have are trained."})  # fmt: skip
    teacher: str = field(default="smollm2-135m", metadata={"help": "Teacher: bundled name, folder or Hub id."})
    adapt_steps: int = field(default=20, metadata={"help": "Teacher adaptation steps (LoRA on tagged text)."})
    teacher_dtype: str = field(default="auto", metadata={
        "help": "Teacher dtype for caching: auto (bfloat16 on a GPU, float32 on a CPU) or a dtype."})  # fmt: skip
    k: int = field(default=64, metadata={"help": "Top-k teacher log-probs cached per position."})
    eval_batch_size: int = field(default=4, metadata={"help": "30 s windows per forward pass (chunked)."})
    eval_num_proc: int = field(default=1, metadata={
        "help": "Processes transcribing articles side by side (on a CPU: 2 for 2 cores)."})  # fmt: skip
    cache_dir: str | None = field(default=None, metadata={"help": "Bundled model cache."})

    def __post_init__(self):
        for arm in self.arms:
            parse_arm(arm)
        for context in self.context_words:
            if not 64 <= context <= 4096:
                raise ExperimentError(f"context_words must be in 64..4096, got {context}")


def quick(config: ExperimentConfig, recipe: Recipe) -> tuple[ExperimentConfig, Recipe]:
    """The same grid at toy size (minutes): two seeds, 64 context words, a few steps."""
    return (replace(config, seeds=config.seeds[:2], context_words=[64], adapt_steps=2, k=16),
            replace(recipe, steps=4, batch_size=2))  # fmt: skip


def parse_arm(arm: str) -> tuple[str, dict]:
    """ "name@key=value,key=value" -> (name, overrides). Unknown names and keys are errors that list the known."""
    name, _, spec = arm.partition("@")
    if name not in ARMS:
        raise ExperimentError(f"unknown arm {name!r}; known arms: {', '.join(ARMS)}")
    overrides = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key not in _settable():
            raise ExperimentError(f"arm {arm!r}: unknown setting {key!r}; settable: {', '.join(sorted(_settable()))}")
        overrides[key] = _value(value)
    return name, overrides


def _value(text: str):
    """An override's value: JSON (numbers, true/false, null), None, or else the text itself (a path)."""
    if text in ("", "None"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _recipe_fields() -> set[str]:
    return {f.name for f in fields(Recipe)}


def _settable() -> set[str]:
    from .config import ContextDistillTrainingArguments

    return _recipe_fields() | {f.name for f in fields(ContextDistillTrainingArguments)}


def _recipe_of(recipe: Recipe, arm: str) -> Recipe:
    """`recipe` with the arm's overrides of its fields."""
    return replace(recipe, **{k: v for k, v in parse_arm(arm)[1].items() if k in _recipe_fields()})


def uses_teacher(arm: str) -> bool:
    name, overrides = parse_arm(arm)
    weights = {**(ARMS[name] or {}), **overrides}
    return ARMS[name] is not None and any(weights.get(k, 1.0) for k in _NO_TEACHER)


def train_student(recipe: Recipe, arm: str, train, out: Path, cache=None, seed: int = 0,
                  save_to: dict | None = None, cache_dir=None, decoding=None) -> dict:  # fmt: skip
    """Train one student of `arm` on `train` (chunk rows of `load_swc`) with `recipe`; `cache` (a `TeacherCache`)
    for arms with a teacher. Saves it as `save_to` says ({"merged": folder, "adapter": folder}; default: merged in
    `out/merged`), with `decoding` (a `transcribe.Decoding`) in its generation config; returns those paths, the
    model, the processor, the settings and the log history."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor, set_seed

    from .collator import DistillationCollator
    from .config import ContextDistillTrainingArguments
    from .data.dataset import with_audio
    from .hub import save_student
    from .student_tags import insert_tag_tokens, tag_ids
    from .trainer import ContextDistillTrainer, SaveStudentEvery
    from .transcribe import is_multilingual, resolve_model

    name, overrides = parse_arm(arm)
    recipe = _recipe_of(recipe, arm)
    weights = {**ARMS[name], **{k: v for k, v in overrides.items() if k not in _recipe_fields()}}
    set_seed(seed)
    student = resolve_model(recipe.student, cache_dir)
    processor = WhisperProcessor.from_pretrained(student)
    model = WhisperForConditionalGeneration.from_pretrained(student)
    if is_multilingual(model):
        processor.tokenizer.set_prefix_tokens(language="english", task="transcribe")
    trainable_rows = []
    if recipe.tagged:
        processor.tokenizer = insert_tag_tokens(model, processor.tokenizer)
        trainable_rows = tag_ids(processor.tokenizer)  # their embedding rows train under LoRA too
    settings = dict(max_steps=recipe.steps, per_device_train_batch_size=recipe.batch_size, seed=seed,
                    learning_rate=recipe.learning_rate, lr_scheduler_type="linear", warmup_steps=recipe.warmup,
                    lora_r=recipe.lora_r, lora_alpha=2 * recipe.lora_r if recipe.lora_r else 64,
                    freeze_encoder_layers=recipe.freeze_encoder_layers,
                    label_smoothing_factor=recipe.label_smoothing_factor, base_kl_weight=recipe.base_kl_weight,
                    **weights)  # fmt: skip
    args = ContextDistillTrainingArguments(
        output_dir=str(out / "trainer"), logging_steps=max(1, recipe.steps // 10), save_strategy="no", report_to=[],
        use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(), dataloader_num_workers=0, **settings,
    )  # fmt: skip
    distilled = uses_teacher(arm)
    extra = {}
    if distilled:
        if cache is None:
            raise ExperimentError(f"arm {arm!r} distils from the teacher: give it a teacher cache")
        extra["vocab_map"], coverage = cache.vocab_map(processor.tokenizer)
        extra["teacher_dim"] = cache.embedding_dim
        logger.info("teacher -> student vocabulary coverage: %.3f", coverage)
    collator = DistillationCollator(processor, cache if distilled else None, text_column=text_column(recipe),
                                    timestamp_ratio=recipe.timestamp_ratio, cut_ratio=recipe.cut_ratio,
                                    window_ratio=recipe.window_ratio, shift_ratio=recipe.shift_ratio,
                                    seed=seed)  # fmt: skip
    trainer = ContextDistillTrainer(model=model, args=args, train_dataset=with_audio(train),
                                    processing_class=processor, data_collator=collator,
                                    trainable_token_ids=trainable_rows, **extra)  # fmt: skip
    if recipe.select_every:
        trainer.add_callback(SaveStudentEvery(recipe.select_every, processor, out / "steps"))
    trainer.train()
    trainer.model.eval()
    saved = {form: save_student(trainer.model, processor, folder, form, decoding, overwrite=True)
             for form, folder in (save_to or {"merged": out / "merged"}).items()}  # fmt: skip
    history = trainer.state.log_history
    atomic_write(out / "log_history.json", json.dumps(history, indent=2))
    return {**saved, "model": trainer.model, "processor": processor, "history": history,
            "settings": {"student": recipe.student, "arm": arm, "tagged": recipe.tagged,
                         "timestamp_ratio": recipe.timestamp_ratio, "cut_ratio": recipe.cut_ratio,
                         "window_ratio": recipe.window_ratio, "shift_ratio": recipe.shift_ratio,
                         **settings}}  # fmt: skip


SELECT_SPLIT = "validation"  # the dev split of whole articles: checkpoints are never chosen on the test split


def select_checkpoint(config: ExperimentConfig, folder: Path, recipe: Recipe) -> dict:
    """Of the students a run with `recipe.select_every` saved (`trainer.SaveStudentEvery`) and its last (`merged`),
    the one with the lowest normalised WER on the dev split (the last step among equals), decoded as the grid decodes
    but sequentially (Whisper's long-form algorithm): {"step", "student", "split", "wer": {step: WER}}."""
    from .evaluation import evaluate_longform
    from .trainer import SaveStudentEvery

    found = {step: SaveStudentEvery.folder_of(folder / "steps", step)
             for step in range(recipe.select_every, recipe.steps, recipe.select_every)}  # fmt: skip
    found[recipe.steps] = folder / "merged"
    results = evaluate_longform(list(found.values()), config.data, SELECT_SPLIT, ("sequential",), folder / "select",
                                decoding(config), config.eval_batch_size, labels=[f"step{s}" for s in found],
                                cache=config.cache_dir, num_proc=config.eval_num_proc)  # fmt: skip
    wer = {step: results["runs"][f"step{step} (sequential)"]["summary"]["wer"] for step in found}
    chosen = min(found, key=lambda step: (wer[step], -step))
    logger.info("dev WER by step %s: step %d kept", wer, chosen)
    return {"step": chosen, "student": str(found[chosen]), "split": SELECT_SPLIT, "wer": wer}


def text_column(recipe: Recipe) -> str:
    return "text_tagged" if recipe.tagged else "text"


def _teacher_cache(config: ExperimentConfig, out: Path, train, context_words: int, column: str = "text",
                   train_data: str | None = None, max_segment_s: float | None = None):  # fmt: skip
    """Adapt the teacher once (deterministic), cache it once per context size and training rows; both resume."""
    from .teacher.adapt import adapt_corpus
    from .teacher.cache import CacheConfig, TeacherCache, cache_teacher, teacher_identity
    from .teacher.load import load_teacher

    adapter = out / "teacher" / "adapter"
    if not (out / "teacher" / "done.json").is_file():
        report = adapt_corpus(config.data, adapter, config.teacher, max_steps=config.adapt_steps, batch_size=4,
                              max_length=256)  # fmt: skip
        atomic_write(out / "teacher" / "done.json", json.dumps({k: v for k, v in report.items()}, indent=2))
    name = f"ctx{context_words}" + ("" if column == "text" else f"-{column}")
    name += (f"-{Path(train_data).name}" if train_data else "") + (f"-seg{max_segment_s:g}" if max_segment_s else "")
    folder = out / "caches" / name
    model, tokenizer = load_teacher(config.teacher, dtype=config.teacher_dtype, adapter=str(adapter),
                                    cache=config.cache_dir)  # fmt: skip
    settings = CacheConfig(k=config.k, context_words=context_words, target=column)
    cache_teacher(train, model, tokenizer, folder, settings, teacher_identity(config.teacher, model, str(adapter)))
    return TeacherCache(folder)


def decoding(config: ExperimentConfig):
    """How every model of the grid is decoded (greedy; the fallback and the previous text as prompt if asked)."""
    from .transcribe import Decoding

    return Decoding(fallback=config.fallback, condition_on_prev=config.condition_on_prev,
                    timestamp_sum_rule=False if config.no_timestamp_sum_rule else None,
                    timestamp_jump_guard=config.timestamp_jump_guard)  # fmt: skip


def _evaluate(config: ExperimentConfig, model, label: str, out: Path) -> dict[str, dict]:
    """Long-form results of one model on every evaluated corpus: {corpus name: results}."""
    from .evaluation import evaluate_longform

    results = {}
    for corpus in [config.data, *config.extra_eval]:
        name = Path(corpus).name
        results[name] = evaluate_longform([model], corpus, config.eval_split, tuple(config.strategies),
                                          out / "eval" / name, decoding(config), config.eval_batch_size,
                                          labels=[label], cache=config.cache_dir,
                                          num_proc=config.eval_num_proc)  # fmt: skip
    return results


def _trained_before(config: ExperimentConfig, name: str, recipe: Recipe) -> tuple[str, list] | None:
    """The student and log history of run `name` in the grid `students_from`, if it finished there (trained there,
    or itself taken from an earlier grid) with `recipe`; trained with another recipe, an error. A setting its
    record lacks was added since, and was off then."""
    folder = Path(config.students_from or "") / "runs" / name
    if not config.students_from or not (folder / "done.json").is_file():
        return None
    done = json.loads((folder / "done.json").read_text())
    recorded = done.get("recipe", {})
    then = {k: recorded[k] if k in recorded else type(v)() for k, v in asdict(recipe).items()}  # absent: off
    differ = {k: v for k, v in asdict(recipe).items() if then[k] != v}
    if differ:
        said = ", ".join(f"{k}={then[k]!r} there, {v!r} here" for k, v in differ.items())
        flags = " ".join(f"--{k} {then[k]}" for k in differ)
        raise ExperimentError(f"{folder} was trained with another recipe ({said}): run this grid with its settings "
                              f"({flags}) or train it anew")  # fmt: skip
    return done.get("student", str(folder / "merged")), done["history"]


def _training_rows(config: ExperimentConfig, data, train_data: str | None, max_segment_s: float | None):
    """The train split students learn from: `data`'s, or another corpus's whose training articles are not
    evaluated here; chunked again where the recipe caps the segments' length."""
    from .data.chunking import ChunkConfig
    from .data.dataset import load_swc

    if not train_data and max_segment_s is None:
        return data["train"]
    rows = load_swc(train_data or config.data, ChunkConfig(max_segment_s=max_segment_s))["train"]
    if not train_data:
        return rows
    leaked = sorted(set(rows["article_id"]) & set(data[config.eval_split]["article_id"]))
    if leaked:
        raise ExperimentError(f"train_data {train_data} trains on {leaked}, which {config.data} evaluates "
                              f"({config.eval_split!r} split): build it with the same articles and seed")  # fmt: skip
    return rows


def run_name(arm: str, seed: int | None, context_words: int | None) -> str:
    parts = [arm.replace("/", "_").replace(",", "_")]
    if context_words is not None:
        parts.append(f"ctx{context_words}")
    if seed is not None:
        parts.append(f"seed{seed}")
    return "/".join(parts)


def plan(config: ExperimentConfig) -> list[tuple[str, int | None, int | None]]:
    """(arm, seed, context words) of every run: the off-the-shelf model once, arms without a teacher once per seed,
    arms with one per seed and context size."""
    runs = []
    for arm in config.arms:
        if ARMS[parse_arm(arm)[0]] is None:
            runs.append((arm, None, None))
            continue
        for context in config.context_words if uses_teacher(arm) else [None]:
            runs.extend((arm, seed, context) for seed in config.seeds)
    return runs


CLAIM = ".running"  # holds the pid of the process running a run: several processes can share one grid


def _claim(folder: Path) -> bool:
    """Take the run in `folder` for this process, unless a live process holds it (a dead one's claim is taken)."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    claim = folder / CLAIM
    try:
        holder = int(claim.read_text())
        os.kill(holder, 0)  # raises if that process is gone
        return holder == os.getpid()
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        pass
    atomic_write(claim, str(os.getpid()))
    return int(claim.read_text()) == os.getpid()


def run_experiment(config: ExperimentConfig, recipe: Recipe = Recipe()) -> dict:
    """Run (or resume) every planned run, then write `experiment.json`, `experiment.md` and plots."""
    import torch

    from .data.dataset import load_swc
    from .transcribe import resolve_model

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not (Path(config.data) / "splits.json").is_file():
        raise ExperimentError(f"{config.data} has no splits.json: build the corpus with `corpus build` first")
    data = load_swc(config.data)
    if config.eval_split not in data:
        raise ExperimentError(f"{config.data} has no {config.eval_split!r} split (splits: {', '.join(data)})")
    if any(_recipe_of(recipe, arm).select_every for arm in config.arms):
        if SELECT_SPLIT not in data or config.eval_split == SELECT_SPLIT:
            raise ExperimentError(f"select_every chooses each student on {config.data}'s {SELECT_SPLIT!r} split: "
                                  f"it needs one (corpus build makes it), and the grid must evaluate another "
                                  f"(--eval-split test)")  # fmt: skip
    caches, trains = {}, {}
    for arm, seed, context in plan(config):
        folder = out / "runs" / run_name(arm, seed, context)
        if (folder / "done.json").is_file() or not _claim(folder):
            continue  # finished, or being run by another live process on the same grid
        started, selection = time.perf_counter(), None
        logger.info("run %s", folder)
        arm_recipe = _recipe_of(recipe, arm)
        before = _trained_before(config, run_name(arm, seed, context), arm_recipe) if seed is not None else None
        if seed is None:
            model, history = resolve_model(recipe.student, config.cache_dir), []
        elif before:
            model, history = before
        else:
            key = (context, text_column(arm_recipe), arm_recipe.train_data, arm_recipe.max_segment_s)
            if key[2:] not in trains:
                if "train" not in data and not arm_recipe.train_data:
                    raise ExperimentError(f"{config.data} has no training articles (a corpus to evaluate on): give "
                                          f"--students-from a grid that trained {arm!r}")  # fmt: skip
                trains[key[2:]] = _training_rows(config, data, *key[2:])
            if context is not None and key not in caches:
                caches[key] = _teacher_cache(config, out, trains[key[2:]], *key)
            trained = train_student(recipe, arm, trains[key[2:]], folder, caches.get(key), seed,
                                    cache_dir=config.cache_dir, decoding=decoding(config))  # fmt: skip
            model, history = trained["merged"], trained["history"]
            if arm_recipe.select_every:
                selection = select_checkpoint(config, folder, arm_recipe)
                model = Path(selection["student"])
        results = _evaluate(config, model, arm, folder)
        paths = {name: str(folder / "eval" / name / "results.json") for name in results}
        done = {"arm": arm, "seed": seed, "context_words": context, "recipe": asdict(arm_recipe),
                "trained_in": config.students_from if seed is not None and before else None,
                "student": str(model), "selection": selection, "decoding": decoding(config).describe(),
                "threads": torch.get_num_threads(),  # CPU results are bit for bit only at the same thread count
                "seconds": time.perf_counter() - started, "history": history, "results": paths}  # fmt: skip
        atomic_write(folder / "done.json", json.dumps(done, indent=2))
        (folder / CLAIM).unlink(missing_ok=True)
    from .experiment_report import write_tables

    return write_tables(config, out)
