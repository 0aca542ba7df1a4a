"""`tierbench view` in a real browser: Chromium driven by Playwright against the real server process,
over experiments written by the real CLI. No test times anything (see bench/view_*.py)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.cli import cli_env, run_cli, start_cli
from tests.support.view_fixtures import AGENT_CMD, Viewer, make_tests, tree_state, write_big_transcript

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LONG = 120_000  # ms: an upper bound for waiting on the server, never a speed assertion


def test_navigate_batch_test_tier_run_shows_diff_tool_call_and_judge_item(page, viewer):
    page.goto(viewer.url + "/")
    expect(page.locator("h1")).to_contain_text("Batch")
    page.get_by_role("link", name="calc", exact=True).click()
    expect(page.locator("h1")).to_have_text("calc")
    expect(page.locator("table.grid tbody tr", has_text="Prompts")).to_contain_text("4/4")
    page.get_by_role("link", name="T0", exact=True).click()
    expect(page.locator("h1")).to_contain_text("T0 Prompts")
    page.locator("table.runs").get_by_role("link", name="T0/00/run_01").click()
    expect(page.locator("h1")).to_contain_text("T0/00/run_01")
    expect(page.locator("#diff")).to_contain_text("return a + b")
    call = page.locator("#transcript details.tool-call", has_text="Bash").first
    expect(call).to_be_visible()
    expect(call.locator("pre")).to_be_hidden()  # collapsed by default
    call.locator("summary").click()
    expect(call.locator("pre")).to_contain_text("calc.add(2, 3)")
    item = page.locator("tr.judge-item", has_text="mul works")
    expect(item).to_be_visible()
    expect(item).to_contain_text("1.000")
    expect(page.locator("details.check", has_text="add").first).to_be_visible()
    assert page.errors == []


def test_compare_best_t0_with_best_t1_side_by_side(page, viewer):
    page.goto(viewer.url + "/e/calc/")
    page.get_by_role("link", name=re.compile(r"best T0 run .* vs best T1 run")).click()
    expect(page.locator("h1")).to_contain_text(" vs ")
    expect(page.locator("#diff-1")).to_contain_text("calc.py")
    expect(page.locator("#diff-2")).to_contain_text("return a * b")
    expect(page.locator("table.compare-config tr.differs", has_text="description")).to_contain_text("T1 variant")
    expect(page.locator("#transcript-1 details.tool-call").first).to_be_visible()
    expect(page.locator("#transcript-2 details.tool-call").first).to_be_visible()
    # Any two runs, chosen by hand: a failing T0 run against a passing T1 run.
    page.goto(viewer.url + "/e/calc/")
    page.fill("input[name=a]", "T0/00/run_02")
    page.fill("input[name=b]", "T1/01/run_01")
    page.get_by_role("button", name="compare").click()
    expect(page.locator("#side-1")).to_contain_text("failed")
    expect(page.locator("#side-2")).to_contain_text("passed")
    expect(page.locator("table.compare-config tr.differs", has_text="file CLAUDE.md")).to_be_visible()
    assert page.errors == []


def test_filter_runs_by_outcome_and_tier(page, viewer):
    page.goto(viewer.url + "/e/calc/runs")
    expect(page.locator("#runs-count")).to_contain_text("8 runs")
    page.select_option("select[name=outcome]", "failed")
    expect(page).to_have_url(re.compile(r"outcome=failed"))
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row).to_contain_text("failed")
        expect(row).to_contain_text("T0/")
    page.select_option("select[name=tier]", "T1")
    expect(page.locator("table.runs tbody")).to_contain_text("no runs match")
    page.select_option("select[name=outcome]", "passed")
    expect(rows).to_have_count(4)
    page.select_option("select[name=tier]", "")
    page.select_option("select[name=sort]", "cost")
    expect(page).to_have_url(re.compile(r"sort=cost"))
    costs = [float(c.replace("$", "")) for c in page.locator("table.runs tbody tr td:nth-child(5)").all_inner_texts()]
    assert len(costs) == 6 and costs == sorted(costs, reverse=True)
    assert page.errors == []


def _open_everything(page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")


def test_hostile_transcript_diff_and_file_name_run_nothing(page, viewer):
    urls = ["/e/hostile/r/T0/00/run_01", "/e/hostile/compare?a=T0/00/run_01&b=T0/00/run_02",
            "/e/hostile/runs", "/e/hostile/", "/"]
    for url in urls:
        page.goto(viewer.url + url)
        _open_everything(page)
        page.wait_for_load_state("networkidle")
        assert page.locator("main img, main script, main [onerror]").count() == 0, url
        assert page.evaluate("window.__pwned") is None, url
    page.goto(viewer.url + urls[0])
    _open_everything(page)
    expect(page.locator("#transcript")).to_contain_text('<script>window.__pwned = "script"</script>')
    expect(page.locator("#transcript")).to_contain_text("onerror=")
    expect(page.locator("#diff")).to_contain_text("<img src=x onerror=window.__pwned=1>.txt")
    assert page.evaluate("window.__pwned") is None


def test_running_experiment_gains_completed_run_without_reload(page, tmp_path):
    tests = make_tests(tmp_path, hostile=False)
    exp = tmp_path / "results" / "calc"
    # Inside the experiment directory: a sandboxed agent sees it (read-only), not the rest of /tmp.
    gate = exp / "gate.flag"
    run = start_cli("run", tests / "calc", "--results-dir", tmp_path / "results", "--agent", "command",
                    "--agent-opt", f"cmd={AGENT_CMD}", "--tiers", "T0", "--max-subtests", "1", "--runs", "1",
                    "--parallel", "1", "--no-report", "--quiet", env=cli_env(SCRIPTED_GATE=str(gate), TIERBENCH_PASS_ENV="SCRIPTED_GATE"))
    try:
        deadline = time.monotonic() + 120
        while not (exp / "config" / "experiment.json").exists():
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "the experiment directory never appeared"
            time.sleep(0.1)
        with Viewer(exp) as viewer:
            page.goto(viewer.url + "/e/calc/")
            expect(page.locator("#status-bar")).to_contain_text("running now", timeout=LONG)
            expect(page.locator("ul.inflight")).to_contain_text("T0/00/run_01", timeout=LONG)
            tier_row = page.locator("table.grid tbody tr", has_text="Prompts")
            expect(tier_row).to_contain_text("0/1")
            page.evaluate("window.__sameDocument = true")
            # The run's own page, in a second tab, shows the transcript written so far.
            run_page = page.context.new_page()
            run_page.goto(viewer.url + "/e/calc/r/T0/00/run_01")
            expect(run_page.locator("h1")).to_contain_text("running")
            expect(run_page.locator("#transcript")).to_contain_text("I will read calc.py first.", timeout=LONG)
            expect(run_page.locator("#transcript")).not_to_contain_text("Fixed add() and mul()")
            run_page.evaluate("window.__sameDocument = true")
            gate.touch()
            expect(tier_row).to_contain_text("1/1", timeout=LONG)
            expect(page.locator("#status-bar")).to_contain_text("no process is running it", timeout=LONG)
            assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
            expect(run_page.locator("#transcript")).to_contain_text("Fixed add() and mul()", timeout=LONG)
            expect(run_page.locator("h1")).to_contain_text("passed", timeout=LONG)
            assert run_page.evaluate("window.__sameDocument") is True
            assert page.errors == []
        assert run.wait(timeout=120) == 0, run.stderr.read()
    finally:
        if exp.is_dir():
            gate.touch()
        if run.poll() is None:
            run.kill()
        run.wait()
        run.stdout.close()
        run.stderr.close()


def test_pause_appears_live_with_a_countdown(page, batch_dir, tmp_path):
    exp = tmp_path / "calc"
    shutil.copytree(batch_dir / "calc", exp, symlinks=True)
    viewer = Viewer(exp)
    try:
        page.goto(viewer.url + "/e/calc/")
        expect(page.locator("#status-bar")).to_contain_text("completed")
        page.evaluate("window.__sameDocument = true")
        # What the coordinator appends when a quota stops it (store/journal.py: rate_limit).
        journal = exp / "journal.jsonl"
        seq = json.loads(journal.read_text().splitlines()[-1])["seq"] + 1
        until = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
        event = {"seq": seq, "at": datetime.now(timezone.utc).isoformat(), "ev": "rate_limit", "until": until,
                 "source": "agent", "message": "Claude AI usage limit reached", "kind": "quota"}
        with open(journal, "a") as handle:
            handle.write(json.dumps(event) + "\n")
        countdown = page.locator("#status-bar .countdown")
        expect(countdown).to_have_text(re.compile(r"^1h 59m \d+s$"), timeout=LONG)
        expect(page.locator("#status-bar")).to_contain_text("Claude AI usage limit reached")
        first = countdown.inner_text()
        expect(countdown).not_to_have_text(first, timeout=LONG)  # it counts down
        assert page.evaluate("window.__sameDocument") is True
        assert viewer.stop() == 130  # Ctrl+C ends the server with the interrupted exit code
    finally:
        viewer.stop()


def test_100mb_transcript_opens_and_scrolls_in_pages(page, batch_dir, tmp_path):
    exp = tmp_path / "calc"
    shutil.copytree(batch_dir / "calc", exp, symlinks=True)
    lines = write_big_transcript(exp / "T0" / "00" / "run_01" / "agent" / "transcript.jsonl", 100)
    with Viewer(exp) as viewer:
        page.goto(viewer.url + "/e/calc/r/T0/00/run_01")
        expect(page.locator("#transcript")).to_contain_text("Turn 1: checking.")
        expect(page.get_by_text(f"{lines} lines", exact=False)).to_be_visible()
        # One page (100 lines) is in the document, not the whole file.
        assert page.locator("#transcript .entry").count() <= 100
        assert page.get_by_text("Turn 40: checking.").count() == 0
        page.locator("#transcript .more").scroll_into_view_if_needed()
        expect(page.locator("#transcript")).to_contain_text("Turn 40: checking.", timeout=LONG)
        page.locator("#transcript .more").scroll_into_view_if_needed()
        expect(page.locator("#transcript")).to_contain_text("Turn 67: checking.", timeout=LONG)
        assert page.errors == []
        assert viewer.stop(signal.SIGTERM) == 130


def test_export_is_self_contained_and_still_escapes(page, batch_dir, tmp_path):
    site = tmp_path / "site"
    done = run_cli("view", batch_dir, "--export", site)
    assert done.returncode == 0, done.stderr
    assert "open" in done.stdout and (site / "index.html").is_file()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((site / "index.html").as_uri())
    page.get_by_role("link", name="calc", exact=True).click()
    page.get_by_role("link", name="T1", exact=True).click()
    page.locator("table.runs").get_by_role("link", name="T1/01/run_02").click()
    expect(page.locator("#diff")).to_contain_text("return a * b")
    expect(page.locator("#transcript details.tool-call").first).to_be_visible()
    expect(page.locator("tr.judge-item", has_text="add works")).to_be_visible()
    page.goto((site / "hostile--T0-00-run_01.html").as_uri())
    _open_everything(page)
    expect(page.locator("#transcript")).to_contain_text("<script>")
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None  # no CSP on file://: escaping alone holds
    assert requested and all(url.startswith("file://") for url in requested), requested
    assert page.errors == []


def test_browsing_every_page_writes_nothing(batch_dir, viewer):
    before = tree_state(batch_dir)
    seen: set[str] = set()
    queue = ["/"]
    with httpx.Client(base_url=viewer.url, follow_redirects=True, timeout=60) as client:
        while queue and len(seen) < 120:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            for href in re.findall(r'href="([^"#]+)"', response.text):
                target = urlparse(urljoin(viewer.url + path, href.replace("&amp;", "&")))
                if target.netloc == urlparse(viewer.url).netloc and not target.path.startswith("/static"):
                    queue.append(target.path + (f"?{target.query}" if target.query else ""))
        # Encoded slashes survive the client's path normalisation and reach the server as "../".
        for bad in ("/e/calc/r/T0/00/run_01/raw/..%2F..%2F..%2Fconfig%2Fexperiment.json", "/e/calc/r/T9/00/run_01",
                    "/e/calc/r/T0/00/run_01/raw/judge/checks/..%2F..%2F..%2F..%2Fjournal.log",
                    "/e/calc/r/T0/00/run_01/raw/agent/..%2F..%2F..%2F..%2Fcheckpoint.json", "/e/nope/"):
            assert client.get(bad).status_code == 404, bad
    assert len(seen) > 30
    assert tree_state(batch_dir) == before
