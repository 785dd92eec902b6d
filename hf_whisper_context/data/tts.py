"""Offline text-to-speech through Debian's engines, for the corpus builder and the demo.

`flite` is the default (most intelligible here, 16 kHz native); `espeak-ng` is the alternative.
Both run as subprocesses; a missing engine is an error that names the package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ENGINES = {
    # engine: (executable, Debian package, default voice)
    "flite": ("flite", "flite", "slt"),
    "espeak": ("espeak-ng", "espeak-ng", "en-us"),
}


class TTSError(RuntimeError):
    """The speech engine is missing or failed."""


def engine_path(engine: str) -> str:
    if engine not in ENGINES:
        raise TTSError(f"unknown TTS engine {engine!r}; known: {', '.join(ENGINES)}")
    exe, package, _ = ENGINES[engine]
    path = shutil.which(exe)
    if path is None:
        raise TTSError(f"{exe} is not on PATH; install it with `apt-get install {package}` (Debian/Ubuntu)")
    return path


def synthesize(text: str, out_wav: str | Path, engine: str = "flite", voice: str | None = None, rate: float = 1.0):
    """Speak `text` into the WAV file `out_wav` (written atomically). `rate` > 1 speaks faster.

    Returns the path. The engine's native sample rate is kept (flite: 16 kHz; espeak-ng: 22.05 kHz).
    """
    exe = engine_path(engine)
    voice = voice or ENGINES[engine][2]
    out_wav = Path(out_wav)
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=out_wav.parent)
    os.close(fd)
    if engine == "flite":
        # flite's duration_stretch is the inverse of speed
        cmd = [exe, "-voice", voice, "--setf", f"duration_stretch={1 / rate:.3f}", "-t", text, "-o", tmp]
    else:
        cmd = [exe, "-v", voice, "-s", str(round(175 * rate)), "-w", tmp, text]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=600)
        if done.returncode != 0 or os.path.getsize(tmp) <= 44:
            raise TTSError(f"{engine} failed on {text[:40]!r}: {done.stderr.decode(errors='replace').strip()}")
        os.replace(tmp, out_wav)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_wav
