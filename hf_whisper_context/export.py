"""Export a student to CTranslate2, the format faster-whisper runs, and check the export against the model it came
from.

`export_ctranslate2(folder, out_dir, quantization)` takes a merged student (a `WhisperForConditionalGeneration`
folder, e.g. `save_student(..., "merged")`) or a LoRA adapter folder (merged into its base first) and writes a
folder that `faster_whisper.WhisperModel(out_dir)` loads: `model.bin` (ctranslate2's own converter),
`tokenizer.json`, `vocabulary.json`, `preprocessor_config.json` (the feature extractor: 80 or 128 mel bins), a
`README.md` with the faster-whisper snippet, and `export_check.json`: on real speech clips, the greedy token ids of
the exported model as faster-whisper loads it and of the Hugging Face model, from the same log-mel features —
equal for float32/float16 exports (the Hugging Face weights rounded through float16 first), the WER between the
two reported for int8 ones — and, for information, faster-whisper's own `transcribe` (its own features and
decoding loop), which can differ from `transformers` on hard audio with the same weights. The student's own card
gets a "Run with faster-whisper" section.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from .errors import HfWhisperContextError
from .utils import atomic_folder, atomic_write

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("float32", "float16", "int8_float16", "int8_float32", "int8", "bfloat16")
EXACT = ("float32", "float16")  # exports whose greedy ids must equal the Hugging Face model's
CARD_SECTION = "## Run with faster-whisper"


class ExportError(HfWhisperContextError, ValueError):
    """A folder that cannot be exported, or an output folder that would be overwritten."""


def _checkpoint(folder: Path) -> str:
    """ "merged" or "adapter", or `ExportError` naming what is missing."""
    if (folder / "adapter_config.json").is_file():
        return "adapter"
    missing = [n for n in ("config.json", "tokenizer.json") if not (folder / n).is_file()]
    if not any(folder.glob("*.safetensors")):
        missing.append("model.safetensors")
    if missing:
        raise ExportError(f"{folder} is not a Whisper checkpoint: {', '.join(missing)} missing (give the folder "
                          "`save_student` or `save_pretrained` wrote, or a LoRA adapter folder)")  # fmt: skip
    model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    if model_type != "whisper":
        raise ExportError(f"{folder} holds a {model_type!r} model, not a Whisper checkpoint")
    return "merged"


def _merged(folder: Path, scratch: Path) -> Path:
    """A merged copy of an adapter folder (its base from `adapter_config.json`), saved under `scratch`."""
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from .hub import save_student
    from .transcribe import resolve_model

    base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    model = PeftModel.from_pretrained(WhisperForConditionalGeneration.from_pretrained(resolve_model(base)), folder)
    processor = WhisperProcessor.from_pretrained(folder if (folder / "tokenizer.json").is_file() else base)
    return save_student(model, processor, scratch / "merged", "merged")


def export_ctranslate2(folder, out_dir, quantization: str = "float16", overwrite: bool = False,
                       check: bool = True) -> Path:  # fmt: skip
    """Write the CTranslate2 export of a student checkpoint to `out_dir` (atomically) and, with `check`, compare it
    with the checkpoint on real speech (`export_check.json`). A non-empty `out_dir` is refused unless `overwrite`."""
    import ctranslate2
    from transformers import WhisperFeatureExtractor

    from .transcribe import resolve_model

    folder, out = Path(resolve_model(folder)), Path(out_dir)  # a bundled name ("tiny.en") is its converted folder
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantization!r}; known: {', '.join(QUANTIZATIONS)}")
    if not folder.is_dir():
        raise ExportError(f"{folder} is not a folder: give a student checkpoint folder (or a bundled model name)")
    kind = _checkpoint(folder)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty: choose another folder or pass --overwrite")
    with tempfile.TemporaryDirectory() as scratch:
        source = _merged(folder, Path(scratch)) if kind == "adapter" else folder
        with atomic_folder(out) as tmp:
            converter = ctranslate2.converters.TransformersConverter(str(source), copy_files=["tokenizer.json"])
            converter.convert(str(tmp), quantization=quantization, force=True)
            WhisperFeatureExtractor.from_pretrained(source).to_json_file(str(tmp / "preprocessor_config.json"))
            atomic_write(tmp / "README.md", _card(folder, out, quantization))
        if check:
            report = check_export(source, out, quantization)
            atomic_write(out / "export_check.json", json.dumps(report, indent=2) + "\n")
            if quantization in EXACT and not report["equal"]:
                raise ExportError(f"{out}: faster-whisper's greedy ids differ from the checkpoint's on "
                                  f"{report['differing_clips']} of {len(report['clips'])} clips "
                                  "(export_check.json)")  # fmt: skip
    if (folder / "README.md").is_file():
        add_card_section(folder / "README.md", out, quantization)
    return out


def _snippet(where: str, quantization: str) -> str:
    compute = "int8" if quantization.startswith("int8") else "float32"
    return (
        "```python\nfrom faster_whisper import WhisperModel\n\n"
        f'model = WhisperModel("{where}", device="cpu", compute_type="{compute}")  # device="cuda": "float16"\n'
        'segments, info = model.transcribe("speech.wav", beam_size=1)\n'
        'print(" ".join(segment.text.strip() for segment in segments))\n```\n'
    )


def _card(folder: Path, out: Path, quantization: str) -> str:
    return (
        f"---\nlibrary_name: ctranslate2\npipeline_tag: automatic-speech-recognition\ntags:\n- faster-whisper\n"
        f"- hf_whisper_context\n---\n\n# {folder.name} for faster-whisper\n\n"
        f"CTranslate2 export ({quantization} weights) of the Whisper student `{folder.name}`, made with "
        "`hf-whisper-context export` (ctranslate2's converter). `export_check.json` compares it with the "
        f"checkpoint it came from on real speech.\n\n{_snippet(str(out), quantization)}"
    )


def add_card_section(card: Path, out: Path, quantization: str) -> None:
    """Add (or replace) the "Run with faster-whisper" section of a student's model card."""
    text = card.read_text(encoding="utf-8")
    if CARD_SECTION in text:
        head, _, rest = text.partition(CARD_SECTION)
        tail = rest.split("\n## ", 1)
        text = head.rstrip() + "\n" + ("\n## " + tail[1] if len(tail) > 1 else "")
    section = (f"\n{CARD_SECTION}\n\nA CTranslate2 export ({quantization}) is in `{out}`; upload it as its own "
               f"repository to share it.\n\n{_snippet(str(out), quantization)}")  # fmt: skip
    atomic_write(card, text.rstrip() + "\n" + section)


