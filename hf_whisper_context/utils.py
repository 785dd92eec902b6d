"""Small helpers shared across the package: tokenizer identity, JSON read with a clear error, and writes that a kill
cannot leave half done."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import HfWhisperContextError

logger = logging.getLogger(__name__)


def tokenizer_hash(tokenizer) -> str:
    """Identity of a tokenizer's vocabulary (its tokens and their ids)."""
    import hashlib

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:16]


def read_json(path: str | os.PathLike, error: type[Exception] = HfWhisperContextError) -> Any:
    """Parse a JSON file; a missing, truncated or invalid one raises `error` naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise error(f"{path} is missing") from e
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise error(f"{path} is not valid JSON ({str(e)[:200]}): it is damaged or was cut short; remove it or "
                    "rebuild it") from e  # fmt: skip


# Temporary siblings are named `.<target>.<pid>.<random>` (and `.<target>.old.<pid>.<random>` for a folder set
# aside during a replace): a later write to the same target removes those of processes that are gone.
def _temp_prefix(target: Path, old: bool = False) -> str:
    return f".{target.name}.{'old.' if old else ''}{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(target: Path, old: bool) -> list[Path]:
    """Temporary siblings of `target` left by processes that no longer run, oldest first."""
    kind = r"old\." if old else ""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.{kind}(\d+)\.[0-9a-f]+(\.[^.]*)?$")
    found = []
    for path in target.parent.glob(".*"):
        match = pattern.match(path.name)
        if match and not _alive(int(match.group(1))):
            found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime_ns)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale(target: str | os.PathLike) -> None:
    """Remove what killed writers of `target` left beside it; put back a folder that a kill left set aside in the
    middle of a replace (the target then does not exist)."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    aside = _stale(target, old=True)
    if aside and not target.exists():
        os.replace(aside.pop(), target)
        logger.warning("restored %s, set aside by a replace that was interrupted", target)
    for path in aside + _stale(target, old=False):
        _remove(path)


def _sibling(target: Path, old: bool = False) -> Path:
    return target.parent / f"{_temp_prefix(target, old)}{secrets.token_hex(4)}{'' if old else target.suffix}"


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary file path beside `target`, renamed over `target` when the block ends without error and removed
    otherwise. Readers see the old file or the new one, never half of one; what a killed writer left is removed by
    the next write to the same target."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = _sibling(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a file atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


@contextmanager
def scratch_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside `target`, removed when the block ends (and by the next call if a kill prevented
    that)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = _sibling(target)
    tmp.mkdir(mode=0o777)  # the usual permissions (umask applies), unlike mkdtemp's private folder
    try:
        yield tmp
    finally:
        _remove(tmp)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    if sys.platform != "linux":
        return False
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    at_fdcwd, rename_exchange = -100, 2
    if renameat2 is None:
        return False
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target`, else it vanishes.

    Readers never see a half-written folder, and `target` never goes missing: an existing folder is swapped with the
    new one in one step (Linux), and the old one, now under the temporary name, deleted. Where the system cannot
    swap, the old folder is renamed aside and the new one in; a kill between those two renames leaves the old folder
    aside, and the next call for `target` (or `clean_stale`) puts it back before anything else.
    """
    target = Path(target)
    with scratch_folder(target) as tmp:
        yield tmp
        if not target.exists():
            os.replace(tmp, target)
        elif not _exchange(tmp, target):
            aside = _sibling(target, old=True)
            os.replace(target, aside)
            os.replace(tmp, target)
            _remove(aside)
