"""The bitsandbytes tests (tests/bnb_cases.py) in their own pytest process, with bitsandbytes on its path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("bnb_cases.py")


@pytest.mark.slow
def test_bitsandbytes_cases():
    folder = Path(sys.prefix) / "bitsandbytes"  # `make install` puts it there, beside the venv's site-packages
    if not (folder / "bitsandbytes").is_dir():
        pytest.fail(f"bitsandbytes is not installed in {folder}: run `make install` (or `pip install --no-deps "
                    f"--target {folder} 'bitsandbytes>=0.48'`)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)], env=env,
                          capture_output=True, text=True, timeout=1200, cwd=Path(__file__).parents[1])  # fmt: skip
    print(done.stdout[-3000:])
    assert done.returncode == 0 and " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-4000:]
