"""Shared fixtures for the e2e tests that run real agent CLIs."""

from __future__ import annotations

import pytest

from tests.support.netns import NetnsUnavailable, interfaces, loopback_only_network


@pytest.fixture
def offline():
    """Run the test inside a fresh loopback-only network namespace (see tests/support/netns.py):
    the fake server, `tierbench run` and the agent it starts see only `lo`. Skips, saying why,
    where the machine cannot create one."""
    try:
        with loopback_only_network():
            assert interfaces() == ["lo"], f"expected a loopback-only namespace, found {interfaces()}"
            yield
    except NetnsUnavailable as exc:
        pytest.skip(f"no loopback-only network namespace on this machine: {exc}")
