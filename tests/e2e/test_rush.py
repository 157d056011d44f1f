"""The platform at the deadline rush, on a real `scelle serve`: connections that send
nothing or send slowly hold no worker; bodies are bounded; two server processes share
one upload."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509

from scelle.cli.platform import DEFAULT_THREADS
from scelle.client.api import PlatformClient
from scelle.core import certs
from scelle.core.envelope import EnvelopeKeys, encrypt_stream
from scelle.core.receipt import verify_receipt
from scelle.platform.server import KEEP_ALIVE_SECONDS
from tests.e2e.conftest import BOTH_DATABASES, PASSWORD, Platform, _start
from tests.e2e.test_platform_journey import set_up

pytestmark = [pytest.mark.slow, pytest.mark.platform, pytest.mark.xdist_group("load")]


def _address(platform: Platform) -> tuple[str, int]:
    parts = urlsplit(platform.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _answers(url: str) -> bool:
    """Whether /api/health answers at all (the old server's threads were all held, and
    it did not, for a minute); its speed is bench/rush.py's to measure."""
    try:
        return bool(httpx.get(f"{url}/api/health", timeout=5).json() == {"status": "ok"})
    except httpx.TimeoutException:
        return False


def _tender(
    platform: Platform, password_file: Path, tmp_path: Path
) -> tuple[str, str, list[x509.Certificate]]:
    """A launched tender; returns a company's token, the tender's id and its recipients."""
    import datetime as dt

    from scelle.core.authority import build_csr

    set_up(platform, password_file)
    with PlatformClient(platform.url) as anonymous:
        agent_token = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
        company_token = anonymous.login("offres@btp.fr", PASSWORD)["token"]
    with PlatformClient(platform.url, agent_token) as agent:
        service = agent.me()["services"][0]["id"]
        csr = build_csr(certs.generate_private_key(), "PERSO")
        agent.publish_key_pair(service=service, role="personal", designation="PERSO", csr_pem=csr)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        tender = agent.create_tender(
            service=service, reference="AO-RUSH", title="Rush", deadline=deadline,
            envelopes=["offre"],
        )  # fmt: skip
        launched = agent.launch_tender(tender["id"], ["PERSO"])
    recipients = [
        certs.load_certificate(k["certificate_pem"].encode()) for k in launched["key_pairs"]
    ]
    return company_token, tender["id"], recipients


def _sealed(recipients: list[x509.Certificate], size: int) -> bytes:
    import io

    sink = io.BytesIO()
    encrypt_stream(io.BytesIO(os.urandom(size)), sink, EnvelopeKeys.for_recipients(recipients))
    return sink.getvalue()


@pytest.fixture
def crowd() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for connection in opened:
        connection.close()


