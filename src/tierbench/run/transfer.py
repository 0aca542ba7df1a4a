"""A run directory as bytes: packed where the run executed, installed into the experiment.

When a run executes away from the experiment directory (a Ray worker on another machine), the node
packs the run directory it wrote (`pack_run_dir`: agent/, judge/, attempts/, run_result.json; never
the workspace) and the coordinator installs it (`install_run_dir`). Installing clears what an
earlier, unfinished attempt left, writes every file atomically, gives each archived attempt the next
free number under the experiment's `attempts/`, and writes `run_result.json` last: until that file
exists the run is pending, whatever else a crash left. This module is the writer of a remote run's
files in the experiment, as `run/attempt.py` is for a local run.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

from tierbench.models import RunKey, RunResult
from tierbench.run.attempt import clear_partial_attempt
from tierbench.store.atomic import atomic_write_bytes, atomic_write_json
from tierbench.store.layout import RUN_RESULT_NAME, WORKSPACE_NAME, ExperimentLayout


class TransferError(RuntimeError):
    pass


def pack_run_dir(run_dir: Path) -> bytes:
    """Every regular file under `run_dir` except the workspace, as an uncompressed tar."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        if run_dir.is_dir():
            for path in sorted(run_dir.rglob("*")):
                rel = path.relative_to(run_dir)
                if rel.parts[0] == WORKSPACE_NAME or not path.is_file() or path.is_symlink():
                    continue
                tar.add(path, arcname=rel.as_posix(), recursive=False)
    return buffer.getvalue()


def install_run_dir(layout: ExperimentLayout, key: RunKey, packed: bytes) -> list[Path]:
    """Write a packed run directory into the experiment; returns the files written, run_result.json
    last. Archived attempts are renumbered after the ones already there."""
    run_dir = layout.run_dir(key)
    clear_partial_attempt(run_dir)
    members = _members(packed)
    attempts = layout.attempts_dir(key)
    taken = {int(p.name) for p in attempts.iterdir() if p.name.isdigit()} if attempts.is_dir() else set()
    renumber: dict[str, str] = {}
    for number in sorted({rel.parts[1] for rel in members if len(rel.parts) > 2 and rel.parts[0] == "attempts"}):
        new = 1 + max(taken, default=0)
        taken.add(new)
        renumber[number] = f"{new:02d}"
    written: list[Path] = []
    final: tuple[Path, bytes] | None = None
    for rel, data in members.items():
        if rel.parts[0] == "attempts" and len(rel.parts) > 2:
            rel = PurePosixPath("attempts", renumber[rel.parts[1]], *rel.parts[2:])
        target = run_dir.joinpath(*rel.parts)
        if rel == PurePosixPath(RUN_RESULT_NAME):
            final = (target, data)
            continue
        atomic_write_bytes(target, data)
        written.append(target)
    if final is not None:
        atomic_write_bytes(*final)
        written.append(final[0])
    return written


def record_lost_attempt(layout: ExperimentLayout, key: RunKey, result: RunResult) -> Path:
    """Archive an attempt that left nothing behind (its node died): attempts/NN/run_result.json."""
    attempts = layout.attempts_dir(key)
    attempts.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.name) for p in attempts.iterdir() if p.name.isdigit()), default=0)
    target = attempts / f"{number:02d}" / RUN_RESULT_NAME
    atomic_write_json(target, result)
    return target


def _members(packed: bytes) -> dict[PurePosixPath, bytes]:
    out: dict[PurePosixPath, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(packed), mode="r:") as tar:
        for member in tar.getmembers():
            rel = PurePosixPath(member.name)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise TransferError(f"refusing a packed run with the path {member.name!r}")
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            out[rel] = handle.read()
    return out
