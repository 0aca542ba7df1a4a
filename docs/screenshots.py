"""Screenshots of the viewer's main pages for the README, taken with the browser tests' tooling.

Builds a small batch with the real CLI (the scripted agent of tests/support writes Claude Code
transcripts), serves it with `tierbench view`, and saves PNGs into docs/screenshots/.

    .venv/bin/python docs/screenshots.py        (or: make screenshots)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.view_fixtures import Viewer, make_batch  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PAGES = [
    ("batch", "/", None),
    ("experiment", "/e/calc/", None),
    ("runs", "/e/calc/runs?outcome=failed", None),
    ("run", "/e/calc/r/T1/01/run_02", None),
    ("transcript", "/e/calc/r/T1/01/run_02", "#transcript details.tool-call >> nth=2"),
    ("compare", "/e/calc/compare?a=T0/00/run_02&b=T1/01/run_02", None),
]


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tierbench-shots-") as tmp:
        batch = make_batch(Path(tmp))
        with Viewer(batch) as viewer, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            for name, url, open_first in PAGES:
                page.goto(viewer.url + url)
                page.wait_for_load_state("networkidle")
                if open_first:
                    page.locator(open_first).locator("summary").click()
                    page.locator("#transcript").scroll_into_view_if_needed()
                path = OUT / f"{name}.png"
                page.screenshot(path=str(path))
                print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
