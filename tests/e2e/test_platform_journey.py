"""The README's journey on a real server: set up a buyer, log in, generate and publish key
pairs, create and launch a tender, and see each rule refuse what it must.

The platform runs as `scelle serve` in a subprocess (SQLite, then PostgreSQL);
each workstation is a `scelle` command line with its own SCELLE_HOME.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from scelle.cli.main import EXIT_FAILURE, EXIT_OK, run
from scelle.cli.session import Session
from tests.conftest import STORE_PASSPHRASE, require_tool
from tests.e2e.conftest import PASSWORD, Platform

pytestmark = [pytest.mark.slow, pytest.mark.platform]


@dataclass
class Workstation:
    """One user's machine: its own store and login."""

    home: Path
    capsys: pytest.CaptureFixture[str]

    def scelle(self, *args: str) -> tuple[int, str, str]:
        status = run(list(args), Session(home=self.home))
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def ok(self, *args: str) -> str:
        status, out, err = self.scelle(*args)
        assert status == EXIT_OK, f"scelle {' '.join(args)}: {err}"
        return out + err

    def refused(self, *args: str) -> str:
        status, _, err = self.scelle(*args)
        assert status == EXIT_FAILURE, f"scelle {' '.join(args)} should have failed"
        assert "Traceback" not in err
        return err


@pytest.fixture
def stations(tmp_path: Path, capsys, monkeypatch) -> dict[str, Workstation]:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", STORE_PASSPHRASE)
    monkeypatch.setenv("SCELLE_LANG", "en")
    return {
        name: Workstation(tmp_path / f"home-{name}", capsys)
        for name in ("agent", "colleague", "outsider", "bidder")
    }


def set_up(platform: Platform, password_file: Path, *more: tuple[str, ...]) -> None:
    """The seed guide's buyers, service, agents and company, made by `scelle admin`, and
    `more` of its commands after them."""
    pw = str(password_file)
    platform.admin_all(
        ("create-organisation", "Ville de Rouen", "--kind", "buyer"),
        ("create-service", "Ville de Rouen", "Service des marchés"),
        ("create-user", "acheteur@rouen.fr", "--organisation", "Ville de Rouen",
         "--password-file", pw, "--service", "Service des marchés",
         "--permission", "manage_keys", "--permission", "manage_tenders", "--permission", "open"),
        ("create-user", "collegue@rouen.fr", "--organisation", "Ville de Rouen",
         "--password-file", pw, "--service", "Service des marchés", "--permission", "open"),
        ("create-organisation", "Ville de Caen", "--kind", "buyer"),
        ("create-service", "Ville de Caen", "Achats"),
        ("create-user", "acheteur@caen.fr", "--organisation", "Ville de Caen",
         "--password-file", pw, "--service", "Achats", "--permission", "manage_tenders"),
        ("create-organisation", "BTP Normandie", "--kind", "bidder"),
        ("create-user", "offres@btp.fr", "--organisation", "BTP Normandie", "--password-file", pw),
        *more,
    )  # fmt: skip


