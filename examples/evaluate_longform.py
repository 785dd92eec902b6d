"""Long-form evaluation: whole articles transcribed (chunked or sequential) and scored as one text each on WER,
entity F1 per type, punctuation F1 per mark and capitalization; writes results.json, results.md and plots.

    python examples/evaluate_longform.py --data outputs/corpus \\
        --models tiny.en outputs/demo/checkpoints/distilled-merged
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_whisper_context.evaluation import evaluate_longform, markdown_table
from hf_whisper_context.transcribe import Decoding


@dataclass
class EvaluationArguments:
    data: str = field(metadata={"help": "SWC folder with splits.json."})
    models: list[str] = field(default_factory=lambda: ["tiny.en"], metadata={"help": "Names, folders or Hub ids."})
    split: str = field(default="test")
    strategies: list[str] = field(default_factory=lambda: ["chunked"], metadata={"help": "chunked, sequential."})
    output_dir: str = field(default="outputs/eval")
    language: str | None = field(default="en", metadata={"help": "For multilingual models."})
    num_beams: int = field(default=1, metadata={"help": "1 = greedy."})
    batch_size: int = field(default=4, metadata={"help": "30 s windows per forward pass (chunked)."})
    limit: int | None = field(default=None, metadata={"help": "Only the first N articles."})


def main() -> None:
    (args,) = HfArgumentParser(EvaluationArguments).parse_args_into_dataclasses()
    decoding = Decoding(args.num_beams, args.language)
    results = evaluate_longform(args.models, args.data, args.split, args.strategies, args.output_dir, decoding,
                                args.batch_size, limit=args.limit)  # fmt: skip
    print(markdown_table(results))


if __name__ == "__main__":
    main()
