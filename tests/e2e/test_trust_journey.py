"""The workstation's checks against a real platform (DESIGN.md, "Trust"): the
recipient-set fingerprint from launch to receipt, a lost finalisation answer,
hostile archives deposited for real, an envelope re-encrypted by the operator,
and the audit log checked against receipts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from scelle.client import api
from scelle.client.login import load_login
from scelle.core import certs, envelope
from scelle.core.archive import MANIFEST_FORMAT
from scelle.core.errors import PlatformUnavailableError
from tests.conftest import STORE_PASSPHRASE, make_identity
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_opening_journey import _bid, _stored_envelope
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

DEADLINE_AHEAD = dt.timedelta(minutes=10)  # passed by moving the platform's clock
RSF = re.compile(r"RSF [0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}")


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> dict[str, Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    names = ("agent", "btp", "hostile-1", "hostile-2")
    return {n: Workstation(tmp_path / f"home-{n}", capsys) for n in names}


def _crafted_envelope(
    station: Workstation, files: list[tuple[str, bytes]], bidder: str, kind: str = "offre"
) -> bytes:
    """An envelope a hostile company built by hand, sealed to the tender's real recipients."""
    manifest = {
        "format": MANIFEST_FORMAT,
        "tender": "AO-RSF",
        "envelope": kind,
        "bidder": bidder,
        "files": [
            {"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files
        ],
    }
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", zipfile.ZIP_STORED) as zipped:
        zipped.writestr("manifest.json", json.dumps(manifest))
        for name, data in files:
            zipped.writestr(name, data)
    with _client(station) as client:
        recipients = [
            certs.load_certificate(r["certificate_pem"].encode())
            for r in client.tender("AO-RSF")["key_pairs"]
        ]
    sink = io.BytesIO()
    keys = envelope.EnvelopeKeys.for_recipients(recipients)
    envelope.encrypt_stream(io.BytesIO(content.getvalue()), sink, keys)
    return sink.getvalue()


def _client(station: Workstation) -> api.PlatformClient:
    saved = load_login(station.home, now=dt.datetime.now(dt.UTC))
    return api.PlatformClient(saved.url, saved.token)


def _deposit_raw(station: Workstation, offre: bytes, candidature: bytes) -> None:
    """Upload already-sealed envelopes through the API, as any tus client could."""
    with _client(station) as client:
        made: list[tuple[str, str, str | None]] = []
        for kind, data in (("candidature", candidature), ("offre", offre)):
            upload = client.create_upload(tender="AO-RSF", envelope=kind, length=len(data))
            client.send_chunk(upload, 0, data)
            made.append((kind, upload.rsplit("/", 1)[1], hashlib.sha256(data).hexdigest()))
        client.finalise_deposit("AO-RSF", made)


def test_the_recipient_set_from_launch_to_opening(
    platform: Platform,
    stations: dict[str, Workstation],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    pw = str(password_file)
    set_up(
        platform, password_file,
        *(("create-organisation", f"Hostile {n}", "--kind", "bidder") for n in (1, 2)),
        *(("create-user", f"h{n}@hostile.fr", "--organisation", f"Hostile {n}",
           "--password-file", pw) for n in (1, 2)),
    )  # fmt: skip
    agent, btp = stations["agent"], stations["btp"]
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    agent.ok("keys", "generate", "PERSO", "--publish")
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    deadline = dt.datetime.now(dt.UTC) + DEADLINE_AHEAD
    agent.ok("tenders", "create", "--reference", "AO-RSF", "--title", "Voirie",
             "--deadline", deadline.isoformat())  # fmt: skip

    # One code, shown identically by launch, show, notice, the JSON and the deposit.
    launched = agent.ok("tenders", "launch", "AO-RSF", "--key", "PERSO")
    code = RSF.findall(launched)
    assert len(code) == 1 and "cannot vouch" not in launched
    rsf = code[0]
    assert RSF.findall(agent.ok("tenders", "show", "AO-RSF")) == [rsf]
    notice = agent.ok("tenders", "notice", "AO-RSF")
    assert rsf in notice and "PERSO" in notice and "--expect-rsf" in notice
    assert json.loads(agent.ok("tenders", "show", "AO-RSF", "--json"))["rsf"] == rsf

    for name, email in (("btp", "offres@btp.fr"), ("hostile-1", "h1@hostile.fr"),
                        ("hostile-2", "h2@hostile.fr")):  # fmt: skip
        stations[name].ok("login", platform.url, "--email", email, "--password-file", pw)
    bid = _bid(tmp_path / "btp", "BTP")
    args = [f"--envelope={kind}={path}" for kind, path in bid.items()]

    # A wrong code: nothing is sent.
    err = btp.refused("deposit", "AO-RSF", *args, "--expect-rsf", "RSF 0000-0000-0000-0000-0000")
    assert "nothing was sent" in err
    assert platform.query("SELECT count(*) FROM deposits_upload") == [(0,)]

    # The answer to the finalisation is lost: the deposit exists, the command failed.
    real_finalise = api.PlatformClient.finalise_deposit

    def lost(self: api.PlatformClient, *a: object, **k: object) -> api.DepositReceipt:
        real_finalise(self, *a, **k)  # type: ignore[arg-type]
        raise PlatformUnavailableError("cannot reach the platform: the answer was lost")

    monkeypatch.setattr(api.PlatformClient, "finalise_deposit", lost)
    err = btp.refused("deposit", "AO-RSF", *args, "--expect-rsf", rsf)
    assert "answer was lost" in err
    monkeypatch.setattr(api.PlatformClient, "finalise_deposit", real_finalise)
    said = btp.ok("deposit", "AO-RSF", *args, "--expect-rsf", rsf)
    assert "its receipt was fetched again" in said and rsf in said
    receipts = list(tmp_path.glob("receipt-*.json"))
    assert len(receipts) == 1
    verified = json.loads(btp.ok("receipts", "verify", str(receipts[0]), "--json"))
    assert verified["rsf"] == rsf
    shown = json.loads(agent.ok("tenders", "show", "AO-RSF", "--json"))
    fingerprints = sorted(k["fingerprint_sha256"] for k in shown["key_pairs"])
    assert [e["recipients"] for e in verified["envelopes"]] == [fingerprints, fingerprints]
    assert rsf in btp.ok("receipts", "verify", str(receipts[0]))
    assert len(json.loads(btp.ok("deposits", "list", "--json"))) == 1
    # A receipt can be fetched again at will.
    again = tmp_path / "again.json"
    btp.ok("deposits", "receipt", verified["deposit"], "-o", str(again))
    assert again.read_bytes() == receipts[0].read_bytes()

    # Hostile companies deposit archives built by hand, sealed to the right keys.
    candidature = _crafted_envelope(
        stations["hostile-1"], [("DC1.txt", b"DC1")], "Hostile 1", "candidature"
    )
    _deposit_raw(
        stations["hostile-1"],
        _crafted_envelope(stations["hostile-1"], [("a", b"1"), ("a/b", b"2")], "Hostile 1"),
        candidature,
    )
    _deposit_raw(
        stations["hostile-2"],
        _crafted_envelope(stations["hostile-2"], [("x" * 300, b"1")], "Hostile 2"),
        _crafted_envelope(stations["hostile-2"], [("DC1.txt", b"DC1")], "Hostile 2", "candidature"),
    )

    # The operator re-encrypts BTP's offer to its own key too, and fixes the records.
    platform.pass_deadline(deadline)
    intruder = make_identity(tmp_path / "operateur", "OPERATEUR")
    perso = next(
        certs.load_certificate(r["certificate_pem"].encode())
        for r in shown["key_pairs"]
        if r["designation"] == "PERSO"
    )
    stored = _stored_envelope(platform, verified["deposit"], "offre")
    plaintext = io.BytesIO()
    agent_key = _perso_key(stations["agent"])
    envelope.decrypt_stream(io.BytesIO(stored.read_bytes()), plaintext, [agent_key])
    resealed = io.BytesIO()
    keys = envelope.EnvelopeKeys.for_recipients([perso, intruder.certificate])
    envelope.encrypt_stream(io.BytesIO(plaintext.getvalue()), resealed, keys)
    stored.write_bytes(resealed.getvalue())
    platform.execute(
        "UPDATE deposits_envelope SET size = %s, sha256 = %s WHERE storage_name = %s",
        (len(resealed.getvalue()), hashlib.sha256(resealed.getvalue()).hexdigest(), stored.name),
    )

    out = tmp_path / "plis"
    status, _, err = agent.scelle("open", "AO-RSF", "--out", str(out))
    assert status == 1 and "Traceback" not in err
    assert "WARNING BTP Normandie — offre" in err and "outside the tender's set" in err
    assert "OPERATEUR" in err
    assert "FAILED Hostile 1 — offre" in err and "both as a file and as a folder" in err
    assert "FAILED Hostile 2 — offre" in err and "too long" in err
    assert "Summary: 4 opened, 0 already opened, 2 failed, 1 outside the tender's set." in err
    assert (out / "BTP Normandie").is_dir() and (out / "Hostile 1").is_dir()
    assert not list(out.glob("Hostile */*/offre"))

    # The audit log against its checkpoints and the company's receipt.
    kept = tmp_path / "receipts"
    kept.mkdir()
    (kept / receipts[0].name).write_bytes(receipts[0].read_bytes())
    checked = platform.admin("audit-verify", "--receipts", str(kept))
    assert "1 receipts; all agree" in checked.stderr
    head = json.loads(receipts[0].read_text())["receipt"]["audit_head"]["sequence"]
    # An operator cuts the log short and removes every checkpoint: the receipt disagrees.
    # The server is stopped first: running, it would sign a new checkpoint of the cut log
    # within a minute (its housekeeping), and that one would be found instead.
    platform.kill()
    platform.execute("DELETE FROM audit_checkpoint")
    platform.execute("DELETE FROM audit_event WHERE id >= %s", (head,))
    broken = platform.admin("audit-verify", "--receipts", str(kept), check=False)
    assert broken.returncode == 1
    assert f"the receipt {receipts[0].name} anchors event #{head}" in broken.stderr
    assert "cut short" in broken.stderr


def _perso_key(station: Workstation) -> envelope.DecryptionKey:
    from scelle.keystore import KeyStore

    store = KeyStore(station.home, lambda _new: STORE_PASSPHRASE)
    return store.decryption_keys(["PERSO"])[0]
