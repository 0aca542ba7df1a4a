"""Command-line interface: argument parsing and exit codes only; the work lives in the library.

Exit codes (every command): 0 done, 1 error, 2 rate limited and not waiting, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tierbench.errors import TierbenchError
from tierbench.exitcodes import EXIT_ERROR, EXIT_INTERRUPTED, print_error
from tierbench.models import ALL_TIERS
from tierbench.options import add_options, given_options, positive_int


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage, but 2 means "rate limited" here; bad input is 1."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tierbench", description="Durable ablation experiments for AI coding agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run (or continue) an experiment on a test directory")
    run.add_argument("test_dir", type=Path)
    add_options(run, "run")

    resume = sub.add_parser("resume", help="continue an experiment from its directory alone")
    resume.add_argument("exp_dir", type=Path)
    add_options(resume, "resume")

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

    plan = sub.add_parser("plan", help="runs per subtest for a target precision or uplift, with cost and time")
    plan.add_argument("path", type=Path, help="a test directory or a directory of tests")
    target = plan.add_mutually_exclusive_group(required=True)
    target.add_argument("--half-width", type=float, help="target 95%% CI half-width of a subtest's pass rate")
    target.add_argument("--uplift", type=float, help="pass-rate difference over T0 to detect")
    plan.add_argument("--pilot", type=Path, default=None, help="an experiment or batch directory to learn from")
    plan.add_argument("--prior-pass-rate", type=float, default=None, help="pass rate when there is no pilot")
    plan.add_argument("--tiers", nargs="+", choices=ALL_TIERS, default=None)
    plan.add_argument("--max-subtests", type=positive_int, default=None)
    plan.add_argument("--parallel", type=positive_int, default=2, help="runs at once (default 2)")
    plan.add_argument("--alpha", type=float, default=0.05, help="two-sided test level (default 0.05)")
    plan.add_argument("--power", type=float, default=0.8, help="power for --uplift (default 0.8)")
    plan.add_argument("--cost-per-run", type=float, default=None, help="USD per run when there is no pilot")
    plan.add_argument("--seconds-per-run", type=float, default=None, help="run time when there is no pilot")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    batch = sub.add_parser("batch", help="run many tests in parallel with a crash-safe batch_summary.json")
    batch.add_argument("tests_dir", type=Path)
    add_options(batch, "batch")

    importer = sub.add_parser("import", help="convert another tool's test suite into tierbench tests")
    importer.add_argument("format", choices=["scylla"], help="scylla: a ProjectScylla checkout")
    importer.add_argument("source", type=Path, help="SCYLLA_ROOT: the root of the ProjectScylla checkout")
    importer.add_argument("out_dir", type=Path, help="where the tierbench tests and the library go")
    importer.add_argument("--tests", nargs="+", default=None, metavar="TEST", help="only these test-NNN")
    importer.add_argument("--judge", default="anthropic:claude-sonnet-4-6",
                          help="the judge the imported tests name (default %(default)s)")

    from tierbench.view.command import add_view_parser

    add_view_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "resume"):
            from tierbench.commands import cmd_run

            return cmd_run(args, given_options(args))
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
        if args.command == "plan":
            from tierbench.commands import cmd_plan

            return cmd_plan(args)
        if args.command == "import":
            from tierbench.commands import cmd_import

            return cmd_import(args.source, args.out_dir, args.tests, args.judge)
        if args.command == "batch":
            from tierbench.batch.command import cmd_batch

            return cmd_batch(args, given_options(args))
        if args.command == "view":
            from tierbench.view.command import cmd_view

            return cmd_view(args)
    except TierbenchError as exc:  # the one place a user-facing error becomes a message and exit 1
        print_error(str(exc))
        return EXIT_ERROR
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
