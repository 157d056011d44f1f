"""The assistant's local window: only this workstation's user, through the printed address,
may use it; export and import of a .pfx through it; its settings."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.assistant.config import AssistantConfig, load_config
from scelle.assistant.remote import Assistant
from scelle.assistant.window import Window
from scelle.client import api
from scelle.core import pkcs12
from scelle.keystore import KeyStore
from tests.assistant.hostile import Buyer, HostilePlatform, hostile_platform, make_buyer
from tests.conftest import NOW, PFX_PASSWORD, STORE_PASSPHRASE, SoftHSM


@pytest.fixture(scope="module")
def buyer() -> Buyer:
    return make_buyer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def fake() -> Iterator[HostilePlatform]:
    with hostile_platform() as platform:
        platform.set_json("GET", "/api/assistant/jobs", [])
        yield platform


@pytest.fixture
def window(tmp_path: Path, fake: HostilePlatform, buyer: Buyer) -> Iterator[Window]:
    home = tmp_path / "home"
    store = KeyStore(home, lambda _new: STORE_PASSPHRASE)
    store.add("BICLE", buyer.key, buyer.certificate, exportable=True, origin="generated", now=NOW)
    config = AssistantConfig(workstation="POSTE-ACHAT-12", openings=tmp_path / "plis")
    client = api.PlatformClient(fake.url, "scl_test_token")
    helper = Assistant(client, store, config, clock=lambda: NOW)
    opened = Window(helper, home)
    opened.start()
    yield opened
    opened.close()


@pytest.fixture
def browser(window: Window) -> Iterator[httpx.Client]:
    """A client that opened the printed address: it holds the window's cookie."""
    with httpx.Client(base_url=f"http://127.0.0.1:{window.port}", timeout=10) as client:
        first = client.get(window.url)
        assert first.status_code == 303 and "HttpOnly" in first.headers["set-cookie"]
        assert "SameSite=Strict" in first.headers["set-cookie"]
        yield client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_without_the_token_nothing_answers(window: Window) -> None:
    base = f"http://127.0.0.1:{window.port}"
    for path in ("/", "/magasin", "/style.css", "/?t=wrong"):
        assert httpx.get(base + path).status_code == 403
    assert httpx.post(f"{base}/magasin/supprimer", data={"name": "BICLE"}).status_code == 403
    assert [key.name for key in window.helper.store.key_pairs()] == ["BICLE"]


def test_another_host_is_refused_even_with_the_cookie(window: Window, browser) -> None:
    # A site whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own Host.
    answer = browser.get("/magasin", headers={"Host": f"evil.example:{window.port}"})
    assert answer.status_code == 421
    assert browser.get("/magasin").status_code == 200


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(
    window: Window, browser
) -> None:
    page = browser.get("/magasin").text
    csrf = _csrf(page)
    data = {"name": "BICLE", "confirm": "yes"}
    assert browser.post("/magasin/supprimer", data=data).status_code == 403
    assert browser.post("/magasin/supprimer", data={**data, "csrf": "x" * 43}).status_code == 403
    for origin in ("https://evil.example", "null"):  # null: a sandboxed frame, a file:// page
        answer = browser.post(
            "/magasin/supprimer", data={**data, "csrf": csrf}, headers={"Origin": origin}
        )
        assert answer.status_code == 403
    assert [key.name for key in window.helper.store.key_pairs()] == ["BICLE"]
    # With its token, from its own page: done.
    assert browser.post("/magasin/supprimer", data={**data, "csrf": csrf}).status_code == 200
    assert window.helper.store.key_pairs() == []


def test_pages_allow_no_script(browser) -> None:
    answer = browser.get("/")
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert "<script" not in answer.text
    assert "POSTE-ACHAT-12" in answer.text


