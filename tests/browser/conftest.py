"""Playwright for Python driving Debian's Chromium (Playwright's own browser download cannot work
offline). `make test` installs both; where no browser can be installed these tests skip, saying why."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.view_fixtures import Viewer, make_batch

CHROMIUM = os.environ.get("TIERBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (make dev installs it with the dev extras)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (make test installs Debian's chromium when run as root with apt-get)"
    for module in ("starlette", "uvicorn", "jinja2", "pygments"):
        if importlib.util.find_spec(module) is None:
            return f"the view extra is not installed ({module}); make dev installs it"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
    # Console errors include Content-Security-Policy violations: a page must need nothing it forbids.
    page.on("console", lambda message: message.type == "error" and page.errors.append(  # type: ignore[attr-defined]
        f"console: {message.text}"))
    yield page
    context.close()


@pytest.fixture(scope="session")
def batch_dir(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Path:
    """A finished batch: tests calc (T0, T1 x 2 subtests x 2 runs) and hostile (T0, markup everywhere)."""
    return make_batch(tmp_path_factory.mktemp("view-batch"))


@pytest.fixture(scope="session")
def viewer(batch_dir: Path) -> Iterator[Viewer]:
    with Viewer(batch_dir) as running:
        yield running
