"""The assistant's jobs against a platform that lies: each job is checked on the workstation
before anything is done, a failure leaves nothing half-done, and nothing secret leaves."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.assistant.config import AssistantConfig, load_config, save_config
from scelle.assistant.remote import Assistant
from scelle.client import api
from scelle.core.errors import InvalidInputError, NotAuthenticatedError
from scelle.keystore import KeyStore
from tests.assistant.hostile import (
    DEADLINE,
    Buyer,
    HostilePlatform,
    hostile_platform,
    make_buyer,
    recipient_json,
    tender_json,
)
from tests.conftest import NOW, STORE_PASSPHRASE

SERVICE = str(uuid.uuid4())


@pytest.fixture(scope="module")
def buyer() -> Buyer:
    return make_buyer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def fake() -> Iterator[HostilePlatform]:
    with hostile_platform() as platform:
        platform.set_json(
            "POST",
            "/api/assistant/heartbeat",
            {"id": str(uuid.uuid4()), "name": "POSTE", "last_seen_at": NOW.isoformat()},
        )
        yield platform


@pytest.fixture
def store(tmp_path: Path, buyer: Buyer) -> KeyStore:
    keys = KeyStore(tmp_path / "home", lambda _new: STORE_PASSPHRASE)
    keys.add("BICLE", buyer.key, buyer.certificate, exportable=True, origin="generated", now=NOW)
    return keys


def _assistant(
    fake: HostilePlatform, store: KeyStore, tmp_path: Path, now: dt.datetime
) -> Assistant:
    config = AssistantConfig(workstation="POSTE", openings=tmp_path / "plis")
    client = api.PlatformClient(fake.url, "scl_test_token")
    return Assistant(client, store, config, clock=lambda: now, bits=3072)


def _job(kind: str, **params: Any) -> api.Job:
    return {
        "id": str(uuid.uuid4()), "kind": kind, "workstation": str(uuid.uuid4()),
        "workstation_name": "POSTE", "params": params, "state": "started", "message": "",
        "result": {}, "created_at": NOW.isoformat(), "started_at": NOW.isoformat(),
        "finished_at": None,
    }  # fmt: skip


def test_a_job_outside_the_closed_list_is_refused(fake, store, tmp_path) -> None:
    outcome = _assistant(fake, store, tmp_path, NOW).do(_job("export_private_key", name="BICLE"))
    assert not outcome.succeeded and "does not do" in outcome.message
    assert fake.requests == []


@pytest.mark.parametrize(
    "params",
    [
        {"tender": "../../etc"},
        {"tender": "AO-1"},
        {},
        {"tender": 42},
    ],
)
def test_an_opening_of_a_tender_that_is_not_an_id_is_refused(fake, store, tmp_path, params):
    outcome = _assistant(fake, store, tmp_path, NOW).do(_job("open_tender", **params))
    assert not outcome.succeeded and "tender" in outcome.message
    assert fake.requests == []


def test_an_opening_before_the_deadline_by_the_workstations_clock_is_refused(
    fake, store, tmp_path, buyer
) -> None:
    tender = tender_json([recipient_json(buyer.certificate, "BICLE")], [buyer.certificate])
    fake.set_json("GET", f"/api/tenders/{tender['id']}", tender)
    # The server says it is time; this workstation's clock says the deadline is ahead.
    outcome = _assistant(fake, store, tmp_path, DEADLINE - dt.timedelta(minutes=1)).do(
        _job("open_tender", tender=tender["id"])
    )
    assert not outcome.succeeded and "has not passed" in outcome.message
    assert fake.asked("GET", "/api/tenders/") and not fake.asked("GET", "/api/deposits")
    assert not (tmp_path / "plis").exists()


def test_a_reference_named_by_the_server_stays_inside_the_openings_folder(
    fake, store, tmp_path, buyer
) -> None:
    tender = tender_json([recipient_json(buyer.certificate, "BICLE")], [buyer.certificate])
    tender["reference"] = "../../../tmp/evil"
    fake.set_json("GET", f"/api/tenders/{tender['id']}", tender)
    fake.set_json("GET", f"/api/tenders/{tender['id']}/deposits", [])
    outcome = _assistant(fake, store, tmp_path, DEADLINE + dt.timedelta(hours=1)).do(
        _job("open_tender", tender=tender["id"])
    )
    assert not outcome.succeeded and "does not understand" in outcome.message
    assert {path.name for path in tmp_path.iterdir()} <= {"home", "plis"}


def test_referencing_a_key_pair_the_store_does_not_hold_is_refused(fake, store, tmp_path):
    outcome = _assistant(fake, store, tmp_path, NOW).do(
        _job("add_key_pair", service=SERVICE, designation="X", role="personal",
             mode="reference", fingerprint_sha256=":".join(["AB"] * 32))
    )  # fmt: skip
    assert not outcome.succeeded and "holds no key pair" in outcome.message
    assert fake.requests == []


def test_a_generated_key_pair_the_platform_refuses_is_not_kept(fake, store, tmp_path):
    fake.set_json("POST", "/api/key-pairs", {"detail": "designation taken", "hint": None}, 409)
    outcome = _assistant(fake, store, tmp_path, NOW).do(
        _job("add_key_pair", service=SERVICE, designation="NOUVEAU", role="backup",
             mode="generate", common_name="Nouveau")
    )  # fmt: skip
    assert not outcome.succeeded and outcome.message == "designation taken"
    assert [key.name for key in store.key_pairs()] == ["BICLE"]
    [sent] = fake.asked("POST", "/api/key-pairs")
    body = json.loads(sent.body)
    assert set(body) == {"service", "role", "designation", "csr_pem", "certificate_pem", "on_token"}
    assert body["on_token"] is False
    assert "PRIVATE" not in sent.body.decode()


def test_the_heartbeat_says_nothing_secret(fake, store, tmp_path, buyer) -> None:
    _assistant(fake, store, tmp_path, NOW).beat()
    [sent] = fake.asked("POST", "/api/assistant/heartbeat")
    body = json.loads(sent.body)
    assert body["workstation"] == "POSTE" and body["running"] is True
    assert [set(entry) for entry in body["key_pairs"]] == [
        {"name", "common_name", "not_after", "fingerprint_sha256", "on_token"}
    ]
    assert "PRIVATE" not in sent.body.decode() and "CERTIFICATE" not in sent.body.decode()


def test_a_revoked_login_stops_the_loop_and_an_absent_platform_does_not(
    fake, store, tmp_path, monkeypatch
) -> None:
    helper = _assistant(fake, store, tmp_path, NOW)
    stop = threading.Event()
    calls = []

    def unreachable(_request: Any) -> Any:
        calls.append(1)
        if len(calls) < 3:
            return 503, {"Content-Type": "application/json"}, b'{"detail": "busy"}'
        return 401, {"Content-Type": "application/json"}, b'{"detail": "log in first"}'

    fake.set("GET", "/api/assistant/jobs/next", unreachable)
    # The test's patience, not the product's.
    monkeypatch.setattr("scelle.assistant.remote.MAX_BACKOFF_SECONDS", 0.05)
    with pytest.raises(NotAuthenticatedError):
        helper.run(stop)
    assert len(calls) == 3 and helper.state == "logged-out"


def test_the_settings_are_the_workstations(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = load_config(home)
    assert config.openings.is_absolute() and config.workstation
    saved = save_config(home, AssistantConfig("POSTE-ACHAT-12", tmp_path / "Plis"))
    assert load_config(home) == saved
    with pytest.raises(InvalidInputError):
        save_config(home, AssistantConfig("../x", tmp_path))
    with pytest.raises(InvalidInputError):
        save_config(home, AssistantConfig("POSTE", Path("relative/plis")))