def test_the_newcomers_journey(
    platform: Platform, stations: dict[str, Workstation], password_file: Path, tmp_path: Path
) -> None:
    set_up(platform, password_file)
    listing = json.loads(platform.admin("list", "--json").stdout)
    # The platform's own organisation holds its test tender (tenders.testing).
    assert [o["name"] for o in listing] == [
        "BTP Normandie", "Scellé — consultation de test", "Ville de Caen", "Ville de Rouen"
    ]  # fmt: skip
    pw = str(password_file)
    agent, colleague, outsider, bidder = (
        stations[name] for name in ("agent", "colleague", "outsider", "bidder")
    )
    for station, email in [
        (agent, "acheteur@rouen.fr"),
        (colleague, "collegue@rouen.fr"),
        (outsider, "acheteur@caen.fr"),
        (bidder, "offres@btp.fr"),
    ]:
        said = station.ok("login", platform.url, "--email", email, "--password-file", pw)
        assert f"as {email}" in said
        assert (station.home / "platform.json").stat().st_mode & 0o777 == 0o600

    # Key pairs: generated here, certified by the platform CA (rule 2).
    said = agent.ok("keys", "generate", "BICLEVIDEOTUTO", "--publish")
    assert "on the platform as BICLEVIDEOTUTO (personal" in said
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup", "--designation", "Secours")
    local = {k["name"]: k for k in json.loads(agent.ok("keys", "list", "--json"))}
    assert local["BICLEVIDEOTUTO"]["issuer"].endswith("autorité de la plateforme")
    registry = json.loads(agent.ok("service-keys", "list", "--json"))
    by_name = {k["designation"]: k for k in registry["key_pairs"]}
    assert by_name["Secours"]["role"] == "backup"
    assert (
        by_name["BICLEVIDEOTUTO"]["fingerprint_sha256"]
        == (local["BICLEVIDEOTUTO"]["fingerprint_sha256"])
    )
    # OpenSSL checks the issued certificate against the platform CA.
    _openssl_verifies(platform, agent, tmp_path)
    # A colleague without manage_keys cannot publish.
    colleague.ok("keys", "generate", "PERSO-COLLEGUE")
    err = colleague.refused("keys", "publish", "PERSO-COLLEGUE", "--service", "Service des marchés")
    assert "manage_keys" in err

    # A tender, launched with its definitive key pairs (rule 3).
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    agent.ok(
        "tenders", "create", "--reference", "AO-2026-001", "--title", "Travaux de voirie",
        "--deadline", deadline,
    )  # fmt: skip
    said = agent.ok("tenders", "launch", "AO-2026-001", "--key", "BICLEVIDEOTUTO")
    assert "Secours (backup" in said and "in this workstation's store" in said
    shown = json.loads(agent.ok("tenders", "show", "AO-2026-001", "--json"))
    assert shown["status"] == "published"
    assert {k["designation"] for k in shown["key_pairs"]} == {"BICLEVIDEOTUTO", "Secours"}
    assert "definitive" in agent.refused("tenders", "launch", "AO-2026-001", "--key", "Secours")
    agent.ok(
        "tenders", "create", "--reference", "AO-2026-002", "--title", "Fournitures",
        "--deadline", deadline,
    )  # fmt: skip
    assert "personal key pair" in agent.refused(
        "tenders", "launch", "AO-2026-002", "--key", "Secours"
    )
    # A key pair that expires before the opening window ends is refused.
    agent.ok("keys", "generate", "COURTE", "--days", "60")
    agent.ok("keys", "publish", "COURTE", "--as-is")
    err = agent.refused("tenders", "launch", "AO-2026-002", "--key", "COURTE")
    assert "before the opening window ends" in err
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    err = agent.refused(
        "tenders", "create", "--reference", "AO-PASSE", "--title", "Trop tard", "--deadline", past
    )
    assert "already past" in err

    page = agent.ok("service-keys", "list")  # the key page, as a table
    assert by_name["BICLEVIDEOTUTO"]["fingerprint_sha256"] in page
    assert "Open tenders" in page
    # Deleting a key pair in use is refused, naming the tender (rule 4).
    err = agent.refused("service-keys", "delete", "BICLEVIDEOTUTO", "--yes")
    assert "AO-2026-001" in err and "not closed" in err

    # Companies see launched tenders and their recipients; another buyer sees nothing (rule 1).
    seen = json.loads(bidder.ok("tenders", "list", "--json"))
    assert [t["reference"] for t in seen if not t["test"]] == ["AO-2026-001"]
    assert [t["test"] for t in seen].count(True) == 1  # and the platform's test tender
    shown_to_bidder = json.loads(bidder.ok("tenders", "show", "AO-2026-001", "--json"))
    assert shown_to_bidder["key_pairs"] == shown["key_pairs"]
    assert "only a public buyer's agents" in bidder.refused("service-keys", "list")
    assert "no tender AO-2026-001" in outsider.refused("tenders", "show", "AO-2026-001")
    assert json.loads(outsider.ok("tenders", "list", "--json")) == []

    # Closing waits for the deadline; a tender stopped early is cancelled, with a reason,
    # and its key pairs stay in use until it is closed after the deadline.
    assert "before its deadline" in agent.refused("tenders", "close", "AO-2026-001")
    said = agent.ok("tenders", "cancel", "AO-2026-001", "--reason", "Besoin disparu")
    assert "takes no deposit" in said
    assert json.loads(bidder.ok("tenders", "show", "AO-2026-001", "--json"))["status"] == (
        "cancelled"
    )
    assert "Besoin disparu" in bidder.ok("tenders", "show", "AO-2026-001")
    agent.ok("service-keys", "rename", "BICLEVIDEOTUTO", "Ancienne clé")
    assert "AO-2026-001" in agent.refused("service-keys", "delete", "Ancienne clé", "--yes")
    agent.ok("service-keys", "delete", "COURTE", "--yes")  # used by no tender
    verified = platform.admin("audit-verify")
    assert "chain intact" in verified.stderr

    agent.ok("logout")
    assert "not logged in" in agent.refused("tenders", "list")
    assert "not logged in" in agent.refused("keys", "generate", "APRES", "--publish")
    assert "APRES" not in agent.ok("keys", "list")


