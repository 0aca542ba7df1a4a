"""How composing subtests from a resource library scales, at the size of a large suite.

Builds, in a temp directory, a library like ProjectScylla's shared one (18 CLAUDE.md blocks of ~100
lines, 44 agents in 6 levels, 9 skill categories of 5 skills with a script each, 9 MCP servers) and
one test with S subtests per tier composing from it (every block, category, level and server used),
then measures, side by side:

  inline   load_test of the same test with every composed file written inline in the subtests
  library  load_test composing from the library
  snapshot load_test of the experiment snapshot (from .composed.json, no library)

and the size of .composed.json against the contents it holds. Goal: library <= 3x inline, and
snapshot <= 1.5x inline (loading a test happens before every run command). Exit 1 if missed.

    .venv/bin/python bench/compose_scale.py [--subtests 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tierbench.resources import COMPOSED_FILE, composed_record, write_composed
from tierbench.spec import load_test


def build(root: Path, subtests: int) -> tuple[Path, Path]:
    lib = root / "resources"
    for b in range(1, 19):
        (lib / "blocks").mkdir(parents=True, exist_ok=True)
        (lib / "blocks" / f"B{b:02d}-block.md").write_text(f"# Block {b}\n" + "- a rule line\n" * 100)
    for level in range(6):
        for a in range(8 if level else 4):
            path = lib / "agents" / f"L{level}" / f"agent-{level}-{a}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"---\nname: agent-{level}-{a}\n---\n" + "Do the job.\n" * 30)
    for c in range(9):
        for s in range(5):
            skill = lib / "skills" / f"cat{c}" / f"skill-{c}-{s}"
            (skill / "scripts").mkdir(parents=True)
            (skill / "SKILL.md").write_text(f"---\nname: skill-{c}-{s}\n---\n" + "Step.\n" * 40)
            (skill / "scripts" / "run.sh").write_text("#!/bin/sh\necho run\n")
    (lib / "mcp").mkdir()
    for m in range(9):
        (lib / "mcp" / f"server{m}.json").write_text(json.dumps({"command": "npx", "args": ["-y", f"pkg{m}"]}))
    test = root / "test"
    (test / "repo").mkdir(parents=True)
    (test / "repo" / "a.py").write_text("x = 1\n")
    (test / "prompt.md").write_text("Do it.\n")
    (test / "rubric.yaml").write_text(yaml.safe_dump({"categories": {"c": {"items": [{"id": "i", "check": "ok"}]}}}))
    tiers = ["T0", "T1", "T2", "T3", "T4"]
    (test / "test.yaml").write_text(yaml.safe_dump({
        "id": "bench", "name": "bench", "language": "python", "source": {"path": "repo/"},
        "task": {"prompt_file": "prompt.md"}, "validation": {"rubric_file": "rubric.yaml"},
        "tiers": tiers, "resources_dir": "../resources"}))
    kinds = [lambda i: {"claude_md": {"blocks": [f"B{b:02d}" for b in range(1, 1 + (i % 18) + 1)]}},
             lambda i: {"skills": {"categories": [f"cat{c}" for c in range(i % 9 + 1)]}},
             lambda i: {"mcp_servers": [{"name": f"server{m}"} for m in range(i % 9 + 1)]},
             lambda i: {"agents": {"levels": [2, 3, 4, 5][: i % 4 + 1]}},
             lambda i: {"agents": {"levels": [0, 1]}, "claude_md": {"blocks": ["B01", "B02"]}}]
    for tier, kind in zip(tiers, kinds):
        (test / "tiers" / tier).mkdir(parents=True)
        for i in range(subtests):
            (test / "tiers" / tier / f"{i:02d}-s.yaml").write_text(yaml.safe_dump({"resources": kind(i)}))
    inline = root / "inline"
    shutil.copytree(test, inline)
    composed = load_test(test)
    for tier, subs in composed.subtests.items():
        for sub in subs:
            body = {"files": sub.files, "mcp_servers": {n: s.model_dump(exclude_defaults=True)
                                                        for n, s in sub.mcp_servers.items()}}
            (inline / "tiers" / tier / f"{sub.id}-s.yaml").write_text(yaml.safe_dump(body))
    (inline / "test.yaml").write_text((test / "test.yaml").read_text().replace("resources_dir: ../resources\n", ""))
    return test, inline


def timed(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subtests", type=int, default=20, help="subtests per tier (5 tiers)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        test, inline = build(root, args.subtests)
        snapshot = root / "snapshot"
        shutil.copytree(test, snapshot)
        loaded = load_test(test)
        write_composed(loaded.subtests, snapshot)
        assert load_test(snapshot).subtests == loaded.subtests
        t_inline = timed(lambda: load_test(inline), args.repeat)
        t_library = timed(lambda: load_test(test), args.repeat)
        t_snapshot = timed(lambda: load_test(snapshot), args.repeat)
        record = json.dumps(composed_record(loaded.subtests))
        contents = sum(len(c) for subs in loaded.subtests.values() for s in subs for c in s.files.values())
        size = (snapshot / COMPOSED_FILE).stat().st_size
    subtests = sum(len(v) for v in loaded.subtests.values())
    print(f"{subtests} subtests, {contents / 1e6:.2f} MB of composed file contents")
    print(f"load_test median  inline {t_inline:.3f} s   library {t_library:.3f} s ({t_library / t_inline:.2f}x)   "
          f"snapshot {t_snapshot:.3f} s ({t_snapshot / t_inline:.2f}x)")
    print(f".composed.json {size / 1e6:.2f} MB ({len(record) / max(contents, 1):.2f}x the contents, deduplicated)")
    ok = t_library <= 3 * t_inline and t_snapshot <= 1.5 * t_inline
    print("goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
