"""A local demo page (Gradio, the `app` extra): audio in (uploaded, recorded, or a built test article) and, per model,
the transcript with its entities highlighted by type, its word-level differences from a reference, the metrics
table (loops and dropped windows included) and the real-time factor.

    hf-whisper-context app --models tiny.en outputs/demo/checkpoints/distilled-merged [--data outputs/corpus]

The same `build_app` serves a Hugging Face Space: the repository's `app.py` reads the models from
`HF_WHISPER_CONTEXT_MODELS` (space-separated). Long audio is transcribed with the long-form path (sequential
decoding, streamed in 10-minute blocks, never loaded whole) under a progress bar, up to `max_minutes`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .audio import AudioError, duration, is_silent, stream
from .metrics import compute_all, summary
from .metrics.alignment import align_texts, capitalised, marks
from .report import METRIC_NAMES, fmt
from .tags import has_tags, parse

logger = logging.getLogger(__name__)

DIFF_COLORS = {"substitution": "#f4a261", "deletion": "#e76f51", "insertion": "#9b5de5", "punctuation": "#2a9d8f",
               "case": "#e9c46a"}  # fmt: skip
MAX_MINUTES = 30.0
STRATEGY = "sequential"  # Whisper's own long-form decoding: the strategy the students are trained for


def entity_spans(text: str, tagger=None) -> tuple[list[tuple[str, str | None]], str]:
    """HighlightedText value of a transcript with entities marked by type, and where they came from: the model's
    own tags when it writes them, otherwise the project's tagger (spaCy and rules)."""
    if has_tags(text):
        plain, spans = parse(text)
        source = "the model's own tags"
    else:
        from .data.entities import EntityTagger

        plain, source = text, "the project's tagger (spaCy + rules)"
        spans = (tagger or EntityTagger()).tag([plain])[0]
    pieces, pos = [], 0
    for start, end, label in spans:
        pieces += [(plain[pos:start], None), (plain[start:end], label)]
        pos = end
    pieces.append((plain[pos:], None))
    return [(t, label) for t, label in pieces if t], source


def word_diff(reference: str, hypothesis: str) -> list[tuple[str, str | None]]:
    """HighlightedText value of the hypothesis against the reference, word by word: substitutions (the hypothesis
    word, the reference's in brackets), deletions (the missing reference word), insertions, and words right but
    for their punctuation or case."""
    aligned = align_texts(reference, hypothesis)
    out = []
    for pair in aligned.pairs:
        ref = aligned.ref[pair.ref] if pair.ref is not None else None
        hyp = aligned.hyp[pair.hyp] if pair.hyp is not None else None
        if pair.op == "delete":
            out.append((ref, "deletion"))
        elif pair.op == "insert":
            out.append((hyp, "insertion"))
        elif pair.op == "substitute":
            out.append((f"{hyp} [{ref}]", "substitution"))
        elif marks(ref) != marks(hyp):
            out.append((hyp, "punctuation"))
        elif capitalised(ref) != capitalised(hyp):
            out.append((hyp, "case"))
        else:
            out.append((hyp, None))
    return [(f"{word} ", label) for word, label in out]


def metrics_rows(reference: str, transcripts: dict[str, str], seconds: dict[str, float], audio_s: float) -> list:
    """Rows (metric, one value per model) of the headline metrics against `reference` (if any) and the RTF."""
    rows = []
    if reference.strip():
        scores = {name: summary(compute_all([reference], [text])) for name, text in transcripts.items()}
        for key, label in METRIC_NAMES.items():
            rows.append([label, *(fmt(key, scores[name][key]) for name in transcripts)])
    rows.append(["Real-time factor (transcription s / audio s)",
                 *(f"{seconds[name] / max(audio_s, 1e-9):.3f}" for name in transcripts)])  # fmt: skip
    return rows


def check_upload(path: str | None, max_minutes: float) -> float:
    """The upload's length in seconds, or `AudioError` with a message for the page."""
    if not path:
        raise AudioError("no audio: upload a file, record something, or pick a test article")
    seconds = duration(path)
    if seconds > max_minutes * 60:
        raise AudioError(f"{Path(path).name} lasts {seconds / 60:.0f} min; this page transcribes up to "
                         f"{max_minutes:.0f} min (`--max-minutes`); use `hf-whisper-context evaluate` or "
                         "`transcribe_long` for longer recordings")  # fmt: skip
    if all(is_silent(block) for block in stream(path, 600.0)):
        raise AudioError(f"{Path(path).name} is silent (an empty recording): nothing to transcribe")
    return seconds


