"""`tierbench import scylla` on a small suite in ProjectScylla's format (tests/fixtures/scylla, written
for these tests): every source field is mapped or listed as unmapped, composition is what Scylla's
rules give, and an imported test runs with the demo agent and an LLM judge on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import cli_env, completed_runs, run_cli
from tests.support.fake_llm_judges import FakeJudgeAPI, scores
from tierbench.spec import load_test

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "scylla"
SHARED = FIXTURE / "tests" / "claude-code" / "shared"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    out = tmp_path_factory.mktemp("imported")
    proc = run_cli("import", "scylla", FIXTURE, out)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "import_report.json").read_text()), proc.stdout


def leaves(data: Any, prefix: str = "") -> list[str]:
    """Every leaf field path of a YAML document (list items of mappings are indexed)."""
    if isinstance(data, dict) and data:
        return [p for k, v in data.items() for p in leaves(v, f"{prefix}{k}.")]
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        return [p for i, v in enumerate(data) for p in leaves(v, f"{prefix}{i}.")]
    return [prefix.rstrip(".")]


def covered(path: str, entries: list[dict[str, str]]) -> bool:
    return any(path == e["field"] or path.startswith(e["field"] + ".") for e in entries)


def test_every_source_field_is_mapped_or_listed(imported) -> None:
    out, summary, stdout = imported
    for test_id in ("test-001", "test-002", "test-003"):
        report = json.loads((out / test_id / "import_report.json").read_text())
        by_source: dict[str, list[dict[str, str]]] = {}
        for entry in report["fields"]:
            by_source.setdefault(entry["source"], []).append(entry)
        spec = yaml.safe_load((out / test_id / "test.yaml").read_text())
        src_dir = FIXTURE / "tests" / "fixtures" / "tests" / test_id
        sources = {f"tests/fixtures/tests/{test_id}/{rel}": src_dir / rel
                   for rel in ("test.yaml", "config.yaml", "expected/rubric.yaml") if (src_dir / rel).exists()}
        for tier in spec["tiers"]:
            for file in sorted((SHARED / "subtests" / tier.lower()).glob("*.yaml")):
                sources[f"tests/claude-code/shared/subtests/{tier.lower()}/{file.name}"] = file
        for label, path in sources.items():
            for field in leaves(yaml.safe_load(path.read_text()) or {}):
                assert covered(field, by_source.get(label, [])), f"{test_id}: {label}: {field} silently dropped"
        for entry in report["fields"]:
            assert entry["status"] in ("mapped", "unmapped")
            assert entry.get("to") or entry.get("reason")
    for field in leaves(yaml.safe_load((SHARED / "tiers.yaml").read_text())):
        assert covered(field, summary["shared"]), f"tiers.yaml: {field} silently dropped"
    unmapped = {(e["source"].rsplit("/", 1)[-1], e["field"]) for e in summary["tests"]["test-001"]["unmapped"]}
    assert unmapped >= {("test.yaml", "owner"), ("config.yaml", "max_cost_usd"), ("rubric.yaml",
                        "categories.functional.items.2.evidence"), ("01-everything.yaml", "timeout_multiplier"),
                        ("04-custom-mcp.yaml", "mcp_servers.0.config_path"), ("test.yaml", "task.timeout_seconds"),
                        ("03-reordered.yaml", "resources.claude_md.blocks")}
    assert ("rubric.yaml", "grading.grade_scale") in {(e["source"].rsplit("/", 1)[-1], e["field"])
                                                       for e in summary["tests"]["test-002"]["unmapped"]}
    assert "not mapped: tests/fixtures/tests/test-001/test.yaml: owner: no tierbench test field" in stdout


def test_fields_keep_their_meaning(imported) -> None:
    out, _, _ = imported
    test = load_test(out / "test-001")
    assert test.spec.task.timeout_seconds == 900  # config.yaml's timeout: the one Scylla's runner uses
    assert test.criteria.startswith("# Criteria") and test.spec.validation.criteria_file == "expected/criteria.md"
    functional = test.rubric.categories[0]
    assert (functional.name, functional.weight, functional.scoring_type) == ("functional", 0.6, "checklist")
    assert test.rubric.categories[1].scoring_type == "subjective"
    assert [i.na_condition for i in functional.items] == [None, None, "No formatter is available in the workspace"]
    assert test.rubric.grading.pass_threshold == 0.70
    sub = {f"{t}/{s.id}": s for t, subs in test.subtests.items() for s in subs}
    assert [sub[k].extends_previous for k in ("T0/00", "T0/01", "T0/02", "T0/03", "T1/02", "T6/01")] == \
        [False, False, True, False, True, False]  # Scylla: T0 00/01 do not extend, others do unless told
    assert sub["T0/00"].system_prompt_mode == "none" and sub["T0/01"].system_prompt_mode == "default"
    assert sub["T0/02"].system_prompt_mode is None  # Scylla's "custom": the default prompt plus CLAUDE.md
    assert sub["T2/01"].tools.enabled == ["Read", "Grep", "Glob"] and sub["T2/02"].tools.enabled is None
    assert sub["T4/02"].env == {"CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS": "1"}
    assert sub["T5/01"].inherit_best_from == ["T0", "T1"]
    assert sub["T2/03"].mcp_servers["filesystem"].model_dump(exclude_defaults=True) == {
        "command": "npx", "args": ["-y", "@modelcontextprotocol/servers/filesystem"]}
    assert sub["T2/04"].mcp_servers["custom"].args == ["-y", "@local/custom"]
    assert "filesystem" in sub["T6/01"].mcp_servers and sub["T6/01"].tools.enabled is None


def scylla_composition(resources: dict[str, Any]) -> tuple[str | None, dict[str, dict[str, str]], set[str]]:
    """What ProjectScylla's TierManager composes for a resources spec, by its rules: blocks found by
    `Bnn-*.md` joined with a blank line (missing ones skipped); every skill directory of each
    category plus named skills found in any category; every agent of each level L<n> plus named agents."""
    blocks = (resources.get("claude_md") or {}).get("blocks") or []
    texts = [matches[0].read_text() for b in blocks if (matches := sorted((SHARED / "blocks").glob(f"{b}-*.md")))]
    claude_md = "\n\n".join(texts) or None
    skills: dict[str, dict[str, str]] = {}
    spec = resources.get("skills") or {}
    dirs = [d for c in spec.get("categories", []) if (SHARED / "skills" / c).is_dir()
            for d in (SHARED / "skills" / c).iterdir() if d.is_dir()]
    dirs += [SHARED / "skills" / c.name / n for n in spec.get("names", [])
             for c in (SHARED / "skills").iterdir() if (c / n).is_dir()]
    for d in dirs:
        skills.setdefault(d.name, {p.relative_to(d).as_posix(): p.read_text() for p in d.rglob("*") if p.is_file()})
    agents = resources.get("agents") or {}
    names = {f.name for lvl in agents.get("levels", []) for f in (SHARED / "agents" / f"L{lvl}").glob("*.md")}
    names |= {n if n.endswith(".md") else n + ".md" for n in agents.get("names", [])
              if any((lvl / (n if n.endswith(".md") else n + ".md")).exists() for lvl in (SHARED / "agents").iterdir())}
    return claude_md, skills, names


def test_composition_is_what_scylla_composes(imported) -> None:
    out, _, _ = imported
    test = load_test(out / "test-001")
    checked = 0
    for tier, subs in test.subtests.items():
        for sub in subs:
            source = next((SHARED / "subtests" / tier.lower()).glob(f"{sub.id}-*.yaml"))
            raw = yaml.safe_load(source.read_text()) or {}
            resources = {**(raw.get("resources") or {}), **{k: raw[k] for k in ("skills", "agents") if k in raw}}
            claude_md, skills, agents = scylla_composition(resources)
            assert sub.files.get("CLAUDE.md") == claude_md, f"{tier}/{sub.id}"
            got_skills: dict[str, dict[str, str]] = {}
            for rel, text in sub.files.items():
                parts = rel.split("/")
                if parts[:2] == [".claude", "skills"]:
                    got_skills.setdefault(parts[2], {})["/".join(parts[3:])] = text
            assert got_skills == skills, f"{tier}/{sub.id}"
            assert {rel.split("/")[-1] for rel in sub.files if rel.startswith(".claude/agents/")} == agents
            checked += 1
    assert checked == 16
    assert load_test(out / "test-001").subtest("T0", "03").files["CLAUDE.md"].startswith("# Commands")


def test_imported_test_runs_with_the_demo_agent(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    shutil.copytree(FIXTURE, suite)
    repo = tmp_path / "counter"  # the test's repository, local so nothing leaves the machine
    repo.mkdir()
    (repo / "count.py").write_text("import sys\nprint(len(open(sys.argv[1]).read().split('\\n')) - 2)\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                            text=True).stdout.strip()
    test_yaml = suite / "tests" / "fixtures" / "tests" / "test-002" / "test.yaml"
    data = yaml.safe_load(test_yaml.read_text())
    data["source"] = {"repo": repo.as_uri(), "hash": commit}
    test_yaml.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    proc = run_cli("import", "scylla", suite, out, "--tests", "test-002")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "test-001").exists()
    with FakeJudgeAPI([], default=scores({"F1": 1, "F2": "N/A", "Q1": 0.5})) as judge:
        env = cli_env(ANTHROPIC_API_KEY="dummy-judge-key", ANTHROPIC_BASE_URL=judge.url)
        proc = run_cli("run", out / "test-002", "--results-dir", tmp_path / "results", "--agent", "demo",
                       "--runs", 1, "--no-report", "--quiet", env=env)
        prompts = [json.dumps(r.body) for r in judge.requests]
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "results" / "test-002"
    assert len(completed_runs(exp)) == 6  # T0: 4 subtests, T1: 2
    result = json.loads((exp / "T0" / "02" / "run_01" / "run_result.json").read_text())
    # F2 is N/A: it leaves the denominator, so functional is 1/1, and 0.7 * 1 + 0.3 * 0.5 = 0.85
    assert result["judge_score"] == pytest.approx(0.85)
    assert all("The line count equals" in p and "N/A when: The repository has no tests" in p for p in prompts)


def test_a_directory_that_is_not_a_scylla_checkout_is_refused(tmp_path: Path) -> None:
    proc = run_cli("import", "scylla", tmp_path, tmp_path / "out")
    assert proc.returncode == 1
    assert "tests/fixtures/tests: not found. Pass the root of a ProjectScylla checkout" in proc.stderr


def test_the_older_requirements_rubric_keeps_scyllas_weighted_mean(imported) -> None:
    from tierbench.judges.rubric import rubric_score

    out, summary, _ = imported
    rubric = load_test(out / "test-003").rubric
    kinds = {c.name: (c.scoring_type, c.weight, [i.id for i in c.items]) for c in rubric.categories}
    assert kinds == {"requirements_binary": ("checklist", 3.0, ["R001", "R005"]),
                     "requirements_scaled": ("subjective", 2.0, ["R002", "R003"])}
    items = {i.id: i for i in rubric.items()}
    assert items["R002"].check == ("The version is read from one place Criteria: No second copy of the version "
                                   "string; Tests cover the flag.")
    assert items["R005"].command == "python3 -m unittest -q" and items["R001"].points == 2.0
    weights = {"R001": 2.0, "R002": 1.5, "R003": 0.5, "R004": 0.0, "R005": 1.0}
    for scores in ({"R001": 1, "R002": 0.5, "R003": 0, "R004": 1, "R005": 0},
                   {"R001": 0, "R002": 1, "R003": 1, "R004": 0, "R005": 1}):
        scylla = sum(scores[r] * w for r, w in weights.items()) / sum(weights.values())  # scylla/judge/rubric.py
        assert rubric_score(rubric, {k: v for k, v in scores.items() if k != "R004"}) == pytest.approx(scylla)
    unmapped = {e["field"] for e in summary["tests"]["test-003"]["unmapped"]}
    assert {"requirements.3.weight", "requirements.3.skill_source"} <= unmapped
