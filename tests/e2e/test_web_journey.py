"""The seed guide's section B, a launch and an opening, clicked in a real browser against a
real `scelle serve` and a real `scelle assistant` (Debian's Chromium, Playwright).

The agent never types a command but `scelle login` and `scelle assistant`: the page
gives the jobs, the assistant on the workstation does the cryptography.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scelle.core import certs, pkcs12
from scelle.core.clock import shifted_clock
from tests.conftest import PFX_PASSWORD, STORE_PASSPHRASE
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
# What the agent reads and clicks, in French (the guide's words) and in English.
WORDS = {
    "email": ("Adresse électronique", "E-mail address"),
    "password": ("Mot de passe", "Password"),
    "login": ("Connexion", "Log in"),
    "dashboard": ("Tableau de bord", "Dashboard"),
    "ready": ("en cours d'exécution sur POSTE-ACHAT-12, prêt", "running on POSTE-ACHAT-12, ready"),
    "keys": ("Administration › Clés de chiffrement", "Administration › Encryption keys"),
    "personal": ("Gestion des bi-clés personnels", "Management of personal key pairs"),
    "add": ("Ajouter un bi-clé", "Add a key pair"),
    "designation": (
        "Désignation du bi-clé dans la salle des marchés",
        "Designation of the key pair in the tender room",
    ),
    "generate": (
        "Générer un nouveau bi-clé, et l'importer dans le magasin de certificats de ce poste",
        "Generate a new key pair, and import it into the certificate store of this workstation",
    ),
    "submit_key": ("Ajouter le bi-clé", "Add the key pair"),
    "created": (
        "Le bi-clé de chiffrement {d} a bien été créé et enregistré dans le magasin de "
        "certificats de ce poste.",
        "The encryption key pair {d} has been created and saved in the certificate store of "
        "this workstation.",
    ),
    "referenced": (
        "Le référencement dans la salle des marchés du bi-clé de chiffrement {d} s'est "
        "terminé avec succès.",
        "The referencing in the tender room of the encryption key pair {d} has succeeded.",
    ),
    "back": ("Retour aux clés de chiffrement", "Back to the encryption keys"),
    "no_backup": ("n'a aucun bi-clé de secours", "has no backup key pair"),
    "add_backup": ("Ajouter un bi-clé de secours", "Add a backup key pair"),
    "backup_flag": (
        "Définir comme bi-clé de chiffrement de secours",
        "Set as a backup encryption key pair",
    ),
    "cn": ("CN – Common Name", "CN – Common Name"),
    "edit": ("Modifier", "Edit"),
    "new_designation": ("Nouvelle désignation", "New designation"),
    "save": ("Enregistrer", "Save"),
    "renamed": (
        "Le bi-clé est désormais désigné SECOURS-2026.",
        "The key pair is now designated SECOURS-2026.",
    ),
    "tenders": ("Consultations", "Tenders"),
    "create": ("Créer une consultation", "Create a tender"),
    "reference": ("Référence", "Reference"),
    "title": ("Intitulé", "Title"),
    "day": ("Date limite : jour", "Deadline: day"),
    "time": ("Date limite : heure", "Deadline: time"),
    "draft": ("Créer le brouillon", "Create the draft"),
    "launch": ("Lancer", "Launch"),
    "launch_tender": ("Lancer la consultation", "Launch the tender"),
    "confirm_first": (
        "Confirmez avoir compris que l'affectation est définitive.",
        "Confirm that you understand the assignment is definitive.",
    ),
    "choose_one": (
        "Choisissez au moins un bi-clé personnel.",
        "Choose at least one personal key pair.",
    ),
    "definitive": (
        "J'ai compris que les bi-clés affectés",
        "I understand that the key pairs assigned",
    ),
    "published": (
        "La consultation AO-WEB-1 est publiée ; ses bi-clés sont définitifs.",
        "The tender AO-WEB-1 is published; its key pairs are definitive.",
    ),
    "state_published": ("publiée", "published"),
    "open": ("Ouvrir les plis", "Open the envelopes"),
    "open_later": (
        "Les plis s'ouvrent après la date limite de remise.",
        "The envelopes open after the deadline.",
    ),
    "delete": ("Supprimer", "Delete"),
    "opened_two": ("2 enveloppes ouvertes sur le poste.", "2 envelopes opened on the workstation."),
    "opened": ("ouverte", "opened"),
    "jobs": ("Traitements distants", "Remote jobs"),
    "finished": ("terminé", "finished"),
    "not_detected": ("non détecté", "not detected"),
    "cancel": ("Annuler", "Cancel"),
    "store": ("Magasin de certificats", "Certificate store"),
    "export_password": ("Mot de passe protégeant le fichier", "Password protecting the file"),
    "repeat_password": ("Répétez le mot de passe", "Repeat the password"),
    "export": ("Exporter", "Export"),
    "settings": ("Configuration", "Configuration"),
}

DEADLINE_AHEAD = dt.timedelta(minutes=10)  # passed by moving the platform's clock


class Assistant:
    """`scelle assistant` running in its own process, as on the agent's workstation."""

    window = ""
    """The address of its own window, as it printed it."""

    def __init__(self, home: Path, openings: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scelle.cli", "assistant", "--no-browser",
             "--workstation", "POSTE-ACHAT-12", "--openings", str(openings)],
            env={**env, "SCELLE_HOME": str(home), "SCELLE_STORE_PASSPHRASE": STORE_PASSPHRASE},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert self.process.stdout is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode("utf-8", "replace")
            if not line:
                break
            seen.append(line)
            found = re.search(r"(http://127\.0\.0\.1:[0-9]+/\?t=\S+)", line)
            if found:
                self.window = found.group(1)
                return
        self.process.kill()
        raise AssertionError("scelle assistant did not start:\n" + "".join(seen))

    def stop(self) -> str:
        """Ctrl-C, as the agent would; returns what it printed."""
        assert self.process.stdout is not None
        if self.process.stdout.closed:
            return ""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        out = self.process.stdout.read().decode("utf-8", "replace")
        self.process.stdout.close()
        return out


