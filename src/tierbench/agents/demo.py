"""The `demo` agent: an offline stand-in for a coding agent, deterministic per (seed, run key).

It exists so an experiment can be run end to end without an API key: it really edits the
workspace (the test's expected/solution.patch on success, a plausible broken variant otherwise)
and prints Claude Code's stream-json events (a few tool calls: reading, the subtest's skills and
sub-agents with a tier-independent chance, a Bash check) ending in a result event with plausible
tokens and cost, which become the run's transcript.jsonl and ToolUsage like a real agent's.
Success odds rise with the tier so that a demo report shows a meaningful-looking ablation.

The work happens in a real child process (`python -m tierbench.agents.demo ...`) so timeouts,
interrupts and process-group kills behave exactly as with a real agent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the child process must start without pydantic, so no runtime imports
    from tierbench.agents.base import AgentContext
    from tierbench.process import ProcessRegistry
    from tierbench.models import AgentOutcome

# Base success probability per tier; within a tier each subtest id step adds a little, so that
# e.g. T0/01 (a CLAUDE.md) beats T0/00 (empty prompt).
_TIER_SUCCESS = {"T0": 0.35, "T1": 0.5, "T2": 0.55, "T3": 0.6, "T4": 0.6, "T5": 0.75, "T6": 0.8}
_SUBTEST_STEP = {"T0": 0.1}
_DEFAULT_SUBTEST_STEP = 0.05
_MAX_SUBTEST_BONUS = 0.2
_MAX_SUCCESS = 0.95
_SLEEP_STEP = 0.05  # short sleeps keep the child responsive to signals and timeouts

# Rough per-million-token prices, only to make costs look like a real model's.
_PRICE_PER_MTOK = {"input": 3.0, "output": 15.0, "cache_creation": 3.75, "cache_read": 0.30}


def success_probability(tier: str, subtest_id: str) -> float:
    try:
        step_count = int(subtest_id)
    except ValueError:
        step_count = 0
    bonus = min(_MAX_SUBTEST_BONUS, step_count * _SUBTEST_STEP.get(tier, _DEFAULT_SUBTEST_STEP))
    return min(_MAX_SUCCESS, _TIER_SUCCESS.get(tier, 0.5) + bonus)


def run_rng(seed: int, key: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so it is stable across processes,
    # unlike hash(), which PYTHONHASHSEED randomises.
    return random.Random(f"{seed}:{key}")


class DemoAgent:
    name = "demo"
    known_options = ("delay", "seed")

    def validate_options(self, options: dict[str, str]) -> None:
        unknown = sorted(set(options) - set(self.known_options))
        if unknown:
            raise ValueError(f"the demo agent does not know option(s) {unknown}; it takes: delay, seed")
        if "delay" in options:
            try:
                delay = float(options["delay"])
            except ValueError:
                raise ValueError(f"demo option delay must be a number of seconds, got {options['delay']!r}") from None
            if delay < 0:
                raise ValueError(f"demo option delay must not be negative, got {options['delay']!r}")
        if "seed" in options:
            try:
                int(options["seed"])
            except ValueError:
                raise ValueError(f"demo option seed must be an integer, got {options['seed']!r}") from None

    def preflight(self, options: dict[str, str], model: str | None, registry: "ProcessRegistry",
                  work_dir: Path, *, default_wait: float = 0.0) -> None:  # never limited: unused
        return None  # offline: never rate limited

    def run(self, ctx: "AgentContext") -> "AgentOutcome":
        # Imported here so the child process (`-m tierbench.agents.demo`) starts without pydantic.
        from tierbench.agents.command import (adopt_stream_transcript, outcome_from_process, read_log,
                                              write_command_record)
        from tierbench.agents.jsonresult import apply_result_fields, parse_result_json
        from tierbench.process import run_process
        from tierbench.models import AgentOutcome

        try:
            self.validate_options(ctx.options)
        except ValueError as exc:  # run() reports, never raises
            return AgentOutcome(infra_error=str(exc))
        seed = int(ctx.options.get("seed", ctx.seed))
        delay = float(ctx.options.get("delay", 0))
        patch = (Path(ctx.test_dir) / "expected" / "solution.patch").resolve()
        argv = [sys.executable, "-m", "tierbench.agents.demo", "--seed", str(seed), "--key", str(ctx.key),
                "--delay", repr(delay), "--patch", str(patch), "--test-id", ctx.test_id]
        # Make the child find this very package even when it was not installed (e.g. PYTHONPATH=src).
        package_root = str(Path(__file__).resolve().parents[2])
        inherited = ctx.base_env.get("PYTHONPATH", "")
        overrides = {**ctx.subtest.env,
                     "PYTHONPATH": package_root + (os.pathsep + inherited if inherited else "")}
        write_command_record(ctx.agent_dir, argv, ctx.workspace, overrides)
        stdout_path = ctx.agent_dir / "stdout.log"
        proc = run_process(argv, cwd=ctx.workspace, env={**ctx.base_env, **overrides},
                           timeout=ctx.timeout_seconds, stdout_path=stdout_path,
                           stderr_path=ctx.agent_dir / "stderr.log", registry=ctx.registry,
                           sandbox=ctx.sandbox)
        outcome = outcome_from_process(proc, argv)
        if proc.exit_code is not None:
            result = parse_result_json(read_log(stdout_path))
            if result is not None:
                outcome = apply_result_fields(outcome, result)
            streamed = adopt_stream_transcript(stdout_path, ctx.agent_dir)
            if streamed is not None:
                outcome.usage = streamed.usage
        return outcome


# ---------------------------------------------------------------------------------------------
# The child process: everything below runs inside the workspace.


def _log(message: str) -> None:
    print(f"demo-agent: {message}", file=sys.stderr, flush=True)


def _git_apply(patch: Path) -> bool:
    done = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], capture_output=True, text=True)
    if done.returncode != 0:
        _log(f"git apply failed: {done.stderr.strip()}")
    return done.returncode == 0


def patch_added_lines(patch_text: str) -> list[tuple[str, str]]:
    """(file, line) for each substantive line the patch adds: candidates to 'forget'."""
    found: list[tuple[str, str]] = []
    current: str | None = None
    for line in patch_text.splitlines():
        if line.startswith("+++ "):
            target = line[4:].strip()
            current = None if target == "/dev/null" else target.removeprefix("b/")
        elif line.startswith("+") and current:
            body = line[1:]
            stripped = body.strip()
            if len(stripped) >= 4 and not stripped.startswith(("#", "//", "/*", "*", '"""')):
                found.append((current, body))
    return found


