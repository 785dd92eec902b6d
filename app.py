"""Hugging Face Space entry point: the `hf-whisper-context app` page. Set the Space variable
`HF_WHISPER_CONTEXT_MODELS` to the models to compare (space-separated Hub ids, e.g.
"openai/whisper-tiny.en you/whisper-tiny.en-distilled"); requirements.txt: `hf_whisper_context[app]`."""

from hf_whisper_context.app import build_app, space_models

demo = build_app(space_models())

if __name__ == "__main__":
    demo.queue().launch()
