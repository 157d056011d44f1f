"""Deposits on a real server: companies seal on their machine, the platform never sees
the plaintext, interrupted uploads resume, a killed server loses nothing acknowledged."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import STORE_PASSPHRASE
from tests.e2e.conftest import BOTH_DATABASES, Platform
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

MARKER = b"MARQUEUR-CONFIDENTIEL-OFFRE-7f3a9c"


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> dict[str, Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    return {n: Workstation(tmp_path / f"home-{n}", capsys) for n in ("agent", "btp", "rival")}


def launched(platform: Platform, stations: dict[str, Workstation], password_file: Path) -> str:
    """A published tender with a personal and a backup key pair; companies logged in."""
    set_up(
        platform, password_file,
        ("create-organisation", "Rival SAS", "--kind", "bidder"),
        ("create-user", "offres@rival.fr", "--organisation", "Rival SAS",
         "--password-file", str(password_file)),
    )  # fmt: skip
    pw = str(password_file)
    agent = stations["agent"]
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    agent.ok("keys", "generate", "PERSO", "--publish")
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
    agent.ok(
        "tenders", "create", "--reference", "AO-DEPOT", "--title", "Voirie", "--deadline", deadline
    )
    agent.ok("tenders", "launch", "AO-DEPOT", "--key", "PERSO")
    for name, email in (("btp", "offres@btp.fr"), ("rival", "offres@rival.fr")):
        stations[name].ok("login", platform.url, "--email", email, "--password-file", pw)
    return "AO-DEPOT"


def bid(folder: Path, size: int = 300_000) -> tuple[Path, Path]:
    offre = folder / "offre"
    (offre / "annexes").mkdir(parents=True)
    (offre / "memoire.txt").write_bytes(MARKER + b"\n" + os.urandom(size))
    (offre / "annexes" / "prix.csv").write_bytes(b"poste;prix\n" + MARKER)
    candidature = folder / "DC1.pdf"
    candidature.write_bytes(b"%PDF " + MARKER)
    return candidature, offre


@BOTH_DATABASES
def test_deposits_and_what_the_platform_holds(
    platform: Platform, stations: dict[str, Workstation], password_file: Path, tmp_path: Path
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = bid(tmp_path / "bid")
    btp, rival = stations["btp"], stations["rival"]
    receipts = []
    for station, name in ((btp, "first"), (btp, "second"), (rival, "rival")):
        out = station.ok(
            "deposit", reference, "--envelope", f"candidature={candidature}",
            "--envelope", f"offre={offre}", "--receipt", str(tmp_path / f"receipt-{name}.json"),
        )  # fmt: skip
        assert "Deposited to AO-DEPOT" in out
        receipts.append(tmp_path / f"receipt-{name}.json")
    for receipt in receipts:
        checked = json.loads(btp.ok("receipts", "verify", str(receipt), "--json"))
        assert checked["authority_checked_against_login"] is True
        assert checked["late"] is False
    mine = json.loads(btp.ok("deposits", "list", "--json"))
    assert len(mine) == 2 and {d["bidder"] for d in mine} == {"BTP Normandie"}
    seen = json.loads(stations["agent"].ok("tenders", "deposits", reference, "--json"))
    assert sorted(d["bidder"] for d in seen) == ["BTP Normandie", "BTP Normandie", "Rival SAS"]
    # A company cannot list the tender's deposits; an agent makes none.
    assert "buyer's agents" in btp.refused("tenders", "deposits", reference)
    err = stations["agent"].refused(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}",
    )  # fmt: skip
    assert "only companies deposit" in err
    # A tampered receipt does not verify.
    document = json.loads(receipts[0].read_text())
    document["receipt"]["late"] = True
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert "does not verify" in btp.refused("receipts", "verify", str(forged))
    # Rule 8: the platform's files and database hold none of the plaintext.
    for path in platform.data.rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_bytes(), path
    assert MARKER not in platform.dump()
    stored = list((platform.data / "envelopes").glob("*.p7m"))
    assert len(stored) == 6 and all(p.stat().st_mode & 0o777 == 0o600 for p in stored)


def _deposit_process(
    station: Workstation, reference: str, candidature: Path, offre: Path, receipt: Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SCELLE_HOME": str(station.home)}
    return subprocess.Popen(
        [
            sys.executable, "-m", "scelle.cli", "deposit", reference,
            "--envelope", f"candidature={candidature}", "--envelope", f"offre={offre}",
            "--receipt", str(receipt),
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait_for_upload(platform: Platform, at_least: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size for p in (platform.data / "envelopes").glob("*.p7m")]
        if sizes and max(sizes) >= at_least:
            return
        if process.poll() is not None:
            raise AssertionError(f"the deposit ended first: {process.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.01)
    raise AssertionError("the upload did not start")


def _big_bid(folder: Path) -> tuple[Path, Path]:
    candidature, offre = bid(folder, size=1000)
    with (offre / "maquette.bin").open("wb") as handle:
        handle.truncate(400 << 20)  # sparse: 400 MiB to upload, no disk taken
    return candidature, offre


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_an_interrupted_client_resumes(
    platform: Platform,
    stations: dict[str, Workstation],
    password_file: Path,
    tmp_path: Path,
    stop: signal.Signals,
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = _big_bid(tmp_path / "bid")
    receipt = tmp_path / "receipt.json"
    first = _deposit_process(stations["btp"], reference, candidature, offre, receipt)
    _wait_for_upload(platform, 48 << 20, first)
    first.send_signal(stop)
    _out, err = first.communicate(timeout=60)
    if stop == signal.SIGINT:  # Ctrl-C: the command says how to go on
        assert first.returncode == 130
        assert b"run the same command again to resume" in err
    out = stations["btp"].ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    assert "Resuming the interrupted deposit" in out and "Deposited" in out
    created = platform.query(
        "SELECT count(*) FROM audit_event WHERE action = 'deposits.upload.created'"
    )
    assert created == [(2,)]  # the same two uploads, resumed: none started again
    assert json.loads(stations["btp"].ok("receipts", "verify", str(receipt), "--json"))


@BOTH_DATABASES
def test_a_server_killed_mid_upload_loses_nothing(
    platform: Platform, stations: dict[str, Workstation], password_file: Path, tmp_path: Path
) -> None:
    reference = launched(platform, stations, password_file)
    candidature, offre = _big_bid(tmp_path / "bid")
    receipt = tmp_path / "receipt.json"
    client = _deposit_process(stations["btp"], reference, candidature, offre, receipt)
    _wait_for_upload(platform, 48 << 20, client)
    platform.kill()
    _, err = client.communicate(timeout=60)
    assert client.returncode == 1 and b"cannot reach the platform" in err
    platform.restart()
    assert json.loads(stations["btp"].ok("deposits", "list", "--json")) == []
    stations["btp"].ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    verified = json.loads(stations["btp"].ok("receipts", "verify", str(receipt), "--json"))
    listed = json.loads(stations["btp"].ok("deposits", "list", "--json"))
    assert [d["id"] for d in listed] == [verified["deposit"]]
    stored = [{k: v for k, v in e.items() if k != "upload"} for e in listed[0]["envelopes"]]
    assert stored == verified["envelopes"]
