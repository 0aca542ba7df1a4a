"""The detector against real rate-limit messages and look-alikes (tests/data/ratelimit_cases.yaml).

Each message is wrapped in its agent's own output shape (tests/support/agent_shapes.py) and read
through the one entry point, `detect_agent`, or `classify_http` for judge replies, at the file's
fixed "now" with the machine's local zone set to the file's zone.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tierbench.ratelimit import Detection, classify_http, detect_agent, parse_reset_time
from tests.support.agent_shapes import shape

DATA = yaml.safe_load((Path(__file__).parents[1] / "data" / "ratelimit_cases.yaml").read_text(encoding="utf-8"))
NOW = datetime.fromisoformat(DATA["now"].replace("Z", "+00:00"))
DEFAULT_WAIT = 60.0
CASES: list[dict[str, Any]] = DATA["cases"]
AGENTS = ("claude-code", "command", "codex", "gemini", "opencode", "aider", "mini-swe-agent", "http")


@pytest.fixture(autouse=True)
def local_zone(monkeypatch):
    monkeypatch.setenv("TZ", DATA["timezone"])
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def detect(case: dict[str, Any]) -> Detection | None:
    if case["agent"] == "http":
        return classify_http(case["status"], case.get("headers") or {}, case.get("body"), now=NOW,
                             default_wait=DEFAULT_WAIT)
    output = shape(case["agent"], case["channel"], case["text"], status=case.get("status"),
                   headers=case.get("headers"), success=bool(case.get("success")), exit_code=case.get("exit_code"),
                   exit_status=case.get("exit_status"))
    return detect_agent(output, now=NOW, default_wait=DEFAULT_WAIT)


def test_the_data_is_what_the_issue_asks_for():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    real = [c for c in CASES if c["expect"] != "none" and str(c["source"]).startswith("https://")]
    lookalikes = [c for c in CASES if c["expect"] == "none"]
    assert len(real) >= 60 and len(lookalikes) >= 30, (len(real), len(lookalikes))
    for case in CASES:
        assert case["agent"] in AGENTS and case["source"], case["id"]
        assert case["expect"] in ("transient", "quota", "permanent", "none"), case["id"]
        assert case["agent"] == "http" or case["channel"] in ("result", "events", "stdout", "stderr"), case["id"]
        if case["expect"] in ("transient", "quota"):
            assert "reset" in case, f"{case['id']}: state the expected reset (null: none named)"
    covered = {c["agent"] for c in real}
    assert covered == set(AGENTS), f"agents without a real case: {set(AGENTS) - covered}"
    for agent, channels in {"claude-code": {"result", "events", "stdout", "stderr"}, "codex": {"events", "stderr"},
                            "gemini": {"result", "events", "stderr"}}.items():
        assert channels <= {c["channel"] for c in real if c["agent"] == agent}, agent


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] != "none"], ids=lambda c: c["id"])
def test_real_message_is_detected_with_kind_and_reset(case):
    detection = detect(case)
    assert detection is not None, f"missed: {case['id']} ({case['source']})"
    assert detection.kind == case["expect"]
    assert 0 < len(detection.message) <= 300
    if case["expect"] == "permanent":
        assert detection.rate_limit() is None and "no wait can let it through" in detection.infra_error
        return
    expected = _instant(case["reset"])
    assert detection.reset_known is (expected is not None)
    assert detection.reset_at == (expected or NOW + timedelta(seconds=DEFAULT_WAIT))
    info = detection.rate_limit("agent")
    assert info is not None and info.kind.value == case["expect"] and info.reset_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] == "none"], ids=lambda c: c["id"])
def test_lookalike_is_not_detected(case):
    assert detect(case) is None, f"false alarm: {case['id']} ({case['source']})"


@pytest.mark.parametrize("form", DATA["reset_forms"], ids=lambda f: f["id"])
def test_reset_phrasing(form):
    assert parse_reset_time(form["text"], now=NOW) == _instant(form["reset"])
