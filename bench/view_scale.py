"""How `tierbench view` scales: a 10,000-run experiment, and a 100 MB transcript.

listing (an experiment of --runs runs, minimal valid run_result.json files):
  index      building the run index from nothing (what the first request of a fresh server pays)
  runs page  GET /e/<exp>/runs (first 200 rows + the numbers over all runs), warm index
  filtered   GET /e/<exp>/runs?outcome=failed&tier=T1
  exp page   GET /e/<exp>/ (per-tier numbers over all runs)
  update     one more result recorded (journal event + run_result.json), then the next refresh

transcript (a generated Claude Code stream-json file of --megabytes MB in one run):
  index      the line-offset index built by streaming the file once (cold: the first view)
  run page   GET of the run page, cold (index included) and warm
  page       GET of one transcript page (100 lines) at the middle of the file, warm
  browser    Chromium (Playwright, system /usr/bin/chromium): from navigation to the first transcript
             entry visible, and from scrolling to the bottom until the next page is in (skipped
             without a browser)

Goals: runs page < 1 s at 10k runs; the run page with a 100 MB transcript opens (cold) < 3 s.
Exit status 1 if a goal is missed. Medians of --repeat measurements, page cache warm.

    .venv/bin/python bench/view_scale.py [--runs 10000] [--megabytes 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient")
from starlette.testclient import TestClient  # noqa: E402  (in-process: measures the app, not the network)

from tests.support.testdirs import make_test_dir  # noqa: E402
from tests.support.view_fixtures import write_big_transcript  # noqa: E402
from tierbench.config import ExperimentConfig, save_config  # noqa: E402
from tierbench.view import transcript as transcripts  # noqa: E402
from tierbench.view.app import create_app  # noqa: E402
from tierbench.view.data import ExperimentView, Source  # noqa: E402

TIERS = ("T0", "T1", "T2", "T3", "T4")
SUBTESTS = 20


def build_experiment(base: Path, runs: int) -> Path:
    tiers = TIERS
    per_subtest = max(1, runs // (len(tiers) * SUBTESTS))
    test_dir = make_test_dir(base / "tests", "big", tiers=tiers, subtests=SUBTESTS)
    root = base / "results" / "big"
    shutil.copytree(test_dir, root / "config" / "test")
    save_config(ExperimentConfig(experiment_id="big-1", test_id="big", test_dir=str(test_dir), tiers=tiers,
                                 runs_per_subtest=per_subtest, agent="demo"), root / "config" / "experiment.json")
    journal = []
    seq = 0
    for tier in tiers:
        for subtest in range(SUBTESTS):
            for run in range(1, per_subtest + 1):
                passed = (run + subtest) % 3 != 0
                run_dir = root / tier / f"{subtest:02d}" / f"run_{run:02d}"
                run_dir.mkdir(parents=True)
                status = "passed" if passed else "failed"
                (run_dir / "run_result.json").write_text(json.dumps({
                    "tier": tier, "subtest": f"{subtest:02d}", "run_number": run, "status": status,
                    "judge_score": 0.9 if passed else 0.2, "cost_usd": 0.05, "total_tokens": 12000,
                    "duration_seconds": 30.0, "agent": "demo", "usage": {"tool_calls": {"Bash": 3, "Read": 2}}}))
                seq += 1
                journal.append(json.dumps({"seq": seq, "at": "2026-01-01T00:00:00+00:00", "ev": "run", "tier": tier,
                                           "subtest": f"{subtest:02d}", "run": run, "status": status}))
    (root / "journal.jsonl").write_text("\n".join(journal) + "\n")
    return root


def median_of(repeat: int, action) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def get(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)


def bench_listing(base: Path, runs: int, repeat: int) -> float:
    root = build_experiment(base, runs)

    def fresh_index() -> None:
        ExperimentView(root, "big").refresh(force=True)

    index = median_of(repeat, fresh_index)
    client = TestClient(create_app(Source(root)))
    get(client, "/e/big/runs")  # warm
    page = median_of(repeat, lambda: get(client, "/e/big/runs"))
    filtered = median_of(repeat, lambda: get(client, "/e/big/runs?outcome=failed&tier=T1"))
    exp_page = median_of(repeat, lambda: get(client, "/e/big/"))
    view = Source(root).experiment("big")
    extra = root / "T0" / "00" / "run_99"

    def update() -> None:
        extra.mkdir(parents=True, exist_ok=True)
        (extra / "run_result.json").write_text(json.dumps({"tier": "T0", "subtest": "00", "run_number": 99,
                                                           "status": "passed", "judge_score": 1.0}))
        with open(root / "journal.jsonl", "a") as handle:
            handle.write(json.dumps({"seq": 10**9, "ev": "run", "tier": "T0", "subtest": "00", "run": 99,
                                     "status": "passed"}) + "\n")
        view.refresh(force=True)

    upd = median_of(repeat, update)
    print(f"listing, {len(view.rows)} runs")
    print(f"  index (cold)     {index * 1000:8.1f} ms")
    print(f"  runs page        {page * 1000:8.1f} ms   goal < 1000 ms")
    print(f"  filtered page    {filtered * 1000:8.1f} ms")
    print(f"  experiment page  {exp_page * 1000:8.1f} ms")
    print(f"  update           {upd * 1000:8.1f} ms   (journal tail, one run read again)")
    print(f"  ratio runs page / index  {page / index:.2f}")
    return page


def bench_transcript(base: Path, megabytes: int, repeat: int) -> float:
    root = build_experiment(base / "t", 20 * len(TIERS))
    path = root / "T0" / "00" / "run_01" / "agent" / "transcript.jsonl"
    lines = write_big_transcript(path, megabytes)
    size = path.stat().st_size

    def cold_index() -> None:
        transcripts.LineIndex(path).update()

    index = median_of(repeat, cold_index)
    colds = []
    for _ in range(repeat):
        transcripts._INDEXES.clear()
        client = TestClient(create_app(Source(root)))
        started = time.perf_counter()
        get(client, "/e/big/r/T0/00/run_01")
        colds.append(time.perf_counter() - started)
    cold = statistics.median(colds)
    warm = median_of(repeat, lambda: get(client, "/e/big/r/T0/00/run_01"))
    middle = (lines // 2) // transcripts.PAGE_LINES * transcripts.PAGE_LINES
    page = median_of(repeat, lambda: get(client, f"/e/big/r/T0/00/run_01/transcript?first={middle}"))
    print(f"transcript, {size / 1e6:.0f} MB, {lines} lines")
    print(f"  index (cold)     {index * 1000:8.1f} ms   ({size / 1e6 / index:.0f} MB/s)")
    print(f"  run page cold    {cold * 1000:8.1f} ms   goal < 3000 ms")
    print(f"  run page warm    {warm * 1000:8.1f} ms")
    print(f"  one page (mid)   {page * 1000:8.1f} ms")
    print(f"  ratio cold / warm  {cold / warm:.1f}")
    bench_browser(root, repeat)
    return cold


def bench_browser(root: Path, repeat: int) -> None:
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
        import uvicorn
    except ImportError:
        print("  browser          skipped (playwright or uvicorn not installed)")
        return
    if not chromium.exists():
        print("  browser          skipped (no /usr/bin/chromium)")
        return
    config = uvicorn.Config(create_app(Source(root)), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    opens, scrolls = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=args)
        for _ in range(repeat):
            transcripts._INDEXES.clear()
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/e/big/r/T0/00/run_01")
            page.get_by_text("Turn 1: checking.").wait_for()
            opens.append(time.perf_counter() - started)
            started = time.perf_counter()
            page.locator("#transcript .more").scroll_into_view_if_needed()
            page.get_by_text("Turn 40: checking.").wait_for()
            scrolls.append(time.perf_counter() - started)
            page.close()
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"  browser open     {statistics.median(opens) * 1000:8.1f} ms   (cold server index included)")
    print(f"  browser scroll   {statistics.median(scrolls) * 1000:8.1f} ms   (next 100 lines in)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tierbench-view-bench-"))
    try:
        page = bench_listing(base / "listing", args.runs, args.repeat)
        cold = bench_transcript(base / "transcript", args.megabytes, args.repeat)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    missed = []
    if page >= 1.0:
        missed.append(f"runs page {page:.2f}s >= 1s")
    if cold >= 3.0:
        missed.append(f"transcript run page {cold:.2f}s >= 3s")
    print("goals met" if not missed else "goals MISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
