import subprocess
import sys

HEAVY = ("torch", "transformers", "numpy", "datasets", "spacy", "ot", "peft", "trl")


def test_import_is_light():
    code = f"import sys, hf_whisper_context; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing hf_whisper_context loaded {out}"


def test_lazy_attributes():
    import hf_whisper_context

    assert callable(hf_whisper_context.convert_ctranslate2_whisper)
    from transformers import Seq2SeqTrainer

    from hf_whisper_context import ContextDistillTrainer

    assert issubclass(ContextDistillTrainer, Seq2SeqTrainer)
    assert hf_whisper_context.bundled.known_models() == ["tiny.en", "base", "smollm2-135m"]


def test_cli_lists_models():
    from hf_whisper_context.cli import main

    assert main(["models", "list"]) == 0