def _heard_again(platform: Platform) -> None:
    """Wait until the platform has heard the assistant since its clock moved on."""
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        [(seen,)] = platform.query("SELECT MAX(last_seen_at) FROM assistants_workstation")
        heard = dt.datetime.fromisoformat(str(seen)).replace(tzinfo=dt.UTC)
        if heard > shifted_clock(platform.clock_file)() - dt.timedelta(seconds=30):
            return
        time.sleep(0.5)
    raise AssertionError("the platform did not hear the assistant again")


@pytest.fixture
def agent(tmp_path: Path, capsys, monkeypatch) -> Workstation:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    return Workstation(tmp_path / "home-agent", capsys)


@pytest.fixture
def company(tmp_path: Path, capsys) -> Workstation:
    return Workstation(tmp_path / "home-btp", capsys)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


class Journey:
    """The browser page, with an accessibility check of every page it lands on."""

    def __init__(self, page: Any, screenshots: Path | None) -> None:
        self.page = page
        self.screenshots = screenshots
        """Where the pages' pictures go (docs/screenshots, English ones in en/), or None."""
        self.checked: set[str] = set()

    def landed(self, shot: str | None = None) -> None:
        self.page.wait_for_load_state("networkidle")
        path = re.sub(r"[0-9a-f-]{36}", "<id>", self.page.url.split("?")[0])
        if path not in self.checked:
            self.checked.add(path)
            assert serious_violations(self.page) == [], path
        if shot and self.screenshots is not None:
            self.page.screenshot(path=str(self.screenshots / f"{shot}.png"), full_page=True)


@pytest.fixture
def assistant_stopped() -> Iterator[list[Assistant]]:
    running: list[Assistant] = []
    yield running
    for each in running:
        each.stop()


JOURNEYS = [
    pytest.param("fr", "sqlite", id="fr-sqlite"),
    pytest.param("en", "sqlite", id="en-sqlite"),
]


