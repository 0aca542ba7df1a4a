"""What rate-limit detection costs per run, as an agent's output grows.

The detector runs once per attempt over everything the agent printed: a long Claude Code
stream-json run or a Codex JSONL log can be tens of megabytes. For each size it builds a
stream-json stdout of ordinary assistant/tool events (with tool output that mentions 429s, as test
runs do) ending in a usage-limit result, and measures `AgentOutput.from_streams` + `detect_agent`.

Goals: linear (time per MB at the largest size <= 2x the smallest) and < 1 s for 10 MB.
Exit status 1 if a goal is missed.

    .venv/bin/python bench/ratelimit_detect.py [--sizes-mb 1 10 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone

from tierbench.ratelimit import AgentOutput, detect_agent

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)


def stream(megabytes: float) -> tuple[str, dict]:
    tool = {"type": "user", "message": {"content": [{"type": "tool_result", "content":
            "tests/test_api.py::test_backoff PASSED (server answered 429 Too Many Requests, retried)\n" * 20}]}}
    assistant = {"type": "assistant", "message": {"content": [{"type": "text", "text": "Running the tests. " * 40}]}}
    chunk = json.dumps(tool) + "\n" + json.dumps(assistant) + "\n"
    result = {"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
              "result": "You've hit your limit · resets 6pm (Europe/Berlin)"}
    body = chunk * max(1, int(megabytes * 1_000_000 / len(chunk)))
    return body + json.dumps(result) + "\n", result


def measure(megabytes: float, repeat: int) -> float:
    stdout, result = stream(megabytes)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        output = AgentOutput.from_streams("claude-code", exit_code=1, stdout=stdout, stderr="", result=result)
        detection = detect_agent(output, now=NOW)
        times.append(time.perf_counter() - started)
        assert detection is not None and detection.kind == "quota"
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1, 10, 50])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    per_mb = {}
    print(f"{'stdout MB':>10} {'median s':>10} {'s per MB':>10}")
    for size in args.sizes_mb:
        seconds = measure(size, args.repeat)
        per_mb[size] = seconds / size
        print(f"{size:>10g} {seconds:>10.3f} {per_mb[size]:>10.4f}")
    smallest, largest = min(per_mb), max(per_mb)
    ratio = per_mb[largest] / per_mb[smallest]
    ten = per_mb.get(10.0, per_mb[largest]) * 10
    print(f"ratio (s per MB at {largest:g} MB / at {smallest:g} MB): {ratio:.2f} (goal <= 2)")
    print(f"10 MB: {ten:.3f} s (goal < 1 s)")
    return 0 if ratio <= 2 and ten < 1 else 1


if __name__ == "__main__":
    sys.exit(main())
