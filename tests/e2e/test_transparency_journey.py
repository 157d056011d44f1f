"""The transparency log on a real server: receipts come with their proof, the command
checks it offline and online, and anyone reads the log under /log/ as C2SP says."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from scelle.core import merkle, note, tlog
from scelle.core.receipt import Receipt, VerifiedCommitment, body_sha256
from tests.conftest import STORE_PASSPHRASE
from tests.e2e.conftest import Platform
from tests.e2e.test_deposit_journey import bid, launched, stations  # noqa: F401 - fixture
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]


def _entries(url: str, size: int) -> list[bytes]:
    """Every entry of the log, from its entry bundles, checked against its tiles."""
    found: list[bytes] = []
    for index in range((size + 255) // 256):
        width = tlog.tile_width(0, index, size)
        bundle = httpx.get(f"{url}/log/{tlog.tile_path('entries', index, width)}")
        assert bundle.status_code == 200
        assert "immutable" in bundle.headers["cache-control"]
        found += tlog.read_entry_bundle(bundle.content, width)
    return found


def test_receipts_are_proven_in_a_public_log_that_anyone_reads(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811 - the fixture
    password_file: Path,
    tmp_path: Path,
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = bid(tmp_path / "bid")
    btp, rival = stations["btp"], stations["rival"]
    receipts = []
    for station, name in ((btp, "first"), (rival, "rival"), (btp, "second")):
        receipt = tmp_path / f"receipt-{name}.json"
        station.ok(
            "deposit", reference, "--envelope", f"candidature={candidature}",
            "--envelope", f"offre={offre}", "--receipt", str(receipt),
        )  # fmt: skip
        receipts.append(receipt)
    first = json.loads(receipts[0].read_text())
    key = note.Verifier.parse(first["receipt"]["log"])
    assert key.name == "127.0.0.1/log"
    assert first["transparency"].startswith("c2sp.org/tlog-proof@v1\n")

    # Offline: the proof checks; a proof of another receipt does not.
    out = btp.ok("receipts", "verify", str(receipts[0]))
    assert "entry " in out and "of 127.0.0.1/log" in out
    swapped = dict(first, transparency=json.loads(receipts[1].read_text())["transparency"])
    (tmp_path / "swapped.json").write_text(json.dumps(swapped))
    assert "does not show this entry" in btp.refused(
        "receipts", "verify", str(tmp_path / "swapped.json")
    )

    # Online: the log now extends the receipt's tree; the workstation remembers it.
    out = btp.ok("receipts", "verify", "--online", str(receipts[0]))
    assert "checked online: the log now holds" in out
    checked = json.loads(btp.ok("receipts", "verify", "--online", "--json", str(receipts[0])))
    size = checked["transparency_now"]["size"]
    assert size > checked["transparency"]["index"]
    assert list((btp.home / "transparency").glob("*.json"))

    # Anyone reads the log: its checkpoint, its tiles, its entries; nothing names a company.
    answer = httpx.get(f"{platform.url}/log/checkpoint")
    assert answer.headers["content-type"].startswith("text/plain")
    current = tlog.open_checkpoint(answer.content, key)
    entries = _entries(platform.url, current.size)
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root(leaves) == current.checkpoint.root
    logged = [json.loads(e) for e in entries]
    kinds = {e["type"] for e in logged}
    assert {"launch", "deposit", "audit-checkpoint"} <= kinds
    launch = next(e for e in logged if e["type"] == "launch" and e["tender"] == reference)
    assert launch["rsf"] and launch["deadline"]
    for receipt in receipts:
        body = json.loads(receipt.read_text())["receipt"]
        assert {"type": "deposit", "receipt": body_sha256(body)} in logged
    text = b"".join(entries)
    assert b"BTP" not in text and b"Rival" not in text
    for bad in ("tile/0/000.p/0", "tile/0/../../etc", "tile/99/000", "tile/0/x000/001"):
        assert httpx.get(f"{platform.url}/log/{bad}").status_code == 404
    assert httpx.get(f"{platform.url}/log/tile/0/x999/999").status_code == 404


def test_witnesses_cosign_the_platform_s_log_and_companies_require_them(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811 - the fixture
    password_file: Path,
    tmp_path: Path,
) -> None:
    witnesses = {
        name: Workstation(tmp_path / f"home-{name}", stations["btp"].capsys)
        for name in ("prefecture", "federation")
    }
    keys = {
        name: station.ok("witness", "key", "--name", f"{name}.example/w").strip().splitlines()[-1]
        for name, station in witnesses.items()
    }
    platform.env["SCELLE_LOG_WITNESSES"] = ",".join(keys.values())
    platform.kill()
    platform.restart()
    reference = launched(platform, stations, password_file)
    candidature, offre = bid(tmp_path / "bid")
    receipt = tmp_path / "receipt.json"
    stations["btp"].ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    log_key = httpx.get(f"{platform.url}/log/key").text.strip()
    assert log_key == json.loads(receipt.read_text())["receipt"]["log"]
    for station in witnesses.values():
        out = station.ok("witness", "run", platform.url, "--log-key", log_key, "--once")
        assert "Cosigned the log 127.0.0.1/log at" in out
        # The second look: nothing new to cosign, and the key was kept.
        assert "has not grown since" in station.ok("witness", "run", platform.url, "--once")
    published = httpx.get(f"{platform.url}/log/checkpoint").text
    cosigned = note.parse(published)
    for vkey in keys.values():
        assert cosigned.signed_by(note.Verifier.parse(vkey))
    witnessed = httpx.get(f"{platform.url}/log/witnessed").json()["witnessed"]
    assert sorted(witnessed) == ["federation.example/w", "prefecture.example/w"]
    required = [arg for vkey in keys.values() for arg in ("--witness", vkey)]
    out = stations["btp"].ok("receipts", "verify", *required, str(receipt))
    assert "cosigned by prefecture.example/w" in out and "cosigned by federation.example/w" in out
    # A cosignature from someone the platform does not list is refused.
    stranger = Workstation(tmp_path / "home-stranger", stations["btp"].capsys)
    stranger.ok("witness", "key", "--name", "stranger.example/w")
    err = stranger.refused("witness", "run", platform.url, "--log-key", log_key, "--once")
    assert "no cosignature of a witness of this log" in err
    assert httpx.post(f"{platform.url}/log/cosignature", content=b"\xff" * 10).status_code == 400


def test_a_company_withdraws_a_deposit_before_the_deadline_and_the_opening_skips_it(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811 - the fixture
    password_file: Path,
    tmp_path: Path,
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = bid(tmp_path / "bid")
    btp, rival, agent = stations["btp"], stations["rival"], stations["agent"]
    ids = {}
    for station, name in ((btp, "first"), (btp, "second"), (rival, "rival")):
        receipt = tmp_path / f"receipt-{name}.json"
        station.ok(
            "deposit", reference, "--envelope", f"candidature={candidature}",
            "--envelope", f"offre={offre}", "--receipt", str(receipt),
        )  # fmt: skip
        ids[name] = json.loads(receipt.read_text())["receipt"]["deposit"]
    target = tmp_path / "retrait.json"
    out = btp.ok("deposits", "withdraw", ids["second"], "--yes", "-o", str(target))
    assert f"Deposit {ids['second']} to {reference} is withdrawn" in out
    out = btp.ok("receipts", "verify", str(target))
    assert "The withdrawal receipt is valid" in out and "Transparency log" in out
    assert "already withdrawn" in btp.refused("deposits", "withdraw", ids["second"], "--yes",
                                              "-o", str(tmp_path / "again.json"))  # fmt: skip
    assert "no such deposit" in btp.refused("deposits", "withdraw", ids["rival"], "--yes")
    rival.ok("deposits", "withdraw", ids["rival"], "--yes", "-o", str(tmp_path / "r.json"))
    listed = json.loads(btp.ok("deposits", "list", "--json"))
    assert {d["id"]: d["withdrawn_at"] is not None for d in listed} == {
        ids["first"]: False, ids["second"]: True
    }  # fmt: skip

    # The log holds each withdrawal, naming the deposit by its receipt's hash only.
    size = tlog.Checkpoint.from_text(
        note.parse(httpx.get(f"{platform.url}/log/checkpoint").content).text
    ).size
    logged = [json.loads(e) for e in _entries(platform.url, size)]
    second = json.loads((tmp_path / "receipt-second.json").read_text())["receipt"]
    withdrawals = [e for e in logged if e["type"] == "withdrawal"]
    assert len(withdrawals) == 2 and body_sha256(second) in {e["deposit"] for e in withdrawals}

    # After the deadline: no withdrawal; the opening skips what was withdrawn, and says so.
    launch = next(e for e in logged if e["type"] == "launch" and e["tender"] == reference)
    platform.pass_deadline(dt.datetime.fromisoformat(launch["deadline"]))
    err = btp.refused("deposits", "withdraw", ids["first"], "--yes", "-o", str(tmp_path / "x"))
    assert "no longer be withdrawn" in err
    out = agent.ok("open", reference, "--key", "PERSO", "--out", str(tmp_path / "plis"))
    assert "Withdrawn by BTP Normandie" in out and "Withdrawn by Rival SAS" in out
    opened = {p.name for p in (tmp_path / "plis").glob("*/*") if p.is_dir()}
    assert opened == {ids["first"]}


def _deposit_with_commitment(
    platform: Platform,
    station: Workstation,
    reference: str,
    sources: list[tuple[str, Path]],
    *,
    late_by: dt.datetime | None = None,
    commit: bool = True,
) -> tuple[Receipt, list[Path]]:
    """A deposit through the command's own code; with `late_by`, the clock moves past that
    deadline once the commitment is made, before the upload starts."""
    from scelle.assistant.deposit import deposit, pinned_authority
    from scelle.client.api import PlatformClient
    from scelle.client.login import load_login
    from scelle.keystore import KeyStore

    saved = load_login(station.home, now=dt.datetime.now(dt.UTC))
    store = KeyStore(station.home, lambda _new: STORE_PASSPHRASE)
    kept: list[Path] = []

    def keep(verified: VerifiedCommitment, document: bytes) -> None:
        path = station.home / f"commitment-{verified.commitment.commitment}.json"
        path.write_bytes(document)
        kept.append(path)

    def progress(label: str, _total: int) -> None:
        if label == "Sealing and sending" and late_by is not None:
            platform.pass_deadline(late_by, by=120)

    with PlatformClient(saved.url, saved.token) as client:
        authority = pinned_authority(saved.authority_pem, client.platform_ca()["certificate_pem"])
        done = deposit(
            client, store, reference, sources, authority=authority,
            now=dt.datetime.now(dt.UTC), progress=progress, committed=keep if commit else None,
        )  # fmt: skip
    return done.receipt, kept


def test_commitments_before_the_deadline_and_a_tender_s_grace_window(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811 - the fixture
    password_file: Path,
    tmp_path: Path,
) -> None:
    set_up(
        platform, password_file,
        ("create-organisation", "Rival SAS", "--kind", "bidder"),
        ("create-user", "offres@rival.fr", "--organisation", "Rival SAS",
         "--password-file", str(password_file)),
    )  # fmt: skip
    pw = str(password_file)
    agent, btp, rival = stations["agent"], stations["btp"], stations["rival"]
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    agent.ok("keys", "generate", "PERSO", "--publish")
    deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    agent.ok("tenders", "create", "--reference", "AO-GRACE", "--title", "Voirie",
             "--deadline", deadline.isoformat(), "--grace-minutes", "60")  # fmt: skip
    agent.ok("tenders", "launch", "AO-GRACE", "--key", "PERSO")
    for station, email in ((btp, "offres@btp.fr"), (rival, "offres@rival.fr")):
        station.ok("login", platform.url, "--email", email, "--password-file", pw)
    candidature, offre = bid(tmp_path / "bid")
    sources = [("candidature", candidature), ("offre", offre)]

    # On time with --commit: the commitment receipt is kept first; the receipt names it.
    out = btp.ok("deposit", "AO-GRACE", "--envelope", f"candidature={candidature}",
                 "--envelope", f"offre={offre}", "--commit",
                 "--receipt", str(tmp_path / "on-time.json"))  # fmt: skip
    assert "Commitment registered on" in out
    commitment_file = next(Path().glob("commitment-*.json"), None) or next(
        tmp_path.glob("commitment-*.json")
    )
    checked = json.loads(btp.ok("receipts", "verify", "--json", str(commitment_file)))
    on_time = json.loads((tmp_path / "on-time.json").read_text())["receipt"]
    assert on_time["commitment"] == checked["sha256"] and checked["transparency"]["size"] > 0

    # Another company commits to one thing and sends another, after the deadline: late.
    rival_offre = tmp_path / "rival"
    rival_offre.mkdir()
    (rival_offre / "offre.txt").write_bytes(b"offre de Rival")
    receipt, kept = _deposit_with_commitment(
        platform, rival, "AO-GRACE", [("candidature", candidature), ("offre", rival_offre)]
    )  # committed and on time: its commitment matches
    assert receipt.commitment and not receipt.late
    # Committed before the deadline, completed after it, within the grace window: on time.
    (offre / "memoire.txt").write_bytes(b"nouvelle version " + b"x" * 200_000)
    receipt, kept = _deposit_with_commitment(platform, btp, "AO-GRACE", sources, late_by=deadline)
    assert kept and receipt.grace and not receipt.late and receipt.commitment
    # The other company sends something else after the deadline: late, and said to differ.
    (rival_offre / "offre.txt").write_bytes(b"offre de Rival, modifiee")
    receipt, kept = _deposit_with_commitment(
        platform, rival, "AO-GRACE", [("candidature", candidature), ("offre", rival_offre)],
        commit=False,
    )  # fmt: skip
    assert receipt.late and receipt.commitment is None and not receipt.grace
    # No commitment after the deadline.
    err = rival.refused("deposit", "AO-GRACE", "--envelope", f"candidature={candidature}",
                        "--envelope", f"offre={rival_offre}", "--commit")  # fmt: skip
    assert "a commitment must come before it" in err

    # The buyer sees, for each deposit, whether it matches a commitment.
    listed = json.loads(agent.ok("tenders", "deposits", "AO-GRACE", "--json"))
    states = sorted((d["bidder"], d["late"], d["by_grace"], d["commitment"]) for d in listed)
    assert states == [
        ("BTP Normandie", False, False, "matched"),
        ("BTP Normandie", False, True, "matched"),
        ("Rival SAS", False, False, "matched"),
        ("Rival SAS", True, False, "differs"),
    ]
    table = agent.ok("tenders", "deposits", "AO-GRACE")
    assert "matches its commitment" in table and "differs from its commitments" in table
    assert "on time (grace window)" in table
    # Past the grace window, nothing more is taken.
    platform.pass_deadline(deadline + dt.timedelta(minutes=61))
    err = btp.refused("deposit", "AO-GRACE", "--envelope", f"candidature={candidature}",
                      "--envelope", f"offre={offre}")  # fmt: skip
    assert "deposits are closed" in err


def _stored(platform: Platform, sha256: str) -> Path:
    """The platform's stored envelope of that SHA-256, as an expert would take it."""
    for path in (platform.data / "envelopes").glob("*.p7m"):
        if hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            return path
    raise AssertionError(f"no stored envelope has the SHA-256 {sha256}")


