"""Transcription with `pipeline("automatic-speech-recognition")`, with the decoding stated (greedy by default):
short clips (`transcribe`) and whole articles (`transcribe_long`, chunked or sequential, streamed in blocks)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import SAMPLING_RATE, checked, is_silent, load_audio, stream
from .errors import ConfigError
from .tags import balance

logger = logging.getLogger(__name__)

WHISPER_WINDOW_S = 30
# Long audio is read and transcribed 30 minutes at a time, so an article of up to half an hour is decoded whole,
# as Whisper's own long-form algorithm decodes a file. A cut between blocks leaves the block's last window holding
# only the audio before the cut (a fraction of a second of pause, padded to 30 s): a fine-tuned student can fill it
# with a hallucinated loop that every temperature of the fallback fails on (measured: "End by" for 30 s at a 10 min
# cut; decoded whole, the same window is transcribed correctly and nothing falls back). Peak memory of a block:
# about 0.8 GB of log-mel features for 30 minutes.
BLOCK_S = 1800.0


@dataclass(frozen=True)
class Decoding:
    """How the transcript is decoded; printed with every result so numbers can be compared."""

    num_beams: int = 1  # greedy; pipeline() would otherwise take beam 5 from transformers' defaults
    language: str | None = None  # multilingual models only; None detects the language
    task: str = "transcribe"
    fallback: bool = False  # Whisper's long-form safety net (`fallback_kwargs`); off: the measured numbers use none
    condition_on_prev: bool = False  # sequential: each window prompted with the text before it (Whisper's option)
    # Whisper's rule that forces a timestamp wherever the timestamps' total probability beats the likeliest text
    # token (`_detect_timestamp_from_logprob` of the generation config); False: a timestamp only where one is the
    # likeliest token; None: as the model's generation config says (on unless a checkpoint turned it off)
    timestamp_sum_rule: bool | None = None
    # the sum rule kept from forcing a segment shut with a timestamp out of reach of its text (`timestamp_guard`);
    # None: as the model's generation config says (a student saved with the guard carries it: `hub.save_student`)
    timestamp_jump_guard: bool | None = None

    def generate_kwargs(self, multilingual: bool) -> dict:
        kwargs = {"num_beams": self.num_beams, "do_sample": False}
        if multilingual:
            kwargs["task"] = self.task
            if self.language:
                kwargs["language"] = self.language
        return kwargs

    def fallback_kwargs(self) -> dict:
        """Whisper's safety net against loops in sequential long-form decoding (the Whisper paper, section 3.8;
        transformers' defaults, `FALLBACK`): a 30 s window whose tokens compress more than 1.35 times (zlib:
        repetition) or whose mean log-probability is under -1 is decoded again at the next temperature of 0.2 ...
        1.0 (sampling: seed torch for repeatable text). Only sequential decoding of audio over 30 s uses it
        (transformers ignores it on shorter inputs)."""
        return dict(FALLBACK) if self.fallback else {}

    def describe(self) -> str:
        search = "greedy" if self.num_beams == 1 else f"beam search ({self.num_beams} beams)"
        safety = ", temperature fallback (compression ratio > 1.35 or log-prob < -1.0: 0.2 ... 1.0)"
        prompted = ", conditioned on the previous text" if self.condition_on_prev else ""
        rule = {None: "", True: ", timestamp-sum rule on", False: ", timestamp-sum rule off"}[self.timestamp_sum_rule]
        rule += ", timestamp jumps guarded" if self.timestamp_jump_guard else ""
        return (search + (f", language={self.language}" if self.language else "") + (safety if self.fallback else "")
                + prompted + rule)  # fmt: skip


FALLBACK = {"temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "compression_ratio_threshold": 1.35,
            "logprob_threshold": -1.0}  # fmt: skip


MULTILINGUAL_VOCAB = 51865  # English-only Whisper models have 51864 tokens; multilingual ones 51865 or more


def is_multilingual(model) -> bool:
    """Whether a Whisper model takes language and task tokens: its generation config says so, or (a randomly
    initialised model whose generation config does not) its vocabulary size does."""
    flag = getattr(model.generation_config, "is_multilingual", None)
    return bool(flag) if flag is not None else model.config.vocab_size >= MULTILINGUAL_VOCAB


def resolve_model(model: str | os.PathLike, cache: str | os.PathLike | None = None) -> str:
    """`from_pretrained` argument for a Whisper model: a bundled name ("tiny.en", "base"), a folder or a Hub id."""
    from . import bundled

    return bundled.resolve(model, "whisper", cache=cache)


BACKENDS = ("transformers", "faster-whisper")


class FasterWhisperASR:
    """A CTranslate2 export of a Whisper model run by faster-whisper, called like the transformers pipeline by
    `transcribe_long` (sequential decoding only: faster-whisper's own long-form loop), with the same text rules
    (segments joined, tags balanced). Greedy at temperature 0 with faster-whisper's fallback thresholds off, unless
    `Decoding(fallback=True)`: then its own equivalents (gzip ratio of the text > 2.4, mean log-prob < -1)."""

    def __init__(self, folder, device: str = "cpu", compute_type: str = "float32", threads: int = 0):
        from faster_whisper import WhisperModel

        self.folder = Path(folder)
        self.whisper = WhisperModel(str(folder), device=device, compute_type=compute_type, cpu_threads=threads)
        self.multilingual = self.whisper.model.is_multilingual

    def __call__(self, inputs: dict, generate_kwargs: dict, return_timestamps=True, **pipeline_kwargs) -> dict:
        if "chunk_length_s" in pipeline_kwargs:
            raise ConfigError("the faster-whisper backend decodes sequentially: use the 'sequential' strategy")
        fallback = "compression_ratio_threshold" in generate_kwargs
        segments, _ = self.whisper.transcribe(
            inputs["raw"], beam_size=generate_kwargs["num_beams"], language=generate_kwargs.get("language"),
            task=generate_kwargs.get("task", "transcribe"),
            condition_on_previous_text=bool(generate_kwargs.get("condition_on_prev_tokens")),
            temperature=list(generate_kwargs["temperature"]) if fallback else 0.0,
            compression_ratio_threshold=2.4 if fallback else None, log_prob_threshold=-1.0 if fallback else None,
            no_speech_threshold=None, vad_filter=False,
        )  # fmt: skip
        chunks = [{"timestamp": (s.start, s.end), "text": s.text} for s in segments]
        return {"text": "".join(c["text"] for c in chunks), "chunks": chunks}


def ctranslate2_folder(model: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """A CTranslate2 folder of a Whisper model: itself if it is one (`model.bin`), a bundled model's original files,
    or an export (float32, made once under the cache, keyed by the checkpoint's path and files)."""
    import hashlib

    from . import bundled

    path = Path(str(model))
    if (path / "model.bin").is_file():
        return path
    if str(model) in bundled.WHISPER_MODELS:
        return bundled.ctranslate2_whisper(str(model), cache)
    from .export import export_ctranslate2

    source = Path(resolve_model(model, cache))
    if not source.is_dir():
        raise ConfigError(f"{model}: the faster-whisper backend needs a local checkpoint or a CTranslate2 folder")
    stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(source.iterdir()) if p.is_file()]
    key = hashlib.sha256(repr((str(source.resolve()), stamp)).encode()).hexdigest()[:16]
    target = bundled.cache_dir(cache) / "ct2-exports" / key
    if not (target / "model.bin").is_file():
        export_ctranslate2(source, target, "float32", overwrite=True, check=False)
    return target


def load_asr_pipeline(model: str | os.PathLike = "tiny.en", device: str | None = None, cache=None,
                      backend: str = "transformers"):  # fmt: skip
    """The transcriber `transcribe_long` runs: transformers' pipeline, or (`backend="faster-whisper"`, installed by
    the `export` extra) the model's CTranslate2 export run by faster-whisper."""
    import torch

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if backend == "faster-whisper":
        on_gpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        return FasterWhisperASR(ctranslate2_folder(model, cache), "cuda" if on_gpu else "cpu",
                                "float16" if on_gpu else "float32", threads=torch.get_num_threads())  # fmt: skip
    from transformers import pipeline

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    from .suppress import mask_once

    # ignore_warning: the "chunk_length_s is experimental" notice; the strategy is chosen and stated by the caller
    folder = resolve_model(model, cache)
    asr = pipeline("automatic-speech-recognition", model=folder, device=device, ignore_warning=True)
    if getattr(asr.model, "_hf_peft_config_loaded", False):  # an adapter (folder or Hub id) on its base model
        from transformers import GenerationConfig

        try:  # the base comes with the base's generation config; the student's decoding is the adapter's own
            asr.model.generation_config = GenerationConfig.from_pretrained(folder)
        except OSError:
            logger.info("%s has no generation_config.json: decoding as its base model's says", folder)
    mask_once(asr.model)  # the suppressed tokens' mask built once per generate call, not at every step
    return asr


def transcribe(audio, asr, decoding: Decoding = Decoding()) -> str:
    """Transcribe a file path or a 16 kHz float array with a loaded ASR pipeline. Silence gives "" and a warning."""
    audio = checked(audio, "the audio array") if hasattr(audio, "shape") else load_audio(audio)
    if is_silent(audio):
        logger.warning("the audio is silent (peak below -60 dBFS): empty transcript")
        return ""
    multilingual = is_multilingual(asr.model)
    kwargs = {"generate_kwargs": decoding.generate_kwargs(multilingual)}
    if audio.shape[0] > WHISPER_WINDOW_S * SAMPLING_RATE:
        kwargs.update(chunk_length_s=WHISPER_WINDOW_S, ignore_warning=True)  # long audio: 30 s windows, merged
    out = asr({"raw": audio, "sampling_rate": SAMPLING_RATE}, **kwargs)
    return out["text"].strip()


STRATEGIES = ("chunked", "sequential")


@dataclass
class Transcript:
    text: str
    segments: list[dict] = field(default_factory=list)  # {"start": s, "end": s or None, "text": str}, article time


def audio_blocks(audio, block_s: float = BLOCK_S, sampling_rate: int = SAMPLING_RATE):
    """Yield (start_s, 16 kHz mono block) over an array, a file, or files played one after another, reading at most
    about `block_s` + 10 s at a time. Blocks end at the quietest 100 ms of their last 10 s, so a cut falls between
    words rather than inside one."""
    block, lookahead = int(block_s * sampling_rate), 10 * sampling_rate
    sources = [audio] if isinstance(audio, (str, os.PathLike, np.ndarray)) else list(audio)
    buffer, start = np.zeros(0, dtype=np.float32), 0
    for source in sources:
        if isinstance(source, np.ndarray):
            pieces = [checked(source, "the audio array").astype(np.float32)]
        else:
            pieces = stream(source, block_s, sampling_rate)
        for piece in pieces:
            buffer = np.concatenate([buffer, piece])
            while len(buffer) >= block + lookahead:
                cut = _quietest(buffer, block - lookahead, block, sampling_rate)
                yield start / sampling_rate, buffer[:cut]
                buffer, start = buffer[cut:], start + cut
    if len(buffer):
        yield start / sampling_rate, buffer


def _quietest(audio: np.ndarray, lo: int, hi: int, sampling_rate: int) -> int:
    frame = sampling_rate // 10
    energy = [float(np.square(audio[i : i + frame]).sum()) for i in range(lo, hi - frame + 1, frame // 2)]
    return lo + int(np.argmin(energy)) * (frame // 2) + frame // 2


def transcribe_long(
    audio,
    asr,
    strategy="chunked",
    decoding=Decoding(),
    batch_size=4,
    stride_s=5.0,
    block_s=BLOCK_S,
    on_block=None,
) -> Transcript:
    """Transcribe a whole article (array, file, or list of files played in order) with a loaded ASR pipeline.

    - "chunked": 30 s windows overlapping by `stride_s` on each side, batched, merged by the pipeline;
    - "sequential": Whisper's own long-form decoding (seek by predicted timestamps), optionally conditioned on
      the previous text (`Decoding.condition_on_prev`).
    The audio is streamed in blocks of about `block_s` (memory stays bounded for hours of audio); silent blocks
    are skipped; `on_block(seconds_done)` is called before each block (a progress bar). 0 s of audio gives an empty
    transcript.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    multilingual = asr.multilingual if isinstance(asr, FasterWhisperASR) else is_multilingual(asr.model)
    if isinstance(asr, FasterWhisperASR):
        if decoding.timestamp_sum_rule is not None or decoding.timestamp_jump_guard:
            raise ConfigError("the faster-whisper backend applies Whisper's timestamp rules as they are: leave "
                              "timestamp_sum_rule and timestamp_jump_guard unset, or decode with the transformers "
                              "backend")  # fmt: skip
    else:
        if decoding.timestamp_sum_rule is not None:
            asr.model.generation_config._detect_timestamp_from_logprob = decoding.timestamp_sum_rule
        if decoding.timestamp_jump_guard is not None:
            asr.model.generation_config.timestamp_jump_guard = decoding.timestamp_jump_guard  # read by `mask_once`
    generate_kwargs = decoding.generate_kwargs(multilingual)
    kwargs = {"return_timestamps": True}
    if strategy == "chunked":
        kwargs.update(
            chunk_length_s=WHISPER_WINDOW_S, stride_length_s=stride_s, batch_size=batch_size, ignore_warning=True
        )
    else:
        generate_kwargs.update(condition_on_prev_tokens=decoding.condition_on_prev)
    texts, segments = [], []
    for offset, block in audio_blocks(audio, block_s):
        if on_block is not None:
            on_block(offset)
        if is_silent(block):
            continue
        long_form = strategy == "sequential" and len(block) > WHISPER_WINDOW_S * SAMPLING_RATE
        block_kwargs = {**generate_kwargs, **(decoding.fallback_kwargs() if long_form else {})}
        out = asr({"raw": block, "sampling_rate": SAMPLING_RATE}, generate_kwargs=block_kwargs, **kwargs)
        texts.append(out["text"].strip())
        for chunk in out.get("chunks", []):
            start, end = chunk["timestamp"]
            segments.append({"start": offset + (start or 0.0), "end": None if end is None else offset + end,
                             "text": chunk["text"].strip()})  # fmt: skip
    return Transcript(balance(" ".join(t for t in texts if t)), segments)
