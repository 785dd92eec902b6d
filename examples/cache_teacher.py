"""Cache the teacher's top-k distributions and context embeddings for every chunk, once, so that distillation
never holds the teacher in memory. Shards are written atomically; a killed run resumes; under `accelerate launch`
each process writes its own shards.

    python examples/cache_teacher.py --data outputs/corpus --output_dir outputs/teacher_cache \\
        --adapter outputs/teacher_adapter --dtype bfloat16
    accelerate launch --config_file examples/accelerate_configs/multi_gpu_ddp.yaml examples/cache_teacher.py \\
        --data swc_english --output_dir cache --teacher meta-llama/Llama-3.1-8B --quantization 4bit
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_whisper_context.teacher.cache import CacheConfig, cache_corpus


@dataclass
class CacheArguments:
    data: str = field(metadata={"help": "SWC folder (Spoken Wikipedia, or built with `corpus build`)."})
    output_dir: str = field(metadata={"help": "One cache folder per split is written under it."})
    teacher: str = field(default="smollm2-135m", metadata={"help": "Bundled name, folder or Hub id."})
    adapter: str | None = field(default=None, metadata={"help": "A LoRA adapter from adapt_teacher.py."})
    quantization: str | None = field(default=None, metadata={"help": "4bit or 8bit (bitsandbytes, CUDA)."})
    dtype: str = field(default="float32", metadata={"help": "float32 or bfloat16 for unquantized weights."})
    test_articles: int = field(default=3)
    k: int = field(default=64, metadata={"help": "Top-k log-probs kept per teacher position."})
    context_words: int = field(default=512, metadata={"help": "Words of article context around each chunk."})
    pooling: str = field(default="last", metadata={"help": "Context embedding: last or mean."})
    layer: int = field(default=-1, metadata={"help": "Hidden layer of the embedding."})
    text_column: str = field(default="text", metadata={"help": "text or text_tagged."})
    batch_size: int = field(default=4)


def main() -> None:
    (args,) = HfArgumentParser(CacheArguments).parse_args_into_dataclasses()
    config = CacheConfig(k=args.k, context_words=args.context_words, pooling=args.pooling, layer=args.layer,
                         text_column=args.text_column, batch_size=args.batch_size)  # fmt: skip
    for split, folder in cache_corpus(args.data, args.output_dir, config, args.teacher, args.adapter,
                                      args.quantization, args.dtype, args.test_articles).items():  # fmt: skip
        print(f"{split}: {folder}")


if __name__ == "__main__":
    main()