@pytest.mark.parametrize(("language", "platform"), JOURNEYS, indirect=["platform"])
def test_section_b_launch_and_opening_by_clicking(
    language: str,
    platform: Platform,
    agent: Workstation,
    company: Workstation,
    password_file: Path,
    tmp_path: Path,
    assistant_stopped: list[Assistant],
) -> None:
    set_up(platform, password_file)
    pw = str(password_file)
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    openings = tmp_path / "Plis ouverts"
    helper = Assistant(agent.home, openings, platform.env)
    assistant_stopped.append(helper)
    # The pages' pictures in both languages: docs/screenshots/ (French), en/ (English).
    screenshots = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
    screenshots.mkdir(exist_ok=True)
    w = {key: pair[0 if language == "fr" else 1] for key, pair in WORDS.items()}

    with chromium("fr-FR" if language == "fr" else "en-GB") as browser:
        page = browser.new_page()
        journey = Journey(page, screenshots)
        # Connexion, then the dashboard.
        page.goto(platform.url)
        assert page.url.endswith("/connexion/")
        journey.landed("connexion")
        page.get_by_label(w["email"]).fill("acheteur@rouen.fr")
        page.get_by_label(w["password"]).fill(PASSWORD)
        page.get_by_role("button", name=w["login"]).click()
        page.get_by_role("heading", name=w["dashboard"]).wait_for()
        journey.landed("tableau-de-bord")
        assert w["ready"] in page.text_content("#assistant-state")

        # Section B: Administration › Service › Clés de chiffrement › Ajouter un bi-clé.
        page.get_by_role("link", name=w["keys"]).click()
        page.get_by_role("heading", name=w["personal"]).wait_for()
        journey.landed()
        page.get_by_role("link", name=w["add"], exact=True).click()
        journey.landed("ajouter-un-bi-cle")
        page.get_by_label(w["designation"]).fill("BI-CLE-ACHATS")
        assert page.get_by_label(w["generate"]).is_checked()
        page.get_by_role("button", name=w["submit_key"]).click()
        page.get_by_text(w["created"].format(d="BI-CLE-ACHATS")).wait_for(timeout=60_000)
        page.get_by_text(w["referenced"].format(d="BI-CLE-ACHATS")).wait_for()
        journey.landed("bi-cle-cree")
        page.get_by_role("link", name=w["back"]).click()
        personal = page.locator("table").first
        row = personal.locator("tr", has_text="BI-CLE-ACHATS")
        expiry = (dt.datetime.now(PARIS) + dt.timedelta(days=730)).year
        assert str(expiry) in row.text_content()
        assert w["no_backup"] in page.text_content("main")

        # A backup key pair.
        page.get_by_role("link", name=w["add_backup"]).click()
        assert page.get_by_label(w["backup_flag"]).is_checked()
        page.get_by_label(w["designation"]).fill("SECOURS")
        page.get_by_label(w["cn"]).fill("Secours Service des marchés")
        page.get_by_role("button", name=w["submit_key"]).click()
        page.get_by_text(w["referenced"].format(d="SECOURS")).wait_for(timeout=60_000)
        page.get_by_role("link", name=w["back"]).click()
        backup_table = page.locator("table").nth(1)
        assert "Secours Service des marchés" in backup_table.text_content()
        journey.landed("cles-de-chiffrement")

        # Modifier.
        backup_table.get_by_role("link", name=f"{w['edit']} SECOURS").click()
        journey.landed()
        page.get_by_label(w["new_designation"]).fill("SECOURS-2026")
        page.get_by_role("button", name=w["save"]).click()
        page.get_by_text(w["renamed"]).wait_for()

        # A tender, launched with the definitive confirmation.
        page.get_by_role("link", name=w["tenders"]).click()
        journey.landed()
        page.get_by_role("link", name=w["create"]).click()
        journey.landed("creer-une-consultation")
        deadline = (dt.datetime.now(PARIS) + DEADLINE_AHEAD).replace(microsecond=0)
        page.get_by_label(w["reference"]).fill("AO-WEB-1")
        page.get_by_label(w["title"]).fill("Entretien des espaces verts")
        page.get_by_label(w["day"]).fill(deadline.strftime("%Y-%m-%d"))
        page.get_by_label(w["time"]).fill(deadline.strftime("%H:%M:%S"))
        page.get_by_role("button", name=w["draft"]).click()
        page.get_by_role("heading", name=re.compile("AO-WEB-1")).wait_for()
        page.get_by_role("link", name=w["launch"]).click()
        journey.landed("lancer")
        assert "SECOURS-2026" in page.text_content("main")  # added automatically
        # Launched with nothing chosen: every missing answer is said at once.
        page.get_by_role("button", name=w["launch_tender"]).click()
        page.get_by_text(w["confirm_first"]).wait_for()
        assert w["choose_one"] in page.text_content("main")
        page.get_by_label(re.compile("^BI-CLE-ACHATS")).check()
        page.get_by_label(re.compile(w["definitive"])).check()
        page.get_by_role("button", name=w["launch_tender"]).click()
        page.get_by_text(w["published"]).wait_for()
        assert page.text_content("#tender-state") == w["state_published"]
        rsf = page.text_content("#rsf")
        assert rsf is not None and rsf.startswith("RSF ")
        opening = page.get_by_role("button", name=w["open"])
        assert opening.is_disabled()
        assert w["open_later"] in page.text_content("main")
        journey.landed("consultation")

        # Supprimer is refused while the tender uses the key pair, naming it.
        page.get_by_role("link", name=w["keys"]).click()
        page.get_by_role("link", name=f"{w['delete']} BI-CLE-ACHATS").click()
        journey.landed("supprimer")
        assert "AO-WEB-1" in page.text_content("main")
        # The button is off, the reason beside it: nothing to click only to be refused.
        assert page.get_by_role("button", name=w["delete"]).is_disabled()
        assert "AO-WEB-1" in page.get_by_role("alert").text_content()
        page.get_by_role("link", name=w["cancel"]).click()
        assert "BI-CLE-ACHATS" in page.locator("table").first.text_content()

        # A company deposits with the command, before the deadline.
        bid = tmp_path / "offre-btp"
        (bid / "annexes").mkdir(parents=True)
        (bid / "mémoire technique.txt").write_text("Notre offre\n" * 500, encoding="utf-8")
        (bid / "annexes" / "BPU.csv").write_bytes(os.urandom(70_000))
        candidature = tmp_path / "DC1.pdf"
        candidature.write_bytes(b"%PDF-1.7 DC1 BTP Normandie")
        company.ok("login", platform.url, "--email", "offres@btp.fr", "--password-file", pw)
        company.ok("deposit", "AO-WEB-1", f"--envelope=candidature={candidature}",
                   f"--envelope=offre={bid}", "--expect-rsf", rsf,
                   "--receipt", str(tmp_path / "receipt.json"))  # fmt: skip

        # After the deadline, Ouvrir les plis: a job for the assistant. The clocks moved
        # on past the assistant's last word: the agent waits until it is heard again.
        platform.pass_deadline(deadline)
        _heard_again(platform)
        page.get_by_role("link", name=w["tenders"]).click()
        page.get_by_role("link", name="AO-WEB-1").click()
        assert "BTP Normandie" in page.text_content("main")  # the deposits register
        page.get_by_role("button", name=w["open"]).click()
        page.get_by_text(w["opened_two"]).wait_for(timeout=60_000)
        assert str(openings) in page.get_by_text(w["opened_two"]).text_content()  # where
        journey.landed("plis-ouverts")
        results = page.locator("table").text_content()
        assert results.count(w["opened"]) == 2 and "BTP Normandie" in results

        # Traitements distants: each job with its start and end.
        page.get_by_role("link", name=w["jobs"], exact=True).click()
        journey.landed("traitements-distants")
        rows = page.locator("tbody tr")
        assert rows.count() == 3
        for index in range(3):
            cells = rows.nth(index).locator("td")
            assert cells.nth(2).text_content() != "—" and cells.nth(3).text_content() != "—"
            assert cells.nth(4).text_content() == w["finished"]

        # The assistant's own window: its store, the key pair exported to a .pfx.
        window = browser.new_page()
        window.goto(helper.window)
        Journey(window, screenshots).landed("assistant-accueil")
        window.get_by_role("link", name=w["store"]).click()
        Journey(window, screenshots).landed("assistant-magasin")
        window.get_by_label(w["export_password"]).fill(PFX_PASSWORD)
        window.get_by_label(w["repeat_password"]).fill(PFX_PASSWORD)
        with window.expect_download() as downloading:
            window.get_by_role("button", name=w["export"]).click()
        exported = tmp_path / "export.pfx"
        downloading.value.save_as(exported)
        bundle = pkcs12.import_pkcs12(exported.read_bytes(), PFX_PASSWORD)
        assert certs.common_name(bundle.certificate.subject) == "BI-CLE-ACHATS"
        for name in ("jobs", "settings"):
            window.get_by_role("link", name=w[name], exact=True).click()
            Journey(window, screenshots).landed()
        window.close()

        # The assistant stopped: the page says so.
        helper.stop()
        page.reload()
        assert w["not_detected"] in page.text_content("#assistant-state")

    # The files are in the folder chosen on the workstation, byte for byte.
    [deposit] = list((openings / "AO-WEB-1" / "BTP Normandie").iterdir())
    assert _files(deposit / "offre") == _files(bid)
    assert _files(deposit / "candidature") == {"DC1.pdf": candidature.read_bytes()}
