"""Audio in: decode with soundfile (wav/flac/ogg, no ffmpeg), downmix to mono, resample to Whisper's 16 kHz."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np

from .errors import HfWhisperContextError

SAMPLING_RATE = 16_000
# Peak below -60 dBFS: nothing a speech model can hear (dither and codec noise stay under it).
SILENCE_PEAK = 1e-3


class AudioError(HfWhisperContextError, ValueError):
    """Audio that cannot be used: missing, undecodable or empty."""


def load_audio(path: str | Path, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode `path` into a float32 mono array at `sampling_rate` Hz. Raises `AudioError` with the reason."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file {path} does not exist")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"cannot decode {path} ({e}); use WAV, FLAC or Ogg (convert MP3 with ffmpeg or sox)") from e
    if audio.shape[0] == 0:
        raise AudioError(f"{path} holds no audio (0 samples)")
    return resample(audio.mean(axis=1), sr, sampling_rate)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Polyphase resampling (scipy), exact for rational rate ratios such as 44.1 kHz -> 16 kHz."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(orig_sr, target_sr)
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.abs(audio).max()) < SILENCE_PEAK
