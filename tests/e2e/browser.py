"""Debian's Chromium driven by Playwright, and axe-core, for the browser tests.

Never `playwright install`: the browser is the system's (`apt-get install chromium`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@contextmanager
def chromium(locale: str = "fr-FR") -> Iterator[Any]:
    """A new browser context (no cookies) in `locale`; skips when Chromium is missing."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
            context.set_default_timeout(20_000)
            yield context
        finally:
            browser.close()


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page (WCAG 2.1 A and AA)."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=options)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        f"{[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
