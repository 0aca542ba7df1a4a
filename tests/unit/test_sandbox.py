"""The bubblewrap policy with the real bwrap: mount order under /tmp, no capabilities as root,
and what --sandbox auto|bwrap does when bubblewrap cannot work."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.testdirs import make_test_dir
from tierbench.process import ProcessRegistry, run_process
from tierbench.sandbox import (BWRAP_ENV, SandboxPolicy, SandboxUnavailable, choose_sandbox, find_bwrap, install_paths,
                               probe_bwrap)

BWRAP = find_bwrap()
needs_bwrap = pytest.mark.skipif(probe_bwrap(BWRAP) is not None, reason=f"bubblewrap: {probe_bwrap(BWRAP)}")


def _run(policy: SandboxPolicy, script: str, cwd: Path, tmp_path: Path) -> tuple[int | None, str]:
    out = tmp_path / f"out-{uuid.uuid4().hex}.log"
    proc = run_process(script, cwd=cwd, env=dict(os.environ), timeout=30, stdout_path=out,
                       stderr_path=out.with_suffix(".err"), registry=ProcessRegistry(), shell=True, sandbox=policy)
    return proc.exit_code, out.read_text() + out.with_suffix(".err").read_text()


@needs_bwrap
def test_workspace_under_tmp_stays_writable_beside_a_private_tmp(tmp_path):
    # tmp_path is under /tmp: the private /tmp must be mounted first, or it would hide the workspace.
    workspace, home, private_tmp = tmp_path / "ws", tmp_path / "home", tmp_path / "private-tmp"
    for path in (workspace, home, private_tmp):
        path.mkdir()
    (private_tmp / "mine").write_text("")
    host_file = tmp_path / "host-only"
    host_file.write_text("secret")
    policy = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(workspace, home), private_tmp=private_tmp)
    code, output = _run(policy, f"echo hi > f && echo h > {home}/g && ls /tmp && "
                                f"(cat {host_file} || echo hidden)", workspace, tmp_path)
    assert code == 0, output
    assert (workspace / "f").read_text() == "hi\n" and (home / "g").exists()
    assert output.split()[:1] == ["mine"] and "hidden" in output and "secret" not in output


@needs_bwrap
def test_tierbench_installed_under_tmp_stays_reachable_beside_a_private_tmp(tmp_path):
    # A clone or a venv under /tmp is hidden by the private /tmp unless it is re-exposed: agents and
    # checks started by the Python and the .tools/ of that install must still be found.
    import sys

    checkout = Path(__file__).resolve().parents[2]
    assert Path(sys.prefix).resolve() in install_paths() and checkout in install_paths()
    fake_install = tmp_path / "install"
    (fake_install / "bin").mkdir(parents=True)
    tool = fake_install / "bin" / "tool"
    tool.write_text("#!/bin/sh\necho found\n")
    tool.chmod(0o755)
    workspace, private_tmp = tmp_path / "ws", tmp_path / "private-tmp"
    workspace.mkdir(), private_tmp.mkdir()
    hidden = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(workspace,), private_tmp=private_tmp)
    shown = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(workspace,), private_tmp=private_tmp,
                          readable=(fake_install, *install_paths()))
    assert _run(hidden, f"{tool} || echo missing", workspace, tmp_path)[1].split()[:1] == ["missing"]
    code, output = _run(shown, f"{tool} && {sys.executable} -c 'import tierbench; print(1)'", workspace, tmp_path)
    assert (code, output.split()) == (0, ["found", "1"]), output


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="the capability check matters as root")
def test_root_in_the_sandbox_cannot_remount_the_host_writable(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    probe = Path(f"/usr/local/tierbench-probe-{uuid.uuid4().hex}")
    policy = SandboxPolicy(kind="bwrap", bwrap=BWRAP, writable=(workspace,))
    try:
        code, output = _run(policy, f"mount -o remount,rw / ; touch {probe}; grep CapEff /proc/self/status",
                            workspace, tmp_path)
        assert not probe.exists(), "root in the sandbox remounted / and wrote to the host"
        assert "CapEff:\t0000000000000000" in output, output
    finally:
        probe.unlink(missing_ok=True)


def test_auto_falls_back_and_bwrap_refuses_when_bubblewrap_cannot_work(tmp_path, monkeypatch):
    monkeypatch.setenv(BWRAP_ENV, str(tmp_path / "no-bwrap"))
    choice = choose_sandbox("auto")
    assert choice.kind == "none" and "sandbox off" in choice.note and "--sandbox auto" in choice.note
    with pytest.raises(SandboxUnavailable, match="--sandbox bwrap: .* pass --sandbox none"):
        choose_sandbox("bwrap")
    assert choose_sandbox("none").kind == "none"


def test_cli_sandbox_bwrap_without_bubblewrap_is_a_one_line_error(tmp_path):
    test_dir = make_test_dir(tmp_path / "tests", "calc", tiers=("T0",), subtests=1)
    env = cli_env(**{BWRAP_ENV: str(tmp_path / "no-bwrap")})
    proc = run_cli("run", test_dir, "--results-dir", tmp_path / "results", "--agent", "demo", "--runs", 1,
                   "--sandbox", "bwrap", "--no-report", env=env)
    assert proc.returncode == 1
    assert "--sandbox bwrap" in proc.stderr and "--sandbox none" in proc.stderr
    assert not list((tmp_path / "results" / "calc").glob("T0/*/run_*/run_result.json"))
    fallback = run_cli("run", test_dir, "--results-dir", tmp_path / "auto", "--agent", "demo", "--runs", 1,
                       "--no-report", env=env)
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stderr.count("sandbox off") == 1
