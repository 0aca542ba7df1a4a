"""tierbench's wall time per run against the floor: the same git and process work in a plain script.

Work per run (a no-op agent and a `true` check, so everything measured is overhead):
  floor      git worktree add; a commit of one file (add + commit); two process spawns (`true`);
             a diff; a JSON write; git worktree remove.
  tierbench  `tierbench run` of a test whose subtest adds one file, `--agent command` with
             cmd=true, one command check `true`, the command judge.

Per-run time is marginal: (wall of 2N runs - wall of N runs) / N, for both, so tierbench's
start-up (imports, lock, store, base repository) is left out, as the floor has none; it is printed
on its own line (wall of N runs - N x the marginal figure, at --parallel 1). Both are
measured side by side, interleaved, --repeat times; medians are printed.

Parallel efficiency: the same with 1 s agents (`sleep 1`) at --parallel 8:
efficiency = ideal marginal wall (N runs x 1 s / 8) / measured marginal wall.

Goals: tierbench at most 1.2x the floor at --parallel 1 and 2; efficiency at least 0.93.
Exit status 1 if tierbench as shipped (sandboxed) misses a goal. Every tierbench figure is also
measured with --sandbox none: the floor's spawns are plain, so that row is tierbench's own overhead
and the gap between the rows is what bubblewrap costs (two sandboxed processes per run). A "like for
like" line compares sandboxed tierbench with the floor whose two spawns run under the same bwrap
policy (informative; the goal is judged against the plain floor).

    .venv/bin/python bench/overhead.py [--runs 20] [--repeat 3] [--sleep-runs 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from tierbench.sandbox import SandboxPolicy, choose_sandbox

TIERBENCH = str(Path(sys.executable).with_name("tierbench"))
GIT = ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}


def make_test(root: Path, agent_seconds: float) -> Path:
    test_dir = root / f"noop{int(agent_seconds * 1000)}"
    (test_dir / "repo").mkdir(parents=True)
    for index in range(20):  # a small repository, so worktree checkouts do a little real work
        (test_dir / "repo" / f"file{index}.txt").write_text(f"line {index}\n" * 20)
    (test_dir / "prompt.md").write_text("do nothing\n")
    (test_dir / "rubric.yaml").write_text(yaml.safe_dump({"categories": {"c": {"weight": 1.0, "items": [
        {"id": "ok", "check": "ok", "points": 1, "command": "true"}]}}}))
    (test_dir / "test.yaml").write_text(yaml.safe_dump({
        "id": test_dir.name, "name": "noop", "language": "python", "source": {"path": "repo/"},
        "task": {"prompt_file": "prompt.md", "timeout_seconds": 60},
        "validation": {"rubric_file": "rubric.yaml"}, "tiers": ["T0"], "judges": ["command"]}))
    (test_dir / "tiers" / "T0").mkdir(parents=True)
    (test_dir / "tiers" / "T0" / "00-one-file.yaml").write_text(yaml.safe_dump(
        {"description": "one file", "files": {"CLAUDE.md": "be brief\n"}}))
    return test_dir


def tierbench_wall(test_dir: Path, results: Path, runs: int, parallel: int, agent_seconds: float,
                   sandbox: str = "auto") -> float:
    cmd = "true" if agent_seconds == 0 else f"sleep {agent_seconds}"
    shutil.rmtree(results, ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.run([TIERBENCH, "run", str(test_dir), "--results-dir", str(results), "--runs", str(runs),
                           "--parallel", str(parallel), "--agent", "command", "--agent-opt", f"cmd={cmd}",
                           "--no-preflight", "--quiet", "--no-report", "--sandbox", sandbox],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"tierbench failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall


def floor_wall(repo: Path, commit: str, work: Path, runs: int, parallel: int, agent_seconds: float,
               sandboxed: bool = False) -> float:
    """The same work in a plain script: worktree add, commit one file, two spawns, diff, JSON, remove.
    `sandboxed`: the two spawns run under the bwrap policy tierbench gives a run (same flags, from
    `SandboxPolicy.wrap`), to compare tierbench's sandboxed runs with like for like."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lock = threading.Lock()
    agent = ["true"] if agent_seconds == 0 else ["sleep", str(agent_seconds)]
    counter = iter(range(runs))
    bwrap = choose_sandbox("bwrap").bwrap if sandboxed else None

    def spawn(argv: list[str], ws: Path) -> None:
        if bwrap is not None:
            argv = SandboxPolicy(kind="bwrap", bwrap=bwrap, writable=(ws,)).wrap(argv, ws)
        subprocess.run(argv, cwd=ws, check=True)

    def one(index: int) -> None:
        ws = work / f"run_{index:03d}" / "workspace"
        ws.parent.mkdir(parents=True)
        with lock:  # git serialises worktree metadata changes; tierbench does the same
            subprocess.run([*GIT, "worktree", "add", "-q", "--detach", str(ws), commit], cwd=repo, check=True,
                           env=GIT_ENV)
        (ws / "CLAUDE.md").write_text("be brief\n")
        subprocess.run([*GIT, "add", "CLAUDE.md"], cwd=ws, check=True, env=GIT_ENV)
        subprocess.run([*GIT, "commit", "-q", "-m", "subtest"], cwd=ws, check=True, env=GIT_ENV)
        spawn(agent, ws)
        spawn(["true"], ws)
        diff = subprocess.run([*GIT, "diff", "HEAD"], cwd=ws, check=True, capture_output=True, text=True).stdout
        (ws.parent / "run_result.json").write_text(json.dumps({"status": "passed", "diff": len(diff)}))
        with lock:
            subprocess.run([*GIT, "worktree", "remove", "--force", str(ws)], cwd=repo, check=True, env=GIT_ENV)

    def worker() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            one(index)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def floor_repo(root: Path, test_dir: Path) -> tuple[Path, str]:
    repo = root / "floor-repo"
    shutil.copytree(test_dir / "repo", repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True, env=GIT_ENV)
    subprocess.run([*GIT, "commit", "-q", "-m", "base"], cwd=repo, check=True, env=GIT_ENV)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                            text=True).stdout.strip()
    return repo, commit


