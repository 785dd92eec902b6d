"""Audio in: decode with soundfile (wav/flac/ogg, no ffmpeg), check it, downmix to mono, resample to Whisper's 16 kHz.

Every way in (`open_audio`, `load_audio`, `read_span`) raises `AudioError` naming the file and the problem: a path that
is not a regular file, an undecodable or empty file, samples that are NaN or infinite (rejected, never cleaned: a
transcript of repaired audio would hide the damage). Channels that cancel when averaged (opposite phase) are not
averaged: the loudest channel is used, with a warning.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from math import gcd
from pathlib import Path

import numpy as np

from .errors import HfWhisperContextError

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16_000
# Peak below -60 dBFS: nothing a speech model can hear (dither and codec noise stay under it).
SILENCE_PEAK = 1e-3
# A downmix holding less than 1% of its loudest channel's energy has cancelled (channels in opposite phase).
CANCELLED = 1e-2
SPAN_SLACK_S = 0.05  # a span may end this far past the file (times rounded to ms and samples)


class AudioError(HfWhisperContextError, ValueError):
    """Audio that cannot be used: missing, not a file, undecodable, empty or with non-finite samples."""


def open_audio(path: str | Path | bytes, name: str | None = None):
    """An open `soundfile.SoundFile` for `path` (or the encoded file in `bytes`, called `name` in messages), or
    `AudioError` saying why not."""
    import soundfile as sf

    if isinstance(path, (bytes, bytearray)):
        source, label = io.BytesIO(path), f"the audio bytes of {name or 'a row'}"
    else:
        path = label = Path(path)
        if not path.exists():
            raise AudioError(f"audio file {path} does not exist")
        if not path.is_file():
            raise AudioError(f"audio path {path} is not a regular file (a folder, pipe or device): give an audio file")
        source = path
    try:
        f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"cannot decode {label} ({e}); use WAV, FLAC or Ogg (convert MP3 with ffmpeg or sox)") from e
    if f.frames == 0:
        f.close()
        raise AudioError(f"{label} holds no audio (0 samples)")
    return f


def duration(path: str | Path) -> float:
    """Length of an audio file in seconds (`AudioError` if it cannot be decoded)."""
    with open_audio(path) as f:
        return f.frames / f.samplerate


def checked(audio: np.ndarray, what) -> np.ndarray:
    """`audio` if every sample is finite, else `AudioError` naming `what` and how many samples are not."""
    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise AudioError(f"{what}: {bad} of {audio.size} samples are NaN or infinite (damaged audio); repair or "
                         "re-export it — nothing was transcribed or trained on")  # fmt: skip
    return audio


def downmix(audio: np.ndarray, what) -> np.ndarray:
    """Mono from (samples, channels): the channel mean, or the loudest channel where the mean cancels."""
    audio = checked(audio, what)
    mono = audio.mean(axis=1)
    if audio.shape[1] > 1:
        energy = np.square(audio, dtype=np.float64).mean(axis=0)
        loudest = int(np.argmax(energy))
        cancelled = np.square(mono, dtype=np.float64).mean() < CANCELLED * energy[loudest]
        if energy[loudest] > SILENCE_PEAK**2 and cancelled:
            logger.warning("%s: its channels cancel when averaged (opposite phase); using channel %d alone", what,
                           loudest + 1)  # fmt: skip
            return audio[:, loudest]
    return mono


def read_span(path: str | Path | bytes, start_s: float = 0.0, end_s: float | None = None,
              sampling_rate: int = SAMPLING_RATE, name: str | None = None) -> np.ndarray:  # fmt: skip
    """Decode [start_s, end_s) of `path` (or of the encoded file in `bytes`; to its end if `end_s` is None or inf),
    mono, at `sampling_rate`. A span that does not lie inside the file is an `AudioError`, never a shorter or
    wrapped-around read."""
    import soundfile as sf

    label = f"the audio bytes of {name or 'a row'}" if isinstance(path, (bytes, bytearray)) else path
    with open_audio(path, name) as f:
        length = f.frames / f.samplerate
        end = length if end_s is None or end_s == float("inf") else end_s
        if not 0 <= start_s <= end <= length + SPAN_SLACK_S:
            raise AudioError(f"{label}: span {start_s:.2f}-{end:.2f} s is not inside the file ({length:.2f} s)")
        start = int(round(start_s * f.samplerate))
        stop = min(f.frames, int(round(end * f.samplerate)))
        try:
            f.seek(start)
            audio = f.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"cannot decode {label} past {start_s:.2f} s ({e}): the file is damaged") from e
        return resample(downmix(audio, label), f.samplerate, sampling_rate)


def decode_source(source, sampling_rate: int = SAMPLING_RATE, start_s: float = 0.0,
                  end_s: float | None = None) -> np.ndarray:  # fmt: skip
    """[start_s, end_s) of a `datasets` audio value (all of it by default) as mono float32 at `sampling_rate`: a
    path, `{"path", "bytes"}` (what `datasets.Audio(decode=False)` gives; the bytes win when both are set) or
    `{"array", "sampling_rate"}`. Decoded with soundfile: no ffmpeg or torchcodec for WAV, FLAC and Ogg."""
    if isinstance(source, (str, os.PathLike)):
        return read_span(source, start_s, end_s, sampling_rate)
    if isinstance(source, dict):
        if source.get("array") is not None:
            what = f"the audio array of {source.get('path') or 'a row'}"
            audio = np.asarray(source["array"], dtype=np.float32)
            if audio.ndim == 2:  # datasets' decoders give (channels, samples)
                audio = downmix(audio.T if audio.shape[0] < audio.shape[1] else audio, what)
            if audio.ndim != 1 or not source.get("sampling_rate"):
                raise AudioError(f"{what}: expected a 1-D array with a sampling_rate, got shape {audio.shape}")
            audio = resample(checked(audio, what), int(source["sampling_rate"]), sampling_rate)
            return audio[
                int(round(start_s * sampling_rate)) : None if end_s is None else int(round(end_s * sampling_rate))
            ]
        if source.get("bytes"):
            return read_span(source["bytes"], start_s, end_s, sampling_rate, name=source.get("path"))
        if source.get("path"):
            return read_span(source["path"], start_s, end_s, sampling_rate)
    raise AudioError(f"an audio value must be a path, {{'path', 'bytes'}} or {{'array', 'sampling_rate'}}; got "
                     f"{type(source).__name__} {str(source)[:80]!r}")  # fmt: skip


def stream(path: str | Path, block_s: float, sampling_rate: int = SAMPLING_RATE) -> Iterator[np.ndarray]:
    """Decode `path` in blocks of about `block_s` seconds, each mono at `sampling_rate` (memory stays bounded)."""
    import soundfile as sf

    with open_audio(path) as f:
        blocks = f.blocks(blocksize=max(1, int(block_s * f.samplerate)), always_2d=True, dtype="float32")
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                return
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"cannot decode {path} to its end ({e}): the file is damaged") from e
            yield resample(downmix(block, path), f.samplerate, sampling_rate)


def load_audio(path: str | Path, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Decode `path` into a float32 mono array at `sampling_rate` Hz. Raises `AudioError` with the reason."""
    return read_span(path, sampling_rate=sampling_rate)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLING_RATE) -> np.ndarray:
    """Polyphase resampling (scipy), exact for rational rate ratios such as 44.1 kHz -> 16 kHz."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(orig_sr, target_sr)
    return resample_poly(audio, target_sr // g, orig_sr // g).astype(np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.abs(checked(audio, "audio")).max()) < SILENCE_PEAK
