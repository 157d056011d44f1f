"""The assistant's window with a smart card, in Debian's Chromium: the card is locked, the
agent types its PIN in the *Magasin de certificats*, and the card's key pairs show beside the
store's (screenshots assistant-jeton.png, in French and English)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scelle.assistant.config import AssistantConfig, use_token
from scelle.assistant.remote import Assistant
from scelle.assistant.window import Window
from scelle.client import api
from scelle.core import certs
from scelle.keystore import KeyStore
from scelle.keystore.token import Token, TokenURI
from tests.assistant.hostile import HostilePlatform, hostile_platform
from tests.conftest import NOW, STORE_PASSPHRASE, Identity, SoftHSM
from tests.e2e.browser import SCREENSHOTS, chromium, serious_violations

pytestmark = [pytest.mark.slow]


@pytest.fixture
def fake() -> Iterator[HostilePlatform]:
    with hostile_platform() as platform:
        platform.set_json("GET", "/api/assistant/jobs", [])
        yield platform


def _window(home: Path, fake: HostilePlatform, softhsm: SoftHSM, alice: Identity) -> Window:
    store = KeyStore(home, lambda _new: STORE_PASSPHRASE)
    store.add("BICLE-MAGASIN", alice.key, alice.certificate, origin="imported", now=NOW)
    config = AssistantConfig("POSTE-ACHAT-12", home / "plis", token=softhsm.uri)
    use_token(store, config)
    helper = Assistant(api.PlatformClient(fake.url, "scl_test"), store, config, clock=lambda: NOW)
    return Window(helper, home)


def test_the_agent_unlocks_the_card_in_the_window_and_sees_its_key_pairs(
    tmp_path: Path,
    fake: HostilePlatform,
    softhsm: SoftHSM,
    alice: Identity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCELLE_PKCS11_MODULE", softhsm.module)
    monkeypatch.delenv("SCELLE_TOKEN_PIN", raising=False)
    maker = Token(softhsm.module, TokenURI.parse(softhsm.uri), lambda _label: softhsm.pin)
    name = f"BICLE-CARTE-{uuid.uuid4().hex[:4].upper()}"
    made = maker.generate(name, "Agent carte", bits=2048, days=730, now=NOW)
    maker.close()
    try:
        for language, locale, words in (
            ("fr", "fr-FR", ("Déverrouiller", "jeton Carte agent", "déverrouillé")),
            ("en", "en-GB", ("Unlock", "token Carte agent", "unlocked")),
        ):
            window = _window(tmp_path / language, fake, softhsm, alice)
            window.start()
            try:
                _unlock(window, locale, language, words, made.fingerprint_sha256)
            finally:
                window.close()
                if window.helper.store.token is not None:
                    window.helper.store.token.close()
    finally:
        maker.delete(made)
        maker.close()
    assert certs.common_name(made.certificate.subject) == "Agent carte"


def _unlock(
    window: Window, locale: str, language: str, words: tuple[str, ...], fingerprint: str
) -> None:
    unlock, where, unlocked = words
    with chromium(locale) as context:
        page: Any = context.new_page()
        page.goto(window.url)
        page.get_by_role("link", name="Magasin de certificats" if language == "fr"
                         else "Certificate store").click()  # fmt: skip
        assert page.get_by_role("button", name=unlock).is_visible()
        # A wrong PIN is said, and the card stays locked.
        page.get_by_label("Code PIN du jeton" if language == "fr" else "PIN of the token").fill(
            "000000"
        )
        page.get_by_role("button", name=unlock).click()
        assert page.get_by_role("alert").is_visible()
        page.get_by_label("Code PIN du jeton" if language == "fr" else "PIN of the token").fill(
            "123456"
        )
        page.get_by_role("button", name=unlock).click()
        status = page.get_by_role("status").inner_text()
        assert unlocked in status, status
        row = page.locator("tr", has_text=fingerprint[:20])
        assert where in row.inner_text()
        assert "BICLE-MAGASIN" in page.content()
        assert serious_violations(page) == []
        folder = SCREENSHOTS if language == "fr" else SCREENSHOTS / "en"
        page.screenshot(path=str(folder / "assistant-jeton.png"), full_page=True)