def _openssl_verifies(platform: Platform, agent: Workstation, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    import httpx

    ca = tmp_path / "ca.pem"
    ca.write_text(httpx.get(f"{platform.url}/api/platform/ca").json()["certificate_pem"])
    issued = tmp_path / "issued.pem"
    agent.ok("keys", "cert", "BICLEVIDEOTUTO", "-o", str(issued))
    result = subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), str(issued)], capture_output=True, text=True
    )
    assert result.returncode == 0 and ": OK" in result.stdout, result.stderr
    text = subprocess.run(
        [openssl, "x509", "-in", str(issued), "-noout", "-text", "-nameopt", "oneline,-esc_msb"],
        capture_output=True,
        text=True,
    ).stdout
    assert "Key Encipherment" in text and "Digital Signature" not in text
    assert "O = Ville de Rouen, OU = Service des marchés" in text
    # An envelope sealed to the issued certificate opens with the store's key:
    # the store holds the certificate bidders encrypt to.
    plain = tmp_path / "offre.pdf"
    plain.write_bytes(b"%PDF-1.7 offre de test\n" * 100)
    agent.ok("encrypt", "-r", str(issued), str(plain))
    agent.ok("decrypt", "-o", str(tmp_path / "back.pdf"), str(plain) + ".p7m")
    assert (tmp_path / "back.pdf").read_bytes() == plain.read_bytes()


def _schemathesis(platform: Platform, token: str, tmp_path: Path, *options: str) -> str:
    result = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "run", f"{platform.url}/api/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            "--max-examples", "25", "--seed", "20261122", "--no-color",
            "--request-timeout", "30",
            # Free-form JSON (a job's result) may hold text no database stores (NUL, lone
            # surrogates), which no schema can exclude: the platform refuses it with a 400,
            # which this check would take for valid data rejected.
            "--exclude-checks", "positive_data_acceptance", *options,
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).parents[2]),
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "not_a_server_error" not in result.stdout
    assert " passed" in result.stdout
    return result.stdout