def test_silent_and_slow_connections_hold_no_worker(
    platform: Platform, password_file: Path, tmp_path: Path, crowd: list[socket.socket]
) -> None:
    platform = platform
    token, tender, recipients = _tender(platform, password_file, tmp_path)
    host, port = _address(platform)
    # Many more silent connections than worker threads, and request heads cut short.
    for _ in range(DEFAULT_THREADS * 4):
        crowd.append(socket.create_connection((host, port)))
    for _ in range(DEFAULT_THREADS * 4):
        slow = socket.create_connection((host, port))
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        crowd.append(slow)
    # tus PATCHes that send a byte now and then, one per upload.
    with PlatformClient(platform.url, token) as company:
        for _ in range(DEFAULT_THREADS * 2):
            slow_path = urlsplit(
                company.create_upload(tender=tender, envelope="offre", length=1000)
            )
            patch = socket.create_connection((host, port))
            patch.sendall(
                f"PATCH {slow_path.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                "Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\nx"
                .encode()
            )  # fmt: skip
            crowd.append(patch)
        time.sleep(0.5)
        assert _answers(platform.url)
        # A company deposits meanwhile, whole.
        data = _sealed(recipients, 200_000)
        location = company.create_upload(tender=tender, envelope="offre", length=len(data))
        assert company.send_chunk(location, 0, data) == len(data)
        upload_id = location.rsplit("/", 1)[1]
        receipt = company.finalise_deposit(
            tender, [("offre", upload_id, hashlib.sha256(data).hexdigest())]
        )
    assert receipt["envelopes"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    # Silent connections and unfinished heads are closed after the keep-alive time.
    time.sleep(KEEP_ALIVE_SECONDS + 2)
    for connection in crowd[: DEFAULT_THREADS * 8]:
        connection.settimeout(5)
        assert connection.recv(100) == b""


def test_bodies_are_bounded_and_odd_requests_get_no_server_error(
    platform: Platform, password_file: Path, tmp_path: Path
) -> None:
    platform = platform
    token, tender, _recipients = _tender(platform, password_file, tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    # A JSON body announced larger than any the API takes: refused before it is read.
    host, port = _address(platform)
    with socket.create_connection((host, port), timeout=10) as huge:
        huge.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{}"
        )
        refused = b""
        while piece := huge.recv(4096):  # the server closes the connection after it
            refused += piece
    assert refused.startswith(b"HTTP/1.1 413") and b"too large" in refused
    for length in ("9" * 5000, "\uff11\uff10", "-1"):  # full-width digits: refused, not 500
        with socket.create_connection((host, port), timeout=10) as odd_length:
            odd_length.sendall(
                b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: " + length.encode() + b"\r\n\r\n{}"
            )
            assert odd_length.recv(4096).startswith(b"HTTP/1.1 400"), length
    # One sent without a length, streamed: cut off past the limit.
    chunks = (b"x" * (1 << 16) for _ in range(40))
    streamed = httpx.post(f"{platform.url}/api/auth/login", content=chunks, timeout=10)
    assert streamed.status_code == 413
    # tus: odd headers are 4xx, on the gateway's path as on Django's.
    created = httpx.post(
        f"{platform.url}/api/uploads/",
        headers={
            **auth, "Tus-Resumable": "1.0.0", "Upload-Length": "100",
            "Upload-Metadata": f"tender {base64.b64encode(tender.encode()).decode()},"
            f"envelope {base64.b64encode(b'offre').decode()}",
        },
    )  # fmt: skip
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    odd = {
        "²": "application/offset+octet-stream",
        "9" * 5000: "application/offset+octet-stream",
        "0": "text/plain",
    }
    for offset, content_type in odd.items():
        answer = httpx.patch(
            location,
            headers={
                b"Authorization": auth["Authorization"].encode(), b"Tus-Resumable": b"1.0.0",
                b"Upload-Offset": offset.encode(), b"Content-Type": content_type.encode(),
            },
            content=b"abc",
        )  # fmt: skip
        assert answer.status_code in (400, 415), (offset, answer.status_code)
    no_version = httpx.patch(location, headers=auth, content=b"abc")
    assert no_version.status_code == 412
    too_long = httpx.patch(
        location,
        headers={**auth, "Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"},
        content=b"x" * 101,
    )  # fmt: skip
    assert too_long.status_code == 400 and "announced length" in too_long.json()["detail"]
    head = httpx.head(location, headers={**auth, "Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "0"
    # A chunk cut short keeps what arrived; the company resumes from there.
    with socket.create_connection((host, port)) as cut:
        cut.sendall(
            f"PATCH {urlsplit(location).path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            "Content-Type: application/offset+octet-stream\r\nContent-Length: 100\r\n\r\n"
            .encode() + b"y" * 40
        )  # fmt: skip
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        head = httpx.head(location, headers={**auth, "Tus-Resumable": "1.0.0"})
        if head.headers["Upload-Offset"] == "40":
            break
        time.sleep(0.1)
    assert head.headers["Upload-Offset"] == "40"


def test_a_chunk_refused_before_its_body_is_read_gets_its_answer_and_the_connection_ends(
    platform: Platform, password_file: Path, tmp_path: Path
) -> None:
    """A browser sends a chunk's whole body before it reads any answer: when the platform
    refuses the chunk at once (here: another request still writes the upload, as after a
    connection cut that Chromium resends on another), it must close the connection, or
    both sides wait for ever (hypercorn kept it open once its queue to the app was full)."""
    platform = platform
    token, tender, _recipients = _tender(platform, password_file, tmp_path)
    host, port = _address(platform)
    size = 8 << 20
    with PlatformClient(platform.url, token) as company:
        path = urlsplit(company.create_upload(tender=tender, envelope="offre", length=size)).path
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port)) as writing:
        writing.sendall(head + b"x" * 1000)  # holds the upload while it waits for the rest
        time.sleep(0.5)
        for _ in range(3):
            with socket.create_connection((host, port), timeout=20) as second:
                sender = threading.Thread(target=_send_all, args=(second, head + b"y" * size))
                sender.start()
                answer = b""
                while piece := second.recv(1 << 16):  # until the platform closes it
                    answer += piece
                sender.join(timeout=20)
            assert answer.startswith(b"HTTP/1.1 409") and b"another request" in answer


def _send_all(connection: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the platform closes the connection meanwhile
        connection.sendall(data)


@BOTH_DATABASES
def test_two_server_processes_share_one_upload(
    platform: Platform, password_file: Path, tmp_path: Path
) -> None:
    """PostgreSQL and one envelopes folder: chunks alternate between two processes."""
    token, tender, recipients = _tender(platform, password_file, tmp_path)
    second, second_url = _start(platform.data, platform.env)
    try:
        data = _sealed(recipients, 3_000_000)
        with (
            PlatformClient(platform.url, token) as first,
            PlatformClient(second_url, token) as other,
        ):
            location = first.create_upload(tender=tender, envelope="offre", length=len(data))
            offset, chunk, turn = 0, 400_000, 0
            while offset < len(data):
                server = (first, other)[turn % 2]
                assert server.upload_offset(location) == offset
                offset = server.send_chunk(location, offset, data[offset : offset + chunk])
                turn += 1
            upload_id = location.rsplit("/", 1)[1]
            receipt = other.finalise_deposit(
                tender, [("offre", upload_id, hashlib.sha256(data).hexdigest())]
            )
            ca = certs.load_certificate(first.platform_ca()["certificate_pem"].encode())
        verified = verify_receipt(receipt["receipt"].encode(), trusted_authority=ca)
        assert verified.receipt.envelopes[0].sha256 == hashlib.sha256(data).hexdigest()
        assert verified.receipt.envelopes[0].size == len(data)
    finally:
        second.terminate()
        second.wait(timeout=20)
        if second.stderr is not None:
            second.stderr.close()


def test_the_server_sweeps_the_uploads_of_a_cancelled_tender(
    platform: Platform, password_file: Path, tmp_path: Path
) -> None:
    platform = platform
    token, tender, _recipients = _tender(platform, password_file, tmp_path)
    with PlatformClient(platform.url, token) as company:
        uploads = [
            company.create_upload(tender=tender, envelope="offre", length=100) for _ in range(2)
        ]
        company.send_chunk(uploads[0], 0, b"x" * 50)
    with PlatformClient(platform.url) as anonymous:
        agent = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
    with PlatformClient(platform.url, agent) as buyer:
        buyer.cancel_tender(tender, "Besoin disparu")
    # `scelle serve` sweeps when it starts, then every ten minutes.
    platform.kill()
    platform.restart()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        swept = platform.query(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'deposits.upload.swept'"
        )
        if swept[0][0] == 2:
            break
        time.sleep(0.2)
    assert swept[0][0] == 2
    assert not list((platform.data / "envelopes").glob("*.p7m"))
    said = platform.admin("sweep").stderr
    assert "Removed 0 idle uploads, 0 to tenders taking no deposit" in said
