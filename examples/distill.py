"""Fine-tune Whisper with context distillation from a LLaMA-family teacher (cached or live).

    hf-whisper-context corpus build --out outputs/corpus
    hf-whisper-context teacher cache --data outputs/corpus --output-dir outputs/teacher_cache
    accelerate launch examples/distill.py --data outputs/corpus --teacher_cache outputs/teacher_cache/train \\
        --output_dir outputs/distilled --max_steps 150 --per_device_train_batch_size 4 --learning_rate 1e-4 \\
        --lora_r 32 --lora_alpha 64 --timestamp_ratio 0.5 --predict_with_generate
    accelerate launch examples/distill.py --dataset my_speech --group_by recording --order_by position \\
        --output_dir outputs/distilled --max_steps 150 ...   # any `datasets` corpus, the live teacher reading
        # each row's neighbours (or --teacher_cache from `examples/cache_teacher.py --dataset my_speech ...`)

Every `ContextDistillTrainingArguments` / `Seq2SeqTrainingArguments` field is a flag (`--help` lists them).
Without `--teacher_cache` the teacher runs live inside each step. The trained model is saved by the Trainer in
`--output_dir` (the LoRA adapter with `--lora_r`) and as a plain merged Whisper in `<output_dir>/merged`, each with
a model card naming the Hub base model, so `hf-whisper-context push` takes either folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser, WhisperProcessor

from hf_whisper_context import ContextDistillTrainer, ContextDistillTrainingArguments, DistillationCollator
from hf_whisper_context.arguments import DataArguments, SpeechDatasetArguments, TeacherArguments
from hf_whisper_context.bundled import hub_id
from hf_whisper_context.data.dataset import load_swc, with_audio
from hf_whisper_context.data.prepare import training_source
from hf_whisper_context.hub import save_student, training_settings, write_student_card
from hf_whisper_context.lora import load_student
from hf_whisper_context.losses import build_vocab_map
from hf_whisper_context.metrics import compute_metrics_factory
from hf_whisper_context.teacher.cache import TeacherCache
from hf_whisper_context.teacher.load import load_teacher
from hf_whisper_context.teacher.window import DEFAULT_CONTEXT_WORDS
from hf_whisper_context.transcribe import Decoding, is_multilingual, resolve_model


@dataclass
class StudentArguments:
    student: str = field(default="tiny.en", metadata={"help": "Bundled name, folder or Hub id of the student."})
    target: str = field(default="text", metadata={"help": "Target text: text or text_tagged."})
    timestamp_ratio: float = field(
        default=0.5,
        metadata={"help": "Share of chunks trained on timestamped targets (long-form decoding asks for timestamps)."},
    )
    cut_ratio: float = field(default=0.0, metadata={
        "help": "Share of the timestamped chunks whose audio is cut mid-chunk, the target ending as Whisper's does "
                "where a long-form window cuts speech (the start time of the interrupted segment)."})  # fmt: skip
    context_words: int = field(default=DEFAULT_CONTEXT_WORDS, metadata={"help": "Live teacher: words of context."})
    max_eval_chunks: int = field(default=16, metadata={"help": "Test chunks used for evaluation during training."})
    student_quantization: str | None = field(default=None, metadata={
        "help": "QLoRA: the student's base in 4bit or 8bit (bitsandbytes), LoRA adapters trained over it (--lora_r); "
                "the merged checkpoint is saved in full precision."})  # fmt: skip
    timestamp_jump_guard: bool = field(default=True, metadata={
        "help": "Save the recipe's timestamp-jump guard in the merged checkpoint's generation config "
                "(`load_asr_pipeline` applies it; --no_timestamp_jump_guard: Whisper's rule as it is)."})  # fmt: skip


def main() -> None:
    parser = HfArgumentParser((StudentArguments, DataArguments, SpeechDatasetArguments, TeacherArguments,
                               ContextDistillTrainingArguments))  # fmt: skip
    student_args, data_args, dataset_args, teacher_args, args = parser.parse_args_into_dataclasses()

    data = training_source(data_args, dataset_args)  # --dataset (any `datasets` corpus) or --data (SWC)
    if isinstance(data, str):
        data = load_swc(data, test_articles=data_args.test_articles,
                        validation_articles=data_args.validation_articles)  # fmt: skip
    held_out = next(s for s in ("validation", "test") if s in data)
    train = with_audio(data["train"])
    evaluation = with_audio(data[held_out].select(range(min(student_args.max_eval_chunks, len(data[held_out])))))
    student = resolve_model(student_args.student)
    processor = WhisperProcessor.from_pretrained(student)
    model = load_student(student, student_args.student_quantization)
    if is_multilingual(model):
        processor.tokenizer.set_prefix_tokens(language="english", task="transcribe")

    teacher = cache = None
    collate = dict(text_column=student_args.target, timestamp_ratio=student_args.timestamp_ratio,
                   cut_ratio=student_args.cut_ratio, seed=args.seed)  # fmt: skip
    if args.teacher_cache:
        cache = TeacherCache(args.teacher_cache)
        vocab_map, coverage = cache.vocab_map(processor.tokenizer)  # from the tokenizer that wrote the cache
        collator = DistillationCollator(processor, cache, **collate)
        teacher_dim = cache.embedding_dim
    else:
        teacher, teacher_tokenizer = load_teacher(teacher_args.teacher, teacher_args.quantization,
                                                  dtype=teacher_args.dtype, adapter=teacher_args.adapter)  # fmt: skip
        if teacher_args.quantization is None:  # a quantized teacher is placed by bitsandbytes
            teacher.to(args.device)
        vocab_map, coverage = build_vocab_map(processor.tokenizer, teacher_tokenizer,
                                              teacher.get_output_embeddings().weight.shape[0])  # fmt: skip
        collator = DistillationCollator(processor, teacher_tokenizer=teacher_tokenizer,
                                        context_words=student_args.context_words, **collate)  # fmt: skip
        teacher_dim = teacher.config.hidden_size
    print(f"teacher -> student vocabulary coverage: {coverage:.3f}")

    trainer = ContextDistillTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=evaluation, data_collator=collator,
        processing_class=processor, vocab_map=vocab_map, teacher_dim=teacher_dim, teacher=teacher,
        compute_metrics=compute_metrics_factory(processor.tokenizer) if args.predict_with_generate else None,
    )  # fmt: skip
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model()  # saved before evaluating: nothing trained is lost if evaluation fails
    merged = f"{args.output_dir}/merged"  # a plain Whisper checkpoint (LoRA merged, no projector) for pipeline()
    if trainer.is_fsdp_enabled or trainer.is_world_process_zero():  # FSDP: every process gathers, process 0 writes
        decoding = Decoding(timestamp_jump_guard=student_args.timestamp_jump_guard)
        save_student(trainer.model, processor, merged, "merged", decoding, overwrite=True)
    if trainer.is_world_process_zero():
        # cards (not evaluated yet; `hf-whisper-context evaluate` scores them): both folders can be pushed, and
        # name the Hub base model, not this machine's cache
        source = dataset_args.dataset or data_args.data
        teacher_text = f"`{args.teacher_cache}` (cached)" if args.teacher_cache else f"`{teacher_args.teacher}` (live)"
        for folder in (args.output_dir, merged):
            write_student_card(folder, base_model=hub_id(student_args.student), teacher=teacher_text,
                               data=f"`{source}`", settings=training_settings(args))  # fmt: skip
        print(f"merged checkpoint: {merged}")
    print(trainer.evaluate())


if __name__ == "__main__":
    main()
