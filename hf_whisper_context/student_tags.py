"""Entity tags for a Whisper student: the 42 tag tokens, inserted just before `<|notimestamps|>`.

Why there: Whisper — and transformers' timestamp logits processor and ASR pipeline — reads every id after
`<|notimestamps|>` as a timestamp, so tokens appended at the end of the vocabulary would be taken for times. The tags
take the ids n..n+41 (n: the old `<|notimestamps|>` id) and `<|notimestamps|>` and the 1,501 timestamps move up by
42: the tokenizer, the embedding rows (new rows start at the mean embedding) and the generation config are shifted
together, so the model decodes with or without timestamps exactly as before, plus tags.

The tags are special tokens: `pipeline(...)` output skips them (clean text, as users expect). `tags_as_text` gives a
copy of the tokenizer that writes them (`[PERSON]Bob Dylan[/PERSON]`), for entity scores from the model's own tags.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .tags import TAG_TOKENS

NO_TIMESTAMPS = "<|notimestamps|>"


def tag_ids(tokenizer) -> list[int]:
    """Ids of the tag tokens in `tokenizer`; [] when it has none."""
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in TAG_TOKENS] if all(t in vocab for t in TAG_TOKENS) else []


def _shifted_tokenizer(tokenizer, n: int):
    """A copy of `tokenizer` with the tags at ids n..n+41 and every added token from n on moved up by 42."""
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        path = Path(tmp) / "tokenizer.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        for token in data["added_tokens"]:
            token["id"] += len(TAG_TOKENS) if token["id"] >= n else 0
        new = [{"id": n + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i, t in enumerate(TAG_TOKENS)]  # fmt: skip
        data["added_tokens"] = sorted(data["added_tokens"] + new, key=lambda t: t["id"])
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        config_path = Path(tmp) / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        specials = list(config.get("extra_special_tokens") or [])
        at = specials.index(NO_TIMESTAMPS) if NO_TIMESTAMPS in specials else len(specials)
        # in id order: the last special token stays <|notimestamps|> (Whisper's tokenizer starts timestamps after it)
        config["extra_special_tokens"] = specials[:at] + list(TAG_TOKENS) + specials[at:]
        config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
        return type(tokenizer).from_pretrained(tmp)


def insert_tag_tokens(model, tokenizer):
    """Give a Whisper `model` and its `tokenizer` the 42 tag tokens (see the module docstring); the model is changed
    in place. Returns the new tokenizer. A tokenizer that has them already is returned as it is."""
    import torch

    if tag_ids(tokenizer):
        return tokenizer
    n = tokenizer.convert_tokens_to_ids(NO_TIMESTAMPS)
    k = len(TAG_TOKENS)
    new_tokenizer = _shifted_tokenizer(tokenizer, n)
    if new_tokenizer.convert_tokens_to_ids(NO_TIMESTAMPS) != n + k or len(new_tokenizer) != len(tokenizer) + k:
        raise RuntimeError("inserting the tag tokens did not shift <|notimestamps|> and the timestamps by 42")
    old = model.get_input_embeddings().weight.data
    new = torch.cat([old[:n], old[: tokenizer.convert_tokens_to_ids("<|endoftext|>")].mean(0).expand(k, -1), old[n:]])
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(new)
    model.tie_weights()

    def shift(ids):
        return [i + k if i >= n else i for i in ids] if ids is not None else None

    generation = model.generation_config
    generation.no_timestamps_token_id = n + k
    generation.suppress_tokens = shift(generation.suppress_tokens)
    generation.begin_suppress_tokens = shift(generation.begin_suppress_tokens)
    for name in ("suppress_tokens", "begin_suppress_tokens"):
        if getattr(model.config, name, None) is not None:
            setattr(model.config, name, shift(getattr(model.config, name)))
    return new_tokenizer


def tags_as_text(tokenizer):
    """A copy of `tokenizer` for which the tags are text: decoding (and the ASR pipeline) writes them."""
    import copy

    if not tag_ids(tokenizer):
        return tokenizer
    plain = copy.deepcopy(tokenizer)
    plain.extra_special_tokens = [t for t in plain.extra_special_tokens if t not in TAG_TOKENS]
    return plain
