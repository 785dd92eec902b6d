"""Cache the teacher's top-k distributions and context embeddings for every chunk, once, so that distillation
never holds the teacher in memory. Shards are written atomically; a killed run resumes; under `accelerate launch`
each process writes its own shards. The flags are those of `hf-whisper-context teacher cache`.

    python examples/cache_teacher.py --data outputs/corpus --output_dir outputs/teacher_cache \\
        --adapter outputs/teacher_adapter --dtype auto
    python examples/cache_teacher.py --dataset my_speech --group_by recording --order_by position \\
        --output_dir outputs/teacher_cache  # any `datasets` corpus (README: "Your own data")
    accelerate launch --config_file examples/accelerate_configs/multi_gpu_ddp.yaml examples/cache_teacher.py \\
        --data swc_english --output_dir cache --teacher meta-llama/Llama-3.1-8B --quantization 4bit
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_whisper_context.arguments import DataArguments, SpeechDatasetArguments, TeacherArguments
from hf_whisper_context.data.prepare import training_source
from hf_whisper_context.teacher.cache import CacheConfig, cache_corpus


@dataclass
class OutputArguments:
    output_dir: str = field(metadata={"help": "One cache folder per split is written under it."})


def main() -> None:
    parser = HfArgumentParser((DataArguments, SpeechDatasetArguments, TeacherArguments, CacheConfig, OutputArguments))
    data, dataset, teacher, config, out = parser.parse_args_into_dataclasses()
    source = training_source(data, dataset)
    for split, folder in cache_corpus(source, out.output_dir, config, teacher.teacher, teacher.adapter,
                                      teacher.quantization, teacher.dtype, data.test_articles).items():  # fmt: skip
        print(f"{split}: {folder}")


if __name__ == "__main__":
    main()
