"""Debian's nginx in front of application hosts, with deploy/nginx/scelle-proxy.conf as
shipped, on a loopback port of its own; its access log names the host each request
went to."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/test installs it

PROXY = Path(__file__).parents[2] / "deploy" / "nginx" / "scelle-proxy.conf"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def nginx(root: Path, upstreams: Sequence[str]) -> Iterator[str]:
    """nginx in `root` before `upstreams` (host:port each); its URL. `root / "access.log"`
    has one line per request: method, URI, status, the upstream(s) that answered."""
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
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
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


def requests_seen(root: Path) -> list[tuple[str, str, str, str]]:
    """(method, URI, status, upstreams) of each request nginx logged."""
    path = root / "access.log"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [tuple(line.split(" ", 3)) for line in lines if line.count(" ") >= 3]  # type: ignore[misc]
