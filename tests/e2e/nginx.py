"""Debian's nginx in front of application hosts, with deploy/nginx/scelle-proxy.conf as
shipped, on a loopback port of its own; its access log names the host each request
went to."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/test installs it

PROXY = Path(__file__).parents[2] / "deploy" / "nginx" / "scelle-proxy.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def nginx(root: Path, upstreams: Sequence[str], *, connections: int = 256) -> Iterator[str]:
    """nginx in `root` before `upstreams` (host:port each), holding up to `connections`
    (clients' and hosts' together); its URL. `root / "access.log"` has one line per
    request: method, URI, status, the upstream(s) that answered."""
    root.mkdir(parents=True)
    listen = free_port()
    config = root / "nginx.conf"
    # A host that failed is tried again after 2 s (nginx's default: 10 s).
    servers = "".join(f" server {upstream} max_fails=1 fail_timeout=2s;" for upstream in upstreams)
    # Started as root (CI), nginx's workers would drop to `nobody`, who cannot write
    # pytest's folder: they stay the test's user.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"""daemon off;
{user}worker_processes 1;
worker_rlimit_nofile {connections + 64};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    log_format hosts '$request_method $uri $status $upstream_addr';
    access_log {root}/access.log hosts;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream scelle_hosts {{{servers} keepalive 16; }}
    server {{
        listen 127.0.0.1:{listen} backlog=4096;
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


def requests_seen(root: Path) -> list[tuple[str, str, str, str]]:
    """(method, URI, status, upstreams) of each request nginx logged."""
    path = root / "access.log"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [tuple(line.split(" ", 3)) for line in lines if line.count(" ") >= 3]  # type: ignore[misc]


def _closing(*sockets: socket.socket) -> Callable[[], None]:
    def close() -> None:
        for each in sockets:
            each.close()

    return close


class CountingRelay:
    """A TCP relay between nginx and an application host that keeps what nginx sent the
    host (the first 64 KiB of each connection) and counts the bytes the host answered:
    what reached the host, and when."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self.sent: list[bytearray] = []
        """Per connection, the start of what nginx sent to the host."""
        self.answered = 0
        """Bytes the host answered, every connection together."""
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def heads(self) -> list[bytes]:
        with self._lock:
            return [bytes(sent) for sent in self.sent]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            record = bytearray()
            ends = threading.Barrier(2, action=_closing(client, upstream))
            with self._lock:
                self.sent.append(record)
                self._open += [client, upstream]
            for args in ((client, upstream, record, ends), (upstream, client, None, ends)):
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        record: bytearray | None,
        ends: threading.Barrier,
    ) -> None:
        try:
            while piece := source.recv(1 << 16):
                with self._lock:
                    if record is None:
                        self.answered += len(piece)
                    elif len(record) < 1 << 16:
                        record += piece[: (1 << 16) - len(record)]
                target.sendall(piece)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            with contextlib.suppress(threading.BrokenBarrierError):
                ends.wait(timeout=60)  # the second direction's end closes both sockets

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for connection in self._open:
                connection.close()
