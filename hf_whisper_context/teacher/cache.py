"""Cache the teacher's outputs per chunk, so training never holds the teacher in memory.

For each chunk the teacher reads its window (`teacher.window`: the chunk inside its article context) and stores:
- the teacher token ids of the chunk text and each token's character span in that text;
- top-k log-probabilities (fp16) and ids (int32) of the distribution *predicting* each of those tokens;
- an embedding of the whole window (pooling "last" non-pad token or masked "mean", of hidden layer `layer`), fp16.

Shards of `shard_size` consecutive rows are safetensors files written atomically; a run resumes by skipping
finished shards; with several processes each writes its own shards. Every shard carries the cache's fingerprint
(teacher, adapter, k, window, pooling, layer, text column, text version, data): a changed setting never reads a
stale cache. The teacher's tokenizer is saved with the cache (`tokenizer/`) and its LM-head rows recorded, so that
the vocabulary map is built from the tokenizer that wrote the ids (`TeacherCache.vocab_map`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import HfWhisperContextError
from ..utils import atomic_write, read_json, tokenizer_hash
from .window import DEFAULT_CONTEXT_WORDS, max_tokens, teacher_outputs, teacher_window

logger = logging.getLogger(__name__)

TEXT_VERSION = "1"  # bump when the text fed to the teacher changes
TOKENIZER_DIR = "tokenizer"


class CacheError(HfWhisperContextError, ValueError):
    """A cache that cannot be used as asked (another fingerprint, a broken shard, a bad row)."""


@dataclass(frozen=True)
class CacheConfig:
    k: int = field(default=64, metadata={"help": "Top-k log-probs kept per teacher position."})
    context_words: int = field(
        default=DEFAULT_CONTEXT_WORDS,
        metadata={
            "help": "Words of article context the teacher reads (half before, half after), at most what the data has."
        },
    )
    pooling: str = field(default="last", metadata={"help": "Window embedding: last (non-pad token) or mean."})
    layer: int = field(default=-1, metadata={"help": "Hidden layer pooled for the embedding."})
    target: str = field(default="text", metadata={"help": "The chunk text the student learns: text or text_tagged."})
    max_length: int | None = field(default=None, metadata={
        "help": "Teacher tokens per window (default: window.MAX_TOKENS, at most the tokenizer's)."})  # fmt: skip
    batch_size: int = field(default=8, metadata={"help": "Windows per teacher forward pass."})
    shard_size: int = field(default=256, metadata={"help": "Rows per safetensors shard."})

    def __post_init__(self):
        if self.pooling not in ("last", "mean"):
            raise CacheError(f"pooling must be 'last' or 'mean', not {self.pooling!r}")
        if self.k < 1:
            raise CacheError(f"k must be >= 1, got {self.k}")


def teacher_identity(name_or_path: str, model=None, adapter: str | None = None) -> dict:
    """What identifies the teacher's weights: its name, config and, for local folders, file sizes and mtimes."""
    identity = {"teacher": str(name_or_path), "adapter": str(adapter) if adapter else None}
    for key, path in (("teacher_files", name_or_path), ("adapter_files", adapter)):
        if path and Path(path).is_dir():
            files = sorted(p for p in Path(path).iterdir() if p.suffix in (".json", ".safetensors", ".gguf"))
            identity[key] = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    if model is not None:
        identity["config"] = hashlib.sha256(model.config.to_json_string().encode()).hexdigest()[:16]
    return identity


def fingerprint(identity: dict, config: CacheConfig, data_fingerprint: str) -> str:
    settings = {k: v for k, v in asdict(config).items() if k not in ("batch_size", "shard_size", "target")}
    settings["text_column"] = config.target  # its earlier name: caches written before the rename stay valid
    payload = {"identity": identity, "settings": settings, "text_version": TEXT_VERSION, "data": data_fingerprint}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _forward(model, batch: list[dict], config: CacheConfig, pad_id: int) -> list[dict]:
    """`teacher_outputs` stored as the cache stores them: fp16 values, int32 ids, numpy."""
    import torch

    results = teacher_outputs(model, batch, config.k, config.pooling, config.layer, pad_id)
    for r in results:
        r["topk_logprobs"] = r["topk_logprobs"].to(torch.float16).cpu().numpy()
        r["topk_ids"] = r["topk_ids"].to(torch.int32).cpu().numpy()
        r["valid"] = r["valid"].cpu().numpy()
        r["embedding"] = r["embedding"].to(torch.float16).cpu().numpy()
    return results


def _shard_path(out: Path, index: int) -> Path:
    return out / f"shard-{index:05d}.safetensors"