def _forget_line(path: Path, line: str) -> bool:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, existing in enumerate(lines):
        if existing.rstrip("\r\n") == line:
            del lines[index]
            path.write_text("".join(lines), encoding="utf-8")
            return True
    return False


def _give_up(reason: str) -> str:
    Path("NOTES.md").write_text(f"# Notes\n\nI looked into the task but did not finish: {reason}.\n",
                                encoding="utf-8")
    return f"I could not complete the task ({reason}); see NOTES.md."


def _attempt(rng: random.Random, success: bool, patch: Path) -> str:
    """Edit the workspace; return the agent's closing message."""
    if not patch.is_file():
        return _give_up("no reference solution is available to the demo agent")
    if success:
        if _git_apply(patch):
            return "I fixed the issue and verified the change."
        return _give_up("the change did not apply cleanly")
    candidates = patch_added_lines(patch.read_text(encoding="utf-8"))
    if candidates and rng.random() < 0.75 and _git_apply(patch):
        file, line = rng.choice(candidates)
        if _forget_line(Path(file), line):
            return "I fixed the issue and verified the change."  # confidently wrong, like a real agent
        return "I made the change."
    return _give_up("I ran out of ideas")


def _usage(rng: random.Random, tier: str) -> tuple[dict[str, int], float, int]:
    # Richer tiers carry more context (skills, sub-agents), so they cost more tokens.
    scale = 1.0 + 0.3 * int(tier[1]) if tier[1:].isdigit() else 1.0
    usage = {
        "input_tokens": int(rng.randint(40, 400) * scale),
        "output_tokens": int(rng.randint(800, 6000) * scale),
        "cache_creation_input_tokens": int(rng.randint(5000, 20000) * scale),
        "cache_read_input_tokens": int(rng.randint(20000, 200000) * scale),
    }
    cost = (usage["input_tokens"] * _PRICE_PER_MTOK["input"] + usage["output_tokens"] * _PRICE_PER_MTOK["output"]
            + usage["cache_creation_input_tokens"] * _PRICE_PER_MTOK["cache_creation"]
            + usage["cache_read_input_tokens"] * _PRICE_PER_MTOK["cache_read"]) / 1_000_000
    turns = rng.randint(3, 12) + int(tier[1]) if tier[1:].isdigit() else rng.randint(3, 12)
    return usage, round(cost, 6), turns


