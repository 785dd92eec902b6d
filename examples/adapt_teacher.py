"""Adapt the LLaMA-family teacher to entity-tagged text (LoRA SFT with TRL; QLoRA on CUDA) and ship it with a card.

    python examples/adapt_teacher.py --data outputs/corpus --output_dir outputs/teacher_adapter --max_steps 50
    python examples/adapt_teacher.py --data outputs/corpus --output_dir outputs/teacher_adapter \\
        --teacher meta-llama/Llama-3.2-1B --export_dir outputs/teacher-for-hub

The adapter (with the 42 tag tokens' embedding rows) goes to `--output_dir`; with `--export_dir` a copy with
`quantization.json` and a generated model card is written there, ready for `hf-whisper-context push`. The flags are
those of `hf-whisper-context teacher adapt` (the same dataclasses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_whisper_context.arguments import DataArguments, TeacherArguments
from hf_whisper_context.hub import export_teacher
from hf_whisper_context.teacher.adapt import AdaptConfig, adapt_corpus


@dataclass
class OutputArguments:
    output_dir: str = field(metadata={"help": "Where the adapter is written."})
    teacher: str = field(
        default=TeacherArguments.teacher, metadata={"help": "Teacher: bundled name, folder or Hub id."}
    )
    export_dir: str | None = field(default=None, metadata={"help": "Ship the adapter here with a model card."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a non-empty --export_dir."})


def main() -> None:
    data, out, config = HfArgumentParser((DataArguments, OutputArguments, AdaptConfig)).parse_args_into_dataclasses()
    report = adapt_corpus(data.data, out.output_dir, out.teacher, data.test_articles, config)
    print(json.dumps(report, indent=2))
    if out.export_dir:
        folder = export_teacher(report["adapter"], out.export_dir, out.teacher, report, report["settings"],
                                data=f"tagged articles of {data.data}", overwrite=out.overwrite)  # fmt: skip
        print(f"teacher with model card: {folder}")


if __name__ == "__main__":
    main()
