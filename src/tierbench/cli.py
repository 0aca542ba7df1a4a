"""Command-line interface: argument parsing and exit codes only; the work lives in the library.

Exit codes (every command): 0 done, 1 error, 2 rate limited and not waiting, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, print_error
from tierbench.models import ALL_TIERS




class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage, but 2 means "rate limited" here; bad input is 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return value


def _duration(text: str) -> float:
    """Seconds, or a number with s/m/h/d (e.g. 90m, 6h)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 3600, 90m or 6h)") from None


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def add_experiment_options(parser: argparse.ArgumentParser) -> None:
    """Options that define an experiment (shared by run, resume and batch). Defaults are None so
    that only options actually given are compared with a saved config or passed to a child."""
    parser.add_argument("--results-dir", type=Path, default=None, help="where experiments go (default ./results)")
    parser.add_argument("--tiers", nargs="+", choices=ALL_TIERS, default=None)
    parser.add_argument("--runs", dest="runs_per_subtest", type=_positive_int, default=None)
    parser.add_argument("--max-subtests", type=_positive_int, default=None)
    parser.add_argument("--agent", default=None, help="demo | command | claude-code")
    parser.add_argument("--agent-opt", dest="agent_options", type=_key_value, action="append", default=None,
                        metavar="KEY=VALUE")
    parser.add_argument("--model", default=None)
    parser.add_argument("--judge", dest="judges", action="append", default=None, metavar="SPEC",
                        help="command | anthropic:<model> | openai:<model>[@base_url]; repeatable")
    parser.add_argument("--timeout", dest="timeout_seconds", type=_positive_int, default=None)
    parser.add_argument("--thinking", choices=["None", "Low", "High", "UltraThink"], default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--on-rate-limit", choices=["wait", "exit"], default=None,
                        help="default: wait when the reset is within --max-wait, else exit")
    parser.add_argument("--max-wait", dest="max_wait_seconds", type=_duration, default=None)
    parser.add_argument("--rate-limit-wait", dest="default_rate_limit_wait_seconds", type=_duration, default=None,
                        help="wait used when a rate limit names no reset time (default 60s)")
    parser.add_argument("--fresh", action="store_true", help="move the old results aside and start anew")


def _add_run_only_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parallel", type=_positive_int, default=None)
    parser.add_argument("--keep-workspaces", action="store_true", default=None)
    parser.add_argument("--no-preflight", dest="preflight", action="store_false", default=None)
    parser.add_argument("--stall-limit", type=_positive_int, default=None)
    parser.add_argument("--extend", action="store_true",
                        help="apply more --runs/--tiers/--max-subtests to an existing experiment")
    parser.add_argument("--quiet", action="store_true", help="print only errors and the final summary")
    parser.add_argument("--no-report", action="store_true", help="skip writing the report at the end")


def requested_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user actually gave (None for the rest)."""
    fields = ["tiers", "runs_per_subtest", "max_subtests", "agent", "agent_options", "model", "judges",
              "parallel", "timeout_seconds", "thinking", "keep_workspaces", "seed", "on_rate_limit",
              "max_wait_seconds", "default_rate_limit_wait_seconds", "preflight", "stall_limit"]
    values = {name: getattr(args, name, None) for name in fields}
    if values["agent_options"] is not None:
        values["agent_options"] = dict(values["agent_options"])
    if values["tiers"] is not None:
        values["tiers"] = sorted(set(values["tiers"]))
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tierbench", description="Durable ablation experiments for AI coding agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or continue) an experiment on a test directory")
    run.add_argument("test_dir", type=Path)
    add_experiment_options(run)
    _add_run_only_options(run)

    resume = sub.add_parser("resume", help="continue an experiment from its directory alone")
    resume.add_argument("exp_dir", type=Path)
    add_experiment_options(resume)
    _add_run_only_options(resume)

    status = sub.add_parser("status", help="progress of an experiment")
    status.add_argument("exp_dir", type=Path)
    status.add_argument("--json", action="store_true")

    check = sub.add_parser("check", help="compare the recorded state with the files; exit 1 on discrepancies")
    check.add_argument("exp_dir", type=Path)

    repair = sub.add_parser("repair", help="rebuild the state from run_result.json files (backs up first)")
    repair.add_argument("path", type=Path, help="experiment directory or its checkpoint.json")

    report = sub.add_parser("report", help="write report.md/html/json and CSVs for an experiment or batch")
    report.add_argument("path", type=Path)
    report.add_argument("--out", type=Path, default=None)
    report.add_argument("--format", default="md,html,json,csv")

    batch = sub.add_parser("batch", help="run many tests in parallel with a crash-safe batch_summary.json")
    batch.add_argument("tests_dir", type=Path)
    batch.add_argument("--tests", nargs="+", default=None, metavar="ID")
    batch.add_argument("--threads", type=_positive_int, default=4)
    batch.add_argument("--retry-errors", action="store_true")
    batch.add_argument("--quiet", action="store_true")
    add_experiment_options(batch)

    from tierbench.view.command import add_view_parser

    add_view_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "resume"):
            from tierbench.commands import cmd_run

            return cmd_run(args, requested_config(args))
        if args.command == "status":
            from tierbench.commands import cmd_status

            return cmd_status(args.exp_dir, as_json=args.json)
        if args.command == "check":
            from tierbench.commands import cmd_check

            return cmd_check(args.exp_dir)
        if args.command == "repair":
            from tierbench.commands import cmd_repair

            return cmd_repair(args.path)
        if args.command == "report":
            from tierbench.commands import cmd_report

            return cmd_report(args.path, args.out, args.format)
        if args.command == "batch":
            from tierbench.batch import cmd_batch

            return cmd_batch(args, requested_config(args))
        if args.command == "view":
            from tierbench.view.command import cmd_view

            return cmd_view(args)
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, permissions: say what failed instead of a traceback
        print_error(f"{exc.strerror or exc} ({exc.filename or 'file'}); nothing completed was lost. "
             "Free space or fix permissions, then run the same command again.")
        return EXIT_ERROR
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
