"""Long-form evaluation: whole articles transcribed (chunked or sequential) and scored as one text each on WER,
entity F1 per type, punctuation F1 per mark, capitalization and loops; writes results.json, results.md and plots.
The flags are those of `hf-whisper-context evaluate`.

    python examples/evaluate_longform.py --data outputs/corpus \\
        --models tiny.en outputs/demo/checkpoints/distilled-merged --strategies chunked sequential
    python examples/evaluate_longform.py --dataset my_speech --group_by recording --order_by start \\
        --models tiny.en outputs/distilled/merged  # any `datasets` corpus: one long recording per group
"""

from __future__ import annotations

from transformers import HfArgumentParser

from hf_whisper_context.arguments import DataArguments, EvaluationArguments, SpeechDatasetArguments
from hf_whisper_context.data.prepare import evaluation_source
from hf_whisper_context.report import markdown_table


def main() -> None:
    parser = HfArgumentParser((DataArguments, SpeechDatasetArguments, EvaluationArguments))
    data, dataset, ev = parser.parse_args_into_dataclasses()
    results = ev.evaluate(evaluation_source(data, dataset, ev.split), dataset.dataset)
    print(markdown_table(results))


if __name__ == "__main__":
    main()
