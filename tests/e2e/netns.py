"""Hosts of the test's own on one machine: network namespaces (`ip netns`) joined by a
bridge, each with its own address, loopback and ports, as separate machines on one
network. The test's own namespace joins the network too, as the load balancer's host:
what it starts (nginx, the company's and the buyer's commands) reaches the hosts by
their addresses, across veth links, not through loopback.

The addresses are in 198.18.0.0/15, kept by RFC 2544 for benchmark networks: no route
of the machine's uses them. Everything is removed when the test ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args: str) -> None:
    done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Network:
    """Hosts by name: their address (`address`) and how to run a command on them (`on`)."""

    tag: str
    """What every namespace and link of this network is named after."""
    subnet: str
    """The network's first three bytes: 198.18.N."""
    hosts: list[str] = field(default_factory=list)

    @property
    def front(self) -> str:
        """The address of the test's own host (where nginx runs) on this network."""
        return f"{self.subnet}.1"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{self.hosts.index(host) + 2}"

    def on(self, host: str) -> list[str]:
        """The prefix that runs a command on `host`."""
        return [IP, "netns", "exec", f"{self.tag}-{host}"]


def available() -> str | None:
    """Why this machine cannot build such hosts, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if not Path(IP).exists():
        return "iproute2's `ip` is missing"
    return None


@contextlib.contextmanager
def network(hosts: Sequence[str]) -> Iterator[Network]:
    """A bridge with `hosts` on it (198.18.N.2, .3, ...) and the test's namespace
    (198.18.N.1); each host has its loopback up."""
    why = available()
    if why is not None:
        pytest.skip(why)
    number = os.getpid() % 250 + 1
    net = Network(f"scelle{number}", f"198.18.{number}", list(hosts))
    switch = f"{net.tag}-lan"
    made: list[str] = []
    try:
        for name in [switch, *(f"{net.tag}-{host}" for host in hosts)]:
            subprocess.run([IP, "netns", "del", name], capture_output=True, check=False)
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        # The test's own end of its link, then one link per host; the switch's ends join
        # the bridge.
        ends = [("front", None, net.front), *((host, host, net.address(host)) for host in hosts)]
        for index, (_name, host, address) in enumerate(ends):
            ours, theirs = f"sc{number}v{index}", f"sc{number}s{index}"
            _ip("link", "add", ours, "type", "veth", "peer", "name", theirs)
            _ip("link", "set", theirs, "netns", switch)
            _ip("-n", switch, "link", "set", theirs, "master", "br0", "up")
            if host is not None:
                _ip("link", "set", ours, "netns", f"{net.tag}-{host}")
                _ip("-n", f"{net.tag}-{host}", "link", "set", ours, "name", "eth0")
                ours = "eth0"
            prefix = [] if host is None else ["-n", f"{net.tag}-{host}"]
            _ip(*prefix, "addr", "add", f"{address}/24", "dev", ours)
            _ip(*prefix, "link", "set", ours, "up")
        yield net
    finally:
        # Deleting the switch's namespace removes its ends of the links, and with them
        # the other ends.
        for name in reversed(made):
            subprocess.run([IP, "netns", "del", name], capture_output=True, check=False)


class PostgresHost:
    """A PostgreSQL cluster of its own on `address` (started through `prefix`), run by the
    `postgres` user from Debian's server packages; trust authentication, as a private
    network's database server in a test."""

    def __init__(self, address: str, prefix: Sequence[str]) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not found:
            pytest.skip("PostgreSQL's server programs are missing (/usr/lib/postgresql)")
        binaries = found[-1].parent
        # pytest's folders are the test user's only; the cluster's is the postgres user's.
        self.folder = Path(tempfile.mkdtemp(prefix="scelle-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        data = self.folder / "data"
        subprocess.run(
            [binaries / "initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C"],
            user="postgres", capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        network = address.rsplit(".", 1)[0] + ".0/24"
        with (data / "pg_hba.conf").open("a") as rules:
            rules.write(f"host all all {network} trust\n")  # the hosts on the bridge
        self.url = f"postgresql://postgres@{address}:5432"
        self._log = (self.folder / "log").open("wb")
        self._process = subprocess.Popen(
            [*prefix, "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
             str(binaries / "postgres"), "-D", str(data), "-p", "5432",
             "-c", f"listen_addresses={address}", "-c", f"unix_socket_directories={self.folder}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )  # fmt: skip
        self._wait()

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(f"{self.url}/postgres", connect_timeout=3).close()
                return
            except psycopg.OperationalError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "log").read_text(errors="replace")
                    self.stop()
                    raise AssertionError(f"PostgreSQL did not start:\n{log}") from None
                time.sleep(0.2)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # name is the test's
        return f"{self.url}/{name}"

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM waits for clients
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
