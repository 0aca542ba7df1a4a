"""Which tests a batch runs, and on which worker: discovery, `--tests`, and the assignment
(longest `task.timeout_seconds` first, each to the worker with the least total timeout so far)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierbench.errors import TierbenchError
from tierbench.spec import SpecError, load_test


class BatchError(TierbenchError):
    """The batch cannot start as asked; the message says why."""


@dataclass(frozen=True)
class BatchTest:
    test_id: str
    test_dir: Path
    timeout: int
    error: str | None = None  # the test directory is invalid: recorded as an `error`, never run


def discover_tests(tests_dir: Path) -> list[BatchTest]:
    """Subdirectories holding test.yaml, validated; an invalid one keeps its error (not raised)."""
    tests_dir = Path(tests_dir)
    if not tests_dir.is_dir():
        raise BatchError(f"{tests_dir}: not a directory of tests")
    tests: list[BatchTest] = []
    seen: dict[str, Path] = {}
    for test_dir in sorted(p.resolve() for p in tests_dir.iterdir() if (p / "test.yaml").is_file()):
        try:
            loaded = load_test(test_dir)
            test = BatchTest(loaded.spec.id, test_dir, loaded.spec.task.timeout_seconds)
        except SpecError as exc:  # names file, field and fix
            test = BatchTest(_raw_id(test_dir), test_dir, 0, error=str(exc))
        except Exception as exc:  # anything else is still this test's error, not the batch's
            test = BatchTest(_raw_id(test_dir), test_dir, 0, error=f"{type(exc).__name__}: {exc}")
        if test.test_id in seen:
            test = BatchTest(test.test_id, test_dir, 0, error=(
                f"{test_dir}: test id {test.test_id!r} is also used by {seen[test.test_id]}; "
                "give each test its own id"))
        else:
            seen[test.test_id] = test_dir
        tests.append(test)
    if not tests:
        raise BatchError(f"{tests_dir}: no tests found (subdirectories holding test.yaml)")
    return tests


def _raw_id(test_dir: Path) -> str:
    """The id an invalid test.yaml claims, if it is readable; else the directory name."""
    import yaml

    try:
        data = yaml.safe_load((test_dir / "test.yaml").read_text())
        if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"].strip():
            return data["id"].strip()
    except Exception:
        pass
    return test_dir.name


def select_tests(tests: list[BatchTest], wanted: list[str] | None) -> list[BatchTest]:
    if not wanted:
        return tests
    by_name = {t.test_id: t for t in tests} | {t.test_dir.name: t for t in tests}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise BatchError(f"--tests: unknown test id(s) {' '.join(unknown)}; available: "
                         f"{' '.join(sorted(t.test_id for t in tests))}")
    chosen = {by_name[w].test_dir for w in wanted}
    return [t for t in tests if t.test_dir in chosen]


def assign_threads(tests: list[BatchTest], threads: int) -> dict[int, list[BatchTest]]:
    """Longest timeout first, each to the least-loaded worker (ties: lower thread id)."""
    workers = min(threads, len(tests))
    plan: dict[int, list[BatchTest]] = {n: [] for n in range(1, workers + 1)}
    load = dict.fromkeys(plan, 0)
    for test in sorted(tests, key=lambda t: (-t.timeout, t.test_id)):
        thread_id = min(load, key=lambda n: (load[n], n))
        plan[thread_id].append(test)
        load[thread_id] += test.timeout
    return plan
