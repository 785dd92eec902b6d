"""The arguments the command line and the example scripts share, as `HfArgumentParser` dataclasses: each flag is
defined once, so that `hf-whisper-context ...` and `python examples/...` cannot drift apart. The settings of each
stage live with the stage (`CorpusConfig`, `ChunkConfig`, `AdaptConfig`, `CacheConfig`, `Recipe`,
`ContextDistillTrainingArguments`); these are the rest: which data, which teacher, where to write, how to decode."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    data: str = field(metadata={"aliases": ["--out"], "help": "SWC folder (Spoken Wikipedia, or `corpus build`)."})
    test_articles: int = field(default=3, metadata={"help": "Test-split articles, when splits.json is drawn."})
    validation_articles: int = field(default=2, metadata={
        "help": "Validation (dev) articles, when splits.json is drawn: for choices, never the test."})  # fmt: skip


@dataclass
class TeacherArguments:
    teacher: str = field(default="smollm2-135m", metadata={"help": "Teacher: bundled name, folder or Hub id."})
    adapter: str | None = field(default=None, metadata={"help": "A LoRA adapter from `teacher adapt`."})
    quantization: str | None = field(default=None, metadata={"help": "4bit or 8bit (bitsandbytes, CUDA only)."})
    dtype: str = field(default="auto", metadata={
        "help": "Unquantized weights: auto (bfloat16 on a GPU, float32 on a CPU), float32 or bfloat16."})  # fmt: skip


@dataclass
class EvaluationArguments:
    models: list[str] = field(default_factory=lambda: ["tiny.en"], metadata={
        "aliases": ["--model"], "help": "Bundled names, folders or Hub ids."})  # fmt: skip
    split: str = field(default="test", metadata={"help": "Split of splits.json to evaluate."})
    strategies: list[str] = field(default_factory=lambda: ["chunked"], metadata={
        "aliases": ["--strategy"], "help": "Long-form decoding: chunked and/or sequential."})  # fmt: skip
    output_dir: str = field(default="outputs/eval", metadata={"help": "results.json, results.md and plots."})
    language: str | None = field(default="en", metadata={"help": "Language of multilingual models."})
    num_beams: int = field(default=1, metadata={"help": "1 = greedy (the default)."})
    batch_size: int = field(default=4, metadata={"help": "30 s windows per forward pass (chunked)."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N articles."})
    entity_mode: str = field(
        default="auto",
        metadata={
            "help": "Entities from the model's own tags (tags) or the references' tagger (tagger); auto: tags if any."
        },
    )
    device: str | None = field(default=None, metadata={"help": "cpu or cuda (default: cuda if available)."})
    cache_dir: str | None = field(default=None, metadata={"help": "Bundled model cache."})
