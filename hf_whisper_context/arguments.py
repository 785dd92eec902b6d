"""The arguments the command line and the example scripts share, as `HfArgumentParser` dataclasses: each flag is
defined once, so that `hf-whisper-context ...` and `python examples/...` cannot drift apart. The settings of each
stage live with the stage (`CorpusConfig`, `ChunkConfig`, `AdaptConfig`, `CacheConfig`, `Recipe`,
`ContextDistillTrainingArguments`); these are the rest: which data, which teacher, where to write, how to decode."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    data: str | None = field(default=None, metadata={
        "aliases": ["--out"], "help": "SWC folder (Spoken Wikipedia, or `corpus build`)."})  # fmt: skip
    test_articles: int = field(default=3, metadata={"help": "Test-split articles, when splits.json is drawn."})
    validation_articles: int = field(default=2, metadata={
        "help": "Validation (dev) articles, when splits.json is drawn: for choices, never the test."})  # fmt: skip

    def folder(self) -> str:
        """The SWC folder, or a clear error when none was given."""
        if not self.data:
            from .errors import ConfigError

            raise ConfigError("no data: give --data (an SWC folder; `corpus build` makes one)")
        return self.data


@dataclass
class SpeechDatasetArguments:
    """Any `datasets` speech corpus instead of an SWC folder (`data.prepare`: the row schema and the rules)."""

    dataset: str | None = field(default=None, metadata={"help": (
        "A `datasets` corpus: a save_to_disk folder, an audio folder with metadata.csv/jsonl, a .parquet/.arrow/.csv/"
        ".json file, or a Hub id (online).")})  # fmt: skip
    dataset_config: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration name."})
    audio_column: str | None = field(default=None, metadata={"help": "Audio column (default: audio, path, ...)."})
    text_column: str | None = field(default=None, metadata={
        "help": "Transcript column (default: text, sentence, transcript, ...)."})  # fmt: skip
    group_by: str | None = field(default=None, metadata={
        "help": "Column of the recording/chapter a row belongs to: its neighbours are the teacher's context, and "
                "a group is evaluated as one long recording."})  # fmt: skip
    order_by: str | None = field(default=None, metadata={"help": "Column giving each row's position in its group."})
    id_column: str | None = field(default=None, metadata={"help": "Column naming rows that have no group."})
    cut_with: str | None = field(default=None, metadata={
        "help": "Whisper model (e.g. tiny.en) whose timestamps cut recordings over 30 s into training chunks; "
                "without it they are not trained on."})  # fmt: skip


@dataclass
class TeacherArguments:
    teacher: str = field(default="smollm2-135m", metadata={"help": "Teacher: bundled name, folder or Hub id."})
    adapter: str | None = field(default=None, metadata={"help": "A LoRA adapter from `teacher adapt`."})
    quantization: str | None = field(default=None, metadata={"help": "4bit or 8bit (bitsandbytes)."})
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
    fallback: bool = field(default=False, metadata={
        "help": "Whisper's temperature fallback in sequential decoding (loops, unlikely windows)."})  # fmt: skip
    timestamp_jump_guard: bool = field(default=False, metadata={
        "help": "Whisper's timestamp-sum rule kept from closing a segment with a timestamp out of reach of its "
                "text (dropped windows; every model)."})  # fmt: skip
    batch_size: int = field(default=4, metadata={"help": "30 s windows per forward pass (chunked)."})
    backend: str = field(default="transformers", metadata={
        "help": "transformers, or faster-whisper (the CTranslate2 export, sequential decoding)."})  # fmt: skip
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N articles."})
    entity_mode: str = field(
        default="auto",
        metadata={
            "help": "Entities from the model's own tags (tags) or the references' tagger (tagger); auto: tags if any."
        },
    )
    device: str | None = field(default=None, metadata={"help": "cpu or cuda (default: cuda if available)."})
    num_proc: int = field(default=1, metadata={
        "help": "Processes transcribing articles side by side, sharing the threads (CPU: 2 on 2 cores)."})  # fmt: skip
    cache_dir: str | None = field(default=None, metadata={"help": "Bundled model cache."})

    def decoding(self):
        """The `transcribe.Decoding` these flags ask for."""
        from .transcribe import Decoding

        return Decoding(num_beams=self.num_beams, language=self.language, fallback=self.fallback,
                        timestamp_jump_guard=self.timestamp_jump_guard)  # fmt: skip

    def evaluate(self, source, data_name: str | None = None) -> dict:
        """`evaluation.evaluate_longform` of these flags over `source` (an SWC folder or prepared article rows)."""
        from .evaluation import evaluate_longform

        return evaluate_longform(self.models, source, self.split, self.strategies, self.output_dir, self.decoding(),
                                 self.batch_size, self.device, self.cache_dir, self.limit, data_name=data_name,
                                 entity_mode=self.entity_mode, backend=self.backend,
                                 num_proc=self.num_proc)  # fmt: skip
