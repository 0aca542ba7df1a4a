"""Objective rubric checks: each item's `command:` run in the workspace, and the judge that grades
from them.

The checks run once per run, before any judge, and every judge sees the same results: LLM judges
get them as evidence, the command judge grades from them alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tierbench.process import ProcessRegistry, run_process
from tierbench.sandbox import SandboxPolicy
from tierbench.judges.base import CommandCheckResult, JudgeContext
from tierbench.judges.rubric import rubric_score
from tierbench.models import ItemScore, JudgeResult, grade_for
from tierbench.spec import Rubric

OUTPUT_TAIL_BYTES = 4096

# Judge keys are never handed to workspace code: a check runs what the agent wrote, and its output
# lands in logs, so a test that prints the environment must not be able to leak them.
_SECRET_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


def run_command_checks(rubric: Rubric, workspace: Path, out_dir: Path, registry: ProcessRegistry | None,
                       timeout_cap: float | None = None, *, env: dict[str, str] | None = None,
                       sandbox: SandboxPolicy | None = None) -> list[CommandCheckResult]:
    """Run every rubric item that has a `command:` (shell, cwd=workspace, own process group).

    Output (stdout and stderr interleaved) goes to `out_dir/<item_id>.log`; a check passes on exit 0.
    Each item's `timeout_seconds` applies, lowered to `timeout_cap` when given. A check runs code the
    agent wrote, so it runs in the run's sandbox with the run's environment (`env`, default the
    host's), judge keys removed.
    """
    env = {name: value for name, value in (os.environ if env is None else env).items()
           if name not in _SECRET_ENV}
    results = []
    for item in rubric.items():
        if item.command is None:
            continue
        timeout = float(item.timeout_seconds)
        if timeout_cap is not None:
            timeout = min(timeout, timeout_cap)
        log = out_dir / f"{_safe_name(item.id)}.log"
        outcome = run_process(item.command, cwd=workspace, env=env, timeout=timeout, stdout_path=log,
                              stderr_path=log, registry=registry, shell=True, sandbox=sandbox)
        if outcome.start_error:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:
                handle.write(f"[tierbench] could not start the check: {outcome.start_error}\n".encode())
        results.append(CommandCheckResult(
            item_id=item.id, command=item.command, exit_code=outcome.exit_code,
            passed=outcome.exit_code == 0 and not outcome.timed_out, timed_out=outcome.timed_out,
            duration_seconds=outcome.duration_seconds, output_tail=_tail(log),
        ))
    return results


def _safe_name(item_id: str) -> str:
    """Item ids are free text in the rubric; the log file name must stay inside out_dir."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", item_id).lstrip(".")
    return name or "item"


def _tail(path: Path, limit: int = OUTPUT_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            data = handle.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return ("[... earlier output in the log]\n" + text) if size > limit else text


class CommandJudge:
    """Grades from the command checks alone: each command item scores 1 on pass, 0 on fail."""

    spec = "command"

    def judge(self, ctx: JudgeContext) -> JudgeResult:
        command_items = [item for item in ctx.rubric.items() if item.command is not None]
        if not command_items:
            return self._invalid(ctx, "the rubric has no items with a `command:`, so the command judge "
                                      "has nothing to grade; add commands or use an LLM judge")
        results = {r.item_id: r for r in ctx.command_results}
        not_run = [item.id for item in command_items
                   if item.id not in results or (results[item.id].exit_code is None and not results[item.id].timed_out)]
        if not_run:
            # A check that never ran says nothing about the work: not a fail, an invalid judgment.
            return self._invalid(ctx, f"check(s) did not run: {', '.join(not_run)}")
        scores = {item.id: 1.0 if results[item.id].passed else 0.0 for item in command_items}
        score = rubric_score(ctx.rubric, scores)
        assert score is not None  # at least one command item was scored
        items = [_item_score(results[item.id]) for item in command_items]
        passed = score >= ctx.rubric.grading.pass_threshold
        reasoning = "\n".join(f"{'PASS' if i.passed else 'FAIL'} {i.id}: {i.reasoning}" for i in items)
        return JudgeResult(judge_id=ctx.judge_id, spec=self.spec, is_valid=True, score=score, passed=passed,
                           grade=grade_for(score), reasoning=reasoning, items=items)

    def _invalid(self, ctx: JudgeContext, error: str) -> JudgeResult:
        return JudgeResult(judge_id=ctx.judge_id, spec=self.spec, is_valid=False, error=error)


def _item_score(result: CommandCheckResult) -> ItemScore:
    if result.timed_out:
        why = f"timed out after {result.duration_seconds:.0f}s: {result.command}"
    else:
        why = f"exit {result.exit_code}: {result.command}"
    return ItemScore(id=result.item_id, score=1.0 if result.passed else 0.0, passed=result.passed, reasoning=why)
