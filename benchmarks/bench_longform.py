"""Real-time factor of long-form transcription on CPU: chunked vs sequential (this package, transformers
pipeline), and faster-whisper on the same CTranslate2 file when it is installed. Ratios are against the chunked
run measured in the same process.

    python benchmarks/bench_longform.py --data outputs/demo/corpus --seconds 300 [--model tiny.en]
"""

from __future__ import annotations

import argparse
import time

from hf_whisper_context import bundled
from hf_whisper_context.audio import load_audio
from hf_whisper_context.data.swc import read_swc
from hf_whisper_context.transcribe import Decoding, load_asr_pipeline, transcribe_long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="an SWC folder (e.g. built by `corpus build`)")
    parser.add_argument("--model", default="tiny.en", choices=list(bundled.WHISPER_MODELS))
    parser.add_argument("--seconds", type=float, default=300.0, help="audio to transcribe (from the first article)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    article = read_swc(args.data)[0]
    audio = load_audio(article.audio[0].path)[: int(args.seconds * 16000)]
    seconds = len(audio) / 16000
    asr = load_asr_pipeline(args.model, "cpu")
    decoding = Decoding(language="en")
    transcribe_long(audio[: 16000 * 5], asr, "chunked", decoding)  # warm-up
    rtf = {}
    for strategy in ("chunked", "sequential"):
        start = time.perf_counter()
        transcribe_long(audio, asr, strategy, decoding)
        rtf[f"transformers {strategy}"] = (time.perf_counter() - start) / seconds
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        print("faster-whisper is not installed: `pip install faster-whisper` to compare")
    else:
        model = WhisperModel(str(bundled.ctranslate2_whisper(args.model)), device="cpu", compute_type="float32",
                             cpu_threads=args.threads)  # fmt: skip
        list(model.transcribe(audio[: 16000 * 5], beam_size=1, language="en")[0])  # warm-up
        start = time.perf_counter()
        segments, _ = model.transcribe(audio, beam_size=1, language="en", condition_on_previous_text=False)
        " ".join(s.text for s in segments)  # the generator does the work
        rtf["faster-whisper (CTranslate2, fp32, sequential)"] = (time.perf_counter() - start) / seconds
    base = rtf["transformers chunked"]
    print(f"{args.model}, {seconds:.0f} s of audio, {args.threads} threads, greedy")
    for name, value in rtf.items():
        print(f"  {name:48s} RTF {value:.3f}   ratio to chunked {value / base:.2f}x   ({1 / value:.1f}x real time)")


if __name__ == "__main__":
    main()
