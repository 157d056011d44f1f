"""`scelle admin backup` while the platform runs (a company uploading meanwhile), then
`scelle admin restore` onto a fresh host: every receipt still verifies, online too (the
restored transparency log is consistent with what the company's workstation saw), the
audit log checks, and the buyer opens the deposits there."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import BOTH_DATABASES, POSTGRES_SERVER, Platform, _start, _stop
from tests.e2e.test_deposit_journey import (  # noqa: F401
    _big_bid,
    _deposit_process,
    _wait_for_upload,
    bid,
    launched,
    stations,
)
from tests.e2e.test_platform_journey import Workstation

pytestmark = [pytest.mark.slow, pytest.mark.platform]


def _admin(env: dict[str, str], data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scelle.cli", "admin", *args, "--data", str(data)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@BOTH_DATABASES
def test_a_backup_taken_while_running_restores_onto_a_fresh_host(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811
    password_file: Path,
    tmp_path: Path,
) -> None:
    reference = launched(platform, stations, password_file)
    btp, pw = stations["btp"], str(password_file)
    candidature, offre = bid(tmp_path / "bid")
    receipts = tmp_path / "receipts"
    receipts.mkdir()
    receipt = receipts / "receipt-btp.json"
    btp.ok("deposit", reference, "--envelope", f"candidature={candidature}",
           "--envelope", f"offre={offre}", "--receipt", str(receipt))  # fmt: skip
    btp.ok("receipts", "verify", str(receipt), "--online")  # the workstation keeps the tree

    # Backed up while a rival's 400 MiB upload is arriving.
    big = _big_bid(tmp_path / "big")
    uploading = _deposit_process(stations["rival"], reference, *big, tmp_path / "r.json")
    _wait_for_upload(platform, 16 << 20, uploading)
    archive = tmp_path / "sauvegarde.tar"
    made = _admin(platform.env, platform.data, "backup", str(archive))
    uploading.kill()
    uploading.communicate()
    assert made.returncode == 0, made.stderr
    assert "Backed up 2 envelopes" in made.stderr
    assert archive.stat().st_mode & 0o777 == 0o600
    assert _admin(platform.env, platform.data, "backup", str(archive)).returncode != 0  # exists
    _stop(platform.process)

    # A fresh host: its own data folder, and on PostgreSQL its own, empty, database.
    env = dict(platform.env)
    admin_db = None
    if platform.database is not None:
        import psycopg

        admin_db = f"scelle_restore_{secrets.token_hex(4)}"
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{admin_db}"')  # name is ours: hex only
        env["SCELLE_DATABASE_URL"] = f"{POSTGRES_SERVER}/{admin_db}"
    fresh = tmp_path / "new-host"
    try:
        restored = _admin(env, fresh, "restore", str(archive))
        assert restored.returncode == 0, restored.stderr
        assert "Restored 2 envelopes" in restored.stderr
        again = _admin(env, fresh, "restore", str(archive))
        assert again.returncode != 0 and "a platform is already here" in again.stderr
        checked = _admin(env, fresh, "audit-verify", "--receipts", str(receipts))
        assert checked.returncode == 0, checked.stderr
        assert "The audit log holds" in checked.stderr and "1 receipts" in checked.stderr

        process, url = _start(fresh, env)
        try:
            btp.ok("login", url, "--email", "offres@btp.fr", "--password-file", pw)
            verified = json.loads(btp.ok("receipts", "verify", str(receipt), "--online", "--json"))
            assert verified["tender"] == reference
            agent = stations["agent"]
            agent.ok("login", url, "--email", "acheteur@rouen.fr", "--password-file", pw)
            platform.pass_deadline(_deadline(agent, reference))
            out = tmp_path / "ouverture"
            said = agent.ok("open", reference, "--key", "PERSO", "--out", str(out))
            assert said.count("Opened") == 2
            opened = next((out / "BTP Normandie").iterdir())
            assert (opened / "candidature" / "DC1.pdf").read_bytes() == candidature.read_bytes()
            assert (opened / "offre" / "memoire.txt").read_bytes() == (
                offre / "memoire.txt"
            ).read_bytes()
        finally:
            _stop(process)
    finally:
        if admin_db is not None:
            import psycopg

            with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{admin_db}" WITH (FORCE)')


def _deadline(agent: Workstation, reference: str) -> dt.datetime:
    listed = json.loads(agent.ok("tenders", "list", "--json"))
    found = next(t for t in listed if t["reference"] == reference)
    return dt.datetime.fromisoformat(found["deadline"])
