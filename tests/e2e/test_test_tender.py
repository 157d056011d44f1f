"""The *Consultation de test* on a real server, with the command: a company finds it,
deposits there as for a real tender, gets a receipt marked test, and opens its own deposit
with the published key (`scelle open --test-key`, the .pfx, and `openssl cms`)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Platform
from tests.e2e.test_deposit_journey import MARKER, bid, launched, stations  # noqa: F401
from tests.e2e.test_platform_journey import Workstation

pytestmark = [pytest.mark.slow, pytest.mark.platform]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_company_tries_a_deposit_and_opens_it_itself(
    platform: Platform,
    stations: dict[str, Workstation],  # noqa: F811
    password_file: Path,
    tmp_path: Path,
) -> None:
    launched(platform, stations, password_file)
    btp, rival, agent = stations["btp"], stations["rival"], stations["agent"]
    tenders = json.loads(btp.ok("tenders", "list", "--json"))
    [test] = [t for t in tenders if t.get("test")]
    assert "test tender" in btp.ok("tenders", "list")
    assert all(not t.get("test") for t in json.loads(agent.ok("tenders", "list", "--json")))
    reference = test["reference"]
    candidature, offre = bid(tmp_path / "bid", size=20_000)
    receipt = tmp_path / "receipt.json"
    said = btp.ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    assert "A test deposit: never an offer" in said and "--test-key" in said
    assert json.loads(receipt.read_text())["receipt"]["test"] is True
    assert "test (never an offer)" in btp.ok("receipts", "verify", str(receipt))
    [mine] = json.loads(btp.ok("deposits", "list", "--json"))
    assert mine["test"] is True and "test (never an offer)" in btp.ok("deposits", "list")

    # Opened with the key the platform publishes: what was sealed, byte for byte.
    opened = btp.ok("open", reference, "--test-key", "--out", str(tmp_path / "opened"))
    assert "Summary: 2 opened" in opened
    [folder] = (tmp_path / "opened").iterdir()
    [deposit] = folder.iterdir()
    assert _files(deposit / "offre") == _files(offre)
    assert _files(deposit / "candidature") == {"DC1.pdf": candidature.read_bytes()}
    # No other company's deposit is there to open, and a real tender refuses the test key.
    assert "No deposit to open." in rival.ok(
        "open", reference, "--test-key", "--out", str(tmp_path / "rival")
    )
    assert "is not a test tender" in btp.refused("open", "AO-DEPOT", "--test-key")

    # The same with the .pfx anyone downloads, and with OpenSSL and the PEM.
    page = f"{platform.url}/consultations/ouvertes/{test['id']}/cle-de-test"
    pfx, pem = tmp_path / "cle.pfx", tmp_path / "cle.pem"
    pfx.write_bytes(httpx.get(f"{page}.pfx").raise_for_status().content)
    pem.write_bytes(httpx.get(f"{page}.pem").raise_for_status().content)
    password = tmp_path / "pfx-password"
    password.write_text("consultation-de-test\n")
    again = btp.ok(
        "open", reference, "--pfx", str(pfx), "--password-file", str(password),
        "--out", str(tmp_path / "with-pfx"),
    )  # fmt: skip
    assert "Summary: 2 opened" in again
    [[stored]] = platform.query("SELECT storage_name FROM deposits_envelope WHERE kind = 'offre'")
    zipped = tmp_path / "offre.zip"
    subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-binary",
         "-in", str(platform.data / "envelopes" / str(stored)), "-inkey", str(pem),
         "-out", str(zipped)],
        check=True, capture_output=True,
    )  # fmt: skip
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read("memoire.txt").startswith(MARKER)
