"""Convert real pretrained weights that arrive in non-Hugging-Face formats into `from_pretrained` folders.

- `convert_ctranslate2_whisper`: any CTranslate2 (faster-whisper) Whisper model -> `WhisperForConditionalGeneration`
  folder with tokenizer, feature extractor, processor and generation config, all built locally.
- `export_gguf_llama`: a LLaMA-family GGUF file -> plain safetensors `LlamaForCausalLM` folder.

The CTranslate2 variable names are the inverse of ctranslate2's own converter
(`ctranslate2/converters/transformers.py`, WhisperLoader); its `model.bin` layout is documented in `read_ctranslate2`.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

from .errors import ConfigError

CONVERTER_VERSION = "3"
ENC_DEC = ("encoder", "decoder")

# CTranslate2 dtype ids -> numpy dtypes (bf16 is read as raw uint16 and widened by hand).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.uint16}


def _read_str(f) -> str:
    (n,) = struct.unpack("<H", f.read(2))  # byte length including the trailing NUL
    return f.read(n)[:-1].decode("utf-8")


def read_ctranslate2(model_bin: str | Path) -> dict[str, np.ndarray]:
    """Read a CTranslate2 `model.bin` (binary version >= 5) into float32 / integer numpy arrays.

    Layout (little-endian): `u32 version | str spec | u32 revision | u32 n_vars | n_vars x {str name | u8 rank |
    rank x u32 dim | u8 dtype | u32 nbytes | bytes} | u32 n_aliases | {str alias | str target}`.
    Quantized weights (int8/int16 with a `<name>_scale` per output row) are dequantized: `W = W_q / scale[:, None]`.
    Aliases (e.g. the tied `decoder/projection/weight`) are resolved to their targets.
    """
    model_bin = Path(model_bin)
    raw: dict[str, np.ndarray] = {}
    with open(model_bin, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version < 5:
            raise ConfigError(f"{model_bin}: CTranslate2 binary version {version} is not supported (need >= 5)")
        _read_str(f)  # spec name
        f.read(4)  # spec revision
        (n_vars,) = struct.unpack("<I", f.read(4))
        for _ in range(n_vars):
            name = _read_str(f)
            rank = f.read(1)[0]
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            dtype_id = f.read(1)[0]
            (nbytes,) = struct.unpack("<I", f.read(4))
            if dtype_id not in _CT2_DTYPES:
                raise ConfigError(f"{model_bin}: variable {name} has unknown dtype id {dtype_id}")
            array = np.frombuffer(f.read(nbytes), dtype=_CT2_DTYPES[dtype_id]).reshape(shape)
            if dtype_id == 5:  # bfloat16: the high half of a float32
                array = (array.astype(np.uint32) << 16).view(np.float32)
            raw[name] = array
        (n_aliases,) = struct.unpack("<I", f.read(4))
        aliases = dict(_read_str_pair(f) for _ in range(n_aliases))
    out = {}
    for name, array in raw.items():
        if name.endswith("_scale"):
            continue
        scale = raw.get(f"{name}_scale")
        if scale is not None and array.dtype in (np.int8, np.int16):
            array = array.astype(np.float32) / scale.astype(np.float32).reshape(-1, *([1] * (array.ndim - 1)))
        elif array.dtype in (np.float16, np.float32):
            array = array.astype(np.float32)
        out[name] = array
    for alias, target in aliases.items():
        out[alias] = out[target]
    return out


def _read_str_pair(f) -> tuple[str, str]:
    return _read_str(f), _read_str(f)


def _whisper_state_dict(ct2: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 WhisperSpec variables to `WhisperForConditionalGeneration` keys (fused q/k/v are split)."""
    sd: dict[str, np.ndarray] = {}

    def copy(src: str, dst: str) -> None:
        sd[f"{dst}.weight"] = ct2[f"{src}/weight"]
        if f"{src}/bias" in ct2:
            sd[f"{dst}.bias"] = ct2[f"{src}/bias"]

    def norm(src: str, dst: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = ct2[f"{src}/gamma"], ct2[f"{src}/beta"]

    def split(src: str, dsts: list[str | None], biased: list[bool]) -> None:
        # CTranslate2 fuses projections row-wise; HF's k_proj has no bias, so CT2 stores zeros there.
        weights = np.split(ct2[f"{src}/weight"], len(dsts))
        biases = np.split(ct2[f"{src}/bias"], len(dsts))
        for dst, w, b, has_bias in zip(dsts, weights, biases, biased, strict=True):
            sd[f"{dst}.weight"] = w
            if has_bias:
                sd[f"{dst}.bias"] = b

    for side in ENC_DEC:
        hf = f"model.{side}"
        sd[f"{hf}.embed_positions.weight"] = ct2[f"{side}/position_encodings/encodings"]
        norm(f"{side}/layer_norm", f"{hf}.layer_norm")
        n_layers = len({k.split("/")[1] for k in ct2 if re.match(rf"{side}/layer_\d+/", k)})
        for i in range(n_layers):
            src, dst = f"{side}/layer_{i}", f"{hf}.layers.{i}"
            split(f"{src}/self_attention/linear_0", [f"{dst}.self_attn.{p}_proj" for p in "qkv"], [True, False, True])
            copy(f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
            norm(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            copy(f"{src}/ffn/linear_0", f"{dst}.fc1")
            copy(f"{src}/ffn/linear_1", f"{dst}.fc2")
            norm(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
            if side == "decoder":
                copy(f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
                split(f"{src}/attention/linear_1", [f"{dst}.encoder_attn.{p}_proj" for p in "kv"], [False, True])
                copy(f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
                norm(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
    for conv in ("conv1", "conv2"):
        copy(f"encoder/{conv}", f"model.encoder.{conv}")
    sd["model.decoder.embed_tokens.weight"] = ct2["decoder/embeddings/weight"]
    return sd


def _whisper_tokenizer(tokenizer_json: Path, vocab_size: int):
    """Rebuild a `WhisperTokenizer` from a CTranslate2 `tokenizer.json` (BPE + special tokens).

    Specials are added in id order: Whisper takes `timestamp_begin = last special id + 1`, so the last special must be
    `<|notimestamps|>`; the 1,501 timestamp tokens `<|0.00|>..<|30.00|>` follow as normal added tokens.
    """
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer

    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    vocab = dict(spec["model"]["vocab"])
    # <|endoftext|> is the tokenizer's own unk/bos/eos; timestamp tokens (not special) are rebuilt below.
    taken = set(vocab) | {"<|endoftext|>"}
    specials = [t for t in spec["added_tokens"] if t["special"] and t["content"] not in taken]
    specials.sort(key=lambda t: t["id"])
    tokenizer = WhisperTokenizer(vocab=vocab, merges=merges, pad_token="<|endoftext|>")  # as on the Hub: batching
    tokenizer.add_special_tokens(
        {"extra_special_tokens": [AddedToken(t["content"], special=True, normalized=False) for t in specials]}
    )
    n_timestamps = vocab_size - len(tokenizer)
    tokenizer.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", normalized=False) for i in range(n_timestamps)])
    if (
        len(tokenizer) != vocab_size
        or tokenizer.convert_ids_to_tokens(tokenizer.all_special_ids[-1]) != "<|notimestamps|>"
        or tokenizer.convert_ids_to_tokens(vocab_size - 1) != "<|30.00|>"
    ):
        raise ConfigError(f"{tokenizer_json}: rebuilt tokenizer has {len(tokenizer)} tokens, the model {vocab_size}")
    return tokenizer


def _check_vocabulary(tokenizer, vocabulary_txt: Path) -> None:
    """Every id of the rebuilt tokenizer must name the same token as CTranslate2's `vocabulary.txt`."""
    expected = vocabulary_txt.read_text(encoding="utf-8").split("\n")[: len(tokenizer)]
    got = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    bad = [i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b]
    if bad or len(expected) != len(got):
        i = bad[0] if bad else min(len(got), len(expected))
        raise ConfigError(f"tokenizer disagrees with {vocabulary_txt} at {len(bad)} ids, first id {i}")


def _generation_config(ct2_config: dict, tokenizer, multilingual: bool, max_length: int):
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = GenerationConfig(
        # bos as on the Hub checkpoints: the start token for English-only models, end-of-text for multilingual ones
        bos_token_id=eot if multilingual else sot,
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=max_length,
        suppress_tokens=list(ct2_config.get("suppress_ids") or []),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin") or []),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads") or []],
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        is_multilingual=multilingual,
        return_timestamps=False,
        num_beams=1,  # greedy unless asked: pipeline() would otherwise default to beam search
        do_sample=False,
    )
    if multilingual:
        lang_ids = ct2_config.get("lang_ids") or []
        config.lang_to_id = {tokenizer.convert_ids_to_tokens(i): i for i in lang_ids}
        config.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
        # Without a task, transformers detects the language but omits <|transcribe|> and decodes garbage.
        config.task = "transcribe"
    return config


def convert_ctranslate2_whisper(ct2_dir: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Convert a CTranslate2 Whisper model folder into a `from_pretrained` folder.

    Args:
        ct2_dir: folder with `model.bin`, `config.json`, `tokenizer.json` and (optionally, for a check)
            `vocabulary.txt`, as written by `ct2-transformers-converter` or shipped with faster-whisper.
        out_dir: where the Hugging Face folder is written (created; existing files are overwritten).
        dtype: "float32", "float16" or "bfloat16" for the saved weights. int8/int16 models are dequantized first.

    All dimensions come from the tensors: layer counts from `layer_N`, d_model and vocab from the decoder embeddings,
    FFN width from `ffn/linear_0`, mel bins from `conv1`, context lengths from the position tables.
    """
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    for name in ("model.bin", "config.json", "tokenizer.json"):
        if not (ct2_dir / name).is_file():
            raise FileNotFoundError(f"{ct2_dir} is not a CTranslate2 Whisper folder: {name} is missing")
    ct2 = read_ctranslate2(ct2_dir / "model.bin")
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    sd = _whisper_state_dict(ct2)

    vocab_size, d_model = sd["model.decoder.embed_tokens.weight"].shape
    n_layers = {s: len({k.split(".")[3] for k in sd if k.startswith(f"model.{s}.layers.")}) for s in ENC_DEC}
    multilingual = vocab_size >= 51865  # openai/whisper's own rule: English-only models have 51,864 tokens
    tokenizer = _whisper_tokenizer(ct2_dir / "tokenizer.json", vocab_size)
    if (ct2_dir / "vocabulary.txt").is_file():
        _check_vocabulary(tokenizer, ct2_dir / "vocabulary.txt")
    generation_config = _generation_config(
        ct2_config, tokenizer, multilingual, max_length=sd["model.decoder.embed_positions.weight"].shape[0]
    )
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=sd["model.encoder.conv1.weight"].shape[1],
        d_model=d_model,
        encoder_layers=n_layers["encoder"],
        decoder_layers=n_layers["decoder"],
        encoder_attention_heads=int(ct2["encoder/num_heads"]),
        decoder_attention_heads=int(ct2["decoder/num_heads"]),
        encoder_ffn_dim=sd["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=sd["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=sd["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=sd["model.decoder.embed_positions.weight"].shape[0],
        bos_token_id=generation_config.bos_token_id,
        eos_token_id=generation_config.eos_token_id,
        pad_token_id=generation_config.pad_token_id,
        decoder_start_token_id=generation_config.decoder_start_token_id,
        tie_word_embeddings=True,
        dtype=dtype,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    # copies: CTranslate2 aliases identical tensors (e.g. fresh layer norms), which must not share storage here
    state = {k: torch.from_numpy(np.array(v)).to(getattr(torch, dtype)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]  # tied to the decoder embeddings
    if missing or unexpected:
        raise ConfigError(f"{ct2_dir}: weights do not fit Whisper: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    model.generation_config = generation_config

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir


def export_gguf_llama(gguf_path: str | Path, out_dir: str | Path, dtype: str = "float32") -> Path:
    """Load a LLaMA-family GGUF file through transformers (dequantized) and save a plain safetensors folder.

    transformers refuses to `save_pretrained` a model loaded from GGUF, so the weights are moved into a fresh
    `AutoModelForCausalLM` built from the same config (minus its quantization config), with embeddings re-tied.
    Needs the `gguf` and `accelerate` packages.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = loaded.config
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    config.dtype = dtype
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict({k: v.to(getattr(torch, dtype)) for k, v in loaded.state_dict().items()}, assign=True)
    model.tie_weights()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
