"""The main job (`make demo`): the whole method on the bundled real models, offline, end to end.

Build the spoken-Wikipedia corpus, tag it, briefly adapt the SmolLM2 teacher to tagged text, cache the teacher,
train a plain fine-tuned and a distilled Whisper student (LoRA, same data, steps and seed), evaluate the
off-the-shelf, fine-tuned and distilled students long-form on the test articles, save both students (merged and
adapter) and the teacher with generated model cards, and print the comparison table.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .experiment import Recipe
from .teacher.adapt import AdaptConfig
from .teacher.window import DEFAULT_CONTEXT_WORDS
from .utils import atomic_write

logger = logging.getLogger(__name__)

SAMPLE = (
    "Marie Curie was born in Warsaw in 1867. In 1903 she shared the Nobel Prize in Physics "
    "with Pierre Curie and Henri Becquerel, and she later worked at the University of Paris."
)
RUNS = ("off-the-shelf", "fine-tuned", "distilled")
ARMS = {"fine-tuned": "ce", "distilled": "ce+kd+ot+rep"}  # the experiment harness's arms behind the two students
KEEP = ("corpus",)  # reused by a rerun with overwrite (complete articles are not spoken again)
DEMO_STEPS = 80  # the harness recipe's 150 steps x 2 students alone would take ~25 of the 40 minutes on 2 CPU cores


@dataclass
class DemoConfig:
    """Sizes and settings of the main job; `quick()` gives the toy-size variant (same path, minutes). The students
    are trained with `recipe` (the experiment harness's, chosen on the dev split) for `DEMO_STEPS` steps instead of
    its 150 on a 13-article corpus (8 train articles: about the recipe's 1.6 epochs), aiming at 40 minutes for the
    whole job on 2 CPU cores."""

    output_dir: str = "outputs/demo"
    overwrite: bool = False
    teacher: str = "smollm2-135m"
    corpus: str | None = None  # an existing SWC folder instead of building one
    articles: int = 13
    max_words: int = 1200
    test_articles: int = 3
    validation_articles: int = 2
    adapt_steps: int = 10
    adapt_max_length: int = 256
    teacher_dtype: str = "auto"  # bfloat16 on a GPU, float32 on a CPU (teacher.load.auto_dtype)
    context_words: int = DEFAULT_CONTEXT_WORDS
    k: int = 64
    recipe: Recipe = field(default_factory=lambda: Recipe(steps=DEMO_STEPS))
    strategy: str = "sequential"  # long-form decoding of the evaluation (the better one for every model on dev)
    fallback: bool = True  # with Whisper's temperature fallback: the recipe's decoding (it cut dropped windows on dev)
    timestamp_jump_guard: bool = True  # the recipe's decoding too (`timestamp_guard`: it removed most dropped windows)
    eval_batch_size: int = 4
    eval_num_proc: int = 2  # articles transcribed side by side (on 2 CPU cores: measured in benchmarks/)
    seed: int = 0
    sample: bool = True  # transcribe a spoken sample sentence with each student
    cache_dir: str | None = None

    def quick(self) -> DemoConfig:
        """Toy sizes; greedy decoding: 4-step students repeat themselves in every window, and the fallback would
        decode each window six times (it is tested on its own, in tests/test_longform.py)."""
        return replace(self, articles=4, max_words=160, test_articles=1, validation_articles=1, adapt_steps=2,
                       adapt_max_length=64, context_words=64, k=16, fallback=False,
                       recipe=replace(self.recipe, steps=4, batch_size=2))  # fmt: skip


def _prepare_output(config: DemoConfig) -> Path:
    from .hub import HubError

    out = Path(config.output_dir)
    if out.is_dir() and any(p.name not in KEEP for p in out.iterdir()):
        if not config.overwrite:
            raise HubError(f"{out} exists and is not empty: choose another --output-dir or pass --overwrite")
        for p in out.iterdir():
            if p.name not in KEEP:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _stage(title: str, started: float) -> None:
    """A stage's heading, with the job's minutes so far."""
    print(f"\n== {title} [{(time.perf_counter() - started) / 60:.1f} min]", flush=True)


def run_demo(config: DemoConfig = DemoConfig()) -> dict:
    """Run the main job; returns (and writes to `<output_dir>/demo.json`) the evaluation and the paths."""

    from . import bundled
    from .bundled import hub_id
    from .data.corpus import CorpusConfig, build_corpus
    from .data.dataset import corpus_stats, load_swc, load_swc_articles
    from .evaluation import evaluate_longform
    from .experiment import train_student
    from .hub import export_teacher, write_student_card
    from .metrics.compare import compare, compare_table
    from .report import markdown_table
    from .teacher.adapt import adapt_corpus
    from .transcribe import Decoding, resolve_model

    started = time.perf_counter()
    out = _prepare_output(config)
    student = config.recipe.student
    for name in (student, config.teacher):
        if name in bundled.known_models():
            bundled.prepare([name], config.cache_dir)
    student_path = resolve_model(student, config.cache_dir)

    _stage("1/7 corpus: Wikipedia articles spoken by flite, entity-tagged by spaCy", started)
    corpus = Path(config.corpus) if config.corpus else out / "corpus"
    if not config.corpus:
        build_corpus(corpus, CorpusConfig(articles=config.articles, max_words=config.max_words, seed=config.seed))
    data = load_swc(corpus, test_articles=config.test_articles, validation_articles=config.validation_articles)
    stats = corpus_stats(data)
    print(json.dumps({split: {k: v for k, v in s.items() if k != "entities"} for split, s in stats.items()}))

    _stage(f"2/7 adapting the teacher {config.teacher} to tagged text (LoRA, {config.adapt_steps} steps)", started)
    adapt = adapt_corpus(corpus, out / "work" / "teacher_adapter", config.teacher, config.test_articles,
                         AdaptConfig(max_steps=config.adapt_steps, batch_size=4, max_length=config.adapt_max_length,
                                     seed=config.seed))  # fmt: skip
    print({k: v for k, v in adapt.items() if k not in ("adapter", "settings")})
    teacher_dir = export_teacher(
        adapt["adapter"], out / "checkpoints" / "teacher-adapter", config.teacher, adapt, adapt["settings"],
        data=f"tagged passages of the {len(load_swc_articles(corpus, 'train'))} training articles of {corpus.name}",
    )  # fmt: skip

    _stage(
        f"3/7 caching the teacher's top-{config.k} distributions and embeddings ({config.context_words} words)",
        started,
    )
    cache = _cache_teacher(config, data["train"], teacher_dir, out / "work" / "teacher_cache")

    decoding = Decoding(language=None if student.endswith(".en") else "en", fallback=config.fallback,
                        timestamp_jump_guard=config.timestamp_jump_guard)  # fmt: skip
    students = {}
    for i, run in enumerate(RUNS[1:]):
        _stage(f"{4 + i}/7 training the {run} student ({ARMS[run]}, {config.recipe.steps} steps)", started)
        folders = {form: out / "checkpoints" / f"{run}-{form}" for form in ("merged", "adapter")}
        students[run] = train_student(config.recipe, ARMS[run], data["train"], out / "work" / run,
                                      cache if run == "distilled" else None, config.seed, folders,
                                      config.cache_dir, decoding)  # fmt: skip

    _stage(
        f"6/7 long-form evaluation on the test articles ({config.strategy} decoding, {decoding.describe()})", started
    )
    models = [student_path, *(students[r]["merged"] for r in RUNS[1:])]
    results = evaluate_longform(models, corpus, "test", (config.strategy,), out / "evaluation", decoding,
                                config.eval_batch_size, labels=list(RUNS), num_proc=config.eval_num_proc)  # fmt: skip
    runs = {r: results["runs"][f"{r} ({config.strategy})"] for r in RUNS}
    comparisons = [compare([runs[a]], [runs[b]], (a, b)) for a, b in zip(RUNS, RUNS[1:], strict=False)]

    _stage("7/7 model cards", started)
    teacher_text = (f"`{hub_id(config.teacher)}` adapted to entity tags ({config.adapt_steps} LoRA steps; "
                    f"weights as shipped in `{teacher_dir.name}`), top-{config.k} distributions cached with "
                    f"{config.context_words} words of article context")  # fmt: skip
    data_text = (f"{corpus.name}: {stats['train']['articles']} Wikipedia articles read by flite "
                 f"({stats['train']['hours']:.2f} h, {stats['train']['chunks']} chunks)")  # fmt: skip
    for run in RUNS[1:]:
        for form in ("merged", "adapter"):
            write_student_card(
                students[run][form], results, f"{run} ({config.strategy})", base_model=hub_id(student),
                teacher=teacher_text if run == "distilled" else "none (plain fine-tuning, the baseline)",
                data=data_text, settings=students[run]["settings"], method=METHODS[run],
                model_name=f"whisper-{student}-{run}", eval_dir=out / "evaluation", history=students[run]["history"],
                data_limitations="speech synthesised by flite from Wikipedia text: clean, evenly paced read speech.",
            )  # fmt: skip
    summary = {
        "wall_s": time.perf_counter() - started,
        "table": {r: runs[r]["summary"] for r in RUNS},
        "comparisons": comparisons,
        "checkpoints": {r: {f: str(students[r][f]) for f in ("merged", "adapter")} for r in RUNS[1:]},
        "teacher": str(teacher_dir),
        "teacher_adaptation": {k: v for k, v in adapt.items() if k != "adapter"},
        "config": asdict(config),
    }
    if config.sample:
        summary["sample"] = _sample(out, student_path, students, decoding)
    atomic_write(out / "demo.json", json.dumps(summary, indent=2) + "\n")
    print("\n" + markdown_table(results))
    for comparison in comparisons:
        print("\n" + compare_table(comparison))
    print(f"\ncheckpoints (with README.md model cards): {out / 'checkpoints'}")
    print(f"main job done in {summary['wall_s'] / 60:.1f} min; summary: {out / 'demo.json'}")
    return summary


METHODS = {
    "fine-tuned": "label-smoothed cross-entropy only (the baseline for the distilled model).",
    "distilled": "label-smoothed cross-entropy plus token-level distillation from a LLaMA-family teacher aligned by "
    "optimal transport across the two tokenizers, and a loss between the decoder's sentence embedding and the "
    "teacher's embedding of the text in its article context.",
}


def _cache_teacher(config: DemoConfig, train, adapter: Path, folder: Path):
    from .teacher.cache import CacheConfig, TeacherCache, cache_teacher, teacher_identity
    from .teacher.load import load_teacher

    model, tokenizer = load_teacher(adapter, dtype=config.teacher_dtype, cache=config.cache_dir)
    settings = CacheConfig(k=config.k, context_words=config.context_words)
    cache_teacher(train, model, tokenizer, folder, settings, teacher_identity(config.teacher, model, str(adapter)))
    return TeacherCache(folder)


def _sample(out: Path, student_path: str, students: dict, decoding) -> dict:
    """The spoken sample sentence transcribed by each student (names, numbers, punctuation at a glance)."""
    from .data.tts import synthesize
    from .transcribe import load_asr_pipeline, transcribe

    wav = synthesize(SAMPLE, out / "sample.wav", engine="flite")
    texts = {"reference": SAMPLE}
    for run, model in zip(RUNS, [student_path, *(students[r]["merged"] for r in RUNS[1:])], strict=True):
        texts[run] = transcribe(wav, load_asr_pipeline(model), decoding)
    print("\n" + "\n".join(f"{k:>14}: {v}" for k, v in texts.items()))
    return texts
