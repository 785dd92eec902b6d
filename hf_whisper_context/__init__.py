"""hf_whisper_context: distil a LLaMA-family teacher into Whisper for long, entity-dense transcripts.

Importing the package is cheap: heavy modules (torch, transformers) load on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "convert_ctranslate2_whisper": ".convert",
    "export_gguf_llama": ".convert",
    "ContextDistillTrainer": ".trainer",
    "ContextDistillTrainingArguments": ".config",
    "DistillationCollator": ".collator",
    "prepare_student": ".trainer",
    "HfWhisperContextError": ".errors",
}
__all__ = ["__version__", "bundled", *_LAZY]


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name == "bundled":
        return importlib.import_module(".bundled", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