def marginal(measure, runs: int, startups: list[float] | None = None) -> float:
    """(wall of 2N runs - wall of N runs) / N; the fixed cost (wall of N runs - N x that) goes to `startups`."""
    small, large = measure(runs), measure(2 * runs)
    per_run = (large - small) / runs
    if startups is not None:
        startups.append(small - runs * per_run)
    return per_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sleep-runs", type=int, default=32)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="tierbench-overhead-") as tmp:
        root = Path(tmp)
        noop, sleepy = make_test(root, 0), make_test(root, 1.0)
        repo, commit = floor_repo(root, noop)
        results = root / "results"
        startups: list[float] = []
        # tierbench as shipped (each agent and check process in bwrap) and with --sandbox none: the
        # floor's two process spawns are plain, so the second row shows tierbench's own overhead
        # and the difference is the sandbox's price.
        variants = {"tierbench": "auto", "tierbench --sandbox none": "none"}
        print(f"{'':42} {'ms/run':>7} {'floor ms/run':>13} {'ratio':>6}")
        for parallel in (1, 2):
            ours: dict[str, list[float]] = {name: [] for name in variants}
            floor: list[float] = []
            sandboxed_floor: list[float] = []
            for _ in range(args.repeat):  # interleaved, so machine noise hits all alike
                for name, sandbox in variants.items():
                    ours[name].append(marginal(
                        lambda n: tierbench_wall(noop, results, n, parallel, 0, sandbox), args.runs,
                        startups if parallel == 1 and sandbox == "auto" else None))
                floor.append(marginal(lambda n: floor_wall(repo, commit, root / "floor", n, parallel, 0), args.runs))
                sandboxed_floor.append(marginal(
                    lambda n: floor_wall(repo, commit, root / "floor", n, parallel, 0, sandboxed=True), args.runs))
            f, fs = statistics.median(floor), statistics.median(sandboxed_floor)
            for name, sandbox in variants.items():
                o = statistics.median(ours[name])
                ratio = o / f
                if sandbox == "auto":
                    ok &= ratio <= 1.2
                print(f"no-op runs, --parallel {parallel}, {name:<26} {o * 1000:>7.1f} {f * 1000:>13.1f} {ratio:>6.2f}"
                      f"  (goal <= 1.2: {'ok' if ratio <= 1.2 else 'MISSED'})")
            o = statistics.median(ours["tierbench"])
            print(f"  like for like: tierbench vs the floor with its 2 spawns in bwrap ({fs * 1000:.1f} ms/run): "
                  f"{o / fs:.2f}")
        n, parallel = args.sleep_runs, 8
        ideal = n * 1.0 / parallel
        ours_eff: dict[str, list[float]] = {name: [] for name in variants}
        floor_eff: list[float] = []
        for _ in range(args.repeat):
            for name, sandbox in variants.items():
                ours_eff[name].append(ideal / (tierbench_wall(sleepy, results, 2 * n, parallel, 1.0, sandbox)
                                               - tierbench_wall(sleepy, results, n, parallel, 1.0, sandbox)))
            floor_eff.append(ideal / (floor_wall(repo, commit, root / "floor", 2 * n, parallel, 1.0)
                                      - floor_wall(repo, commit, root / "floor", n, parallel, 1.0)))
        ef = statistics.median(floor_eff)
        for name, sandbox in variants.items():
            eo = statistics.median(ours_eff[name])
            if sandbox == "auto":
                ok &= eo >= 0.93
            print(f"1 s agents, --parallel 8, {name:<26} efficiency {eo:.2f}, floor {ef:.2f} "
                  f"(goal >= 0.93: {'ok' if eo >= 0.93 else 'MISSED'})")
        print(f"tierbench start-up (a whole `tierbench run` less its runs): {statistics.median(startups):.2f} s")
        print(f"({os.cpu_count()} CPUs; medians of {args.repeat}; marginal over {args.runs} and "
              f"{args.sleep_runs} extra runs)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
