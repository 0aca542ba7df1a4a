"""Atomic file writes: a unique temp file in the same directory, fsync, os.replace, fsync the dir.

A reader (or a crash) can only ever see the old file or the new one, never a torn mix. Temp files
are named `.<name>.<random>.tmp` so `check`/`repair` can recognise leftovers.

`durable=False` keeps the atomic rename but skips both fsyncs: for a run's intermediate files
(resolved config, prompt, command record, transcript, diff, checks, judgments), which a killed process cannot tear either (the page cache outlives it),
and which only count once the fsync'd `run_result.json` is written after them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def atomic_write_json(path: Path, data: Any, *, durable: bool = True) -> None:
    if isinstance(data, BaseModel):
        text = data.model_dump_json(indent=2)
    else:
        text = json.dumps(data, indent=2, sort_keys=False, default=str)
    atomic_write_text(path, text + "\n", durable=durable)


def is_temp_file(path: Path) -> bool:
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)
