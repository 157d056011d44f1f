"""A buyer whose key pairs live on a smart card (SoftHSM2 standing in), on a real server:
made on the card by the command and by the assistant's job (*Ajouter un bi-clé*), one
already there referenced, a tender launched with one, a company's deposit, and the opening
by the assistant's job and by `scelle open`, each decrypting the content keys on the card.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from scelle.assistant.config import AssistantConfig, use_token
from scelle.assistant.remote import Assistant
from scelle.cli.remote import connect
from scelle.cli.session import Session
from scelle.core import certs
from scelle.keystore import KeyStore
from tests.conftest import STORE_PASSPHRASE, SoftHSM
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_opening_journey import _bid, _deposit, _files
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]


def _job(helper: Assistant, kind: str, params: dict[str, str]) -> dict[str, object]:
    """A job as the page gives it, done by the assistant's next turn; its report."""
    job = helper.client._call(  # the route the page's service serves
        dict, "POST", "/assistant/jobs", json={"kind": kind, "params": params}
    )
    assert helper.step(wait=0)
    done = next(j for j in helper.client.jobs() if j["id"] == job["id"])
    return {"state": done["state"], "message": done["message"], **done["result"]}


def test_a_buyer_with_a_smart_card_from_key_pair_to_opening(
    platform: Platform,
    softhsm: SoftHSM,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    for variable, value in softhsm.environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    set_up(platform, password_file)
    agent, bidder = Workstation(tmp_path / "agent", capsys), Workstation(tmp_path / "btp", capsys)
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file",
             str(password_file))  # fmt: skip
    bidder.ok("login", platform.url, "--email", "offres@btp.fr", "--password-file",
              str(password_file))  # fmt: skip
    run = uuid.uuid4().hex[:6]  # the token is the test process's: names of this test's own
    card, by_job, already = f"CARTE-{run}", f"JOB-{run}", f"DEJA-{run}"

    # The command: made on the card, certified by the platform CA, which is kept beside it.
    said = agent.ok("keys", "generate", card, "--token", softhsm.uri, "--publish")
    assert "created on the token Carte agent" in said and f"on the platform as {card}" in said
    agent.ok("keys", "generate", f"SECOURS-{run}", "--publish", "--backup")  # in the store
    listing = agent.ok("keys", "list", "--json", "--token", softhsm.uri)
    local = {k["name"]: k for k in json.loads(listing)}
    assert local[card]["origin"] == "token" and local[card]["issuer"].endswith("plateforme")
    published = json.loads(agent.ok("service-keys", "list", "--json"))["key_pairs"]
    registry = {k["designation"]: k for k in published}
    assert registry[card]["on_token"] is True and registry[f"SECOURS-{run}"]["on_token"] is False
    assert registry[card]["fingerprint_sha256"] == local[card]["fingerprint_sha256"]

    _key_page_shows_the_card(platform, card)

    # The assistant, set for the card: *Ajouter un bi-clé* makes one there; one already
    # there (made without publishing) is listed with the store's and referenced.
    agent.ok("keys", "generate", already, "--token", softhsm.uri)
    store = KeyStore(agent.home, lambda _new: STORE_PASSPHRASE)
    config = AssistantConfig("POSTE-CARTE", tmp_path / "ouvertures", token=softhsm.uri)
    use_token(store, config)
    client = connect(Session(home=agent.home))
    request.addfinalizer(client.close)
    helper = Assistant(client, store, config, clock=lambda: dt.datetime.now(dt.UTC), bits=2048)
    helper.beat()
    service = client.me()["services"][0]["id"]
    generate = {"service": service, "designation": by_job, "role": "personal",
                "common_name": "Agent carte"}  # fmt: skip
    report = _job(helper, "add_key_pair", generate)
    assert report["state"] == "finished", report
    listed = {key.name: key for key in store.key_pairs()}
    assert listed[by_job].token is not None and not listed[by_job].self_signed
    report = _job(helper, "add_key_pair", {"service": service, "designation": already,
                                           "role": "personal", "fingerprint_sha256":
                                               listed[already].fingerprint_sha256})  # fmt: skip
    assert report["state"] == "finished", report
    registry = {k["designation"]: k for k in client.key_pairs()["key_pairs"]}
    assert registry[by_job]["on_token"] is True and registry[already]["on_token"] is True

    # A tender launched with the card's key pair; a company deposits.
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    agent.ok("tenders", "create", "--reference", f"AO-CARTE-{run}", "--title", "Voirie",
             "--deadline", deadline.isoformat())  # fmt: skip
    said = agent.ok("tenders", "launch", f"AO-CARTE-{run}", "--key", card, "--token", softhsm.uri)
    assert "on this workstation's token" in said
    bid = _bid(tmp_path / "bid", "BTP")
    _deposit(bidder, f"AO-CARTE-{run}", bid)
    platform.pass_deadline(deadline)
    moved = dt.datetime.now(dt.UTC)  # the workstation's clock passes the deadline too
    helper.clock = lambda: deadline + dt.timedelta(seconds=2) + (dt.datetime.now(dt.UTC) - moved)
    helper.beat()  # the platform's clock moved on: the assistant says again it runs

    # The opening job decrypts on the card; so does `scelle open`.
    tender = client.tender(f"AO-CARTE-{run}")
    report = _job(helper, "open_tender", {"tender": tender["id"]})
    assert report["state"] == "finished" and report["opened"] == 2, report
    opened = next((tmp_path / "ouvertures").glob("*/*/*"))
    for kind, source in bid.items():
        assert _files(opened / kind) == _files(source)
    out = tmp_path / "par-la-commande"
    said = agent.ok("open", f"AO-CARTE-{run}", "--out", str(out), "--token", softhsm.uri)
    assert said.count("Opened") == 2
    assert _files(next(out.glob("*/*")) / "offre") == _files(bid["offre"])

    # The card's key pairs never leave it.
    assert "lives on a token" in agent.refused("keys", "export", card, "-o", "carte.pfx",
                                               "--password-file", str(password_file),
                                               "--token", softhsm.uri)  # fmt: skip
    assert certs.common_name(listed[by_job].certificate.subject) == "Agent carte"
    helper.goodbye()
    if store.token is not None:
        store.token.close()


def _key_page_shows_the_card(platform: Platform, card: str) -> None:
    """The key page, in a browser, marks the card's key pair (screenshots in both languages)."""
    from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations
    from tests.e2e.test_browser_deposit import log_in

    for language, locale, word in (("fr", "fr-FR", "sur un jeton"), ("en", "en-GB", "on a token")):
        with chromium(locale) as context:
            page = context.new_page()
            log_in(page, platform.url + "/connexion/", "acheteur@rouen.fr", language)
            page.goto(platform.url + "/administration/cles-de-chiffrement/")
            row = page.locator("tr", has_text=card)
            assert word.upper() in row.inner_text().upper()  # the tag is in capitals
            assert serious_violations(page) == []
            folder = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
            page.screenshot(path=str(folder / "cles-de-chiffrement-jeton.png"), full_page=True)
