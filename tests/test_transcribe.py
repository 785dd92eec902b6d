import copy
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from hf_whisper_context.audio import AudioError, load_audio
from hf_whisper_context.cli import main
from hf_whisper_context.data.tts import TTSError, synthesize
from hf_whisper_context.transcribe import Decoding, load_asr_pipeline, resolve_model


def _sine(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,rate", [("WAV", 44_100), ("FLAC", 22_050), ("OGG", 48_000)])
def test_load_audio_downmixes_and_resamples(tmp_path, fmt, rate):
    tone = _sine(2.0, rate)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), rate, format=fmt)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.shape[0] - 32_000) <= 1
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16_000 / audio.shape[0] - 440) < 2  # same pitch after resampling
    assert abs(np.abs(audio).max() - 0.375) < 0.03  # mean of the two channels


def test_bad_audio_is_named(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(AudioError, match="cannot decode .*junk.wav"):
        load_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(AudioError, match="0 samples"):
        load_audio(empty)


def test_cli_exit_codes_for_bad_input(tmp_path, capsys):
    junk = tmp_path / "junk.ogg"
    junk.write_bytes(b"OggS garbage")
    assert main(["transcribe", str(junk)]) == 1
    assert "cannot decode" in capsys.readouterr().err
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(16_000, dtype=np.float32), 16_000)
    assert main(["transcribe", str(silence)]) == 3
    captured = capsys.readouterr()
    assert captured.out == "\n" and "silent" in captured.err
    assert main(["transcribe", str(silence), "--model", "whisper-huge-local"]) == 1
    assert "not a bundled model (tiny.en, base)" in capsys.readouterr().err


def test_unknown_model_lists_bundled_names():
    from hf_whisper_context.bundled import BundledModelError, resolve

    with pytest.raises(BundledModelError, match=r"not a bundled model \(tiny.en, base\)"):
        resolve_model("tiny")
    assert resolve_model("openai/whisper-small") == "openai/whisper-small"
    with pytest.raises(BundledModelError, match=r"unknown teacher model 'smollm'.*\(smollm2-135m\)"):
        resolve("smollm", "teacher")


def test_missing_tts_engine_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TTSError, match="apt-get install flite"):
        synthesize("hello", tmp_path / "x.wav")


def test_decoding_is_stated():
    assert Decoding().describe() == "greedy"
    assert Decoding(num_beams=5, language="en").describe() == "beam search (5 beams), language=en"
    assert Decoding().generate_kwargs(multilingual=False) == {"num_beams": 1, "do_sample": False}
    assert Decoding(fallback=True, condition_on_prev=True, timestamp_sum_rule=False).describe() == (
        "greedy, temperature fallback (compression ratio > 1.35 or log-prob < -1.0: 0.2 ... 1.0), conditioned on the "
        "previous text, timestamp-sum rule off")  # fmt: skip


@pytest.mark.slow
def test_cli_transcribes_speech(clips, tmp_path):
    path, reference = clips[1]
    # the real user path: a 44.1 kHz stereo file through the installed console script
    audio, rate = sf.read(path, dtype="float32")
    stereo = np.stack([audio, 0.8 * audio], axis=1)
    sf.write(tmp_path / "stereo44.flac", resample_poly(stereo, 441, 160, axis=0), 44_100)
    script = Path(sys.executable).parent / "hf-whisper-context"
    done = subprocess.run([script, "transcribe", tmp_path / "stereo44.flac"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "greedy" in done.stderr
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])
    wer = jiwer.wer(norm(reference), norm(done.stdout))
    assert wer < 0.35, (done.stdout, wer)


