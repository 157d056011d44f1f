"""The whole seed-guide journey on a real server: deposits before the deadline, opening after
it on the buyer's workstation, with the personal key and with the backup key.

The server runs on real time: the tender's deadline is set a few seconds ahead
and the test waits for it (the clock-moved tests live in tests/platform/).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path

import pytest

from tests.conftest import PFX_PASSWORD, STORE_PASSPHRASE
from tests.e2e.conftest import PASSWORD, Platform
from tests.e2e.test_deposit_journey import _big_bid, _deposit_process, _wait_for_upload
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform]

DEADLINE_AHEAD = dt.timedelta(minutes=10)  # passed by moving the platform's clock


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> dict[str, Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    names = ("agent", "backup", "btp", "rival", "tardif")
    return {n: Workstation(tmp_path / f"home-{n}", capsys) for n in names}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _bid(folder: Path, label: str) -> dict[str, Path]:
    offre = folder / "offre"
    (offre / "annexes").mkdir(parents=True)
    (offre / "mémoire technique.txt").write_text(f"Offre de {label}\n" * 1000, encoding="utf-8")
    (offre / "annexes" / "BPU.csv").write_text(f"poste;prix\n1;{len(label)}00\n")
    candidature = folder / "candidature"
    candidature.mkdir()
    (candidature / "DC1.pdf").write_bytes(f"%PDF DC1 {label}".encode())
    return {"candidature": candidature, "offre": offre}


def _deposit(station: Workstation, reference: str, bid: dict[str, Path]) -> None:
    station.ok("deposit", reference, *[f"--envelope={kind}={path}" for kind, path in bid.items()])


def test_deposit_then_open_after_the_deadline(
    platform: Platform, stations: dict[str, Workstation], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    pw = str(password_file)
    companies = (("Rival SAS", "offres@rival.fr"), ("Tardif SA", "offres@tardif.fr"))
    set_up(
        platform, password_file,
        *(("create-organisation", company, "--kind", "bidder") for company, _email in companies),
        *(("create-user", email, "--organisation", company, "--password-file", pw)
          for company, email in companies),
    )  # fmt: skip
    agent, backup = stations["agent"], stations["backup"]
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)
    agent.ok("keys", "generate", "PERSO", "--publish")
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    # The backup key pair lives on another workstation, moved there as a .pfx.
    pfx_password = tmp_path / "pfx.txt"
    pfx_password.write_text(PFX_PASSWORD, encoding="utf-8")
    agent.ok("keys", "export", "SECOURS", "-o", str(tmp_path / "secours.pfx"),
             "--password-file", str(pfx_password))  # fmt: skip
    agent.ok("keys", "delete", "SECOURS", "--yes")
    backup.ok("keys", "import", str(tmp_path / "secours.pfx"), "--password-file", str(pfx_password))
    backup.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file", pw)

    deadline = dt.datetime.now(dt.UTC) + DEADLINE_AHEAD
    agent.ok("tenders", "create", "--reference", "AO-OUV", "--title", "Voirie",
             "--deadline", deadline.isoformat())  # fmt: skip
    agent.ok("tenders", "launch", "AO-OUV", "--key", "PERSO")
    for name, email in (("btp", "offres@btp.fr"), ("rival", "offres@rival.fr"),
                        ("tardif", "offres@tardif.fr")):  # fmt: skip
        stations[name].ok("login", platform.url, "--email", email, "--password-file", pw)

    first, second = _bid(tmp_path / "btp-1", "BTP premier"), _bid(tmp_path / "btp-2", "BTP second")
    rival = _bid(tmp_path / "rival", "Rival")
    _deposit(stations["btp"], "AO-OUV", first)
    _deposit(stations["btp"], "AO-OUV", second)  # the last on time: the one opened
    _deposit(stations["rival"], "AO-OUV", rival)
    # Tardif starts before the deadline and is cut off; it completes after: late.
    candidature, offre = _big_bid(tmp_path / "tardif")
    receipt = tmp_path / "receipt-tardif.json"
    cut = _deposit_process(stations["tardif"], "AO-OUV", candidature, offre, receipt)
    _wait_for_upload(platform, 48 << 20, cut)
    cut.send_signal(signal.SIGKILL)
    cut.communicate()

    err = agent.refused("open", "AO-OUV", "--out", str(tmp_path / "trop-tot"))
    assert "stay sealed until its deadline" in err
    assert not (tmp_path / "trop-tot").exists()
    platform.pass_deadline(deadline)

    stations["tardif"].ok(
        "deposit", "AO-OUV", "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    assert json.loads(stations["tardif"].ok("receipts", "verify", str(receipt), "--json"))["late"]
    assert "has passed" in stations["rival"].refused(
        "deposit", "AO-OUV", *[f"--envelope={k}={p}" for k, p in rival.items()]
    )

    # The personal key pair opens each company's last deposit on time.
    out = tmp_path / "ouverture"
    said = agent.ok("open", "AO-OUV", "--key", "PERSO", "--out", str(out))
    assert said.count("Opened") == 4 and "Tardif" not in said
    opened = {path.parent.parent.name: path.parent for path in out.glob("*/*/offre")}
    assert set(opened) == {"BTP Normandie", "Rival SAS"}
    for company, bid in (("BTP Normandie", second), ("Rival SAS", rival)):
        deposit_folder = next((out / company).iterdir())
        for kind, source in bid.items():
            assert _files(deposit_folder / kind) == _files(source)
    assert "Already opened" in agent.ok("open", "AO-OUV", "--out", str(out))

    # The backup key pair, on its own workstation, opens the same, late ones included.
    out_backup = tmp_path / "ouverture-secours"
    said = backup.ok("open", "AO-OUV", "--include-late", "--envelope", "offre",
                     "--out", str(out_backup))  # fmt: skip
    assert said.count("Opened") == 3 and "(late)" in said
    late_offre = next((out_backup / "Tardif SA").iterdir()) / "offre"
    assert _files(late_offre) == _files(offre)
    btp_offre = next((out_backup / "BTP Normandie").iterdir()) / "offre"
    assert _files(btp_offre) == _files(second["offre"])

    # A stored envelope altered on the server: that company fails, the others open.
    rival_deposit = next((out / "Rival SAS").iterdir()).name
    stored = _stored_envelope(platform, rival_deposit, "offre")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    out_again = tmp_path / "ouverture-2"
    status, _, err = agent.scelle("open", "AO-OUV", "--out", str(out_again))
    assert status == 1
    assert "FAILED Rival SAS — offre" in err and "1 envelope(s) could not be opened" in err
    assert (next((out_again / "BTP Normandie").iterdir()) / "offre").is_dir()
    assert not list((out_again / "Rival SAS").glob("*/offre"))

    opened_events = platform.query(
        "SELECT count(*) FROM audit_event WHERE action = 'opening.envelope.opened'"
    )
    # 4 opened, the same 4 found opened and reported again, 3 with the backup key, 3 again.
    assert opened_events == [(4 + 4 + 3 + 3,)]
    assert "chain intact" in platform.admin("audit-verify").stderr


def _stored_envelope(platform: Platform, deposit: str, kind: str) -> Path:
    # Test-only SQL on values the test made itself (a UUID and an envelope kind).
    rows = platform.query(
        "SELECT e.storage_name FROM deposits_envelope e JOIN deposits_deposit d "  # noqa: S608
        f"ON e.deposit_id = d.id WHERE e.kind = '{kind}' AND "
        f"replace(CAST(d.id AS TEXT), '-', '') = '{deposit.replace('-', '')}'"
    )
    assert len(rows) == 1, rows
    return platform.data / "envelopes" / str(rows[0][0])
