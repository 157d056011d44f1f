"""Behind Debian's nginx with deploy/nginx/scelle-proxy.conf as shipped: a company's
deposit of several tus chunks (each taken whole by nginx, then passed on) goes through it
to `scelle serve --processes 2`, which trusts nginx's X-Forwarded-For; both processes
serve, one killed comes back, and SIGTERM stops them all."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Platform, _start, _stop, said
from tests.e2e.test_deposit_journey import bid, launched, stations  # noqa: F401
from tests.e2e.test_platform_journey import Workstation

pytestmark = [pytest.mark.slow, pytest.mark.platform]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/test installs it

PROXY = Path(__file__).parents[2] / "deploy" / "nginx" / "scelle-proxy.conf"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def front(platform: Platform, tmp_path: Path) -> Iterator[str]:
    """nginx on a port of its own, before the platform restarted with two processes and
    trusting 127.0.0.1 as its proxy."""
    port = platform.url.rsplit(":", 1)[1]
    _stop(platform.process)
    platform.env["SCELLE_TRUSTED_PROXIES"] = "127.0.0.1"
    platform.process, _url = _start(
        platform.data, platform.env, port=port, options=["--processes", "2"]
    )
    root = tmp_path / "nginx"
    root.mkdir()
    listen = _free_port()
    config = root / "nginx.conf"
    # Started as root (CI), nginx's workers would drop to `nobody`, who cannot write
    # pytest's folder: they stay the test's user.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"""daemon off;
{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream scelle_hosts {{ server 127.0.0.1:{port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{listen};
        include {PROXY};
    }}
}}
"""
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(root), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stderr is not None:
            process.stderr.close()


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
    os.kill(min(first), signal.SIGKILL)
    replaced = _children_soon(server.pid, 1, without=first)
    assert _children(server.pid) == (first - {min(first)}) | replaced
    assert len(json.loads(btp.ok("deposits", "list", "--json"))) == 1
    assert _stop(server) == 0
    assert "(killed by signal 9): starting it again" in said(server)


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
