"""Wall time of a long-form evaluation (`evaluate_longform`) in one process against `--num_proc` processes sharing
the same threads, on a built corpus's test articles; the transcripts of the two must be the same.

    python benchmarks/bench_evaluate.py --data outputs/demo/corpus [--models tiny.en] [--num_proc 2] [--fallback]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from hf_whisper_context.evaluation import evaluate_longform
from hf_whisper_context.transcribe import Decoding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="an SWC folder with a test split (e.g. built by `demo`)")
    parser.add_argument("--models", nargs="+", default=["tiny.en"])
    parser.add_argument("--strategy", default="sequential")
    parser.add_argument("--num_proc", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="the first N test articles")
    parser.add_argument("--fallback", action="store_true", help="Whisper's temperature fallback")
    args = parser.parse_args()

    decoding = Decoding(fallback=args.fallback)
    walls, texts = {}, {}
    for num_proc in (1, args.num_proc):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            results = evaluate_longform(args.models, args.data, "test", (args.strategy,), out, decoding,
                                        limit=args.limit, num_proc=num_proc)  # fmt: skip
            walls[num_proc] = time.perf_counter() - start
        texts[num_proc] = [a["hypothesis"] for run in results["runs"].values() for a in run["articles"]]
    same = sum(a == b for a, b in zip(texts[1], texts[args.num_proc], strict=True))
    print(f"{len(texts[1])} transcripts ({len(args.models)} models, {args.strategy}, {decoding.describe()})")
    print(
        f"1 process: {walls[1]:.1f} s; {args.num_proc} processes: {walls[args.num_proc]:.1f} s; "
        f"ratio {walls[1] / walls[args.num_proc]:.2f}x faster; identical transcripts {same}/{len(texts[1])}"
    )


if __name__ == "__main__":
    main()
