"""Past one machine: three hosts of the test's own, built with network namespaces
(tests/e2e/netns.py): two application hosts (`scelle serve`, each with its own data folder
holding only the platform's keys) and a data host with PostgreSQL and an S3 object store
with Object Lock (SeaweedFS), behind Debian's nginx with deploy/nginx/scelle-proxy.conf
on the test's own host. Slow senders and slow readers are held by nginx; a company's
chunks land on both application hosts; one host killed mid-upload, the company goes on
through the other; the other host alone serves the opening."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scelle.core.clock import TEST_CLOCK_VARIABLE
from tests.e2e.conftest import Platform, _server_env, _start, _stop
from tests.e2e.netns import Network, PostgresHost, network
from tests.e2e.nginx import nginx, requests_seen
from tests.e2e.test_deposit_journey import _deposit_process, bid, launched, stations  # noqa: F401
from tests.e2e.test_platform_journey import Workstation
from tests.seaweed import SeaweedFS

pytestmark = [pytest.mark.slow, pytest.mark.platform]

PORT = "8000"
"""Each application host's port (each host has its own)."""


@dataclass
class Hosts:
    front: str
    """nginx's URL."""
    platform: Platform
    """The first host, `app1` (`url` is nginx's)."""
    b: subprocess.Popen[bytes]
    """The second host's server, on `app2`."""
    b_data: Path
    net: Network
    logs: Path

    def upstream(self, host: str) -> str:
        """How nginx's log names `host`."""
        return _upstream(self.net, host)

    def start(self, host: str, data: Path) -> subprocess.Popen[bytes]:
        return _serve(self.net, host, data, self.platform.env)


def _upstream(net: Network, host: str) -> str:
    return f"{net.address(host)}:{PORT}"


