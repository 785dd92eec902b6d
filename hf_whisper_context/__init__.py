"""hf_whisper_context: distil a LLaMA-family teacher into Whisper for long, entity-dense transcripts.

Importing the package is cheap: heavy modules (torch, transformers) load on first use.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "bundled", "convert_ctranslate2_whisper", "export_gguf_llama"]


def __getattr__(name: str):
    import importlib

    if name in ("convert_ctranslate2_whisper", "export_gguf_llama"):
        return getattr(importlib.import_module(".convert", __name__), name)
    if name == "bundled":
        return importlib.import_module(".bundled", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
