"""The other pages in a real browser: a company's tenders, deposits and receipt; the
Habilitations page; the API documentation. Each passes axe-core."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import STORE_PASSPHRASE
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_browser_deposit import log_in
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]


def _accessible(page) -> None:
    page.wait_for_load_state("networkidle")
    assert serious_violations(page) == [], page.url


COMPANY = {
    "fr": {"open": "Consultations ouvertes aux entreprises", "mine": "Mes dépôts",
           "receipt": "Télécharger l'accusé de réception AO-ENT-1"},
    "en": {"open": "Tenders open to companies", "mine": "My deposits",
           "receipt": "Download the receipt AO-ENT-1"},
}  # fmt: skip


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_company_sees_its_tenders_and_keeps_its_receipt(
    platform: Platform, password_file: Path, tmp_path: Path, capsys, monkeypatch, language: str
) -> None:
    w = COMPANY[language]
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    set_up(platform, password_file)
    pw = str(password_file)
    agent = Workstation(tmp_path / "home-agent", capsys)
    company = Workstation(tmp_path / "home-btp", capsys)
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    agent.ok("keys", "generate", "PERSO", "--publish")
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    agent.ok("tenders", "create", "--reference", "AO-ENT-1", "--title", "Voirie",
             "--deadline", deadline)  # fmt: skip
    agent.ok("tenders", "launch", "AO-ENT-1", "--key", "PERSO")
    company.ok("login", platform.url, "--email", "offres@btp.fr", "--password-file", pw)
    offer = tmp_path / "offre.pdf"
    offer.write_bytes(b"%PDF offre")
    company.ok("deposit", "AO-ENT-1", f"--envelope=candidature={offer}",
               f"--envelope=offre={offer}", "--receipt", str(tmp_path / "r.json"))  # fmt: skip

    with chromium("fr-FR" if language == "fr" else "en-GB") as browser:
        page = browser.new_page()
        log_in(page, platform.url, "offres@btp.fr", language)
        page.get_by_role("heading", name=w["open"]).wait_for()
        _accessible(page)
        page.get_by_role("link", name="AO-ENT-1").click()
        _accessible(page)
        text = page.text_content("main")
        assert "Ville de Rouen" in text and "PERSO" in text and "RSF " in text
        assert "scelle deposit" in text
        shots = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "entreprise-consultation.png"), full_page=True)
        page.get_by_role("link", name=w["mine"]).click()
        _accessible(page)
        page.screenshot(path=str(shots / "mes-depots.png"), full_page=True)
        with page.expect_download() as downloading:
            page.get_by_role("link", name=w["receipt"]).click()
        saved = tmp_path / "accuse-page.json"
        downloading.value.save_as(saved)
        # An agent's page is not for a company.
        answer = page.goto(f"{platform.url}/tableau-de-bord/")
        assert answer is not None and answer.status == 403
    said = company.ok("receipts", "verify", str(saved))
    assert "valid" in said


HABILITATIONS = {
    "fr": {
        "email": "Adresse électronique", "page": "Habilitations",
        "first": "Premier mot de passe", "create": "Créer l'agent",
        "created": "L'agent nouvelle@rouen.fr a été créé.",
        "permission": "Habilitation — nouvelle@rouen.fr", "grant": "Accorder — nouvelle@rouen.fr",
        "changed": "Les habilitations de nouvelle@rouen.fr ont été modifiées.",
        "keys": "gérer les bi-clés", "open": "ouvrir les plis",
        "revoke": "Retirer « gérer les bi-clés » sur Service des marchés à nouvelle@rouen.fr",
        "deactivate": "Désactiver collegue@rouen.fr",
        "deactivated": "L'agent collegue@rouen.fr est désactivé.",
    },
    "en": {
        "email": "E-mail address", "page": "Permissions",
        "first": "First password", "create": "Create the agent",
        "created": "The agent nouvelle@rouen.fr was created.",
        "permission": "Permission — nouvelle@rouen.fr", "grant": "Grant — nouvelle@rouen.fr",
        "changed": "The permissions of nouvelle@rouen.fr were changed.",
        "keys": "manage key pairs", "open": "open envelopes",
        "revoke": "Revoke “manage key pairs” on Service des marchés from nouvelle@rouen.fr",
        "deactivate": "Deactivate collegue@rouen.fr",
        "deactivated": "The agent collegue@rouen.fr is deactivated.",
    },
}  # fmt: skip


@pytest.mark.parametrize("language", ["fr", "en"])
def test_habilitations_and_the_api_documentation(
    platform: Platform, password_file: Path, language: str
) -> None:
    w = HABILITATIONS[language]
    set_up(platform, password_file)
    platform.admin(
        "create-user", "admin@rouen.fr", "--organisation", "Ville de Rouen",
        "--password-file", str(password_file), "--service", "Service des marchés",
        "--permission", "administer",
    )  # fmt: skip
    with chromium("fr-FR" if language == "fr" else "en-GB") as browser:
        page = browser.new_page()
        log_in(page, platform.url, "admin@rouen.fr", language)
        page.get_by_role("link", name=w["page"]).click()
        _accessible(page)
        page.get_by_label(w["email"]).fill("nouvelle@rouen.fr")
        page.get_by_label(w["first"]).fill(PASSWORD)
        page.get_by_role("button", name=w["create"]).click()
        page.get_by_text(w["created"]).wait_for()
        page.get_by_label(w["permission"]).select_option("manage_keys")
        page.get_by_role("button", name=w["grant"]).click()
        page.get_by_text(w["changed"]).wait_for()
        row = page.locator("tr", has_text="nouvelle@rouen.fr")
        assert w["keys"] in row.text_content()
        # Each Retirer names the permission, the service and the agent it takes from.
        page.get_by_label(w["permission"]).select_option("open")
        page.get_by_role("button", name=w["grant"]).click()
        page.get_by_text(w["changed"]).wait_for()
        page.get_by_role("button", name=w["revoke"]).click()
        page.get_by_text(w["changed"]).wait_for()
        held = page.locator("tr", has_text="nouvelle@rouen.fr").locator("td").nth(1)
        assert w["keys"] not in held.text_content()
        assert w["open"] in held.text_content()
        page.get_by_role("button", name=w["deactivate"]).click()
        page.get_by_text(w["deactivated"]).wait_for()
        _accessible(page)
        shots = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "habilitations.png"), full_page=True)
        docs = page.goto(f"{platform.url}/api/docs")
        assert docs is not None and docs.status == 200
        page.get_by_text("/api/tenders", exact=False).first.wait_for()
    assert "collegue@rouen.fr" in platform.admin("list").stdout


@pytest.mark.parametrize("language", ["fr", "en"])
def test_closing_a_draft_asks_first_and_says_what_it_means(
    platform: Platform, password_file: Path, tmp_path: Path, capsys, monkeypatch, language: str
) -> None:
    monkeypatch.setenv("SCELLE_LANG", "en")
    set_up(platform, password_file)
    agent = Workstation(tmp_path / "home-agent", capsys)
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file",
             str(password_file))  # fmt: skip
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=19)).isoformat()
    agent.ok("tenders", "create", "--reference", "AO-BROUILLON", "--title", "Espaces verts",
             "--deadline", deadline)  # fmt: skip
    french = language == "fr"
    with chromium("fr-FR" if french else "en-GB") as browser:
        page = browser.new_page()
        log_in(page, platform.url, "acheteur@rouen.fr", language)
        page.get_by_role("link", name="Consultations" if french else "Tenders").click()
        page.get_by_role("link", name="AO-BROUILLON").click()
        # One click on Clôturer does nothing yet: it opens the page that says what it means.
        page.get_by_role("link", name="Clôturer" if french else "Close").click()
        page.get_by_role("heading", name="AO-BROUILLON").wait_for()
        said = page.text_content("main")
        assert ("jamais été lancé" if french else "never launched") in said
        _accessible(page)
        shots = SCREENSHOTS if french else SCREENSHOTS / "en"
        shots.mkdir(exist_ok=True)
        page.screenshot(path=str(shots / "cloturer.png"), full_page=True)
        assert "draft" in str(platform.query("SELECT status FROM tenders_tender"))
        page.get_by_role(
            "button", name="Clôturer la consultation" if french else "Close the tender"
        ).click()
        state = page.locator("#tender-state")
        state.wait_for()
        assert state.text_content() == ("clôturée" if french else "closed")
