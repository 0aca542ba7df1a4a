"""The resource library: composition, its errors, the composed snapshot, and extends_previous."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tierbench.experiment import start_experiment, reopen_experiment
from tierbench.plan import merge_inherited, previous_tier, tier_dependencies
from tierbench.resources import BLOCK_SEPARATOR, COMPOSED_FILE
from tierbench.spec import SpecError, load_test


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_library(root: Path) -> Path:
    write(root / "blocks" / "B01-overview.md", "# Overview\nA tiny project.\n")
    write(root / "blocks" / "B02-rules.md", "# Rules\n- run the tests\n- small diffs\n")
    write(root / "blocks" / "B03-style.md", "# Style\nPEP 8.\n")
    write(root / "skills" / "debug" / "bisect" / "SKILL.md", "---\nname: bisect\n---\nBisect.\n")
    write(root / "skills" / "debug" / "bisect" / "scripts" / "run.sh", "#!/bin/sh\ngit bisect run make test\n").chmod(0o755)
    write(root / "skills" / "debug" / "trace" / "SKILL.md", "---\nname: trace\n---\nTrace.\n")
    write(root / "skills" / "review" / "self-review" / "SKILL.md", "---\nname: self-review\n---\nReview.\n")
    write(root / "agents" / "L2" / "architect.md", "---\nname: architect\n---\nDesign.\n")
    write(root / "agents" / "L3" / "tester.md", "---\nname: tester\n---\nTest.\n")
    write(root / "agents" / "L3" / "reviewer.md", "---\nname: reviewer\n---\nReview.\n")
    write(root / "mcp" / "notes.json", json.dumps({"command": "python3", "args": ["-m", "notes_server"],
                                                   "env": {"NOTES_TOKEN": "${NOTES_TOKEN}", "MODE": "ro"}}))
    return root


def make_test(root: Path, subtests: dict[str, dict], tiers: list[str] | None = None,
              library: str | None = "resources") -> Path:
    test = root / "t"
    write(test / "repo" / "a.py", "x = 1\n")
    write(test / "prompt.md", "Do it.\n")
    write(test / "rubric.yaml", yaml.safe_dump({"categories": {"c": {"items": [{"id": "i", "check": "ok"}]}}}))
    spec = {"id": "t", "name": "t", "language": "python", "source": {"path": "repo/"},
            "task": {"prompt_file": "prompt.md"}, "validation": {"rubric_file": "rubric.yaml"},
            "tiers": tiers or sorted({k.split("/")[0] for k in subtests})}
    if library and library != "resources":
        spec["resources_dir"] = library
    write(test / "test.yaml", yaml.safe_dump(spec))
    for key, body in subtests.items():
        write(test / "tiers" / key.split("/")[0] / f"{key.split('/')[1]}.yaml", yaml.safe_dump(body))
    return test


def test_composition_is_deterministic_and_records_provenance(tmp_path: Path) -> None:
    test = make_test(tmp_path, {
        "T0/00-blocks": {"resources": {"claude_md": {"blocks": ["B02", "B01"]}}},
        "T1/00-skills": {"resources": {"skills": {"categories": ["debug"], "names": ["self-review"]}}},
        "T2/00-mcp": {"resources": {"mcp_servers": [{"name": "notes"}]}},
        "T3/00-agents": {"resources": {"agents": {"levels": [3], "names": ["architect.md"]}}},
    })
    make_library(test / "resources")
    loaded = load_test(test)
    t0 = loaded.subtest("T0", "00")
    # block order as listed, joined by a blank line (what ProjectScylla's composer writes)
    assert t0.files["CLAUDE.md"] == "# Rules\n- run the tests\n- small diffs\n" + BLOCK_SEPARATOR + \
        "# Overview\nA tiny project.\n"
    assert "blocks/B02-rules.md, blocks/B01-overview.md" in t0.provenance["files/CLAUDE.md"]
    assert t0.config_size().claude_md_lines == 7  # 3 + 2 separator lines + 2
    t1 = loaded.subtest("T1", "00")
    assert sorted(t1.files) == [".claude/skills/bisect/SKILL.md", ".claude/skills/bisect/scripts/run.sh",
                                ".claude/skills/self-review/SKILL.md", ".claude/skills/trace/SKILL.md"]
    assert t1.config_size().skills == 3
    assert t1.executable == [".claude/skills/bisect/scripts/run.sh"]  # the library's mode is kept
    assert "category debug" in t1.provenance["files/.claude/skills/trace/SKILL.md"]
    t2 = loaded.subtest("T2", "00")
    assert t2.mcp_servers["notes"].env == {"NOTES_TOKEN": "${NOTES_TOKEN}", "MODE": "ro"}
    assert t2.mcp_servers["notes"].env_refs() == ["NOTES_TOKEN"]
    assert t2.provenance["mcp_servers/notes"] == "T2/00 resources.mcp_servers: library mcp/notes.json"
    t3 = loaded.subtest("T3", "00")
    assert sorted(t3.files) == [".claude/agents/architect.md", ".claude/agents/reviewer.md",
                                ".claude/agents/tester.md"]
    assert t3.config_size().agents == 3
    assert load_test(test).subtests == loaded.subtests  # same input, same composition


@pytest.mark.parametrize("resources, field, listed", [
    ({"claude_md": {"blocks": ["B01", "B09"]}}, "resources.claude_md.blocks.1", "B01, B02, B03"),
    ({"skills": {"categories": ["nope"]}}, "resources.skills.categories.0", "debug, review"),
    ({"skills": {"names": ["ghost"]}}, "resources.skills.names.0", "bisect, self-review, trace"),
    ({"agents": {"levels": [5]}}, "resources.agents.levels.0", "L2, L3"),
    ({"agents": {"names": ["ghost"]}}, "resources.agents.names.0", "architect, reviewer, tester"),
    ({"mcp_servers": [{"name": "ghost"}]}, "resources.mcp_servers.0.name", "notes"),
])
def test_unknown_resources_name_the_subtest_the_key_and_what_exists(tmp_path: Path, resources: dict, field: str,
                                                                   listed: str) -> None:
    test = make_test(tmp_path, {"T0/03-x": {"resources": resources}})
    make_library(test / "resources")
    with pytest.raises(SpecError) as caught:
        load_test(test)
    message = str(caught.value)
    assert caught.value.field == field
    assert "subtest T0/03" in message and listed in message and "Fix:" in message
    assert message.startswith(str(test / "tiers" / "T0" / "03-x.yaml"))


def test_resources_without_a_library_and_a_missing_resources_dir_are_errors(tmp_path: Path) -> None:
    test = make_test(tmp_path, {"T0/00-x": {"resources": {"claude_md": {"blocks": ["B01"]}}}})
    with pytest.raises(SpecError, match="uses the resource library, but there is none"):
        load_test(test)
    test = make_test(tmp_path / "b", {"T0/00-x": {}}, library="../shared")
    with pytest.raises(SpecError, match="'resources_dir'.*not a directory"):
        load_test(test)


def test_literal_secret_in_an_mcp_server_is_refused(tmp_path: Path) -> None:
    test = make_test(tmp_path, {"T2/00-x": {"resources": {"mcp_servers": [{"name": "leaky"}]}}})
    make_library(test / "resources")
    write(test / "resources" / "mcp" / "leaky.json", json.dumps({"command": "srv", "env": {"API_KEY": "sk-123"}}))
    with pytest.raises(SpecError, match=r"leaky.json: env.API_KEY holds a literal value.*\$\{API_KEY\}.*Fix: write the variable's name"):
        load_test(test)


def test_snapshot_keeps_the_composition_when_the_library_changes_or_vanishes(tmp_path: Path) -> None:
    shared = make_library(tmp_path / "shared")  # a library outside the test, shared by many tests
    test = make_test(tmp_path, {"T0/00-blocks": {"resources": {"claude_md": {"blocks": ["B01", "B02"]},
                                                               "mcp_servers": [{"name": "notes"}]}}},
                     library="../shared")
    loaded = load_test(test)
    exp = tmp_path / "results" / "t"
    exp.mkdir(parents=True)
    opened = start_experiment(loaded, exp, {"runs_per_subtest": 1})
    before = opened.test.subtest("T0", "00")
    assert opened.test.subtests == loaded.subtests  # the snapshot gives back exactly the composition
    assert before.files == loaded.subtest("T0", "00").files
    assert (opened.layout.test_snapshot / COMPOSED_FILE).exists()
    write(shared / "blocks" / "B01-overview.md", "# Changed later\n")
    shutil.rmtree(shared / "mcp")
    after = reopen_experiment(exp, {}).test.subtest("T0", "00")
    assert after.files == before.files and after.mcp_servers == before.mcp_servers
    assert after.provenance == before.provenance
    shutil.rmtree(shared)
    assert reopen_experiment(exp, {}).test.subtest("T0", "00").files == before.files


def test_extends_previous_is_cumulative_and_tracks_where_each_piece_came_from(tmp_path: Path) -> None:
    test = make_test(tmp_path, {
        "T0/00-blocks": {"resources": {"claude_md": {"blocks": ["B01"]}}, "system_prompt_mode": "default"},
        "T1/00-skills": {"extends_previous": True, "resources": {"skills": {"names": ["trace"]}}},
        "T2/00-mcp": {"extends_previous": True, "resources": {"mcp_servers": [{"name": "notes"}],
                                                              "claude_md": {"blocks": ["B03"]}},
                      "tools": {"enabled": ["Read"]}},
    })
    make_library(test / "resources")
    loaded = load_test(test)
    tiers = ["T0", "T1", "T2"]
    assert previous_tier("T2", tiers) == "T1" and previous_tier("T0", tiers) is None
    assert tier_dependencies("T2", tiers, loaded) == {"T1"}
    assert previous_tier("T2", ["T0", "T2"]) == "T0"
    t1 = merge_inherited(loaded.subtest("T1", "00"), [], loaded.subtest("T0", "00"))
    t2 = merge_inherited(loaded.subtest("T2", "00"), [], t1)
    assert t2.extends_from == ["T1/00", "T0/00"]
    assert t2.files["CLAUDE.md"] == "# Style\nPEP 8.\n"  # its own blocks replace the inherited CLAUDE.md
    assert ".claude/skills/trace/SKILL.md" in t2.files and "notes" in t2.mcp_servers
    assert t2.system_prompt_mode == "default" and t2.provenance["system_prompt_mode"] == "T0/00 system_prompt_mode"
    assert t2.provenance["files/.claude/skills/trace/SKILL.md"].startswith("T1/00 resources.skills name")
    assert t2.provenance["files/CLAUDE.md"].startswith("T2/00 resources.claude_md")
    size = t2.config_size()
    assert (size.claude_md_lines, size.skills, size.agents, size.mcp_servers) == (2, 1, 0, 1)


def test_tools_enabled_all_means_every_tool(tmp_path: Path) -> None:
    test = make_test(tmp_path, {"T2/00-all": {"tools": {"enabled": "all"}}})
    assert load_test(test).subtest("T2", "00").tools.enabled is None