def test_export_asks_the_password_twice_then_import_reads_the_file(
    window: Window, browser, buyer: Buyer
) -> None:
    csrf = _csrf(browser.get("/magasin").text)
    differ = browser.post(
        "/magasin/exporter",
        data={"csrf": csrf, "name": "BICLE", "password": PFX_PASSWORD, "password2": "autre"},
        headers={"Accept-Language": "fr-FR"},
    )
    assert differ.status_code == 400 and "Les deux mots de passe diffèrent." in differ.text
    weak = browser.post(
        "/magasin/exporter",
        data={"csrf": csrf, "name": "BICLE", "password": "1234", "password2": "1234"},
    )
    assert weak.status_code == 400
    exported = browser.post(
        "/magasin/exporter",
        data={"csrf": csrf, "name": "BICLE", "password": PFX_PASSWORD, "password2": PFX_PASSWORD},
    )
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    bundle = pkcs12.import_pkcs12(exported.content, PFX_PASSWORD)
    assert bundle.certificate == buyer.certificate
    # On another workstation's window (here: the same, after deleting it), import it.
    window.helper.store.delete("BICLE")
    imported = browser.post(
        "/magasin/importer",
        data={"csrf": csrf, "password": PFX_PASSWORD, "name": "BICLE-IMPORTE"},
        files={"file": ("BICLE.pfx", exported.content, "application/x-pkcs12")},
        headers={"Accept-Language": "en"},
    )
    assert imported.status_code == 200, imported.text
    assert "has been imported" in imported.text
    [key] = window.helper.store.key_pairs()
    assert key.name == "BICLE-IMPORTE" and key.certificate == buyer.certificate
    wrong = browser.post(
        "/magasin/importer",
        data={"csrf": csrf, "password": "mauvais mot de passe"},
        files={"file": ("BICLE.pfx", exported.content, "application/x-pkcs12")},
    )
    assert wrong.status_code == 400


def test_a_pfx_windows_wrote_imports_from_the_window(window: Window, browser) -> None:
    """The same Windows file as `scelle keys import` (tests/vectors/README.md): its NUL-ended
    friendly name is cleaned, here too."""
    corpus = Path(__file__).resolve().parents[1] / "vectors" / "pkcs12"
    csrf = _csrf(browser.get("/magasin").text)
    imported = browser.post(
        "/magasin/importer",
        data={"csrf": csrf, "password": ""},
        files={"file": ("azure.pfx", (corpus / "go-windows-azure-tools.pfx").read_bytes())},
        headers={"Accept-Language": "en"},
    )
    assert imported.status_code == 200, imported.text
    names = [key.name for key in window.helper.store.key_pairs()]
    assert "Paul's Playground-10-2-2014-credentials" in names


def test_the_settings_are_changed_on_the_workstation(window: Window, browser, tmp_path) -> None:
    csrf = _csrf(browser.get("/configuration").text)
    folder = tmp_path / "Ouvertures 2026"
    saved = browser.post(
        "/configuration", data={"csrf": csrf, "workstation": "POSTE-13", "openings": str(folder)}
    )
    assert saved.status_code == 200
    assert load_config(window.home) == AssistantConfig("POSTE-13", folder)
    assert window.helper.config.workstation == "POSTE-13"
    refused = browser.post(
        "/configuration", data={"csrf": csrf, "workstation": "POSTE-13", "openings": "plis"}
    )
    assert refused.status_code == 400


def test_the_jobs_page_lists_this_workstations_jobs(window, browser, fake) -> None:
    job = {
        "id": str(uuid.uuid4()), "kind": "open_tender", "workstation": str(uuid.uuid4()),
        "workstation_name": "POSTE-ACHAT-12", "params": {}, "state": "finished",
        "message": "AO-1: 2 envelope(s) opened, 0 failed",
        "result": {"said": {"template": "{reference}: {opened} envelope(s) opened, {failed} failed",
                            "values": {"reference": "AO-1", "opened": 2, "failed": 0}}},
        "created_at": NOW.isoformat(), "started_at": NOW.isoformat(),
        "finished_at": NOW.isoformat(),
    }  # fmt: skip
    fake.set_json("GET", "/api/assistant/jobs", [job, {**job, "workstation_name": "AUTRE"}])
    page = browser.get("/traitements", headers={"Accept-Language": "fr"}).text
    # In the window's language, with the times in the platform's zone (UTC: no login here).
    assert page.count("AO-1 : 2 enveloppe(s) ouverte(s), 0 en échec") == 1 and "Début" in page
    assert f"{NOW:%Y-%m-%d %H:%M} (UTC)" in page
    english = browser.get("/traitements", headers={"Accept-Language": "en"}).text
    assert "AO-1: 2 envelope(s) opened, 0 failed" in english