def test_schemathesis_finds_no_server_error(
    platform: Platform, password_file: Path, tmp_path: Path
) -> None:
    """Property-based requests from /api/openapi.json: the JSON API as an agent, the tus
    routes as a company."""
    # Its probes without a token come faster than one client's anonymous rate: shed with a
    # 503 and Retry-After, as they should be (tests/platform/test_admission.py), which it
    # would take for server errors. The rate is lifted for this run only.
    platform.env["SCELLE_ANONYMOUS_RATE"] = "10000/second"
    platform.kill()
    platform.restart()
    set_up(platform, password_file)
    import httpx

    def token(email: str) -> str:
        answer = httpx.post(
            f"{platform.url}/api/auth/login", json={"email": email, "password": PASSWORD}
        )
        return str(answer.json()["token"])

    # Both tokens first: the run's wrong logins slow this client's next ones down.
    agent, company = token("acheteur@rouen.fr"), token("offres@btp.fr")
    # Logging out would revoke the token the run uses. The assistant's long poll waits up
    # to 30 s an answer by design: tests/e2e/test_assistant_poll.py covers it.
    _schemathesis(
        platform, agent, tmp_path,
        "--exclude-path", "/api/auth/logout", "--exclude-path-regex", "^/api/uploads",
        "--exclude-path", "/api/assistant/jobs/next",
    )  # fmt: skip
    # tus answers 412 to a missing or other Tus-Resumable, where Schemathesis's generic
    # checks expect 400 or 422, and it sends the version always here; header values
    # it calls valid may still name no tender. Every answer must still be documented,
    # of the documented type, and no server error.
    said = _schemathesis(
        platform, company, tmp_path,
        "-H", "Tus-Resumable: 1.0.0", "--include-path-regex", "^/api/uploads",
        "--exclude-checks",
        "positive_data_acceptance,negative_data_rejection,missing_required_header",
    )  # fmt: skip
    assert "5 selected" in said


def test_admin_commands_do_not_create_a_platform_where_there_is_none(tmp_path: Path) -> None:
    elsewhere = tmp_path / "ailleurs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    env["SCELLE_LANG"] = "en"

    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scelle.cli", "admin", *args],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    refused = admin("list", "--data", str(elsewhere))
    assert refused.returncode == 1
    assert f"no platform in {elsewhere}" in refused.stderr and "admin init" in refused.stderr
    assert not elsewhere.exists()
    refused = admin("list")  # ./scelle-data, which does not exist either
    assert refused.returncode == 1 and not (tmp_path / "scelle-data").exists()
    created = admin("init", "--data", str(elsewhere))
    assert created.returncode == 0 and f"Platform created in {elsewhere}" in created.stderr
    assert admin("list", "--data", str(elsewhere)).returncode == 0
    again = admin("init", "--data", str(elsewhere))
    assert "already there" in again.stderr


def test_a_key_pair_is_named_by_its_designation_its_cn_or_its_local_name(
    platform: Platform, stations: dict[str, Workstation], password_file: Path
) -> None:
    set_up(platform, password_file)
    agent = stations["agent"]
    agent.ok("login", platform.url, "--email", "acheteur@rouen.fr", "--password-file",
             str(password_file))  # fmt: skip
    agent.ok("keys", "generate", "PERSO-POSTE", "--cn", "Marchés Rouen 2026", "--publish",
             "--designation", "Clé du service")  # fmt: skip
    agent.ok("keys", "generate", "SECOURS", "--publish", "--backup")
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    for reference in ("AO-LOCAL", "AO-CN"):
        agent.ok("tenders", "create", "--reference", reference, "--title", "Noms",
                 "--deadline", deadline)  # fmt: skip
    said = agent.ok("tenders", "launch", "AO-LOCAL", "--key", "PERSO-POSTE")
    assert "PERSO-POSTE: the key pair designated Clé du service on the platform" in said
    said = agent.ok("tenders", "launch", "AO-CN", "--key", "marchés rouen 2026")
    assert "Clé du service" in said
    shown = json.loads(agent.ok("tenders", "show", "AO-CN", "--json"))
    assert {k["designation"] for k in shown["key_pairs"]} == {"Clé du service", "SECOURS"}
