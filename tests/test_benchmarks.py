"""The GPU benchmark script runs at tiny shapes on the CPU (its real shapes need a GPU)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_gpu_step_runs_at_tiny_shapes(tmp_path):
    out = tmp_path / "gpu_step.json"
    argv = [sys.executable, str(BENCHMARKS / "gpu_step.py"), "--tiny", "--steps", "1", "--batch", "2",
            "--output", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["plain_ms"] > 0 and figures["distill_ms"] > 0 and figures["teacher_forward_ms"] > 0
    assert figures["distill_tflop"] > figures["plain_tflop"] > 0 and "ratio" in done.stdout