def test_a_token_is_set_unlocked_with_its_pin_and_its_key_pairs_shown_not_exported(
    window: Window, browser, softhsm: SoftHSM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configuration names the token; the store's page asks its PIN, which goes to the token
    and nowhere else; its key pairs are listed as on the token, and refuse the export."""
    monkeypatch.setenv("SCELLE_PKCS11_MODULE", softhsm.module)
    monkeypatch.delenv("SCELLE_TOKEN_PIN", raising=False)
    store = window.helper.store
    name = f"FENETRE-{uuid.uuid4().hex[:6]}"
    page = browser.get("/configuration").text
    settings = {"csrf": _csrf(page), "workstation": "POSTE-ACHAT-12",
                "openings": str(window.helper.config.openings)}  # fmt: skip
    refused = browser.post("/configuration", data={**settings, "token": "carte"})
    assert refused.status_code == 400 and "n&#x27;est pas une URI PKCS#11" in refused.text
    # A token whose module is nowhere: its page says so, the store's key pairs still show.
    absent = {**settings, "token": softhsm.uri, "module": "/nulle/part/libpkcs11.so"}
    assert browser.post("/configuration", data=absent).status_code == 200
    for path in ("/", "/magasin"):
        shown = browser.get(path)
        assert shown.status_code == 200 and "impossible de charger le module PKCS#11" in shown.text
    assert "BICLE" in browser.get("/magasin").text
    monkeypatch.delenv("SCELLE_PKCS11_MODULE")  # and no OpenSC here: nothing to load
    unusable = browser.post("/configuration", data={**settings, "token": softhsm.uri})
    assert unusable.status_code == 400 and "aucun module PKCS#11" in unusable.text
    assert load_config(window.home).module == absent["module"]  # the settings before, kept
    monkeypatch.setenv("SCELLE_PKCS11_MODULE", softhsm.module)
    saved = browser.post("/configuration", data={**settings, "token": softhsm.uri})
    assert saved.status_code == 200 and store.token is not None
    assert load_config(window.home).token == softhsm.uri

    page = browser.get("/magasin", headers={"Accept-Language": "fr"}).text
    assert "Déverrouiller le jeton Carte agent" in page and 'name="pin"' in page
    wrong = browser.post("/magasin/jeton", data={"csrf": _csrf(page), "pin": "000000"})
    assert wrong.status_code == 400 and "code PIN erroné pour le jeton Carte agent" in wrong.text
    unlocked = browser.post("/magasin/jeton", data={"csrf": _csrf(page), "pin": softhsm.pin})
    assert "déverrouillé jusqu&#x27;à l&#x27;arrêt" in unlocked.text
    assert softhsm.pin not in (window.home / "assistant.json").read_text()

    store.token.generate(name, "Fenêtre", bits=2048, days=30, now=NOW)
    page = browser.get("/magasin").text
    assert re.search(rf"<td>{name}</td>.*?<td>jeton Carte agent</td>", page)
    exported = browser.post("/magasin/exporter", data={"csrf": _csrf(page), "name": name,
                                                       "password": PFX_PASSWORD,
                                                       "password2": PFX_PASSWORD})  # fmt: skip
    assert exported.status_code == 400 and "est sur un jeton" in exported.text
    store.delete(name)
    # Forgetting the token: the store alone again, the token's login closed.
    browser.post("/configuration", data={**settings, "token": ""})
    assert store.token is None and load_config(window.home).token is None
