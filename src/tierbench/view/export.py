"""`tierbench view PATH --export DIR`: the viewer's pages as a self-contained static copy.

The same templates render with `Links(static=True)`: every link is a relative file name in one flat
directory, so DIR opens from disk or any static host with no server and no network. Transcripts
are written a page per file, linked in sequence; the files a page links to (diffs, transcripts)
are copied under `files/`. Filters and live updates need the server and are left out; tier and
subtest pages are the static listings. Each file is written atomically; PATH is only read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tierbench.models import RunKey
from tierbench.store.atomic import atomic_write_text
from tierbench.view import transcript as transcripts
from tierbench.view.data import ExperimentView, Source, ViewError, transcript_path
from tierbench.view.pages import HERE, RUNS_PER_PAGE, Links, Site, pygments_css

COPIED_FILES: tuple[str, ...] = ("agent/diff.patch",)


def export_site(path: Path, out: Path) -> tuple[Path, int]:
    """Write the static copy of PATH into `out`; returns (index file, number of files written)."""
    source = Source(path)
    out = Path(out).resolve()
    if out == source.root or out.is_relative_to(source.root):
        raise ViewError(f"--export {out}: inside the viewed directory {source.root}; the viewer never writes there",
                        "Choose a directory outside it")
    if out.exists() and not out.is_dir():
        raise ViewError(f"--export {out}: exists and is not a directory", "Choose a new or empty directory")
    site = Site(source, Links(static=True))
    writer = _Writer(out)
    for name in ("view.css", "view.js"):
        writer.copy(HERE / "static" / name, f"static/{name}")
    writer.text("static/pygments.css", pygments_css())
    experiments = source.experiments()
    for exp in experiments:
        exp.refresh(force=True)
        _export_experiment(site, exp, writer)
    if source.kind == "batch":
        writer.text("index.html", site.index())
    else:
        writer.text("index.html", site.experiment(experiments[0]))
    return out / "index.html", writer.count


def _export_experiment(site: Site, exp: ExperimentView, writer: "_Writer") -> None:
    links = site.links
    writer.text(links.exp(exp.name), site.experiment(exp))
    for tier in exp.tiers():
        writer.text(links.tier(exp.name, tier), site.tier(exp, tier))
        for subtest in exp.subtests(tier):
            writer.text(links.subtest(exp.name, tier, subtest), site.subtest(exp, tier, subtest))
    total = len(exp.rows)
    pages = max(1, -(-total // RUNS_PER_PAGE))
    for page in range(1, pages + 1):
        writer.text(links.runs(exp.name, page), site.runs(exp, {}, page))
    for row in list(exp.rows.values()):
        run_key = RunKey(tier=row.tier, subtest=row.subtest, run=row.run)
        run_dir = exp.run_dir(run_key)
        if not run_dir.is_dir():
            continue
        attempts = [None] + [a["number"] for a in exp.run_detail(run_key).attempts]
        for attempt in attempts:
            writer.text(links.run(exp.name, run_key, attempt), site.run(exp, run_key, attempt))
            base = exp.run_dir(run_key, attempt)
            path = transcript_path(base)
            for rel in COPIED_FILES + ((f"agent/{path.name}",) if path is not None else ()):
                if (base / rel).is_file():
                    writer.copy(base / rel, links.raw(exp.name, run_key, rel, attempt))
            if path is not None:
                first = transcripts.PAGE_LINES
                while first < transcripts.line_index(path).lines:
                    writer.text(links.transcript(exp.name, run_key, first, attempt),
                                site.transcript_fragment(exp, run_key, first, attempt, standalone=True))
                    first += transcripts.PAGE_LINES
    base_row = exp.best_run("T0")
    if base_row is not None:
        for tier in exp.tiers():
            other = exp.best_run(tier)
            if tier == "T0" or other is None:
                continue
            a, b = RunKey.parse(base_row.key), RunKey.parse(other.key)
            writer.text(links.compare(exp.name, base_row.key, other.key), site.compare(exp, a, b))


class _Writer:
    def __init__(self, root: Path):
        self.root = root
        self.count = 0

    def _target(self, rel: str) -> Path:
        target = (self.root / rel).resolve()
        if not target.is_relative_to(self.root):
            raise ViewError(f"refusing to write outside {self.root}: {rel}", "This is a bug; please report it")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def text(self, rel: str, text: str) -> None:
        atomic_write_text(self._target(rel), text)
        self.count += 1

    def copy(self, source: Path, rel: str) -> None:
        target = self._target(rel)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle, open(source, "rb") as src:
                shutil.copyfileobj(src, handle, 1024 * 1024)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self.count += 1

