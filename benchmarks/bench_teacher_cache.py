"""Teacher caching on CPU with the bundled SmolLM2: chunks/s and tokens/s in float32 and bfloat16 (ratio against
float32 measured in the same process), and bytes per cached chunk.

    python benchmarks/bench_teacher_cache.py --data outputs/corpus --chunks 32
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hf_whisper_context.data.dataset import load_swc
from hf_whisper_context.teacher.cache import CacheConfig, TeacherCache, cache_teacher
from hf_whisper_context.teacher.load import load_teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="an SWC folder (e.g. built by `corpus build`)")
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--context-words", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    data = load_swc(args.data)["train"]
    data = data.select(range(min(args.chunks, len(data))))
    config = CacheConfig(k=args.k, context_words=args.context_words, batch_size=8)
    results = {}
    for dtype in ("float32", "bfloat16"):
        model, tokenizer = load_teacher("smollm2-135m", dtype=dtype)
        with tempfile.TemporaryDirectory() as out:
            cache_teacher(data.select(range(2)), model, tokenizer, Path(out) / "warm", config)  # warm-up
            start = time.perf_counter()
            cache_teacher(data, model, tokenizer, Path(out) / "cache", config)
            seconds = time.perf_counter() - start
            cache = TeacherCache(Path(out) / "cache")
            chunk_tokens = sum(len(cache[i]["token_ids"]) for i in range(len(data)) if cache[i] is not None)
            size = sum(p.stat().st_size for p in (Path(out) / "cache").glob("shard-*.safetensors"))
        results[dtype] = (len(data) / seconds, chunk_tokens / seconds, size / len(data))
    print(f"SmolLM2-135M, {len(data)} chunks, k={args.k}, {args.context_words} context words, {args.threads} threads")
    for dtype, (chunks_s, tokens_s, per_chunk) in results.items():
        ratio = chunks_s / results["float32"][0]
        line = f"  {dtype:9s} {chunks_s:6.2f} chunks/s  {tokens_s:7.0f} chunk tokens/s"
        print(f"{line}  {per_chunk / 1024:6.1f} KiB/chunk  speed vs float32 {ratio:.2f}x")


if __name__ == "__main__":
    main()
