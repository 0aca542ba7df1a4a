"""The viewer's pages over real HTTP on loopback (the `tierbench view` process), without a browser:
a batch with a test that never got an experiment directory, escaping of what agents and batches
wrote, headers, and 404s."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="the view extra is not installed (make dev installs it)")

import httpx  # noqa: E402

from tests.support.view_fixtures import Viewer  # noqa: E402
from tests.unit.test_view_data import _experiment, _result  # noqa: E402

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def test_batch_page_lists_tests_without_an_experiment_and_escapes_their_error(tmp_path):
    root = _experiment(tmp_path)
    _result(root, "T0", "00", 1, "passed")
    (root.parent / "batch_summary.json").write_text(json.dumps({
        "started_at": "2026-01-01T00:00:00Z", "config": {}, "threads": [],
        "results": [{"test_id": "calc", "status": "pass", "exit_code": 0},
                    {"test_id": "broken", "status": "error", "exit_code": 1, "error": f"bad test.yaml {HOSTILE}"}]}))
    with Viewer(root.parent) as viewer:
        page = httpx.get(viewer.url + "/")
    assert page.status_code == 200
    assert "Tests without an experiment directory" in page.text and "broken" in page.text
    assert "<script>window.__pwned" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_agent_text_in_results_and_judgments_is_escaped(tmp_path):
    root = _experiment(tmp_path)
    _result(root, "T0", "00", 1, "passed")
    result_path = root / "T0" / "00" / "run_01" / "run_result.json"
    data = json.loads(result_path.read_text())
    data["judge_reasoning"] = HOSTILE
    data["judges"][0]["reasoning"] = HOSTILE
    data["judges"][0]["items"] = [{"id": "add", "score": 1.0, "passed": True, "reasoning": HOSTILE}]
    result_path.write_text(json.dumps(data))
    agent = result_path.parent / "agent"
    agent.mkdir()
    (agent / "diff.patch").write_text(f"diff --git a/x b/x\n+++ b/{HOSTILE}\n+{HOSTILE}\n")
    (agent / "prompt.md").write_text(HOSTILE)
    with Viewer(root) as viewer:
        page = httpx.get(viewer.url + "/e/calc/r/T0/00/run_01")
        raw = httpx.get(viewer.url + "/e/calc/r/T0/00/run_01/raw/agent/diff.patch")
    assert page.status_code == 200
    assert "<img" not in page.text and "<script>window" not in page.text
    assert page.text.count("&lt;script&gt;") >= 4
    assert raw.headers["content-type"].startswith("text/plain") and raw.headers["x-content-type-options"] == "nosniff"


def test_unknown_things_are_404_pages(tmp_path):
    root = _experiment(tmp_path)
    with Viewer(root) as viewer, httpx.Client(base_url=viewer.url) as client:
        assert client.get("/").headers["location"] == "/e/calc/"
        for url in ("/e/calc/t/T9/", "/e/calc/r/T0/00/run_99", "/e/other/", "/e/calc/compare?a=x&b=y",
                    "/e/calc/r/T0/00/run_01/raw/agent/secret.txt", "/e/calc/r/T0/00/run_01?attempt=../../x"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert "Not found" in response.text


def test_run_page_lists_earlier_attempts_with_their_reasons(tmp_path):
    from datetime import datetime, timezone

    from tierbench.models import RateLimitInfo, RateLimitKind, RunResult, RunStatus

    root = _experiment(tmp_path)
    _result(root, "T0", "00", 1, "passed")
    attempt_dir = root / "T0" / "00" / "run_01" / "attempts" / "01"
    attempt_dir.mkdir(parents=True)
    reset = datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)
    limited = RunResult(tier="T0", subtest="00", run_number=1, status=RunStatus.RATE_LIMITED,
                        error="Claude AI usage limit reached|1763920800",
                        rate_limit=RateLimitInfo(kind=RateLimitKind.QUOTA, source="agent", reset_at=reset,
                                                 message="Claude AI usage limit reached"))
    (attempt_dir / "run_result.json").write_text(limited.model_dump_json())
    errored_dir = attempt_dir.parent / "02"
    errored_dir.mkdir()
    errored = RunResult(tier="T0", subtest="00", run_number=1, status=RunStatus.ERROR,
                        error="command not found: claude")
    (errored_dir / "run_result.json").write_text(errored.model_dump_json())
    with Viewer(root) as viewer, httpx.Client(base_url=viewer.url) as client:
        page = client.get("/e/calc/r/T0/00/run_01")
        assert "Earlier attempts (2)" in page.text
        assert "rate limited" in page.text and "Claude AI usage limit reached" in page.text
        assert "2026-11-23T18:00:00+00:00" in page.text and "command not found: claude" in page.text
        attempt = client.get("/e/calc/r/T0/00/run_01?attempt=01")
        assert attempt.status_code == 200 and "attempt 01" in attempt.text
        assert "it is not a result and counts in no rate" in attempt.text
