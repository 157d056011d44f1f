"""Application hosts behind Debian's nginx, for the benchmarks: `count` `scelle serve`
(one process each, on the same data, as hosts sharing one database) and nginx before them
with deploy/nginx/scelle-proxy.conf as shipped (the tests' harness, tests/e2e/nginx.py).

    python bench/front.py --data DIR [--hosts 2] [--connections 20000]

prints `running on URL` (nginx's) once every host answers through nginx, and stops them
all on SIGTERM. The benchmarks run it as they run `scelle serve`: its CPU and memory are
its children's."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.nginx import nginx


def launch(
    command: list[str], env: dict[str, str], what: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a server that says `running on URL` on its standard error: the process, and
    the URL (its later lines are dropped)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    for _ in range(50):
        line = process.stderr.readline().decode()
        if "running on " in line:
            os.set_blocking(process.stderr.fileno(), False)
            return process, line.split("running on ", 1)[1].split()[0]
    process.kill()
    raise SystemExit(f"{what} did not start")


def _host(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0"]
    process, url = launch(command, env, "a host")
    return process, url.removeprefix("http://")


def start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """This script in a process of its own on `data`, as the benchmarks start `scelle
    serve`: the process (its children are nginx and the hosts) and nginx's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    return launch([sys.executable, __file__, "--data", str(data)], env, "nginx and its hosts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--connections", type=int, default=20000)
    options = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    env["SCELLE_TRUSTED_PROXIES"] = "127.0.0.1"  # nginx: the clients' addresses are its word
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    hosts = []
    try:
        hosts = [_host(options.data, env) for _ in range(options.hosts)]
        with tempfile.TemporaryDirectory(prefix="scelle-front-") as folder:
            upstreams = [address for _process, address in hosts]
            # BENCH_FRONT_LOGS=DIR keeps nginx's logs (DIR/nginx) after the run.
            root = Path(os.environ.get("BENCH_FRONT_LOGS") or folder) / "nginx"
            with nginx(root, upstreams, connections=options.connections) as url:
                print(f"running on {url}", file=sys.stderr, flush=True)
                while not stopped.wait(0.5):
                    pass
    finally:
        for process, _address in hosts:
            process.terminate()
        for process, _address in hosts:
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
