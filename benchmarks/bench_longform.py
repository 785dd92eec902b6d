"""Real-time factor and WER of long-form transcription on CPU, on one whole built article: this package's
`transcribe_long` with the transformers pipeline (chunked, sequential, sequential with Whisper's temperature
fallback) and with the faster-whisper backend (the same weights as CTranslate2), faster-whisper called directly,
and transformers' pipeline as shipped (its suppressed-token masks rebuilt at every step: what `mask_once` saves).
Ratios are against faster-whisper measured in the same process; WER (normalised) is against the article's text, so a
faster path that changes the text shows.

    python benchmarks/bench_longform.py --data outputs/demo/corpus [--model tiny.en] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from hf_whisper_context import bundled
from hf_whisper_context.data.dataset import load_swc, load_swc_articles
from hf_whisper_context.metrics import compute_all, summary
from hf_whisper_context.transcribe import Decoding, load_asr_pipeline, resolve_model, transcribe_long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="an SWC folder (e.g. built by `corpus build`)")
    parser.add_argument("--model", default="tiny.en", choices=list(bundled.WHISPER_MODELS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from faster_whisper import WhisperModel  # the `export` extra (and dev): the peer is always measured
    from transformers import pipeline as hf_pipeline

    torch.set_num_threads(args.threads)
    load_swc(args.data)
    article = load_swc_articles(args.data, "test")[0]
    seconds, reference = article["duration_s"], article["text_tagged"]
    decoding = Decoding(language=None if args.model.endswith(".en") else "en")
    runs = {}

    def measure(name, transcribe):
        start = time.perf_counter()
        text = transcribe()
        runs[name] = ((time.perf_counter() - start) / seconds, summary(compute_all([reference], [text]))["wer"])

    pipeline = load_asr_pipeline(args.model, "cpu")
    shipped = hf_pipeline("automatic-speech-recognition", model=resolve_model(args.model), device="cpu",
                          ignore_warning=True)  # fmt: skip
    backend = load_asr_pipeline(args.model, "cpu", backend="faster-whisper")
    whisper = WhisperModel(str(bundled.ctranslate2_whisper(args.model)), device="cpu", compute_type="float32",
                           cpu_threads=args.threads)  # fmt: skip
    path = article["audio_path"][0]
    transcribe_long(path, pipeline, "sequential", decoding, block_s=20)  # warm-ups (the first 20 s block)
    transcribe_long(path, backend, "sequential", decoding, block_s=20)
    transcribe_long(path, shipped, "sequential", decoding, block_s=20)

    def direct():
        segments, _ = whisper.transcribe(path, beam_size=1, temperature=0.0, condition_on_previous_text=False,
                                         compression_ratio_threshold=None, log_prob_threshold=None,
                                         no_speech_threshold=None, vad_filter=False)  # fmt: skip
        return " ".join(s.text.strip() for s in segments)

    measure("faster-whisper, called directly (sequential)", direct)
    for strategy in ("chunked", "sequential"):
        measure(f"transcribe_long, transformers, {strategy}", lambda s=strategy: transcribe_long(
            article["audio_path"], pipeline, s, decoding).text)  # fmt: skip
    measure("transcribe_long, transformers as shipped, sequential", lambda: transcribe_long(
        article["audio_path"], shipped, "sequential", decoding).text)  # fmt: skip
    measure("transcribe_long, transformers, sequential + fallback", lambda: transcribe_long(
        article["audio_path"], pipeline, "sequential", replace(decoding, fallback=True)).text)  # fmt: skip
    measure("transcribe_long, faster-whisper backend, sequential",
            lambda: transcribe_long(article["audio_path"], backend, "sequential", decoding).text)  # fmt: skip
    base = runs["faster-whisper, called directly (sequential)"][0]
    print(f"{args.model}, {article['article_id']} ({seconds:.0f} s), {args.threads} threads, greedy, float32")
    for name, (rtf, wer) in runs.items():
        print(f"  {name:52s} RTF {rtf:.3f}   {rtf / base:.2f}x faster-whisper's time   WER {wer:.3f}")


if __name__ == "__main__":
    main()
