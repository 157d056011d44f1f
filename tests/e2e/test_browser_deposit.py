"""A company deposits from the browser (issue 12): the page seals each envelope in a
Web Worker and uploads it with tus; the buyer opens it with `scelle open`, OpenSSL
opens it too, and the receipt the page saved passes `scelle receipts verify`.

Real server, Debian's Chromium, nothing mocked: the page talks to `scelle serve`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PFX_PASSWORD, STORE_PASSPHRASE
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_opening_journey import _files, _stored_envelope
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

DEADLINE_AHEAD = dt.timedelta(minutes=10)  # passed by moving the platform's clock


@pytest.fixture
def stations(
    platform: Platform, password_file: Path, tmp_path: Path, capsys, monkeypatch
) -> tuple[Workstation, Workstation]:
    """The platform set up (seed guide), and the agent's and the company's workstations."""
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    set_up(platform, password_file)
    return Workstation(tmp_path / "home-agent", capsys), Workstation(tmp_path / "home-btp", capsys)


def deposited(page) -> None:
    """Wait for "Déposé."; else fail with what the page says."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_text("Déposé.").wait_for(timeout=120_000)
    except PlaywrightTimeout:
        said = [page.text_content("#deposit-state")]
        said += page.locator("[data-role=status]").all_text_contents()
        pytest.fail(f"the page did not deposit: {said}")


def save_receipt(page, path: Path) -> None:
    """Enregistrer l'accusé de réception: the page's download, saved at `path`."""
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Enregistrer l'accusé de réception").click()
    downloading.value.save_as(path)


KIT_PASSWORD = "Preuve-déposée 2026 !"


def save_proof_kit(page, path: Path) -> None:
    """Télécharger le dossier de preuve, after the page refused a mismatch and a weak
    password."""
    page.get_by_label("Mot de passe du dossier de preuve").fill(KIT_PASSWORD)
    page.get_by_label("Le même mot de passe").fill("autre chose")
    download = page.get_by_role("button", name="Télécharger le dossier de preuve")
    download.click()
    page.get_by_text("Les deux mots de passe diffèrent.").wait_for()
    page.get_by_label("Mot de passe du dossier de preuve").fill("court")
    page.get_by_label("Le même mot de passe").fill("court")
    download.click()
    page.get_by_text("Le mot de passe est trop court").wait_for()
    page.get_by_label("Mot de passe du dossier de preuve").fill(KIT_PASSWORD)
    page.get_by_label("Le même mot de passe").fill(KIT_PASSWORD)
    with page.expect_download() as downloading:
        download.click()
    downloading.value.save_as(path)
    page.get_by_text("Le dossier de preuve est enregistré").wait_for()


LOG_IN = {
    "fr": ("Adresse électronique", "Mot de passe", "Connexion"),
    "en": ("E-mail address", "Password", "Log in"),
}


def log_in(page, url: str, email: str, language: str = "fr") -> None:
    """Connexion, in the page's language."""
    address, password, button = LOG_IN[language]
    page.goto(url)
    page.get_by_label(address).fill(email)
    page.get_by_label(password).fill(PASSWORD)
    page.get_by_role("button", name=button).click()
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


