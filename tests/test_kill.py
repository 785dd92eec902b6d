"""Hard kills (SIGKILL) of real child processes while they cache the teacher (one and two processes) and while they
train (at a random moment, and in the middle of writing a checkpoint): the resumed run gives the same files, bit for
bit, as a run never interrupted, and no temporary file survives it. The jobs are in `kill_jobs.py`."""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _job(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.kill_jobs", *map(str, args)], cwd=ROOT)


def _run(*args) -> None:
    assert _job(*args).wait() == 0, args


def _kill_when(process: subprocess.Popen, ready, timeout_s: float = 240.0) -> None:
    """SIGKILL `process` as soon as `ready()` holds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        assert process.poll() is None, "the job ended before the moment it was to be killed at"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.kill()
    assert process.wait() == -9


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*.safetensors"))


def _same_files(a: Path, b: Path, pattern: str) -> None:
    names = sorted(p.name for p in a.glob(pattern))
    assert names and names == sorted(p.name for p in b.glob(pattern))
    for name in names:
        x, y = load_file(str(a / name)), load_file(str(b / name))
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}:{key}")


def _no_temporary_files(folder: Path) -> None:
    assert not [p.name for p in folder.rglob(".*")], "temporary files survived the resumed run"


@pytest.fixture(scope="module")
def whole_cache(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "whole"
    _run("cache", out, 0, 1, 0)
    return out


def test_caching_killed_at_random_moments_resumes_to_the_same_cache(whole_cache, tmp_path):
    rng = random.Random(14)
    for attempt in range(1):
        out = tmp_path / f"killed{attempt}"
        at = rng.randint(1, 8)  # shards written before the kill lands (during the next row's forward or write)
        _kill_when(_job("cache", out, 0, 1, 0.15), lambda out=out, at=at: len(_shards(out)) >= at)
        assert 0 < len(_shards(out)) < len(_shards(whole_cache))
        _run("cache", out, 0, 1, 0)
        _same_files(whole_cache, out, "shard-*.safetensors")
        _no_temporary_files(out)


def test_two_caching_processes_one_killed_resume_to_the_same_cache(whole_cache, tmp_path):
    out = tmp_path / "two"
    first, second = _job("cache", out, 0, 2, 0.05), _job("cache", out, 1, 2, 0.15)
    odd = lambda: len([p for p in _shards(out) if int(p.stem.split("-")[1]) % 2]) >= 2  # noqa: E731
    _kill_when(second, odd)
    assert first.wait() == 0
    _run("cache", out, 1, 2, 0)
    _same_files(whole_cache, out, "shard-*.safetensors")
    _no_temporary_files(out)


@pytest.fixture(scope="module")
def training(clips, tmp_path_factory):
    """The rows and their teacher cache for the training job, and the weights of a run never interrupted."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer

    from hf_whisper_context import bundled
    from hf_whisper_context.teacher.cache import CacheConfig, cache_teacher

    from .conftest import tiny_llama

    root = tmp_path_factory.mktemp("train")
    rows = [{"path": str(path), "text": text, "context_before": "An article begins.", "context_after": "It ends."}
            for path, text in clips] * 2  # fmt: skip
    (root / "rows.json").write_text(json.dumps(rows))
    tokenizer = AutoTokenizer.from_pretrained(bundled.teacher("smollm2-135m"))
    torch.manual_seed(0)
    data = Dataset.from_list([{k: v for k, v in r.items() if k != "path"} for r in rows])
    cache_teacher(data, tiny_llama(tokenizer), tokenizer, root / "cache", CacheConfig(k=8))
    bundled.whisper("tiny.en")  # prepared once here, not by the jobs
    _run("train", root / "whole", root / "cache", root / "rows.json", 0)
    return root


@pytest.mark.parametrize("how", ["random moment", "while a checkpoint is written"])
def test_training_killed_then_resumed_gives_the_same_student(training, tmp_path, how):
    out = tmp_path / "killed"
    args = ("train", out, training / "cache", training / "rows.json")
    if how == "random moment":
        step = random.Random(14).randint(1, 3)
        _kill_when(_job(*args, 0), lambda: (out / f"checkpoint-{step}" / "trainer_state.json").is_file())
    else:
        assert _job(*args, 3).wait() == -9
        assert not (out / "checkpoint-3" / "trainer_state.json").exists()  # killed half way through writing it
    _run(*args, 0)
    _same_files(training / "whole", out, "final.safetensors")
    _no_temporary_files(out)