def build_app(models: list[str], data: str | None = None, max_minutes: float = MAX_MINUTES, device=None):
    """The Gradio Blocks page for `models` (bundled names, folders or Hub ids); `data`: a built corpus whose test
    articles can be picked."""
    import gradio as gr

    from .timestamp_guard import asked_for
    from .transcribe import load_asr_pipeline, transcribe_long

    pipelines = {}
    names = [Path(str(m)).name for m in models]
    articles = {}
    if data:
        from .data.dataset import load_swc_articles

        articles = {a["title"]: (a["audio_path"], a["text_tagged"]) for a in load_swc_articles(data, "test")}

    def pick(title):
        if not title:
            return None, ""
        paths, reference = articles[title]
        return paths[0], reference

    def run(path, reference, progress=gr.Progress()):
        try:
            audio_s = check_upload(path, max_minutes)
        except AudioError as e:
            empty = [gr.update(value=None)] * (3 * len(models))
            return [f"**Cannot transcribe:** {e}", *empty, gr.update(value=None)]
        transcripts, seconds = {}, {}
        for k, (model, name) in enumerate(zip(models, names, strict=True)):
            if name not in pipelines:
                progress(k / len(models), desc=f"loading {name}")
                pipelines[name] = load_asr_pipeline(model, device)

            def tick(done, k=k, name=name):
                progress((k + done / audio_s) / len(models), desc=f"{name}: {done / 60:.0f} of {audio_s / 60:.1f} min")

            started = time.perf_counter()
            transcripts[name] = transcribe_long(path, pipelines[name], STRATEGY, on_block=tick).text
            seconds[name] = time.perf_counter() - started
        outputs = []
        for name in names:
            highlighted, source = entity_spans(transcripts[name])
            diff = word_diff(reference, transcripts[name]) if reference.strip() else None
            outputs += [highlighted, diff, f"entities from {source}"]
        table = metrics_rows(reference, transcripts, seconds, audio_s)
        guarded = [n for n in names if asked_for(pipelines[n].model.generation_config)]
        guard = f"; timestamp jumps guarded for {', '.join(guarded)} (their generation config)" if guarded else ""
        status = f"Transcribed {audio_s:.1f} s of audio ({STRATEGY} long-form decoding, greedy{guard})."
        return [status, *outputs, gr.update(value=table, headers=["metric", *names])]

    with gr.Blocks(title="hf_whisper_context: compare transcripts") as page:
        gr.Markdown("# Compare transcripts\nUpload or record speech (or pick a test article), optionally paste the "
                    "reference transcript, and compare the models: entities by type, differences from the "
                    "reference, metrics.")  # fmt: skip
        with gr.Row():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="audio")
            with gr.Column():
                chooser = gr.Dropdown(choices=[""] + sorted(articles), value="", label="Test article",
                                      visible=bool(articles), elem_id="article")  # fmt: skip
                reference = gr.Textbox(label="Reference transcript (optional)", lines=4, elem_id="reference")
        button = gr.Button("Transcribe", variant="primary", elem_id="transcribe")
        status = gr.Markdown(elem_id="status")
        outputs = []
        with gr.Row():
            for k, name in enumerate(names):
                with gr.Column():
                    gr.Markdown(f"### {name}")
                    outputs.append(gr.HighlightedText(label="Transcript, entities", elem_id=f"entities-{k}",
                                                      combine_adjacent=True, show_legend=True))  # fmt: skip
                    outputs.append(gr.HighlightedText(label="Against the reference", elem_id=f"diff-{k}",
                                                      color_map=DIFF_COLORS, show_legend=True))  # fmt: skip
                    outputs.append(gr.Markdown(elem_id=f"source-{k}"))
        table = gr.Dataframe(headers=["metric", *names], label="Metrics", elem_id="metrics", interactive=False)
        chooser.change(pick, chooser, [audio, reference])
        button.click(run, [audio, reference], [status, *outputs, table])
    return page


def launch(models: list[str], port: int = 7860, data: str | None = None, max_minutes: float = MAX_MINUTES,
           host: str = "127.0.0.1") -> None:  # fmt: skip
    """Serve the page on `host:port` until interrupted."""
    build_app(models, data, max_minutes).queue().launch(server_name=host, server_port=port, show_error=True)


def space_models() -> list[str]:
    """The models of a Hugging Face Space: `HF_WHISPER_CONTEXT_MODELS` (space-separated), else tiny.en."""
    return os.environ.get("HF_WHISPER_CONTEXT_MODELS", "tiny.en").split()