# Chance that a run uses a skill or sub-agent its subtest offers (the report's manipulation check).
_SKILL_USE = 0.7
_SUBAGENT_USE = 0.6


def _stream_events(rng: random.Random, session: str) -> list[dict[str, object]]:
    """Claude-Code-style stream-json events for the tool calls the demo 'made' in this workspace."""
    calls: list[tuple[str, dict[str, object], str]] = [("Read", {"file_path": "README.md"}, "(file contents)")]
    for skill in sorted(p.parent.name for p in Path(".claude/skills").glob("*/SKILL.md")):
        if rng.random() < _SKILL_USE:
            calls.append(("Skill", {"skill": skill}, f"Launching skill: {skill}"))
    for agent in sorted(p.stem for p in Path(".claude/agents").glob("*.md")):
        if rng.random() < _SUBAGENT_USE:
            calls.append(("Agent", {"subagent_type": agent, "description": "review", "prompt": "Review the fix."},
                          "Looks right."))
    calls.append(("Bash", {"command": "git diff --stat"}, "1 file changed"))
    events: list[dict[str, object]] = [{"type": "system", "subtype": "init", "session_id": session,
                                        "tools": sorted({name for name, _, _ in calls})}]
    for index, (name, tool_input, output) in enumerate(calls, start=1):
        call_id = f"toolu_demo_{index:02d}"
        events.append({"type": "assistant", "session_id": session, "parent_tool_use_id": None,
                       "message": {"id": f"msg_demo_{index:02d}", "role": "assistant",
                                   "content": [{"type": "tool_use", "id": call_id, "name": name, "input": tool_input}]}})
        events.append({"type": "user", "session_id": session, "parent_tool_use_id": None,
                       "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id,
                                                                "content": output, "is_error": False}]}})
    return events


def child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tierbench.agents.demo",
                                     description="Offline demo agent; edits the current directory.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--key", required=True, help="run key, e.g. T0/00/run_01")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--patch", type=Path, required=True)
    parser.add_argument("--test-id", default="", help="varies outcomes between tests of one batch")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tier, subtest_id = (args.key.split("/") + ["", ""])[:2]
    rng = run_rng(args.seed, f"{args.test_id}:{args.key}" if args.test_id else args.key)
    success = rng.random() < success_probability(tier, subtest_id)
    usage, cost, turns = _usage(rng, tier)
    deadline = started + args.delay
    while time.monotonic() < deadline:
        time.sleep(min(_SLEEP_STEP, max(0.0, deadline - time.monotonic())))
    message = _attempt(rng, success, args.patch)
    _log(f"done ({'solved' if success else 'not solved'})")
    session = f"demo-{rng.getrandbits(64):016x}"
    # A separate stream of randomness, so the transcript never changes which runs pass.
    for event in _stream_events(run_rng(args.seed, f"transcript:{args.test_id}:{args.key}"), session):
        print(json.dumps(event))
    print(json.dumps({
        "type": "result", "subtype": "success", "is_error": False,
        "duration_ms": int((time.monotonic() - started) * 1000), "num_turns": turns,
        "result": message, "session_id": session,
        "total_cost_usd": cost, "usage": usage,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
