"""Transcription with `pipeline("automatic-speech-recognition")`, with the decoding stated (greedy by default)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .audio import SAMPLING_RATE, is_silent, load_audio

logger = logging.getLogger(__name__)

WHISPER_WINDOW_S = 30


@dataclass(frozen=True)
class Decoding:
    """How the transcript is decoded; printed with every result so numbers can be compared."""

    num_beams: int = 1  # greedy; pipeline() would otherwise take beam 5 from transformers' defaults
    language: str | None = None  # multilingual models only; None detects the language
    task: str = "transcribe"

    def generate_kwargs(self, multilingual: bool) -> dict:
        kwargs = {"num_beams": self.num_beams, "do_sample": False}
        if multilingual:
            kwargs["task"] = self.task
            if self.language:
                kwargs["language"] = self.language
        return kwargs

    def describe(self) -> str:
        search = "greedy" if self.num_beams == 1 else f"beam search ({self.num_beams} beams)"
        return search + (f", language={self.language}" if self.language else "")


def resolve_model(model: str | os.PathLike, cache: str | os.PathLike | None = None) -> str:
    """`from_pretrained` argument for a bundled name ("tiny.en", "base"), a local folder, or a Hub id."""
    from . import bundled

    if str(model) in bundled.WHISPER_MODELS:
        return str(bundled.whisper(str(model), cache))
    if Path(model).exists():
        return str(model)
    if "/" in str(model) and not str(model).startswith((".", "/")):
        return str(model)  # a Hub id: needs network, as for any transformers user
    raise ValueError(
        f"unknown model {str(model)!r}: not a bundled model ({', '.join(bundled.WHISPER_MODELS)}), "
        "an existing folder, or a Hub id such as openai/whisper-small"
    )


def load_asr_pipeline(model: str | os.PathLike = "tiny.en", device: str | None = None, cache=None):
    import torch
    from transformers import pipeline

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return pipeline("automatic-speech-recognition", model=resolve_model(model, cache), device=device)


def transcribe(audio, asr, decoding: Decoding = Decoding()) -> str:
    """Transcribe a file path or a 16 kHz float array with a loaded ASR pipeline. Silence gives "" and a warning."""
    if not hasattr(audio, "shape"):
        audio = load_audio(audio)
    if is_silent(audio):
        logger.warning("the audio is silent (peak below -60 dBFS): empty transcript")
        return ""
    multilingual = bool(getattr(asr.model.generation_config, "is_multilingual", False))
    kwargs = {"generate_kwargs": decoding.generate_kwargs(multilingual)}
    if audio.shape[0] > WHISPER_WINDOW_S * SAMPLING_RATE:
        kwargs["chunk_length_s"] = WHISPER_WINDOW_S  # long audio: overlapping 30 s windows, merged by the pipeline
    out = asr({"raw": audio, "sampling_rate": SAMPLING_RATE}, **kwargs)
    return out["text"].strip()
