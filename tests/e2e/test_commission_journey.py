"""A commission of three opens together, on a real server, through the command: no member
opens alone, two do; the backup key pair still opens alone; the platform's files never
hold a share in clear (DESIGN.md, "Commission")."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path

import pytest
from asn1crypto import cms

from scelle.core import commission
from scelle.keystore import KeyStore
from tests.conftest import PFX_PASSWORD, STORE_PASSPHRASE
from tests.e2e.conftest import Platform
from tests.e2e.test_opening_journey import _bid, _files, _stored_envelope
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

MEMBERS = ("acheteur@rouen.fr", "membre2@rouen.fr", "membre3@rouen.fr")


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> dict[str, Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    names = ("m1", "m2", "m3", "backup", "btp")
    return {n: Workstation(tmp_path / f"home-{n}", capsys) for n in names}


def set_up_members(platform: Platform, password_file: Path) -> None:
    """The seed guide's buyer, with two more agents of its service who may add key pairs and
    open: with its first agent, the members of a commission."""
    pw = str(password_file)
    set_up(
        platform, password_file,
        *(("create-user", email, "--organisation", "Ville de Rouen", "--password-file", pw,
           "--service", "Service des marchés", "--permission", "manage_keys",
           "--permission", "open") for email in MEMBERS[1:]),
    )  # fmt: skip


def test_two_members_of_three_open_together(
    platform: Platform, stations: dict[str, Workstation], password_file: Path, tmp_path: Path,
    monkeypatch,
) -> None:  # fmt: skip
    pw = str(password_file)
    set_up_members(platform, password_file)
    m1, m2, m3, backup, btp = (stations[n] for n in ("m1", "m2", "m3", "backup", "btp"))
    for n, (station, email) in enumerate(zip((m1, m2, m3), MEMBERS, strict=True), 1):
        station.ok("login", platform.url, "--email", email, "--password-file", pw)
        station.ok("keys", "generate", f"MEMBRE-{n}", "--publish")
    # The backup key pair lives in a safe: on a workstation of its own.
    pfx_password = tmp_path / "pfx.txt"
    pfx_password.write_text(PFX_PASSWORD, encoding="utf-8")
    m1.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    m1.ok("keys", "export", "SECOURS", "-o", str(tmp_path / "secours.pfx"),
          "--password-file", str(pfx_password))  # fmt: skip
    m1.ok("keys", "delete", "SECOURS", "--yes")
    backup.ok("keys", "import", str(tmp_path / "secours.pfx"), "--password-file", str(pfx_password))
    backup.ok("login", platform.url, "--email", MEMBERS[0], "--password-file", pw)

    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    m1.ok("tenders", "create", "--reference", "AO-COM", "--title", "Commission",
          "--deadline", deadline.isoformat())  # fmt: skip
    launched = m1.ok("tenders", "launch", "AO-COM", "--key", "MEMBRE-1", "--key", "MEMBRE-2",
                     "--key", "MEMBRE-3", "--commission", "2")  # fmt: skip
    assert "2 of its 3 members must take part" in launched
    assert "commission member, membre2@rouen.fr" in launched
    rsf = next(line for line in launched.splitlines() if "Recipient-set fingerprint" in line)
    rsf = rsf.split(": ", 1)[1].strip()
    notice = m1.ok("tenders", "notice", "AO-COM")
    assert "2 of its 3 members must take part" in notice and rsf in notice
    monkeypatch.setenv("SCELLE_LANG", "fr")
    assert "2 de ses 3 membres doivent y prendre part" in m1.ok("tenders", "notice", "AO-COM")
    monkeypatch.setenv("SCELLE_LANG", "en")

    btp.ok("login", platform.url, "--email", "offres@btp.fr", "--password-file", pw)
    bid = _bid(tmp_path / "btp", "BTP")
    receipt = tmp_path / "receipt-btp.json"
    btp.ok("deposit", "AO-COM", *[f"--envelope={k}={p}" for k, p in bid.items()],
           "--expect-rsf", rsf, "--receipt", str(receipt))  # fmt: skip
    verified = btp.ok("receipts", "verify", str(receipt))
    assert "2 members must take part to open" in verified
    body = json.loads(btp.ok("receipts", "verify", str(receipt), "--json"))
    assert body["commission"]["threshold"] == 2 and len(body["commission"]["members"]) == 3

    assert "has not passed" in m2.refused("take-part", "AO-COM")
    platform.pass_deadline(deadline)
    assert "has not been started" in m2.refused("take-part", "AO-COM")

    # The opener alone: one share of the two needed, nothing opens.
    out = tmp_path / "ouverture"
    failed = m1.refused("open", "AO-COM", "--out", str(out), "--wait", "0")
    assert "1 share(s) of the 2 needed" in failed
    assert not list(out.glob("*/*/offre"))
    # Another member cannot become the opener now, nor open alone.
    assert "was started by MEMBRE-1" in m2.refused("open", "AO-COM", "--out", str(tmp_path / "m2"))

    said = m3.ok("take-part", "AO-COM")
    assert "2 share(s) sent to the opener MEMBRE-1 (0 sent before)" in said
    assert "0 share(s) sent to the opener MEMBRE-1 (2 sent before)" in m3.ok("take-part", "AO-COM")
    opened = m1.ok("open", "AO-COM", "--out", str(out), "--wait", "1")
    assert opened.count("Opened") == 2
    deposit_folder = next((out / "BTP Normandie").iterdir())
    for kind, source in bid.items():
        assert _files(deposit_folder / kind) == _files(source)

    # The backup key pair opens alone: the way in if members are lost.
    assert backup.ok("open", "AO-COM", "--out", str(tmp_path / "secours")).count("Opened") == 2

    state = json.loads(m1.ok("tenders", "show", "AO-COM", "--json"))
    assert state["commission"] == {"threshold": 2}
    events = [row[0] for row in platform.query(
        "SELECT action FROM audit_event WHERE action LIKE 'opening.commission.%' ORDER BY id"
    )]  # fmt: skip
    assert events == [
        "opening.commission.started",
        "opening.commission.joined",
        "opening.commission.headers_read",  # the recipients of every envelope, at once
        "opening.commission.relayed",
        "opening.commission.headers_read",  # taking part again: nothing new relayed
    ]
    assert "chain intact" in platform.admin("audit-verify").stderr
    _no_share_in_clear(platform, m1, m3, deposit_folder.name)


def _no_share_in_clear(platform: Platform, opener: Workstation, member: Workstation, deposit: str):
    """The shares and content key of an envelope, computed here from the members' own
    stores, appear nowhere in the platform's database or files."""
    stored = _stored_envelope(platform, deposit, "offre").read_bytes()
    infos = cms.ContentInfo.load(stored)["content"]["recipient_infos"].dump()
    sealed = commission.read(infos)
    assert sealed is not None
    tender = json.loads(opener.ok("tenders", "show", "AO-COM", "--json"))
    from scelle.assistant.tenders import tender_commission

    found = tender_commission(tender)
    assert found is not None
    shares = []
    for station in (opener, member):
        store = KeyStore(station.home, lambda _new: STORE_PASSPHRASE)
        keys = [k for k in store.decryption_keys(None) if k.certificate in found.members]
        shares.append(commission.decrypt_share(sealed, keys[0], found, now=sealed.not_before))
    content_key = commission.combine(shares, sealed)
    secrets = [*shares, content_key]
    for path in itertools.chain([platform.data], platform.data.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret in data for secret in secrets), path
    dump = platform.dump()
    assert not any(secret in dump for secret in secrets)
    assert not any(secret.hex() in dump.decode("latin-1") for secret in secrets)
