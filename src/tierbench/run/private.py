"""The private space of one attempt: the agent's own home and /tmp, and the environment it sees.

    <exp>/.private/<tier>-<subtest>-run_NN/     mode 0700, created empty for each attempt
        home/      HOME (and the agent's config dir, e.g. CLAUDE_CONFIG_DIR=home/.claude)
        tmp/       /tmp inside the sandbox; TMPDIR without it

Nothing of the researcher's own set-up is copied in. An adapter may carry a credentials file
into `home` (Claude Code's subscription login); the whole space is removed when the attempt ends,
and every space left by a killed coordinator is removed when the next one starts, so a copied
credential never stays in a kept directory.

The environment is built from an allow-list, not from the whole host environment: the basics a
program needs (PATH, locale, terminal, time zone, proxies and CA certificates), API credentials
and endpoints (`*_API_KEY`, `*_AUTH_TOKEN`, `*_BASE_URL`, ...), `TIERBENCH_*`, and any names listed
in `TIERBENCH_PASS_ENV` (comma-separated). Everything else (e.g. CLAUDE_CODE_* settings, a
researcher's ANTHROPIC_MODEL) stays out; a subtest sets what it needs in its `env:`.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

PASS_ENV = "TIERBENCH_PASS_ENV"
_BASIC = frozenset({
    "PATH", "LANG", "LANGUAGE", "TERM", "COLORTERM", "NO_COLOR", "TZ", "USER", "LOGNAME", "SHELL",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
})
_PREFIXES = ("LC_", "TIERBENCH_")
_CREDENTIAL = re.compile(r"(_API_KEY|_AUTH_TOKEN|_ACCESS_TOKEN|_OAUTH_TOKEN|_BASE_URL|_API_BASE|_API_VERSION)$")


@dataclass(frozen=True)
class PrivateSpace:
    root: Path
    home: Path
    tmp: Path


def create_private_space(path: Path) -> PrivateSpace:
    """A fresh, empty space at `path` (anything there from an earlier attempt is removed first)."""
    remove_private_space(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.mkdir(mode=0o700)
    home, tmp = path / "home", path / "tmp"
    home.mkdir(mode=0o700)
    tmp.mkdir(mode=0o1777)
    os.chmod(tmp, 0o1777)
    return PrivateSpace(path, home, tmp)


def remove_private_space(path: Path) -> None:
    if not path.exists():
        return

    def _writable_and_retry(func: Callable[[str], object], target: str, _exc: object) -> None:
        # An agent may leave read-only directories (e.g. Go's module cache); make them removable.
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=_writable_and_retry)


def clear_private_spaces(root: Path) -> None:
    """Remove every private space under `root` (call only while holding the experiment lock)."""
    if root.exists():
        for child in root.iterdir():
            remove_private_space(child)


def agent_env(host_env: dict[str, str], space: PrivateSpace | None) -> tuple[dict[str, str], list[str]]:
    """(the environment an agent starts from, the names carried over from the host)."""
    extra = {name.strip() for name in host_env.get(PASS_ENV, "").split(",") if name.strip()}
    env: dict[str, str] = {}
    for name, value in host_env.items():
        if name in _BASIC or name.startswith(_PREFIXES) or name in extra or _CREDENTIAL.search(name):
            env[name] = value
    carried = sorted(name for name in env if name not in _BASIC and not name.startswith(_PREFIXES))
    if space is not None:
        env["HOME"] = str(space.home)
        env["TMPDIR"] = str(space.tmp)
        env["XDG_CONFIG_HOME"] = str(space.home / ".config")
        env["XDG_CACHE_HOME"] = str(space.home / ".cache")
        env["XDG_DATA_HOME"] = str(space.home / ".local" / "share")
        env["XDG_STATE_HOME"] = str(space.home / ".local" / "state")
    return env, carried
