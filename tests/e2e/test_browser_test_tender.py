"""The *Consultation de test* in a real browser: a company deposits there from the page,
then opens its own test deposit in the page with the published key and gets back the very
files it chose; a sealed envelope altered on the way is refused, never shown.

Real server, Debian's Chromium: the page talks to `scelle serve`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import Platform
from tests.e2e.test_browser_deposit import choose, log_in
from tests.e2e.test_platform_journey import set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

WORDS = {
    "fr": {
        "locale": "fr-FR", "deposit": "Déposer une offre",
        "checked": "Les bi-clés ont été vérifiés", "button": "Déposer", "deposited": "Déposé.",
        "mine": "Mes dépôts", "open": "Ouvrir mon dépôt de test",
        "opened": "ouvert dans cette page", "refused": "ne peut pas être ouvert",
        "banner": "Consultation de test", "save": "Enregistrer", "large": "trop volumineux",
    },
    "en": {
        "locale": "en-GB", "deposit": "Deposit an offer", "checked": "The key pairs were checked",
        "button": "Deposit", "deposited": "Deposited.", "mine": "My deposits",
        "open": "Open my test deposit", "opened": "opened in this page",
        "refused": "cannot be opened", "banner": "Test tender", "save": "Save",
        "large": "too large",
    },
}  # fmt: skip


def _bid(folder: Path) -> dict[str, Path]:
    candidature = folder / "candidature"
    candidature.mkdir(parents=True)
    (candidature / "DC1.pdf").write_bytes(b"%PDF DC1 " + os.urandom(3000))
    (candidature / "Kbis société.pdf").write_bytes(b"%PDF Kbis")
    offre = folder / "offre.pdf"
    offre.write_bytes(b"%PDF offre " + os.urandom(200_000))
    return {"candidature": candidature, "offre": offre}


def _shot(page: Any, language: str, name: str) -> None:
    folder = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_company_tries_a_deposit_in_the_page_and_opens_it_there(
    platform: Platform, password_file: Path, tmp_path: Path, language: str
) -> None:
    words = WORDS[language]
    set_up(platform, password_file)
    [(reference,)] = platform.query("SELECT reference FROM tenders_tender WHERE is_test")
    files = _bid(tmp_path / "essai")
    with chromium(words["locale"]) as browser:
        page = browser.new_page()
        log_in(page, platform.url, "offres@btp.fr", language)
        page.get_by_role("link", name=str(reference)).click()
        page.get_by_role("heading", name=words["banner"], exact=True).wait_for()
        assert serious_violations(page) == []
        _shot(page, language, "entreprise-consultation-de-test.png")
        page.get_by_role("link", name=words["deposit"]).click()
        page.get_by_text(words["checked"]).wait_for()
        choose(page, files)
        page.get_by_role("button", name=words["button"], exact=True).click()
        page.get_by_text(words["deposited"]).wait_for(timeout=60_000)

        page.get_by_role("link", name=words["mine"]).first.click()
        page.get_by_role("link", name=words["open"]).click()
        page.wait_for_selector("#open-test[data-done=true]")
        statuses = page.locator("[data-role=status]").all_text_contents()
        assert len(statuses) == 2 and all(words["opened"] in s for s in statuses), statuses
        text = page.text_content("#open-test") or ""
        assert "DC1.pdf" in text and "Kbis société.pdf" in text and "offre.pdf" in text
        assert serious_violations(page) == []
        _shot(page, language, "entreprise-depot-de-test-ouvert.png")
        # What the page gives back is the very file chosen, byte for byte.
        offre = page.locator("section[data-envelope=offre]")
        with page.expect_download() as downloading:
            offre.get_by_role("link", name=f"{words['save']} offre.pdf").click()
        saved = tmp_path / "rendu.pdf"
        downloading.value.save_as(saved)
        assert saved.read_bytes() == files["offre"].read_bytes()

        # An envelope altered on its way to the page: refused, no file listed.
        def altered(route: Any) -> None:
            body = bytearray(route.fetch().body())
            body[-40] ^= 1
            route.fulfill(status=200, body=bytes(body), content_type="application/pkcs7-mime")

        page.route("**/enveloppes/offre.p7m", altered)
        page.reload()
        page.wait_for_selector("#open-test[data-done=true]")
        assert words["refused"] in (offre.locator("[data-role=status]").text_content() or "")
        assert offre.locator("table").is_hidden()
        assert words["opened"] in (
            page.locator("section[data-envelope=candidature] [data-role=status]").text_content()
            or ""
        )

        # An envelope too large to hold in the page's memory is left to the command.
        def huge(route: Any) -> None:
            html = route.fetch().text()
            html = re.sub(r'data-size="[0-9]+"', 'data-size="999999999999"', html, count=1)
            route.fulfill(status=200, body=html, content_type="text/html; charset=utf-8")

        page.unroute("**/enveloppes/offre.p7m")
        page.route("**/ouvrir/", huge)
        page.reload()
        page.wait_for_selector("#open-test[data-done=true]")
        first = page.locator("[data-role=status]").first.text_content() or ""
        assert words["large"] in first and "--test-key" in first
