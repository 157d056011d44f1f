"""A commission of three, two of whom must take part, clicked end to end in a real browser:
three agents, each with their own `scelle assistant`, a company depositing from its
browser; the launch with its commission on *Lancer*, the opening started by one member,
another taking part from their dashboard, and the tender's page saying who took part.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest

from scelle.core.clock import shifted_clock
from tests.conftest import STORE_PASSPHRASE
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import Platform
from tests.e2e.test_browser_deposit import bid, choose, log_in
from tests.e2e.test_commission_journey import MEMBERS, set_up_members
from tests.e2e.test_platform_journey import Workstation
from tests.e2e.test_web_journey import PARIS, Assistant, _files

pytestmark = [pytest.mark.slow, pytest.mark.platform]


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> list[Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "fr")
    return [Workstation(tmp_path / f"home-membre-{n}", capsys) for n in (1, 2, 3)]


def _all_heard(platform: Platform, count: int) -> None:
    """Wait until the platform has heard every assistant since its clock moved on."""
    give_up = time.monotonic() + 45
    while time.monotonic() < give_up:
        seen = platform.query("SELECT last_seen_at FROM assistants_workstation")
        now = shifted_clock(platform.clock_file)()
        heard = [dt.datetime.fromisoformat(str(s)).replace(tzinfo=dt.UTC) for (s,) in seen]
        if len(heard) == count and all(h > now - dt.timedelta(seconds=30) for h in heard):
            return
        time.sleep(0.5)
    raise AssertionError("the platform did not hear every assistant again")


def _shot(page: Any, name: str) -> None:
    page.wait_for_load_state("networkidle")
    assert serious_violations(page) == [], page.url
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_commission_of_three_opens_with_two_by_clicking(
    platform: Platform, stations: list[Workstation], password_file: Path, tmp_path: Path
) -> None:
    pw = str(password_file)
    set_up_members(platform, password_file)
    for n, (station, email) in enumerate(zip(stations, MEMBERS, strict=True), 1):
        station.ok("login", platform.url, "--email", email, "--password-file", pw)
        station.ok("keys", "generate", f"MEMBRE-{n}", "--publish")
    # The backup key pair goes to the safe: not on the opener's workstation.
    stations[0].ok("keys", "generate", "SECOURS", "--publish", "--backup")
    stations[0].ok("keys", "delete", "SECOURS", "--yes")
    openings = [tmp_path / f"plis-membre-{n}" for n in (1, 2, 3)]
    assistants = [
        Assistant(station.home, folder, platform.env)
        for station, folder in zip(stations, openings, strict=True)
    ]
    try:
        _journey(platform, tmp_path, openings, assistants[2].window)
    finally:
        for each in assistants:
            each.stop()


def _journey(platform: Platform, tmp_path: Path, openings: list[Path], window: str) -> None:
    files = bid(tmp_path / "btp")
    with chromium() as first:
        browser = first.browser
        pages = [first.new_page()]
        pages += [browser.new_context(locale="fr-FR").new_page() for _ in MEMBERS[1:]]
        opener, member, _absent = pages
        for page, email in zip(pages, MEMBERS, strict=True):
            log_in(page, platform.url, email)

        # Lancer, with a commission: the three members, two of them needed.
        deadline = (dt.datetime.now(PARIS) + dt.timedelta(minutes=10)).replace(microsecond=0)
        opener.get_by_role("link", name="Consultations").click()
        opener.get_by_role("link", name="Créer une consultation").click()
        opener.get_by_label("Référence").fill("AO-COM")
        opener.get_by_label("Intitulé").fill("Restauration scolaire")
        opener.get_by_label("Date limite : jour").fill(deadline.strftime("%Y-%m-%d"))
        opener.get_by_label("Date limite : heure").fill(deadline.strftime("%H:%M:%S"))
        opener.get_by_role("button", name="Créer le brouillon").click()
        opener.get_by_role("link", name="Lancer").click()
        for n in (1, 2, 3):
            opener.get_by_label(re.compile(f"^MEMBRE-{n}")).check()
        opener.get_by_label(re.compile("^Une commission")).check()
        opener.get_by_label(re.compile("^Membres nécessaires")).fill("2")
        opener.get_by_label(re.compile("J'ai compris que les bi-clés affectés")).check()
        assert "restent des destinataires ordinaires" in opener.text_content("main")
        _shot(opener, "lancer-commission")
        opener.get_by_role("button", name="Lancer la consultation").click()
        opener.get_by_text("La consultation AO-COM est publiée").wait_for()
        commission = opener.text_content("#commission")
        assert commission is not None and "2 de ses 3 membres" in commission
        rsf = opener.text_content("#rsf")
        assert rsf is not None and rsf.startswith("RSF ")

        # The company deposits from its browser: the page checks the same RSF, and seals
        # the key to the backup key pair and its shares to the members.
        company = browser.new_context(locale="fr-FR").new_page()
        log_in(company, platform.url, "offres@btp.fr")
        company.get_by_role("link", name="AO-COM").click()
        company.get_by_role("link", name="Déposer une offre").click()
        company.get_by_text("Les bi-clés ont été vérifiés").wait_for()
        assert rsf in company.text_content("main")
        choose(company, files)
        company.get_by_text("Total à envoyer").wait_for()
        company.get_by_role("button", name="Déposer", exact=True).click()
        company.get_by_text("Déposé.").wait_for(timeout=60_000)
        assert "2 membres doivent prendre part à l'ouverture" in company.text_content(
            "#deposit-receipt"
        )

        # After the deadline: MEMBRE-1 opens; its assistant waits for a second share.
        platform.pass_deadline(deadline.astimezone(dt.UTC))
        _all_heard(platform, 3)
        opener.get_by_role("link", name="Consultations").click()
        opener.get_by_role("link", name="AO-COM").click()
        opener.get_by_role("button", name="Ouvrir les plis").click()
        opener.get_by_text("L'assistant travaille").wait_for(timeout=30_000)

        # MEMBRE-2 sees the request on their dashboard and takes part.
        member.goto(platform.url)
        requests = member.locator("#commission-requests")
        requests.get_by_text("acheteur@rouen.fr a lancé l'ouverture").wait_for()
        _shot(member, "commission-tableau-de-bord")
        member.get_by_role("button", name="Prendre part à l'ouverture de AO-COM").click()
        member.get_by_text("part(s) envoyée(s) à l'ouvreur MEMBRE-1").wait_for(timeout=60_000)

        # The opener's assistant combines the shares and opens both envelopes.
        opener.get_by_text("2 enveloppes ouvertes sur le poste.").wait_for(timeout=90_000)
        opener.get_by_role("link", name="Consultations").click()
        opener.get_by_role("link", name="AO-COM").click()
        table = opener.locator("#commission-opening")
        rows = {
            row.locator("td").nth(0).text_content(): row.locator("td").all_text_contents()
            for row in table.locator("tbody tr").all()
        }
        assert rows["MEMBRE-1 (ouvreur)"][1] == "acheteur@rouen.fr"
        assert rows["MEMBRE-2"][1] == "membre2@rouen.fr" and rows["MEMBRE-2"][3] == "2"
        assert rows["MEMBRE-2"][2] != "pas encore"
        assert rows["MEMBRE-3"][2] == "pas encore"
        _shot(opener, "consultation-commission")

        # MEMBRE-3 sees the request in their assistant's own window, and takes part there.
        third = browser.new_context(locale="fr-FR").new_page()
        third.goto(window)
        third.get_by_text("AO-COM : acheteur@rouen.fr a lancé l'ouverture").wait_for()
        _shot(third, "assistant-commission")
        third.get_by_role("button", name="Prendre part à l'ouverture de AO-COM").click()
        assert third.url.endswith("/traitements")
        assert "prendre part à l'ouverture d'une commission" in third.text_content("main")
        for _ in range(60):
            opener.reload()
            cells = opener.locator("#commission-opening tbody tr", has_text="MEMBRE-3")
            if cells.locator("td").nth(3).text_content() == "2":
                break
            time.sleep(0.5)
        else:
            raise AssertionError("MEMBRE-3's shares never reached the platform")

    [deposit] = list((openings[0] / "AO-COM" / "BTP Normandie").iterdir())
    assert _files(deposit / "candidature") == _files(files["candidature"])
    assert _files(deposit / "offre") == {"offre.zip": files["offre"].read_bytes()}
    # Nothing opened on the member's workstation: it only relayed its shares.
    assert not openings[1].exists() or not any(openings[1].rglob("*.zip"))
