"""Atomic file writes: a file is written to a temporary name in its own directory and
then renamed over the target (``os.replace``), so a failed or interrupted write leaves
the previous file intact and never a truncated one."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same directory, same name ending, so
    writers that look at the suffix, e.g. ``.weights.h5`` or ``.png``, accept it); when
    the block succeeds it replaces ``path``, otherwise it is removed."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
