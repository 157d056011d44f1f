"""Behind Debian's nginx with deploy/nginx/scelle-proxy.conf as shipped: a company's
deposit of several tus chunks (each taken whole by nginx, then passed on) goes through it
to `scelle serve --processes 2`, which trusts nginx's X-Forwarded-For; both processes
serve, one killed comes back, and SIGTERM stops them all."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Platform, _start, _stop, said
from tests.e2e.nginx import CountingRelay, free_port, nginx
from tests.e2e.test_deposit_journey import bid, launched, stations  # noqa: F401
from tests.e2e.test_platform_journey import Workstation

pytestmark = [pytest.mark.slow, pytest.mark.platform]


@pytest.fixture
def front(platform: Platform, tmp_path: Path) -> Iterator[str]:
    """nginx on a port of its own, before the platform restarted with two processes and
    trusting 127.0.0.1 as its proxy."""
    port = platform.url.rsplit(":", 1)[1]
    _stop(platform.process)
    platform.env["SCELLE_TRUSTED_PROXIES"] = "127.0.0.1"
    platform.env["SCELLE_METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    platform.process, _url = _start(
        platform.data, platform.env, port=port, options=["--processes", "2"]
    )
    with nginx(tmp_path / "nginx", [f"127.0.0.1:{port}"]) as url:
        yield url


def test_a_deposit_of_several_chunks_goes_through_nginx(
    platform: Platform,
    front: str,
    stations: dict[str, Workstation],  # noqa: F811
    password_file: Path,
    tmp_path: Path,
) -> None:
    reference = launched(platform, stations, password_file)
    btp = stations["btp"]
    btp.ok("login", front, "--email", "offres@btp.fr", "--password-file", str(password_file))
    candidature, offre = bid(tmp_path / "bid", size=40_000_000)  # 3 chunks of 16 MiB
    receipt = tmp_path / "receipt.json"
    out = btp.ok(
        "deposit", reference, "--envelope", f"candidature={candidature}",
        "--envelope", f"offre={offre}", "--receipt", str(receipt),
    )  # fmt: skip
    assert "Deposited to AO-DEPOT" in out
    checked = json.loads(btp.ok("receipts", "verify", str(receipt), "--json"))
    assert checked["authority_checked_against_login"] is True
    offer = next(e for e in checked["envelopes"] if e["kind"] == "offre")
    assert offer["size"] > 2 * (16 << 20)
    assert json.loads(btp.ok("deposits", "list", "--json"))[0]["bidder"] == "BTP Normandie"

    # The two serving processes: both took requests; one killed is started again, and
    # the company goes on through nginx meanwhile.
    server = platform.process
    first = _children_soon(server.pid, 2)
    before = {pid: _cpu_ticks(pid) for pid in first}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # new connections, straight in
        asked = pool.map(lambda _: httpx.get(f"{platform.url}/connexion/").status_code, range(200))
        assert set(asked) == {200}
    assert all(_cpu_ticks(pid) > before[pid] for pid in first)
    # A flood of anonymous requests from one client: some are shed.
    with httpx.Client(base_url=platform.url) as flood:
        answered = [flood.get("/api/openapi.json").status_code for _ in range(60)]
    assert 503 in answered

    os.kill(min(first), signal.SIGKILL)
    replaced = _children_soon(server.pid, 1, without=first)
    assert _children(server.pid) == (first - {min(first)}) | replaced
    assert len(json.loads(btp.ok("deposits", "list", "--json"))) == 1

    # The operators' metrics: on their own address, summed over the processes (the
    # killed one's counts included), never on the public port.
    values = _metrics(platform.env["SCELLE_METRICS_ADDRESS"])
    assert values[("scelle_requests_total", (("class", "deposit"), ("status", "2xx")))] >= 5
    assert values[("scelle_requests_total", (("class", "login"), ("status", "2xx")))] >= 200
    assert values[("scelle_shed_requests_total", (("class", "anonymous"),))] >= 1
    assert values[("scelle_ingested_bytes_total", ())] >= offer["size"]
    assert values[("scelle_uploads_in_progress", ())] == 0
    assert values[("scelle_queue_wait_seconds_count", (("class", "deposit"),))] >= 5
    assert httpx.get(f"{front}/metrics").status_code == 404
    assert _stop(server) == 0
    assert "(killed by signal 9): starting it again" in said(server)


def _metrics(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of /metrics: (name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://{address}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(part) for part in text.split()}


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children_soon(pid: int, count: int, without: AbstractSet[int] = frozenset()) -> set[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = _children(pid) - without
        if len(found) == count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{pid} has children {_children(pid)}")


def test_slow_senders_and_slow_readers_are_held_by_nginx(platform: Platform, tmp_path: Path):
    """A chunk sent at a trickle reaches the host only once whole; a large answer read at a
    trickle leaves the host at once (nginx holds both, not the host's connections)."""
    port = int(platform.url.rsplit(":", 1)[1])
    relay = CountingRelay(("127.0.0.1", port))
    try:
        with nginx(tmp_path / "nginx", [f"127.0.0.1:{relay.port}"]) as url:
            front = url.removeprefix("http://").split(":")
            address = (front[0], int(front[1]))
            # A slow sender: a PATCH whose 64 KiB body comes 4 KiB at a time for 3 s.
            with socket.create_connection(address) as slow:
                slow.sendall(
                    b"PATCH /api/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\n"
                    b"Host: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
                    b"Content-Type: application/offset+octet-stream\r\n"
                    b"Content-Length: 65536\r\nConnection: close\r\n\r\n"
                )
                for _ in range(12):
                    slow.sendall(b"x" * 4096)
                    time.sleep(0.25)
                assert not any(b"PATCH" in head for head in relay.heads())  # not yet there
                slow.sendall(b"x" * (65536 - 12 * 4096))
                slow.settimeout(30)
                answer = slow.recv(4096)
            assert answer.startswith(b"HTTP/1.1 401")  # the host saw it (no token), whole
            assert any(b"PATCH" in head for head in relay.heads())

            # A slow reader of a large answer: the host's part is over long before.
            path = "/static/web/build/deposit.js"  # the largest the platform serves
            size = len(httpx.get(f"{url}{path}").content)
            assert size > 200_000
            before = relay.answered
            with socket.create_connection(address) as reader:
                reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                reader.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Connection: close\r\n\r\n".encode())  # fmt: skip
                reader.recv(1024)  # one small read, then nothing for a while
                deadline = time.monotonic() + 10
                while relay.answered - before < size and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert relay.answered - before >= size  # the host answered all of it
    finally:
        relay.close()