def test_a_company_deposits_from_the_page_and_the_buyer_opens_it(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    agent, company = stations
    deadline = launch_tender(platform, agent, password_file, "AO-WEB-1", DEADLINE_AHEAD)
    files = bid(tmp_path / "btp")

    receipt, kit = tmp_path / "accuse.json", tmp_path / "dossier-de-preuve.json"
    with chromium() as browser:
        page = browser.new_page()
        open_deposit_page(page, platform.url, "AO-WEB-1")
        assert serious_violations(page) == []
        # Nothing to pause or resume before a deposit starts.
        assert not page.locator("#deposit-pause").is_visible()
        assert not page.locator("#deposit-resume").is_visible()
        choose(page, files)
        page.get_by_text("Total à envoyer").wait_for()
        assert "Kbis société.pdf" in page.text_content("fieldset[data-kind='candidature']")
        page.get_by_role("button", name="Déposer", exact=True).click()
        page.get_by_text("Déposé.").wait_for(timeout=60_000)
        assert serious_violations(page) == []
        save_receipt(page, receipt)
        save_proof_kit(page, kit)
        page.screenshot(path=str(SCREENSHOTS / "entreprise-depot.png"), full_page=True)
    assert "valid" in company.ok("receipts", "verify", str(receipt))

    platform.pass_deadline(deadline)
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

    # The proof kit the page made opens the stored envelopes on a judge's machine, which
    # has no key at all.
    kit_password = tmp_path / "kit.pw"
    kit_password.write_text(KIT_PASSWORD, encoding="utf-8")
    judge = Workstation(tmp_path / "home-judge", company.capsys)
    for kind in ("candidature", "offre"):
        stored = _stored_envelope(platform, opened.name, kind)
        shown = judge.ok("proof", "verify", str(kit), str(stored), "--password-file",
                         str(kit_password))  # fmt: skip
        assert "its SHA-256 is the one the receipt gives" in shown
        assert ("Kbis société.pdf" if kind == "candidature" else "offre.zip") in shown


TENDER_ANSWER = re.compile(r".*/api/tenders/[0-9a-f-]{36}$")


def answering(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., None]:
    """A route handler giving the platform's tender answer as `change` rewrites it."""

    def handler(route: Any) -> None:
        answer = route.fetch()
        route.fulfill(response=answer, json=change(answer.json()))

    return handler


def _foreign_certificate_pem() -> str:
    """A valid encryption certificate the platform's CA never issued: the server's own."""
    return _certificate_pem((-1, 400))


def test_a_recipient_the_platform_ca_did_not_issue_stops_the_page(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    agent, _ = stations
    launch_tender(platform, agent, password_file, "AO-WEB-2", dt.timedelta(days=5))
    files = bid(tmp_path / "btp")
    sent: list[str] = []

    def tamper(tender: dict[str, Any]) -> dict[str, Any]:
        foreign = _foreign_certificate_pem()
        extra = dict(tender["key_pairs"][0], designation="ESPION", certificate_pem=foreign)
        return {**tender, "key_pairs": [*tender["key_pairs"], extra]}

    with chromium() as browser:
        browser.on("request", lambda r: sent.append(r.method) if "/api/uploads" in r.url else None)
        page = browser.new_page()
        log_in(page, platform.url, "offres@btp.fr")
        browser.route(TENDER_ANSWER, answering(tamper))
        page.get_by_role("link", name="AO-WEB-2").click()
        page.get_by_role("link", name="Déposer une offre").click()
        page.get_by_text("Le certificat de ESPION n'a pas été émis par l'autorité").wait_for()
        choose(page, files)
        assert page.get_by_role("button", name="Déposer", exact=True).is_disabled()
    assert sent == []
    assert platform.query("SELECT count(*) FROM deposits_upload") == [(0,)]


def _certificate_pem(days: tuple[int, int]) -> str:
    """An encryption certificate valid from `days[0]` to `days[1]` days from now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PERSO")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False),
                       critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_a_deposit_refused_before_it_starts_says_why_and_sends_nothing(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    """A closed tender, an expired recipient certificate, a deposit larger than the
    platform's limit: one sentence each, and not a byte sent."""
    agent, _ = stations
    launch_tender(platform, agent, password_file, "AO-WEB-5", dt.timedelta(days=5))
    files = bid(tmp_path / "btp")
    sent: list[str] = []

    def closed(tender: dict[str, Any]) -> dict[str, Any]:
        return {**tender, "deadline": "2020-01-01T12:00:00+00:00"}

    def expired(tender: dict[str, Any]) -> dict[str, Any]:
        pem = _certificate_pem((-800, -1))
        key_pair = dict(tender["key_pairs"][0], designation="PERSO", certificate_pem=pem)
        return {**tender, "key_pairs": [key_pair]}

    with chromium() as browser:
        browser.on("request", lambda r: sent.append(r.method) if "/api/uploads" in r.url else None)
        page = browser.new_page()
        log_in(page, platform.url, "offres@btp.fr")
        page.get_by_role("link", name="AO-WEB-5").click()
        tender_page = page.url
        for change, sentence in [
            (closed, "Cette consultation ne reçoit plus de dépôt."),
            (expired, "Le certificat de PERSO a expiré : rien n'a été envoyé."),
        ]:
            browser.route(TENDER_ANSWER, answering(change))
            page.goto(tender_page)
            page.get_by_role("link", name="Déposer une offre").click()
            page.get_by_text(sentence).wait_for()
            choose(page, files)
            assert page.get_by_role("button", name="Déposer", exact=True).is_disabled()
            browser.unroute(TENDER_ANSWER)

        # The platform takes at most 50 KiB here: the page says so once the files are
        # chosen, and Déposer stays off.
        def small_limit(route) -> None:
            answer = route.fetch()
            body = re.sub(r'"maxBytes": ?\d+', '"maxBytes": 51200', answer.text())
            route.fulfill(response=answer, body=body)

        page.route(re.compile(r".*/deposer/$"), small_limit)
        page.goto(tender_page)
        page.get_by_role("link", name="Déposer une offre").click()
        page.get_by_text("Les bi-clés ont été vérifiés").wait_for()
        choose(page, files)
        total = page.locator("#deposit-total.error")
        total.get_by_text(re.compile(r"Total à envoyer : .* accepte au plus 50")).wait_for()
        assert page.get_by_role("button", name="Déposer", exact=True).is_disabled()
    assert sent == []
    assert platform.query("SELECT count(*) FROM deposits_upload") == [(0,)]


def _offset_of(request) -> int:
    return int(request.headers.get("upload-offset", "-1"))


def test_a_reloaded_tab_resumes_with_the_same_files_and_refuses_a_changed_one(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    agent, company = stations
    launch_tender(platform, agent, password_file, "AO-WEB-3", dt.timedelta(days=5))
    files = bid(tmp_path / "btp")
    files["offre"].write_bytes(os.urandom(40 << 20))  # three PATCHes of 16 MiB
    offsets: list[int] = []
    receipt = tmp_path / "accuse.json"
    with chromium() as browser:
        browser.on(
            "request", lambda r: offsets.append(_offset_of(r)) if r.method == "PATCH" else None
        )
        page = browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" while sending
        open_deposit_page(page, platform.url, "AO-WEB-3")
        choose(page, files)
        # The offre's third chunk never gets an answer: the tab is closed while it waits,
        # with 32 MiB of the offre on the platform.
        held: list[object] = []

        def hold_the_third_chunk(route) -> None:
            if route.request.method == "PATCH" and _offset_of(route.request) >= 32 << 20:
                held.append(route)
            else:
                route.continue_()

        uploads = re.compile(r".*/api/uploads/.*")
        browser.route(uploads, hold_the_third_chunk)
        page.get_by_role("button", name="Déposer", exact=True).click()
        for _ in range(600):
            if held:
                break
            page.wait_for_timeout(100)
        assert held
        page.reload()
        browser.unroute(uploads)
        page.get_by_text("Un dépôt interrompu peut reprendre").wait_for()

        # A file changed meanwhile is refused, by its name.
        changed = tmp_path / "changed"
        changed.mkdir()
        (changed / "offre.zip").write_bytes(os.urandom(40 << 20))
        choose(page, {"candidature": files["candidature"], "offre": changed / "offre.zip"})
        page.get_by_role("button", name="Déposer", exact=True).click()
        page.get_by_text("offre.zip n'est pas le fichier du dépôt interrompu").wait_for()

        page.reload()
        before = len(offsets)
        choose(page, files)
        page.get_by_role("button", name="Déposer", exact=True).click()
        deposited(page)
        save_receipt(page, receipt)
    # The resumed upload started where the platform's offset stood: nothing sent again
    # of the candidature (complete) nor of the offre's first 32 MiB.
    assert [offset for offset in offsets[before:] if offset >= 0] == [32 << 20]
    assert "valid" in company.ok("receipts", "verify", str(receipt))
    assert platform.query("SELECT count(*) FROM deposits_deposit") == [(1,)]


class CuttingProxy:
    """A TCP proxy in front of the platform that drops one connection in the middle of
    an upload, once `cut_after` bytes went up through it: a line that fails mid-chunk."""

    def __init__(self, target: str, cut_after: int) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.cut_after = cut_after
        self.sent = 0
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.target.hostname, self.target.port or 80))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                if upward and not self.cut.is_set():
                    self.sent += len(data)
                    if self.sent > self.cut_after:
                        self.cut.set()
                        break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


def test_a_connection_cut_mid_chunk_continues_from_the_platform_offset(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    agent, company = stations
    launch_tender(platform, agent, password_file, "AO-WEB-4", dt.timedelta(days=5))
    files = bid(tmp_path / "btp")
    files["offre"].write_bytes(os.urandom(40 << 20))
    proxy = CuttingProxy(platform.url, cut_after=24 << 20)  # inside the offre's second chunk
    patches: list[tuple[str, int]] = []
    receipt = tmp_path / "accuse.json"
    try:
        with chromium() as browser:
            browser.on(
                "request",
                lambda r: patches.append((r.url, _offset_of(r))) if r.method == "PATCH" else None,
            )
            page = browser.new_page()
            open_deposit_page(page, proxy.url, "AO-WEB-4")
            choose(page, files)
            page.get_by_role("button", name="Déposer", exact=True).click()
            deposited(page)
            save_receipt(page, receipt)
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    # The cut chunk went again (Chromium, or tus-js-client after asking the offset), and
    # only it: the offre's first 16 MiB, acknowledged before the cut, left once.
    offre = patches[-1][0]
    assert [offset for url, offset in patches if url == offre].count(0) == 1
    assert platform.query("SELECT count(*) FROM deposits_deposit") == [(1,)]
    assert "valid" in company.ok("receipts", "verify", str(receipt))


def test_the_deposit_page_in_english(
    platform: Platform, password_file: Path, tmp_path: Path, stations
) -> None:
    """The same page for an English reader: its words, and its picture."""
    agent, _company = stations
    launch_tender(platform, agent, password_file, "AO-WEB-EN", DEADLINE_AHEAD)
    files = bid(tmp_path / "btp")
    with chromium("en-GB") as browser:
        page = browser.new_page()
        log_in(page, platform.url, "offres@btp.fr", "en")
        page.get_by_role("link", name="AO-WEB-EN").click()
        page.get_by_role("link", name="Deposit an offer").click()
        page.get_by_text("The key pairs were checked").wait_for()
        assert not page.locator("#deposit-pause").is_visible()
        choose(page, files)
        page.get_by_text("Total to send").wait_for()
        page.get_by_role("button", name="Deposit", exact=True).click()
        page.get_by_text("Deposited.").wait_for(timeout=120_000)
        assert serious_violations(page) == []
        (SCREENSHOTS / "en").mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "en" / "entreprise-depot.png"), full_page=True)
