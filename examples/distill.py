"""Fine-tune Whisper with context distillation from a LLaMA-family teacher (cached or live).

    hf-whisper-context corpus build --out outputs/corpus
    hf-whisper-context teacher cache --data outputs/corpus --output-dir outputs/teacher_cache
    accelerate launch examples/distill.py --data outputs/corpus --teacher_cache outputs/teacher_cache/train \\
        --output_dir outputs/distilled --max_steps 50 --per_device_train_batch_size 4 --learning_rate 1e-5

Every `ContextDistillTrainingArguments` / `Seq2SeqTrainingArguments` field is a flag (`--help` lists them).
Without `--teacher_cache` the teacher runs live inside each step. The trained model is saved by the Trainer in
`--output_dir` (the LoRA adapter with `--lora_r`) and as a plain merged Whisper in `<output_dir>/merged`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import AutoTokenizer, HfArgumentParser, WhisperForConditionalGeneration, WhisperProcessor

from hf_whisper_context import ContextDistillTrainer, ContextDistillTrainingArguments, DistillationCollator
from hf_whisper_context.data.dataset import load_swc, with_audio
from hf_whisper_context.hub import save_student
from hf_whisper_context.losses import build_vocab_map
from hf_whisper_context.metrics import compute_metrics_factory
from hf_whisper_context.teacher.cache import TeacherCache
from hf_whisper_context.teacher.load import load_teacher, resolve_teacher
from hf_whisper_context.transcribe import resolve_model


@dataclass
class ModelArguments:
    student: str = field(
        default="tiny.en", metadata={"help": "Bundled name, folder or Hub id of the Whisper student."}
    )
    teacher: str = field(default="smollm2-135m", metadata={"help": "Teacher name/folder/Hub id (live or for its "
                                                                   "tokenizer when a cache is given)."})  # fmt: skip
    teacher_dtype: str = field(default="bfloat16", metadata={"help": "Live teacher dtype (float32 or bfloat16)."})
    teacher_quantization: str | None = field(default=None, metadata={"help": "4bit or 8bit (CUDA) for the teacher."})
    teacher_context_words: int = field(default=512, metadata={"help": "Live teacher: words of article context."})


@dataclass
class DataArguments:
    data: str = field(metadata={"help": "SWC folder (Spoken Wikipedia, or built with `corpus build`)."})
    test_articles: int = field(default=3, metadata={"help": "Articles in the test split (saved in splits.json)."})
    max_eval_chunks: int = field(default=16, metadata={"help": "Test chunks used for evaluation during training."})
    text_column: str = field(default="text", metadata={"help": "Target text: text or text_tagged."})


def main() -> None:
    parser = HfArgumentParser((ModelArguments, DataArguments, ContextDistillTrainingArguments))
    model_args, data_args, args = parser.parse_args_into_dataclasses()

    data = load_swc(data_args.data, test_articles=data_args.test_articles)
    train = with_audio(data["train"])
    evaluation = with_audio(data["test"].select(range(min(data_args.max_eval_chunks, len(data["test"])))))
    student = resolve_model(model_args.student)
    processor = WhisperProcessor.from_pretrained(student)
    model = WhisperForConditionalGeneration.from_pretrained(student)
    if model.generation_config.is_multilingual:
        processor.tokenizer.set_prefix_tokens(language="english", task="transcribe")

    teacher = None
    if args.teacher_cache:
        cache = TeacherCache(args.teacher_cache)
        teacher_tokenizer = AutoTokenizer.from_pretrained(resolve_teacher(cache.info["identity"]["teacher"]))
        collator = DistillationCollator(processor, cache, text_column=data_args.text_column)
        teacher_dim = int(cache[0]["embedding"].shape[0])
    else:
        teacher, teacher_tokenizer = load_teacher(model_args.teacher, model_args.teacher_quantization,
                                                  dtype=model_args.teacher_dtype)  # fmt: skip
        collator = DistillationCollator(processor, text_column=data_args.text_column,
                                        teacher_tokenizer=teacher_tokenizer,
                                        context_words=model_args.teacher_context_words)  # fmt: skip
        teacher_dim = teacher.config.hidden_size
    vocab_map, coverage = build_vocab_map(processor.tokenizer, teacher_tokenizer)
    print(f"teacher -> student vocabulary coverage: {coverage:.3f}")

    trainer = ContextDistillTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator,
        processing_class=processor, vocab_map=vocab_map, teacher_dim=teacher_dim, teacher=teacher,
        compute_metrics=compute_metrics_factory(processor.tokenizer),
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    print(trainer.evaluate())
    trainer.save_model()
    if trainer.is_world_process_zero():  # a plain Whisper checkpoint (LoRA merged, no projector) for pipeline()
        merged = save_student(trainer.model, processor, f"{args.output_dir}/merged", "merged", overwrite=True)
        print(f"merged checkpoint: {merged}")


if __name__ == "__main__":
    main()