def test_a_proof_kit_shows_a_judge_what_the_stored_envelope_held(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811 - the fixture
    password_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = bid(tmp_path / "bid")
    btp = stations["btp"]
    kit_password = tmp_path / "kit.pw"
    kit_password.write_text("Preuve-pour-le-juge 2026\n")
    kit, receipt = tmp_path / "dossier-de-preuve.json", tmp_path / "receipt.json"
    out = btp.ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
        "--proof-kit", str(kit), "--password-file", str(kit_password),
    )  # fmt: skip
    assert "Proof kit:" in out and kit.stat().st_mode & 0o777 == 0o600
    said = {e["kind"]: e for e in json.loads(receipt.read_text())["receipt"]["envelopes"]}
    stored = _stored(platform, said["offre"]["sha256"])

    # A judge's workstation: never logged in, no key at all; the kit and its password.
    judge = Workstation(home=tmp_path / "judge", capsys=capsys)
    out = judge.ok("proof", "verify", str(kit), str(stored), "--password-file", str(kit_password),
                   "--extract", str(tmp_path / "extrait"))  # fmt: skip
    assert "is that envelope: its SHA-256 is the one the receipt gives" in out
    assert "memoire.txt" in out and "annexes/prix.csv" in out
    assert (tmp_path / "extrait" / "memoire.txt").read_bytes() == (
        offre / "memoire.txt"
    ).read_bytes()
    listed = json.loads(judge.ok("proof", "verify", str(kit), str(stored), "--json",
                                 "--password-file", str(kit_password)))  # fmt: skip
    assert listed["envelope"]["sha256"] == said["offre"]["sha256"]
    assert {f["name"] for f in listed["files"]} == {"memoire.txt", "annexes/prix.csv"}

    wrong = tmp_path / "wrong.pw"
    wrong.write_text("Pas-le-bon-mot-de-passe 2026\n")
    err = judge.refused("proof", "verify", str(kit), str(stored), "--password-file", str(wrong))
    assert "wrong proof kit password" in err
    other = _stored(platform, said["candidature"]["sha256"])
    tampered = tmp_path / "tampered.p7m"
    tampered.write_bytes(other.read_bytes()[:-40] + bytes(40))
    err = judge.refused("proof", "verify", str(kit), str(tampered), "--password-file",
                        str(kit_password), "--extract", str(tmp_path / "rien"))  # fmt: skip
    assert "cannot be opened" in err and not (tmp_path / "rien").exists()
    weak = tmp_path / "weak.pw"
    weak.write_text("court\n")
    err = btp.refused(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--proof-kit", str(tmp_path / "k2.json"),
        "--password-file", str(weak),
    )  # fmt: skip
    assert "password" in err and not (tmp_path / "k2.json").exists()
