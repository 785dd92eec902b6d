"""Adapt the LLaMA-family teacher to entity-tagged text (LoRA SFT with TRL; QLoRA on CUDA) and ship it with a card.

    python examples/adapt_teacher.py --data outputs/corpus --output_dir outputs/teacher_adapter --max_steps 50
    python examples/adapt_teacher.py --data outputs/corpus --output_dir outputs/teacher_adapter \\
        --teacher meta-llama/Llama-3.2-1B --export_dir outputs/teacher-for-hub

The adapter (with the 42 tag tokens' embedding rows) goes to `--output_dir`; with `--export_dir` a copy with
`quantization.json` and a generated model card is written there, ready for `hf-whisper-context push`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_whisper_context.hub import export_teacher
from hf_whisper_context.teacher.adapt import adapt_corpus


@dataclass
class AdaptArguments:
    data: str = field(metadata={"help": "SWC folder (Spoken Wikipedia, or built with `corpus build`)."})
    output_dir: str = field(metadata={"help": "Where the adapter is written."})
    teacher: str = field(default="smollm2-135m", metadata={"help": "Bundled name, folder or Hub id."})
    test_articles: int = field(default=3, metadata={"help": "Held-out articles (loss and tag probability)."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after N steps (default: num_train_epochs)."})
    num_train_epochs: float = field(default=3.0)
    batch_size: int = field(default=4)
    max_length: int = field(default=512, metadata={"help": "Tokens per tagged passage."})
    learning_rate: float = field(default=2e-4)
    r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32)
    quantization: str = field(default="auto", metadata={"help": "auto (4bit on CUDA), 4bit, 8bit or none."})
    merge: bool = field(default=False, metadata={"help": "Also write merged weights."})
    export_dir: str | None = field(default=None, metadata={"help": "Ship the adapter here with a model card."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a non-empty --export_dir."})
    seed: int = field(default=0)


def main() -> None:
    (args,) = HfArgumentParser(AdaptArguments).parse_args_into_dataclasses()
    quantization = None if args.quantization == "none" else args.quantization
    report = adapt_corpus(
        args.data, args.output_dir, args.teacher, args.test_articles, max_steps=args.max_steps,
        num_train_epochs=args.num_train_epochs, batch_size=args.batch_size, max_length=args.max_length,
        learning_rate=args.learning_rate, r=args.r, lora_alpha=args.lora_alpha, quantization=quantization,
        merge=args.merge, seed=args.seed,
    )  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.export_dir:
        settings = {k: v for k, v in vars(args).items() if k not in ("data", "output_dir", "export_dir", "overwrite")}
        settings["quantization"] = report["quantization"]
        folder = export_teacher(report["adapter"], args.export_dir, args.teacher, report, settings,
                                data=f"tagged articles of {args.data}", overwrite=args.overwrite)  # fmt: skip
        print(f"teacher with model card: {folder}")


if __name__ == "__main__":
    main()