def check_clips(max_s: float = 10.0) -> list:
    """Real speech for the check: the bundled phone call (two people, 30 s) in clips of at most `max_s` seconds."""
    from . import bundled
    from .audio import SAMPLING_RATE, load_audio

    audio = load_audio(bundled.phone_call() / "sample.wav")
    step = int(max_s * SAMPLING_RATE)
    return [audio[i : i + step] for i in range(0, len(audio), step) if len(audio[i : i + step]) > SAMPLING_RATE]


def check_export(checkpoint, export, quantization: str, clips=None) -> dict:
    """Clip by clip (default `check_clips()`): the greedy ids of the Hugging Face `checkpoint` and of the exported
    model as faster-whisper loads it, from the same log-mel features (what the export itself changes), and the
    transcripts of `faster_whisper.WhisperModel.transcribe` end to end (its own features and decoding loop), with
    the WER between the two transcripts."""
    import ctranslate2
    import numpy as np
    import torch
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    clips = check_clips() if clips is None else clips
    processor = WhisperProcessor.from_pretrained(checkpoint)
    model = WhisperForConditionalGeneration.from_pretrained(checkpoint).eval()
    if quantization == "float16":  # compare with the weights the export holds
        model = model.half().float()
    fast = WhisperModel(str(export), device="cpu", compute_type="int8" if quantization.startswith("int8") else
                        "float32")  # fmt: skip
    tokenizer = processor.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    rows = []
    for audio in clips:
        features = processor.feature_extractor(audio, sampling_rate=16_000, return_tensors="np").input_features
        with torch.inference_mode():
            generated = model.generate(torch.from_numpy(features), num_beams=1, do_sample=False)
        hf_ids = [int(t) for t in generated[0] if int(t) < end]
        result = fast.model.generate(ctranslate2.StorageView.from_array(features.astype(np.float32)),
                                     [tokenizer.prefix_tokens], beam_size=1, max_length=448)  # fmt: skip
        fast_ids = [int(t) for t in result[0].sequences_ids[0] if int(t) < end]
        segments, _ = fast.transcribe(audio, beam_size=1, temperature=0.0, without_timestamps=True,
                                      condition_on_previous_text=False, vad_filter=False)  # fmt: skip
        hf_text, export_text = tokenizer.decode(hf_ids).strip(), tokenizer.decode(fast_ids).strip()
        end_to_end = " ".join(s.text.strip() for s in segments)
        rows.append({"equal": hf_ids == fast_ids, "transformers": hf_text, "export": export_text,
                     "faster_whisper_transcribe": end_to_end, "wer_export": _wer(hf_text, export_text),
                     "wer_faster_whisper_transcribe": _wer(hf_text, end_to_end)})  # fmt: skip
    differing = sum(not r["equal"] for r in rows)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("wer_export", "wer_faster_whisper_transcribe")}
    return {"quantization": quantization, "equal": differing == 0, "differing_clips": differing,
            **{f"mean_{k}": v for k, v in mean.items()}, "clips": rows}  # fmt: skip


def _wer(reference: str, hypothesis: str) -> float:
    import jiwer

    return jiwer.wer(reference, hypothesis) if reference.strip() else float(bool(hypothesis.strip()))