def _write_shard(path: Path, rows: list[dict], fp: str, k: int, dim: int) -> None:
    """Write one shard; a shard whose rows were all skipped is written empty (so that it counts as done)."""
    from safetensors.numpy import save

    lengths = np.array([len(r["token_ids"]) for r in rows], dtype=np.int64)
    empty = {"token_ids": np.zeros(0, np.int32), "spans": np.zeros((0, 2), np.int32), "valid": np.zeros(0, bool),
             "topk_logprobs": np.zeros((0, k), np.float16), "topk_ids": np.zeros((0, k), np.int32)}  # fmt: skip
    tensors = {
        "row_index": np.array([r["row_index"] for r in rows], dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "token_ids": np.concatenate([empty["token_ids"], *(np.asarray(r["token_ids"], np.int32) for r in rows)]),
        "spans": np.concatenate([empty["spans"], *(np.asarray(r["spans"], np.int32).reshape(-1, 2) for r in rows)]),
        "topk_logprobs": np.concatenate([empty["topk_logprobs"], *(r["topk_logprobs"] for r in rows)]),
        "topk_ids": np.concatenate([empty["topk_ids"], *(r["topk_ids"] for r in rows)]),
        "valid": np.concatenate([empty["valid"], *(r["valid"] for r in rows)]).astype(np.uint8),
        "embedding": np.stack([r["embedding"] for r in rows]) if rows else np.zeros((0, dim), np.float16),
    }
    atomic_write(path, save(tensors, metadata={"fingerprint": fp, "sha256": _checksum(tensors)}))


def _checksum(tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode() + str(tensors[name].dtype).encode() + str(tensors[name].shape).encode())
        digest.update(np.ascontiguousarray(tensors[name]).tobytes())
    return digest.hexdigest()


def _read_shard(path: Path, fp: str) -> dict[str, np.ndarray] | None:
    """A shard's tensors if it was written for fingerprint `fp` and its data still matches the checksum written
    with it; None for a missing, truncated, foreign or damaged file (logged), which caching then writes again."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            if meta.get("fingerprint") != fp:
                return None
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as e:
        logger.warning("%s cannot be read (%s): it will be written again", path, e)
        return None
    if meta.get("sha256") != _checksum(tensors):
        logger.warning("%s does not match the checksum written with it (damaged): it will be written again", path)
        return None
    return tensors


def cache_teacher(
    dataset,
    model,
    tokenizer,
    out_dir,
    config=CacheConfig(),
    identity=None,
    process_index=0,
    num_processes=1,
    stop_after_shards=None,
) -> Path:
    """Cache the teacher's outputs for every row of `dataset` (chunk rows of `load_swc`) into `out_dir`.

    Resumes a killed run; refuses a folder holding a cache of another fingerprint. `stop_after_shards` stops after
    writing that many shards (for tests and time-boxed jobs). Rows with empty text are skipped and counted.
    `identity` (from `teacher_identity`) names the teacher in the fingerprint; under `accelerate launch` pass
    `process_index`/`num_processes` (each process writes every `num_processes`-th shard).
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = identity or teacher_identity(getattr(model, "name_or_path", "teacher"), model)
    data_fingerprint = getattr(dataset, "_fingerprint", None)
    fp = fingerprint(identity, config, data_fingerprint or str(len(dataset)))
    manifest = out / "cache.json"
    existing = read_json(manifest, CacheError).get("fingerprint") if manifest.is_file() else fp
    if existing != fp:
        if any(out.glob("shard-*.safetensors")):
            raise CacheError(
                f"{out} holds a teacher cache of fingerprint {existing}, not {fp} (another teacher, k, window, "
                "pooling, layer or data); use another folder or delete it"
            )
        logger.warning("%s: the cache.json of a run that wrote no shard (fingerprint %s) is replaced", out, existing)
    if (existing != fp or not manifest.is_file()) and process_index == 0:
        tokenizer.save_pretrained(out / TOKENIZER_DIR)
        info = {"fingerprint": fp, "config": asdict(config), "identity": identity, "rows": len(dataset),
                "shard_size": config.shard_size, "k": config.k, "data_fingerprint": data_fingerprint,
                "lm_head_rows": model.get_output_embeddings().weight.shape[0],
                "embedding_dim": model.config.hidden_size, "tokenizer_sha256": tokenizer_hash(tokenizer)}  # fmt: skip
        atomic_write(manifest, json.dumps(info, indent=2))
    max_length = max_tokens(tokenizer, config.max_length)
    n_shards = math.ceil(len(dataset) / config.shard_size)
    mine = [s for s in range(n_shards) if s % num_processes == process_index]
    if not mine:
        logger.warning("process %d of %d has no shard to write: %d rows make %d shards of %d (lower shard_size to "
                       "give every process work)", process_index, num_processes, len(dataset), n_shards,
                       config.shard_size)  # fmt: skip
    todo = [s for s in mine if _read_shard(_shard_path(out, s), fp) is None]
    if len(todo) < len(mine):
        logger.info("resuming: %d of %d shards already cached", len(mine) - len(todo), len(mine))
    skipped = nonfinite = tokens = 0
    started = time.perf_counter()
    bar = tqdm(total=sum(min(config.shard_size, len(dataset) - s * config.shard_size) for s in todo),
               desc="caching teacher", unit="chunk")  # fmt: skip
    for written, shard in enumerate(todo):
        if stop_after_shards is not None and written >= stop_after_shards:
            break
        lo, hi = shard * config.shard_size, min(len(dataset), (shard + 1) * config.shard_size)
        rows = []
        for index in range(lo, hi):
            window = teacher_window(dataset[index], tokenizer, config.context_words, max_length, config.target)
            if not window:
                skipped += 1
                continue
            rows.append({"row_index": index, **window})
        rows.sort(key=lambda r: len(r["input_ids"]))  # batches of similar length pad little
        for b in range(0, len(rows), config.batch_size):
            batch = rows[b : b + config.batch_size]
            for r, result in zip(batch, _forward(model, batch, config, tokenizer.pad_token_id), strict=True):
                r["token_ids"] = r["input_ids"][r["chunk_start"] : r["chunk_start"] + r["chunk_len"]]
                nonfinite += result.pop("nonfinite")
                r.update(result)
                tokens += len(r["input_ids"])
            bar.update(len(batch))
            bar.set_postfix(tokens_per_s=f"{tokens / (time.perf_counter() - started):.0f}")
        rows.sort(key=lambda r: r["row_index"])
        _write_shard(_shard_path(out, shard), rows, fp, config.k, model.config.hidden_size)
        bar.update(hi - lo - len(rows))
    bar.close()
    if skipped:
        logger.warning("skipped %d rows with empty text", skipped)
    if nonfinite:
        logger.warning("%d teacher positions had NaN/inf log-probs and are masked", nonfinite)
    return out


class TeacherCache:
    """Read a cache: `cache[row_index]` -> dict of numpy arrays (token_ids, spans, topk_logprobs, topk_ids, valid,
    embedding), or None for a skipped row. Refuses a cache whose fingerprint differs from `expected_fingerprint`."""

    def __init__(self, folder, expected_fingerprint: str | None = None):
        self.folder = Path(folder)
        manifest = self.folder / "cache.json"
        if not manifest.is_file():
            raise CacheError(f"{self.folder} is not a teacher cache (no cache.json)")
        self.info = read_json(manifest, CacheError)
        self.fingerprint = self.info["fingerprint"]
        if expected_fingerprint and expected_fingerprint != self.fingerprint:
            raise CacheError(
                f"{self.folder} was built with fingerprint {self.fingerprint}, not {expected_fingerprint}"
            )
        self._rows: dict[int, tuple[dict, int]] = {}
        n_shards = math.ceil(self.info["rows"] / self.info["shard_size"])
        missing = []
        for s in range(n_shards):
            shard = _read_shard(_shard_path(self.folder, s), self.fingerprint)
            if shard is None:
                missing.append(s)
                continue
            for i, row in enumerate(shard["row_index"].tolist()):
                self._rows[row] = (shard, i)
        if missing:
            raise CacheError(f"{self.folder}: shards {missing[:5]} are missing, damaged or from another cache; rerun "
                             "caching (it resumes and writes only those)")  # fmt: skip

    def __len__(self) -> int:
        return self.info["rows"]

    def check_dataset(self, dataset) -> None:
        """Refuse a dataset that is not the one this cache was built from (other length or fingerprint)."""
        if len(dataset) != len(self):
            raise CacheError(f"the teacher cache {self.folder} has {len(self)} rows, the dataset {len(dataset)}: "
                             "it was built from another dataset; rebuild it with `teacher cache`")  # fmt: skip
        built_from, given = self.info.get("data_fingerprint"), getattr(dataset, "_fingerprint", None)
        if built_from and given and built_from != given:
            raise CacheError(f"the teacher cache {self.folder} was built from dataset {built_from}, not {given} "
                             "(changed data or chunking); rebuild it with `teacher cache`")  # fmt: skip

    @property
    def embedding_dim(self) -> int:
        """Size of the cached context embeddings (the teacher's hidden size)."""
        if "embedding_dim" in self.info:
            return int(self.info["embedding_dim"])
        return int(next(r for r in map(self.__getitem__, sorted(self._rows)) if r is not None)["embedding"].shape[0])

    def tokenizer(self):
        """The teacher tokenizer that wrote this cache's token ids."""
        from transformers import AutoTokenizer

        if not (self.folder / TOKENIZER_DIR).is_dir():
            raise CacheError(f"{self.folder} was written by an older version without its tokenizer; rebuild it")
        return AutoTokenizer.from_pretrained(self.folder / TOKENIZER_DIR)

    def vocab_map(self, student_tokenizer):
        """`build_vocab_map` from the tokenizer that wrote this cache, sized to the teacher's LM-head rows."""
        from ..losses import build_vocab_map

        return build_vocab_map(student_tokenizer, self.tokenizer(), self.info.get("lm_head_rows"))

    def check_tokenizer(self, tokenizer) -> None:
        """Refuse a teacher tokenizer other than the one that wrote the cache (its ids would mean other tokens)."""
        recorded = self.info.get("tokenizer_sha256")
        if recorded and tokenizer_hash(tokenizer) != recorded:
            raise CacheError(
                f"the teacher cache {self.folder} was written by the tokenizer in {self.folder / TOKENIZER_DIR} "
                f"(vocabulary {recorded}, {self.info['lm_head_rows']} LM-head rows), not by "
                f"{getattr(tokenizer, 'name_or_path', 'the one given')!r} (vocabulary {tokenizer_hash(tokenizer)}, "
                f"{len(tokenizer)} tokens): build the vocabulary map with TeacherCache.vocab_map(student_tokenizer)"
            )

    def check_vocab_map(self, vocab_map) -> None:
        """Refuse a vocabulary map built from another teacher tokenizer than the cache's, or one that does not cover
        every id the cache's teacher can emit."""
        built_from = getattr(vocab_map, "teacher_tokenizer", None)  # (name, hash), stamped by build_vocab_map
        recorded = self.info.get("tokenizer_sha256")
        if built_from and recorded and built_from[1] != recorded:
            raise CacheError(
                f"the vocabulary map was built from the teacher tokenizer {built_from[0]!r} (vocabulary "
                f"{built_from[1]}), but the teacher cache {self.folder} was written by the one in "
                f"{self.folder / TOKENIZER_DIR} (vocabulary {recorded}): use TeacherCache.vocab_map(student_tokenizer)"
            )
        rows = self.info.get("lm_head_rows")
        if rows and len(vocab_map) < rows:
            raise CacheError(
                f"the vocabulary map has {len(vocab_map)} entries but the teacher that wrote {self.folder} has "
                f"{rows} LM-head rows (built from another tokenizer?): use TeacherCache.vocab_map(student_tokenizer)"
            )

    def __getitem__(self, row: int) -> dict | None:
        if row not in self._rows:
            return None
        shard, i = self._rows[row]
        a, b = shard["offsets"][i], shard["offsets"][i + 1]
        return {
            "token_ids": shard["token_ids"][a:b],
            "spans": shard["spans"][a:b],
            "topk_logprobs": shard["topk_logprobs"][a:b],
            "topk_ids": shard["topk_ids"][a:b],
            "valid": shard["valid"][a:b].astype(bool),
            "embedding": shard["embedding"][i],
        }


def cache_corpus(data, output_dir, config: CacheConfig = CacheConfig(), teacher: str = "smollm2-135m", adapter=None,
                 quantization=None, dtype: str = "float32", test_articles: int = 3) -> dict[str, Path]:  # fmt: skip
    """Cache the teacher for every split of `data` (an SWC folder, or a `DatasetDict` of `prepare_dataset` rows)
    into `<output_dir>/<split>`. Under `accelerate launch` each process writes its share of the shards (see
    `cache_teacher`)."""
    from accelerate import PartialState

    from ..data.dataset import load_swc
    from .load import load_teacher

    splits = load_swc(data, test_articles=test_articles) if isinstance(data, (str, os.PathLike)) else data
    state = PartialState()
    model, tokenizer = load_teacher(teacher, quantization, dtype=dtype, adapter=adapter)
    if quantization is None:
        model.to(state.device)
    identity = teacher_identity(teacher, model, adapter)
    return {
        split: cache_teacher(
            dataset,
            model,
            tokenizer,
            Path(output_dir) / split,
            config,
            identity,
            state.process_index,
            state.num_processes,
        )  # fmt: skip
        for split, dataset in splits.items()
    }
