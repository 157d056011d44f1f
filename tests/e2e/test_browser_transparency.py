"""The deposit page checks the transparency log as `scelle receipts verify --online`
does: the receipt's proof, the log now, and the checkpoint this browser kept in
IndexedDB; a platform that hides entries or serves lying tiles is named, with the two
signed checkpoints that prove it.

Real server, Debian's Chromium; the hostile platform is the real one with its answers
rewritten on the way (Playwright routes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browser import SCREENSHOTS, chromium
from tests.e2e.conftest import Platform
from tests.e2e.test_browser_deposit import (
    DEADLINE_AHEAD,
    choose,
    deposited,
    launch_tender,
    open_deposit_page,
    stations,  # noqa: F401 - the fixture
)
from tests.e2e.test_platform_journey import Workstation

pytestmark = [pytest.mark.slow, pytest.mark.platform]

KEPT = """async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("scelle-log", 1);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const all = await new Promise((resolve) => {
    const request = db.transaction("checkpoints").objectStore("checkpoints").getAll();
    request.onsuccess = () => resolve(request.result);
  });
  db.close();
  return all;
}"""


def _deposit_again(page: Any, url: str, files: dict[str, Path]) -> None:
    page.goto(url)
    page.get_by_text("Les bi-clés ont été vérifiés").wait_for()
    choose(page, files)
    page.get_by_role("button", name="Déposer", exact=True).click()
    deposited(page)


def _lying_tile(route: Any) -> None:
    answer = route.fetch()
    body = bytearray(answer.body())
    if body:
        body[-1] ^= 1  # the newest hash: every proof to the tree's end reads it
    route.fulfill(response=answer, body=bytes(body))


def test_the_page_checks_the_log_and_names_a_platform_that_hides_or_rewrites_entries(
    platform: Platform,
    password_file: Path,
    tmp_path: Path,
    stations: tuple[Workstation, Workstation],  # noqa: F811 - the fixture
) -> None:
    agent, _ = stations
    launch_tender(platform, agent, password_file, "AO-LOG-1", DEADLINE_AHEAD)
    (tmp_path / "candidature").mkdir()
    (tmp_path / "candidature" / "DC1.pdf").write_bytes(b"%PDF " + os.urandom(2000))
    (tmp_path / "offre.pdf").write_bytes(os.urandom(50_000))
    files = {"candidature": tmp_path / "candidature", "offre": tmp_path / "offre.pdf"}

    with chromium() as browser:
        page = browser.new_page()
        open_deposit_page(page, platform.url, "AO-LOG-1")
        url = page.url
        choose(page, files)
        page.get_by_role("button", name="Déposer", exact=True).click()
        deposited(page)
        page.get_by_text("Journal de transparence : entrée").wait_for()
        said = page.text_content("#log-state") or ""
        assert "signé par le journal 127.0.0.1/log" in said and "prolonge l'arbre" in said
        kept = page.evaluate(KEPT)
        assert len(kept) == 1 and kept[0]["checkpoint"].startswith("127.0.0.1/log\n")

        # The platform hides what it logged since: it serves the checkpoint it had then.
        earlier = httpx.get(f"{platform.url}/log/checkpoint").text
        page.route(
            "**/log/checkpoint",
            lambda route: route.fulfill(body=earlier, content_type="text/plain; charset=utf-8"),
        )
        _deposit_again(page, url, files)
        page.get_by_text("des entrées ont été supprimées").wait_for()
        page.locator("#deposit-receipt").screenshot(
            path=str(SCREENSHOTS / "entreprise-journal-tronque.png")
        )
        evidence = page.text_content("#log-evidence") or ""
        assert earlier in evidence and evidence.count("127.0.0.1/log\n") == 2
        page.unroute("**/log/checkpoint")

        # Its tiles lie: the tree it shows now does not extend the one this browser kept.
        page.route("**/log/tile/**", _lying_tile)
        _deposit_again(page, url, files)
        page.get_by_text("se contredit").wait_for()
        assert page.locator("#log-evidence").is_visible()
        page.unroute("**/log/tile/**")

        # Honest again: the page checks, and keeps the larger tree it saw.
        _deposit_again(page, url, files)
        page.get_by_text("Journal de transparence : entrée").wait_for()
        assert int(page.evaluate(KEPT)[0]["size"]) > int(kept[0]["size"])