def test_suppressed_tokens_masked_once_give_the_same_scores_and_text(clips, tiny_en):
    """`mask_once`: the processors that build their mask once give transformers' scores, and a long-form pipeline
    (which `load_asr_pipeline` gives) the same tokens as the plain model."""
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor
    from transformers.generation.logits_process import (
        SuppressTokensAtBeginLogitsProcessor,
        SuppressTokensLogitsProcessor,
    )

    from hf_whisper_context.suppress import _faster, mask_once
    from hf_whisper_context.transcribe import load_asr_pipeline

    scores, tokens = torch.randn(2, 100), [3, 7, 99]
    for plain in (SuppressTokensLogitsProcessor(tokens), SuppressTokensAtBeginLogitsProcessor(tokens, begin_index=4)):
        once = _faster(plain)
        assert type(once) is not type(plain) and isinstance(once, type(plain))
        for length in (3, 4, 4):  # before the begin index, at it, and at it again (the mask reused)
            ids = torch.zeros(2, length, dtype=torch.long)
            assert torch.equal(once(ids, scores.clone()), plain(ids, scores.clone()))

    processor = WhisperProcessor.from_pretrained(tiny_en)
    features = processor(load_audio(clips[0][0]), sampling_rate=16_000, return_tensors="pt")
    outputs = []
    for once in (False, True):
        model = WhisperForConditionalGeneration.from_pretrained(tiny_en).eval()
        if once:
            mask_once(model)
        outputs.append(model.generate(**features, return_timestamps=True, num_beams=1, do_sample=False))
    assert torch.equal(outputs[0], outputs[1])
    assert load_asr_pipeline(tiny_en).model._retrieve_logit_processors.masks_once


def test_the_jump_guard_keeps_the_sum_rule_from_forcing_a_timestamp_out_of_reach(tiny_en):
    """Whisper's sum rule forces a timestamp where all timestamps together beat the likeliest text token; the guard
    lets it only where the timestamp it would write is within reach of the text since the segment's start."""
    import torch
    from transformers import GenerationConfig
    from transformers.generation.logits_process import WhisperTimeStampLogitsProcessor

    from hf_whisper_context.timestamp_guard import GuardedTimestamps, guarded

    config = GenerationConfig.from_pretrained(tiny_en)
    plain = WhisperTimeStampLogitsProcessor(config, begin_index=3)
    guard = guarded(plain)
    assert type(guard) is GuardedTimestamps and guarded(guard) is guard and guard.begin_index == 3
    begin, text = plain.timestamp_begin, 500
    ids = torch.tensor([[50257, 50362, 50362, begin + 100, 262, 318]])  # prefix, <|2.00|>, two text tokens

    def scores(pick_s):  # one text token at logit 0; the timestamps' sum above it, the likeliest at `pick_s`
        s = torch.full((1, 51864), -20.0)
        s[0, text], s[0, begin:] = 0.0, -5.0
        s[0, begin + round(pick_s / 0.02)] = -4.0
        return s

    far, near = scores(20.0), scores(6.0)  # reach: 2.00 s + 2 tokens x 1 s + 3 s = 7 s
    assert torch.isinf(plain(ids, far)[0, text])  # the sum rule forces the jump to 20 s
    assert not torch.isinf(guard(ids, far)[0, text])  # the guard does not: the text may go on
    assert torch.equal(guard(ids, far)[0, begin:], plain(ids, far)[0, begin:])
    assert torch.equal(guard(ids, near), plain(ids, near))  # within reach: the rule as Whisper applies it
    quiet = scores(20.0)
    quiet[0, begin:] = -30.0  # no sum above the text: nothing forced either way
    assert torch.equal(guard(ids, quiet), plain(ids, quiet))
    assert Decoding(timestamp_jump_guard=True).describe() == "greedy, timestamp jumps guarded"
    # what `generate` builds: the guard where the generation config asks for it (`transcribe_long` sets it)
    model = load_asr_pipeline(str(tiny_en)).model
    for flag in (True, False):
        config = copy.deepcopy(model.generation_config)
        config.timestamp_jump_guard, config.return_timestamps, config.no_speech_threshold = flag, True, None
        built = model._retrieve_logit_processors(config, None, 3, 1, "cpu")
        assert [type(p) is GuardedTimestamps for p in built].count(True) == int(flag)