def _serve(net: Network, host: str, data: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`scelle serve` on `host`, on its own address."""
    process, url = _start(
        data, env, port=PORT, options=["--host", net.address(host)], prefix=net.on(host)
    )
    assert url == f"http://{_upstream(net, host)}"
    return process


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hosts]:
    """Long because: it builds the three hosts, the object store, both servers and nginx,
    and removes them in the reverse order whatever happens."""
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(network(["app1", "app2", "data"]))
        database = PostgresHost(net.address("data"), net.on("data"))
        stack.callback(database.stop)
        seaweed = SeaweedFS(tmp_path / "seaweedfs", ip=net.address("data"), prefix=net.on("data"))
        stack.callback(seaweed.stop)
        clock_file = tmp_path / "clock-seconds"
        monkeypatch.setenv(TEST_CLOCK_VARIABLE, str(clock_file))  # the workstations' clock
        env = _server_env(database.create_database("scelle"), clock_file)
        env.update(seaweed.environment())
        env["SCELLE_STORAGE_URL"] = "s3://scelle-offres/envelopes"
        env["SCELLE_TRUSTED_PROXIES"] = net.front  # nginx, as the hosts see it
        # Companies name nginx (on loopback here); the test checks each host by its address.
        env["SCELLE_ALLOWED_HOSTS"] = f"127.0.0.1,{net.address('app1')},{net.address('app2')}"
        a_data = tmp_path / "host-a"
        for command in (["init"], ["storage", "create"]):  # as an operator sets a platform up
            made = subprocess.run(
                [sys.executable, "-m", "scelle.cli", "admin", *command, "--data", str(a_data)],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
        assert "with Object Lock" in made.stderr  # `say` writes to stderr
        a = _serve(net, "app1", a_data, env)
        stack.callback(lambda: a.poll() is None and _stop(a))
        # The second host: the platform's keys and secret, as an operator deploys them;
        # no database file, no envelope of its own.
        b_data = tmp_path / "host-b"
        shutil.copytree(a_data, b_data, ignore=shutil.ignore_patterns("envelopes", "*.sqlite3*"))
        upstreams = [_upstream(net, "app1"), _upstream(net, "app2")]
        front = stack.enter_context(nginx(tmp_path / "nginx", upstreams))
        platform = Platform(front, a_data, env, a, "scelle", server=database.url)
        running = Hosts(
            front, platform, _serve(net, "app2", b_data, env), b_data, net, tmp_path / "nginx"
        )
        stack.callback(lambda: running.b.poll() is None and _stop(running.b))
        yield running


def _traffic(net: Network) -> tuple[int, int]:
    """Bytes the application hosts received and sent on their network links, together."""
    received = sent = 0
    for host in ("app1", "app2"):
        shown = subprocess.run(
            ["ip", "-n", f"{net.tag}-{host}", "-s", "-j", "link", "show", "eth0"],
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
        counts = json.loads(shown.stdout)[0]["stats64"]
        received += counts["rx"]["bytes"]
        sent += counts["tx"]["bytes"]
    return received, sent


def _requests_in(net: Network) -> int:
    """Bytes the application hosts' open connections on their port have received: what
    nginx passed on (background traffic, to the database and the store, is not counted)."""
    received = 0
    for host in ("app1", "app2"):
        shown = subprocess.run(
            [*net.on(host), "ss", "-tinH", "state", "established", f"( sport = :{PORT} )"],
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
        received += sum(int(n) for n in re.findall(r"bytes_received:(\d+)", shown.stdout))
    return received


def _slow_clients_are_held_by_nginx(hosts: Hosts) -> None:
    """A request body sent at a trickle reaches no host before it is whole; a large answer
    read at a trickle has left its host at once: the hosts' own network links say so."""
    address = hosts.front.removeprefix("http://").split(":")
    front = (address[0], int(address[1]))
    body = 256 << 10
    received, _sent = _traffic(hosts.net)
    passed_on = _requests_in(hosts.net)
    with socket.create_connection(front) as slow:
        slow.sendall(
            b"PATCH /api/uploads/00000000-0000-4000-8000-000000000000 HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            b"Content-Type: application/offset+octet-stream\r\n"
            b"Content-Length: " + str(body).encode() + b"\r\nConnection: close\r\n\r\n"
        )
        for _ in range(12):  # 3 s of a trickle, 3/4 of the body
            slow.sendall(b"x" * (body // 16))
            time.sleep(0.25)
        assert _requests_in(hosts.net) - passed_on < 1024  # not a byte of it on any host yet
        assert _traffic(hosts.net)[0] - received < body // 4  # nor on their links
        slow.sendall(b"x" * (body - 12 * (body // 16)))
        slow.settimeout(30)
        assert slow.recv(4096).startswith(b"HTTP/1.1 401")  # a host saw it (no token), whole
    assert _traffic(hosts.net)[0] - received >= body

    path = "/static/web/build/deposit.js"  # the largest the platform serves
    size = len(httpx.get(f"{hosts.front}{path}").content)
    assert size > 200_000
    _received, sent = _traffic(hosts.net)
    with socket.create_connection(front) as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        reader.recv(1024)  # one small read, then nothing for a while
        deadline = time.monotonic() + 10
        while _traffic(hosts.net)[1] - sent < size and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _traffic(hosts.net)[1] - sent >= size  # the host sent all of it


def _answering(front: str) -> None:
    """nginx passes requests on again (a host it saw fail is tried after fail_timeout)."""
    deadline = time.monotonic() + 30
    while httpx.get(f"{front}/api/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "nginx passes nothing on"
        time.sleep(0.2)


def _patches(logs: Path) -> list[tuple[str, str]]:
    """(status, upstream) of each PATCH nginx passed on."""
    return [(status, up) for method, _uri, status, up in requests_seen(logs) if method == "PATCH"]


def _a_flood_takes_no_host_out(hosts: Hosts) -> None:
    """One client flooding the platform is shed by the hosts (503); nginx must not take
    that for hosts failing: if it did, it would stop passing anyone's requests on
    ("no live upstreams", 502 for all) for as long as the flood lasts."""
    with httpx.Client(base_url=hosts.front, timeout=30) as client:

        def ask(_index: int) -> int:
            return client.get("/api/openapi.json").status_code

        shed = 0
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for _ in range(10):  # until the hosts' rate limit sheds this client
                shed += list(pool.map(ask, range(200))).count(503)
                if shed:
                    break
        assert shed > 0
        assert client.get("/api/health").status_code == 200
    assert not [line for line in requests_seen(hosts.logs) if line[2] == "502"]


def test_two_hosts_share_the_database_and_the_store(
    hosts: Hosts,
    stations: dict[str, Workstation],  # noqa: F811
    password_file: Path,
    tmp_path: Path,
) -> None:
    """Long because: it is one company's deposit and one buyer's opening across hosts."""
    platform = hosts.platform
    _slow_clients_are_held_by_nginx(hosts)
    _a_flood_takes_no_host_out(hosts)
    reference = launched(platform, stations, password_file)
    btp = stations["btp"]
    btp.ok("login", hosts.front, "--email", "offres@btp.fr", "--password-file", str(password_file))
    candidature, offre = bid(tmp_path / "bid", size=1000)
    with (offre / "maquette.bin").open("wb") as handle:
        handle.truncate(120 << 20)  # sparse: 8 chunks of 16 MiB to send
    receipt = tmp_path / "receipt.json"
    client = _deposit_process(btp, reference, candidature, offre, receipt)
    deadline = time.monotonic() + 120
    while len([s for s, _up in _patches(hosts.logs) if s == "204"]) < 3:
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, requests_seen(hosts.logs)
        time.sleep(0.02)
    # Host B dies in the middle of the upload; the company's command goes on through A.
    hosts.b.kill()
    hosts.b.wait()
    if hosts.b.stderr is not None:
        hosts.b.stderr.close()
    out, err = client.communicate(timeout=180)
    assert client.returncode == 0, err
    assert b"Deposited to AO-DEPOT" in out + err
    answered = {up for status, up in _patches(hosts.logs) if status == "204"}
    a, b = hosts.upstream("app1"), hosts.upstream("app2")
    assert {a, b} <= answered, _patches(hosts.logs)  # chunks stored by both hosts
    checked = json.loads(btp.ok("receipts", "verify", str(receipt), "--json"))
    assert next(e for e in checked["envelopes"] if e["kind"] == "offre")["size"] > 120 << 20
    assert not list((platform.data / "envelopes").glob("*.p7m"))  # all in the store
    assert not list((hosts.b_data / "envelopes").glob("*.p7m"))

    # B back, A down: B alone serves the opening, from the store.
    hosts.b = hosts.start("app2", hosts.b_data)
    _stop(platform.process)
    _answering(hosts.front)
    agent = stations["agent"]
    agent.ok(
        "login", hosts.front, "--email", "acheteur@rouen.fr", "--password-file", str(password_file)
    )
    platform.pass_deadline(dt.datetime.now(dt.UTC) + dt.timedelta(days=10, minutes=1))
    out_dir = tmp_path / "ouverture"
    said = agent.ok("open", reference, "--key", "PERSO", "--out", str(out_dir))
    assert said.count("Opened") == 2
    opened = next((out_dir / "BTP Normandie").iterdir())
    assert (opened / "offre" / "maquette.bin").stat().st_size == 120 << 20
    assert (opened / "candidature" / "DC1.pdf").read_bytes() == candidature.read_bytes()
    downloads = [
        up
        for method, uri, status, up in requests_seen(hosts.logs)
        if method == "GET" and "/envelopes/" in uri and status in ("200", "206")
    ]
    assert downloads and set(downloads) == {b}
