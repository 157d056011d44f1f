"""A company deposits from the browser (issue 12): the page seals each envelope in a
Web Worker and uploads it with tus; the buyer opens it with `scelle open`, OpenSSL
opens it too, and the receipt the page saved passes `scelle receipts verify`.

Real server, Debian's Chromium, nothing mocked: the page talks to `scelle serve`.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PFX_PASSWORD, STORE_PASSPHRASE
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_opening_journey import _files, _stored_envelope
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

DEADLINE_AHEAD = dt.timedelta(seconds=75)


def log_in(page, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_load_state("networkidle")


def launch_tender(
    platform: Platform, agent: Workstation, password_file: Path, reference: str, ahead: dt.timedelta
) -> dt.datetime:
    """A buyer with a personal and a backup key pair launches `reference`."""
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file",
             str(password_file))  # fmt: skip
    agent.ok("keys", "generate", "PERSO", "--publish")
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    deadline = dt.datetime.now(dt.UTC) + ahead
    agent.ok("tenders", "create", "--reference", reference, "--title", "Voirie",
             "--deadline", deadline.isoformat())  # fmt: skip
    agent.ok("tenders", "launch", reference, "--key", "PERSO")
    return deadline


def bid(folder: Path) -> dict[str, Path]:
    """A candidature folder of several files, and an offer that is one file of 3 MiB."""
    candidature = folder / "candidature"
    (candidature / "annexes").mkdir(parents=True)
    (candidature / "DC1.pdf").write_bytes(b"%PDF DC1 " + os.urandom(5000))
    (candidature / "Kbis société.pdf").write_bytes(b"%PDF Kbis")
    (candidature / "annexes" / "références.csv").write_text("chantier;année\nRouen;2025\n")
    (candidature / "vide.txt").write_bytes(b"")
    offre = folder / "offre.zip"
    offre.write_bytes(os.urandom(3 * (1 << 20) + 12345))
    return {"candidature": candidature, "offre": offre}


def open_deposit_page(page, url: str, reference: str) -> None:
    log_in(page, url, "offres@btp.fr")
    page.get_by_role("link", name=reference).click()
    page.get_by_role("link", name="Déposer une offre").click()
    page.get_by_text("Les bi-clés ont été vérifiés").wait_for()


def choose(page, files: dict[str, Path]) -> None:
    for kind, path in files.items():
        envelope = page.locator(f"fieldset[data-kind='{kind}']")
        role = "folder" if path.is_dir() else "files"
        envelope.locator(f"input[data-role='{role}']").set_input_files(path)


@pytest.mark.parametrize("platform", ["sqlite"], indirect=True)
def test_a_company_deposits_from_the_page_and_the_buyer_opens_it(
    platform: Platform, password_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    set_up(platform, password_file)
    agent = Workstation(tmp_path / "home-agent", capsys)
    company = Workstation(tmp_path / "home-btp", capsys)
    deadline = launch_tender(platform, agent, password_file, "AO-WEB-1", DEADLINE_AHEAD)
    files = bid(tmp_path / "btp")

    receipt = tmp_path / "accuse.json"
    with chromium() as browser:
        page = browser.new_page()
        open_deposit_page(page, platform.url, "AO-WEB-1")
        assert serious_violations(page) == []
        choose(page, files)
        page.get_by_text("Total à envoyer").wait_for()
        assert "Kbis société.pdf" in page.text_content("fieldset[data-kind='candidature']")
        page.get_by_role("button", name="Déposer", exact=True).click()
        page.get_by_text("Déposé.").wait_for(timeout=60_000)
        assert serious_violations(page) == []
        page.screenshot(path=str(SCREENSHOTS / "entreprise-depot.png"), full_page=True)
        with page.expect_download() as downloading:
            page.get_by_role("link", name="Enregistrer l'accusé de réception").click()
        downloading.value.save_as(receipt)
    assert "valid" in company.ok("receipts", "verify", str(receipt))

    time.sleep(max(0.0, (deadline - dt.datetime.now(dt.UTC)).total_seconds()) + 1)
    out = tmp_path / "ouverture"
    said = agent.ok("open", "AO-WEB-1", "--key", "PERSO", "--out", str(out))
    assert said.count("Opened") == 2
    opened = next((out / "BTP Normandie").iterdir())
    assert _files(opened / "candidature") == _files(files["candidature"])
    assert _files(opened / "offre") == {"offre.zip": files["offre"].read_bytes()}

    # OpenSSL opens what the page sealed, with the personal key exported as a .pfx.
    pfx_password = tmp_path / "pfx.txt"
    pfx_password.write_text(PFX_PASSWORD, encoding="utf-8")
    agent.ok("keys", "export", "PERSO", "-o", str(tmp_path / "perso.pfx"),
             "--password-file", str(pfx_password))  # fmt: skip
    key = tmp_path / "perso.key"
    subprocess.run(
        ["openssl", "pkcs12", "-in", str(tmp_path / "perso.pfx"), "-nocerts", "-nodes",
         "-passin", f"pass:{PFX_PASSWORD}", "-out", str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    stored = _stored_envelope(platform, opened.name, "offre")
    archive = tmp_path / "offre-openssl.zip"
    subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(stored),
         "-inkey", str(key), "-out", str(archive)],
        check=True, capture_output=True,
    )  # fmt: skip
    listing = subprocess.run(["unzip", "-Z1", str(archive)], check=True, capture_output=True)
    assert listing.stdout.decode().split() == ["manifest.json", "offre.zip"]
