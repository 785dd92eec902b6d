import pytest

from hf_whisper_context import bundled
from hf_whisper_context.data.tts import synthesize

# Sentences dense in named entities and numbers, as in the target domain; one voice each.
CLIPS = [
    ("slt", "Albert Einstein was born in Ulm, in the Kingdom of Württemberg, on the fourteenth of March 1879."),
    ("rms", "The Apollo 11 mission landed on the Moon in July 1969, with Neil Armstrong and Buzz Aldrin."),
    ("awb", "Abraham Lincoln was the sixteenth president of the United States, from 1861 until 1865."),
]


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    """Three real speech clips (flite, 16 kHz WAV) with their reference sentences."""
    root = tmp_path_factory.mktemp("clips")
    return [(synthesize(text, root / f"clip{i}.wav", voice=voice), text) for i, (voice, text) in enumerate(CLIPS)]


@pytest.fixture(scope="session")
def call(tmp_path_factory):
    """Real human speech: the phone call that ships in the pyannote.audio wheel, cut into its 13 utterances by its
    STM transcript; an audio folder (wav files + metadata.csv: file_name, text, speaker, call, start) and the rows."""
    import soundfile as sf
    from datasets import Dataset

    from hf_whisper_context.audio import SAMPLING_RATE, load_audio

    source = bundled.phone_call()
    audio = load_audio(source / "sample.wav")
    folder = tmp_path_factory.mktemp("call")
    rows = []
    for k, line in enumerate((source / "sample.stm").read_text().splitlines()):
        name, _, speaker, start, end, text = line.split(maxsplit=5)
        sf.write(folder / f"u{k:02d}.wav", audio[int(float(start) * SAMPLING_RATE) : int(float(end) * SAMPLING_RATE)],
                 SAMPLING_RATE)  # fmt: skip
        rows.append({"file_name": f"u{k:02d}.wav", "text": text, "speaker": speaker, "call": name,
                     "start": float(start)})  # fmt: skip
    Dataset.from_list(rows).to_csv(folder / "metadata.csv", index=False)
    return folder, rows


CORPUS_TITLES = ("Albedo", "Achilles", "Abraham Lincoln", "Aristotle")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Four real Wikipedia articles, 160 words each, spoken by flite into SWC folders."""
    from hf_whisper_context.data.corpus import CorpusConfig, build_corpus

    root = tmp_path_factory.mktemp("corpus")
    report = build_corpus(root, CorpusConfig(titles=CORPUS_TITLES, max_words=160, min_words=60, seed=1))
    assert sorted(report.built) == sorted(CORPUS_TITLES) and report.skipped == []
    return root


def swc_chunk_dataset():
    """Real English SWC chunk texts (Jack_Shephard), with their neighbours as context; the sixth is empty (a chunk
    the teacher cache skips and counts)."""
    import json
    import re
    from pathlib import Path

    from datasets import Dataset

    path = Path(__file__).parent / "fixtures" / "swc_english_chunks" / "example_chunk.jsonl"
    rows = [c for line in path.read_text().splitlines() if line.strip() for c in json.loads(line)["chunks"]]
    texts = [re.sub(r"</?[A-Z_]+>", "", c["puncted_text"]).strip() for c in rows][:12]
    texts[5] = "   "
    before = [" ".join(texts[:i]) for i in range(len(texts))]
    after = [" ".join(texts[i + 1 :]) for i in range(len(texts))]
    return Dataset.from_dict({"text": texts, "context_before": before, "context_after": after})


def tiny_whisper_config(**overrides):
    """A small random Whisper's config with the real English vocabulary (51,864 tokens): builds in milliseconds."""
    from transformers import WhisperConfig

    sizes = dict(vocab_size=51864, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                 decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, decoder_start_token_id=50257,
                 pad_token_id=50256)  # fmt: skip
    return WhisperConfig(**{**sizes, **overrides})


def tiny_llama(tokenizer):
    """A one-layer random Llama (hidden size 16) for a real teacher tokenizer, in eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=1, **sizes)).eval()


@pytest.fixture(scope="session")
def tiny_en():
    return bundled.whisper("tiny.en")


@pytest.fixture(scope="session")
def tiny_models(tiny_en, tmp_path_factory):
    """A tiny random Whisper (the real tiny.en processor) and a tiny random Llama (SmolLM2's tokenizer), saved as
    folders: the main job's and the experiment harness's whole paths run at toy size."""
    import torch
    from transformers import AutoTokenizer, WhisperForConditionalGeneration, WhisperProcessor

    root = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    student = WhisperForConditionalGeneration(tiny_whisper_config())
    student.generation_config = WhisperForConditionalGeneration.from_pretrained(tiny_en).generation_config
    student.generation_config.max_length = 64
    student.save_pretrained(root / "student")
    WhisperProcessor.from_pretrained(tiny_en).save_pretrained(root / "student")
    tokenizer = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    tiny_llama(tokenizer).save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    return root
