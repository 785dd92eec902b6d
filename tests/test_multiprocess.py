"""Two real processes on the CPU (torchrun, gloo): the teacher cache and the distillation example give what one
process gives with the same global batch — the same cache bit for bit, the same loss curve and logged terms, the same
final weights (to float rounding), with gradient accumulation; a student sharded by FSDP2 saves what it saves
unsharded."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script, *argv, processes: int = 1) -> str:
    """Run an example (or a script given by its path) in `processes` processes."""
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, str(EXAMPLES / script), *map(str, argv)], capture_output=True, text=True,
                          timeout=900, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _same_shards(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.glob("shard-*.safetensors"))
    assert names and names == sorted(p.name for p in b.glob("shard-*.safetensors"))
    for name in names:
        x, y = load_file(str(a / name)), load_file(str(b / name))
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}:{key}")


@pytest.fixture(scope="module")
def cache(corpus, tiny_models, tmp_path_factory):
    """The tiny teacher's cache of the corpus, written by one process and by two."""
    root = tmp_path_factory.mktemp("mp_cache")
    flags = ("--data", corpus, "--test_articles", 1, "--teacher", tiny_models / "teacher", "--dtype", "float32",
             "--context_words", 64, "--k", 8, "--shard_size", 5)  # fmt: skip
    _run("cache_teacher.py", *flags, "--output_dir", root / "one")
    _run("cache_teacher.py", *flags, "--output_dir", root / "two", processes=2)
    return root


def test_two_processes_write_the_one_process_cache(cache):
    assert len(list((cache / "two" / "train").glob("shard-*"))) >= 2  # both processes had shards to write
    for split in ("train", "test"):
        _same_shards(cache / "one" / split, cache / "two" / split)


def _logs(stdout: str) -> list[dict]:
    """The Trainer's printed training logs (one dict per logging step)."""
    logs = [ast.literal_eval(line) for line in stdout.splitlines() if line.startswith("{'loss'")]
    return [{k: float(v) for k, v in log.items() if k not in ("epoch", "learning_rate", "grad_norm")} for log in logs]


def _distill(corpus, tiny_models, cache, out, processes, batch, accumulation) -> tuple[list[dict], dict]:
    stdout = _run("distill.py", "--student", tiny_models / "student", "--data", corpus, "--test_articles", 1,
                  "--teacher_cache", cache / "one" / "train", "--output_dir", out, "--max_steps", 3,
                  "--per_device_train_batch_size", batch, "--gradient_accumulation_steps", accumulation,
                  "--logging_steps", 1, "--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", 0,
                  "--lora_r", 4, "--lora_alpha", 8, "--learning_rate", 3e-3, "--use_cpu", "--max_eval_chunks", 2,
                  "--rep_weight", 0.2, "--kd_weight", 0.5, "--ot_weight", 0.1, "--timestamp_ratio", 0.5,
                  processes=processes)  # fmt: skip
    return _logs(stdout), load_file(str(out / "merged" / "model.safetensors"))


def test_two_processes_train_like_one_with_the_same_global_batch(corpus, tiny_models, cache, tmp_path):
    """One process with batch 4 against two processes with batch 1 and 2 accumulation steps: DDP's all-reduce and
    the accumulated normalisation in one run (its last micro-step is a plain synchronised step)."""
    accumulation = 2
    one_logs, one = _distill(corpus, tiny_models, cache, tmp_path / "one", 1, 2 * accumulation, 1)
    two_logs, two = _distill(corpus, tiny_models, cache, tmp_path / "two", 2, 1, accumulation)
    assert len(one_logs) == len(two_logs) == 3
    for a, b in zip(one_logs, two_logs, strict=True):
        assert a.keys() == b.keys() and {"loss", "ce", "kd_ot", "ot_cost", "rep"} <= a.keys()
        for key in a:  # printed with 4 significant digits: the logged terms are the whole batch's, not one process's
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=2e-4), key
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_an_fsdp_sharded_student_saves_the_unsharded_checkpoint(tiny_models, tmp_path):
    """accelerate turns FSDP on only for accelerators, so the Trainer cannot shard on the CPU: the sharding is done
    as the FSDP config does it (tests/fsdp_save.py), and `save_student` gathers the shards in every process."""
    _run(Path(__file__).parent / "fsdp_save.py", tiny_models / "student", tmp_path, processes=2)
    for name in ("lora", "full"):
        unsharded = load_file(str(tmp_path / f"{name}-unsharded" / "model.safetensors"))
        sharded = load_file(str(tmp_path / f"{name}-sharded" / "model.safetensors"))
        assert sorted(sharded) == sorted(unsharded) and not any("distill" in key for key in sharded)
        for key in unsharded:
            np.testing.assert_array_equal(sharded[key], unsharded[key], err_msg=f"{name}: {key}")
        for file in ("config.json", "generation_config.json"):
            texts = [(tmp_path / f"{name}-{form}" / file).read_text() for form in ("sharded", "unsharded")]
            assert texts[0] == texts[1], file
