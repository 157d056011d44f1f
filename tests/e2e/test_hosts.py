"""Past one machine: two application hosts (`scelle serve`, each with its own data folder
holding only the platform's keys) share PostgreSQL and an S3 object store with Object
Lock (SeaweedFS), behind Debian's nginx with deploy/nginx/scelle-proxy.conf. A
company's chunks land on both hosts; one host killed mid-upload, the company goes on
through the other; the other host alone serves the opening."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Platform, _start, _stop
from tests.e2e.nginx import nginx, requests_seen
from tests.e2e.test_deposit_journey import _deposit_process, bid, launched, stations  # noqa: F401
from tests.e2e.test_platform_journey import Workstation
from tests.seaweed import SeaweedFS

pytestmark = [pytest.mark.slow, pytest.mark.platform]


@dataclass
class Hosts:
    front: str
    """nginx's URL."""
    a: Platform
    """The first host (the test's platform, restarted on the store)."""
    b: subprocess.Popen[bytes]
    b_data: Path
    b_port: str
    logs: Path


@pytest.fixture
def hosts(platform: Platform, tmp_path: Path) -> Iterator[Hosts]:
    seaweed = SeaweedFS(tmp_path / "seaweedfs")
    try:
        port = platform.url.rsplit(":", 1)[1]
        _stop(platform.process)
        platform.env.update(seaweed.environment())
        platform.env["SCELLE_STORAGE_URL"] = "s3://scelle-offres/envelopes"
        platform.env["SCELLE_TRUSTED_PROXIES"] = "127.0.0.1"
        made = subprocess.run(
            [sys.executable, "-m", "scelle.cli", "admin", "storage", "create",
             "--data", str(platform.data)],
            env=platform.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "with Object Lock" in made.stderr  # `say` writes to stderr
        platform.process, _url = _start(platform.data, platform.env, port=port)
        # The second host: the platform's keys and secret, as an operator deploys them;
        # no database file, no envelope of its own.
        b_data = tmp_path / "host-b"
        shutil.copytree(
            platform.data, b_data, ignore=shutil.ignore_patterns("envelopes", "*.sqlite3*")
        )
        b, b_url = _start(b_data, platform.env)
        b_port = b_url.rsplit(":", 1)[1]
        running = Hosts("", platform, b, b_data, b_port, tmp_path / "nginx")
        try:
            upstreams = [f"127.0.0.1:{port}", f"127.0.0.1:{b_port}"]
            with nginx(running.logs, upstreams) as running.front:
                yield running
        finally:
            if running.b.poll() is None:
                _stop(running.b)
    finally:
        seaweed.stop()


def _answering(front: str) -> None:
    """nginx passes requests on again (a host it saw fail is tried after fail_timeout)."""
    deadline = time.monotonic() + 30
    while httpx.get(f"{front}/api/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "nginx passes nothing on"
        time.sleep(0.2)


def _patches(logs: Path) -> list[tuple[str, str]]:
    """(status, upstream) of each PATCH nginx passed on."""
    return [(status, up) for method, _uri, status, up in requests_seen(logs) if method == "PATCH"]


@pytest.mark.parametrize("platform", ["postgresql"], indirect=True)
def test_two_hosts_share_the_database_and_the_store(
    platform: Platform,
    hosts: Hosts,
    stations: dict[str, Workstation],  # noqa: F811
    password_file: Path,
    tmp_path: Path,
) -> None:
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
    a, b = f"127.0.0.1:{platform.url.rsplit(':', 1)[1]}", f"127.0.0.1:{hosts.b_port}"
    assert {a, b} <= answered, _patches(hosts.logs)  # chunks stored by both hosts
    checked = json.loads(btp.ok("receipts", "verify", str(receipt), "--json"))
    assert next(e for e in checked["envelopes"] if e["kind"] == "offre")["size"] > 120 << 20
    assert not list((platform.data / "envelopes").glob("*.p7m"))  # all in the store
    assert not list((hosts.b_data / "envelopes").glob("*.p7m"))

    # B back, A down: B alone serves the opening, from the store.
    hosts.b, _url = _start(hosts.b_data, platform.env, port=hosts.b_port)
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
