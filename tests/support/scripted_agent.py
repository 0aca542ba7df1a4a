"""A scripted coding agent for the viewer's tests, run by the real `command` agent adapter.

It edits the workspace like an agent would (fixes calc.py on some runs, a wrong change on others)
and prints a Claude Code `stream-json --verbose` event stream on stdout, as `claude --print
--output-format stream-json --verbose` would: system init, assistant text, tool calls, tool
results, usage, and the final `result` event last.

Environment knobs (all optional; tierbench passes them to the agent only when named in
TIERBENCH_PASS_ENV):
    SCRIPTED_GATE=PATH   wait until PATH exists before finishing (a run stays in flight until then)
    SCRIPTED_HOSTILE=1   write markup into the transcript, the diff and a file name (also when
                         the prompt contains "[hostile]")
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HOSTILE = '<script>window.__pwned = "script"</script><img src=x onerror="window.__pwned = \'onerror\'">'
HOSTILE_FILE = '<img src=x onerror=window.__pwned=1>.txt'


def main() -> int:
    tier, subtest, run = os.environ["TIERBENCH_TIER"], os.environ["TIERBENCH_SUBTEST"], int(os.environ["TIERBENCH_RUN"])
    prompt = Path(os.environ["TIERBENCH_PROMPT_FILE"]).read_text()
    hostile = os.environ.get("SCRIPTED_HOSTILE") == "1" or "[hostile]" in prompt
    def emit(event: dict) -> None:
        print(json.dumps(event), flush=True)

    emit({"type": "system", "subtype": "init", "model": "scripted-1", "session_id": f"s-{tier}-{subtest}-{run}",
          "tools": ["Bash", "Read", "Edit"], "mcp_servers": []})
    text = "I will read calc.py first." + (f" {HOSTILE}" if hostile else "")
    emit(_assistant([{"type": "text", "text": text}], 120, 40))
    emit(_assistant([{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "calc.py"}}], 10, 20))
    source = Path("calc.py").read_text()
    emit(_user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": source}]))
    gate = os.environ.get("SCRIPTED_GATE")
    if gate:
        while not Path(gate).exists():
            time.sleep(0.05)
    # T1 and later always fix both functions; T0 fixes only add() on even runs (a failing run).
    fixed = tier != "T0" or run % 2 == 1
    if fixed:
        new = source.replace("return a - b", "return a + b").replace(
            "def mul(a, b):\n    return a + b", "def mul(a, b):\n    return a * b")
    else:  # a plausible but wrong change: the bug stays
        new = source.replace("def add(a, b):", "def add(a, b):  # signs checked")
    Path("calc.py").write_text(new)
    command = "python3 -c 'import calc; print(calc.add(2, 3), calc.mul(2, 3))'"
    if hostile:
        Path(HOSTILE_FILE).write_text(HOSTILE + "\n")
        command += f" # {HOSTILE}"
    emit(_assistant([{"type": "tool_use", "id": "toolu_2", "name": "Edit",
                      "input": {"file_path": "calc.py", "old_string": "return a - b", "new_string": "return a + b"}}],
                    30, 60))
    emit(_user([{"type": "tool_result", "tool_use_id": "toolu_2", "content": "The file calc.py has been updated."}]))
    emit(_assistant([{"type": "tool_use", "id": "toolu_3", "name": "Bash", "input": {"command": command}}], 30, 30))
    output = ("5 6" if fixed else "-1 5") + (f"\n{HOSTILE}" if hostile else "")
    emit(_user([{"type": "tool_result", "tool_use_id": "toolu_3", "content": [{"type": "text", "text": output}],
                 "is_error": False}]))
    final = "Fixed add() and mul(); both checks print the right values." if fixed else "Fixed add()."
    emit(_assistant([{"type": "text", "text": final}], 50, 80))
    result = {"type": "result", "subtype": "success", "is_error": False, "duration_ms": 1200, "num_turns": 5,
              "result": final, "session_id": f"s-{tier}-{subtest}-{run}", "total_cost_usd": 0.0123 + 0.001 * run,
              "usage": {"input_tokens": 240, "output_tokens": 230, "cache_creation_input_tokens": 1000,
                        "cache_read_input_tokens": 4000}}
    emit(result)
    return 0


def _assistant(content: list[dict], tokens_in: int, tokens_out: int) -> dict:
    return {"type": "assistant", "message": {"role": "assistant", "content": content,
                                             "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}}


def _user(content: list[dict]) -> dict:
    return {"type": "user", "message": {"role": "user", "content": content}}


if __name__ == "__main__":
    sys.exit(main())
