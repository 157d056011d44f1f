"""Every client method against answers that are not what the API says: Hypothesis makes
them up, a real HTTP server on 127.0.0.1 sends them. Each call returns a validated
answer or raises a ScelleError; never another exception."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scelle.client.api import PlatformClient
from scelle.core import certs
from scelle.core.errors import ScelleError
from tests.assistant.hostile import (
    HostilePlatform,
    authority_json,
    hostile_platform,
    json_answer,
    make_buyer,
    me_json,
    recipient_json,
    tender_json,
)
from tests.conftest import NOW

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
UPLOAD = f"/api/uploads/{uuid.uuid4()}"


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    """An honest answer of each shape, to be corrupted."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    buyer = make_buyer(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    recipient = recipient_json(buyer.certificate, "BICLE")
    tender = tender_json([recipient], [buyer.certificate])
    deposit = {
        "id": str(uuid.uuid4()),
        "tender": "AO-1",
        "bidder": "BTP",
        "received_at": NOW.isoformat(),
        "late": False,
        "envelopes": [
            {"kind": "offre", "size": 1, "sha256": "0" * 64, "recipients": [], "upload": None}
        ],
    }
    key_pair = {
        "id": str(uuid.uuid4()),
        "service": str(uuid.uuid4()),
        "service_name": "Marchés",
        "designation": "BICLE",
        "role": "personal",
        "common_name": "BICLE",
        "fingerprint_sha256": certs.fingerprint_sha256(buyer.certificate),
        "not_before": NOW.isoformat(),
        "not_after": (NOW + dt.timedelta(days=730)).isoformat(),
        "issued_by_platform": True,
        "added_by": None,
        "added_at": NOW.isoformat(),
        "certificate_pem": recipient["certificate_pem"],
        "open_tenders": [],
    }
    return {
        "health": {"status": "ok"},
        "login": {"token": "scl_a_b", "expires_at": NOW.isoformat(), "user": me_json()},
        "me": me_json(),
        "ca": authority_json(buyer.ca),
        "registry": {"key_pairs": [key_pair], "warnings": []},
        "key_pair": key_pair,
        "published": {**key_pair, "chain_pem": []},
        "tender": tender,
        "tenders": [tender],
        "recipients": [recipient],
        "deposit": {**deposit, "receipt": "{}"},
        "deposits": [deposit],
    }


CALLS: dict[str, tuple[str, Callable[[PlatformClient], object]]] = {
    "health": ("health", lambda c: c.health()),
    "login": ("login", lambda c: c.login("a@b.fr", "pw")),
    "me": ("me", lambda c: c.me()),
    "platform_ca": ("ca", lambda c: c.platform_ca()),
    "key_pairs": ("registry", lambda c: c.key_pairs()),
    "publish_key_pair": (
        "published",
        lambda c: c.publish_key_pair(service="s", role="personal", designation="d", csr_pem=b"x"),
    ),
    "rename_key_pair": ("key_pair", lambda c: c.rename_key_pair(str(uuid.uuid4()), "d")),
    "tenders": ("tenders", lambda c: c.tenders()),
    "tender": ("tender", lambda c: c.tender("AO-1")),
    "create_tender": (
        "tender",
        lambda c: c.create_tender(
            service="s", reference="AO-1", title="t", deadline=NOW, envelopes=["offre"]
        ),
    ),
    "launch_tender": ("tender", lambda c: c.launch_tender("AO-1", ["BICLE"])),
    "close_tender": ("tender", lambda c: c.close_tender("AO-1")),
    "recipients": ("recipients", lambda c: c.recipients("AO-1")),
    "finalise_deposit": ("deposit", lambda c: c.finalise_deposit("AO-1", [("offre", "u", None)])),
    "my_deposit": ("deposit", lambda c: c.my_deposit(str(uuid.uuid4()))),
    "my_deposits": ("deposits", lambda c: c.my_deposits()),
    "tender_deposits": ("deposits", lambda c: c.tender_deposits("AO-1")),
}


@pytest.fixture(scope="module")
def fake() -> Iterator[HostilePlatform]:
    with hostile_platform() as platform:
        yield platform


def _corrupt(document: Any, path: list[int], value: Any) -> Any:
    """`document` with the node chosen by `path` replaced by `value`."""
    document = copy.deepcopy(document)
    node: Any = document
    parent: Any = None
    key: Any = None
    for step in path:
        if isinstance(node, dict) and node:
            parent, key = node, sorted(node)[step % len(node)]
        elif isinstance(node, list) and node:
            parent, key = node, step % len(node)
        else:
            break
        node = parent[key]
    if parent is None:
        return value
    parent[key] = value
    return document


def _call(fake: HostilePlatform, name: str, body: bytes, status: int = 200) -> None:
    fake.fallback = lambda _request: (status, {"Content-Type": "application/json"}, body)
    with (
        PlatformClient(fake.url, "scl_token", timeout=5) as client,
        contextlib.suppress(ScelleError),
    ):
        CALLS[name][1](client)


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.lists(st.integers(0, 20), max_size=5), value=JSON)
def test_corrupted_answers(
    fake: HostilePlatform, samples: dict[str, Any], name: str, path: list[int], value: Any
) -> None:
    body = json.dumps(_corrupt(samples[CALLS[name][0]], path, value)).encode()
    _call(fake, name, body)


@pytest.mark.parametrize("name", sorted(CALLS))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()),
       status=st.sampled_from([200, 201, 204, 301, 400, 404, 409, 429, 500, 599]))  # fmt: skip
def test_arbitrary_answers(fake: HostilePlatform, name: str, body: bytes, status: int) -> None:
    _call(fake, name, body, status)


def test_the_honest_samples_are_accepted(fake: HostilePlatform, samples: dict[str, Any]) -> None:
    # So that the corruptions above start from answers the client takes.
    for name, (sample, call) in CALLS.items():
        answer = json_answer(samples[sample])
        fake.fallback = lambda _request, a=answer: a  # type: ignore[misc]
        with PlatformClient(fake.url, "scl_token", timeout=5) as client:
            assert call(client) is not None or name == "health", name


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    offset=st.text(max_size=30) | st.integers(-5, 10**30).map(str),
    location=st.text(max_size=60) | st.just(UPLOAD) | st.just(f"https://evil.example{UPLOAD}"),
)
def test_tus_headers(fake: HostilePlatform, offset: str, location: str) -> None:
    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        headers = {"Upload-Offset": offset, "Location": location}
        safe = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
        return (201 if request.method == "POST" else 204), safe, b""

    fake.fallback = answer
    with PlatformClient(fake.url, "scl_token", timeout=5) as client:
        for call in (
            lambda: client.create_upload(tender="AO-1", envelope="offre", length=3),
            lambda: client.upload_offset(UPLOAD),
            lambda: client.send_chunk(UPLOAD, 0, b"abc"),
        ):
            try:
                result = call()
            except ScelleError:
                continue
            assert result in (UPLOAD, 3) or (isinstance(result, int) and 0 <= result < 10**15)
