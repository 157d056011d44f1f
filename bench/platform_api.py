"""Platform benchmark: `scelle serve` on 127.0.0.1 under concurrent API clients.

Measures, on SQLite and (when reachable) PostgreSQL, with production settings
(Argon2 at its real cost, 8 server threads):
  - GET /api/health                       the server's floor: no database, no token (reference)
  - GET /api/tenders/R/recipients         what every bidder's client fetches before depositing
  - POST /api/auth/login                  Argon2 password check and a new token
  - POST /api/key-pairs                   the CA verifying a CSR and issuing a certificate
and prints requests/s, p50/p99 latency, the ratio to /health, and the
server's peak RSS. Every loop is bounded in count and in time.

    python bench/platform_api.py [--seconds 8] [--clients 16]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from front import launch
from scelle.core.authority import build_csr

PASSWORD = "Mot-de-passe-Bench-2026!"
POSTGRES = os.environ.get("SCELLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MAX_REQUESTS = 20_000


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def line(self, reference: Result | None) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        ratio = f"{self.rate / reference.rate:6.2f}" if reference else "  1.00"
        return (
            f"  {self.name:<28} {self.rate:8.1f} req/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
            f"  vs health {ratio}  errors {self.errors}"
        )


def load(
    name: str,
    call: Callable[[httpx.Client, int], httpx.Response],
    url: str,
    *,
    clients: int,
    seconds: float,
    limit: int = MAX_REQUESTS,
) -> Result:
    """`clients` threads calling `call` until `seconds` pass or `limit` requests are done."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(limit))
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < stop:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                started = time.perf_counter()
                response = call(client, index)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code >= 400:
                        errors += 1

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    return Result(name, len(latencies), time.monotonic() - began, latencies, errors)


def admin(data: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "scelle.cli", "admin", *args, "--data", str(data)],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def start(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0"]
    return launch(command, env, "scelle serve")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(label: str, database_url: str | None, seconds: float, clients: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    if database_url:
        env["SCELLE_DATABASE_URL"] = database_url
    with tempfile.TemporaryDirectory(prefix="scelle-bench-") as folder:
        data = Path(folder) / "data"
        password_file = Path(folder) / "pw"
        password_file.write_text(PASSWORD)
        pw = str(password_file)
        admin(data, env, "create-organisation", "Ville de Rouen", "--kind", "buyer")
        admin(data, env, "create-service", "Ville de Rouen", "Marchés")
        admin(
            data, env, "create-user", "acheteur@rouen.fr", "--organisation", "Ville de Rouen",
            "--password-file", pw, "--service", "Marchés",
            "--permission", "manage_keys", "--permission", "manage_tenders",
        )  # fmt: skip
        admin(data, env, "create-organisation", "BTP", "--kind", "bidder")
        admin(
            data,
            env,
            "create-user",
            "offres@btp.fr",
            "--organisation",
            "BTP",
            "--password-file",
            pw,
        )
        process, url = start(data, env)
        try:
            agent = httpx.Client(base_url=url, timeout=60)
            login = {"email": "acheteur@rouen.fr", "password": PASSWORD}
            answer = agent.post("/api/auth/login", json=login).json()
            agent.headers["Authorization"] = f"Bearer {answer['token']}"
            service = answer["user"]["services"][0]["id"]
            key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
            agent.post(
                "/api/key-pairs",
                json={"service": service, "csr_pem": build_csr(key, "PERSO").decode()},
            ).raise_for_status()
            deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
            agent.post(
                "/api/tenders",
                json={"service": service, "reference": "AO-1", "title": "T", "deadline": deadline},
            ).raise_for_status()
            agent.post("/api/tenders/AO-1/launch", json={"key_pairs": ["PERSO"]}).raise_for_status()
            bidder_token = httpx.post(
                f"{url}/api/auth/login", json={"email": "offres@btp.fr", "password": PASSWORD}
            ).json()["token"]
            bidder = {"Authorization": f"Bearer {bidder_token}"}
            # CSRs are made before the clock starts: only the server's work is timed.
            csrs = [
                build_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048), f"K{i}")
                for i in range(60)
            ]

            print(f"\n{label} ({clients} clients, {seconds:.0f} s per phase at most)")
            health = load(
                "GET /api/health", lambda c, _: c.get("/api/health"), url,
                clients=clients, seconds=seconds,
            )  # fmt: skip
            print(health.line(None))
            recipients = load(
                "GET …/recipients (bidder)",
                lambda c, _: c.get("/api/tenders/AO-1/recipients", headers=bidder),
                url, clients=clients, seconds=seconds,
            )  # fmt: skip
            print(recipients.line(health))
            logins = load(
                "POST /api/auth/login", lambda c, _: c.post("/api/auth/login", json=login), url,
                clients=4, seconds=seconds, limit=200,
            )  # fmt: skip
            print(logins.line(health))
            token = agent.headers["Authorization"]
            issued = load(
                "POST /api/key-pairs (CA)",
                lambda c, i: c.post(
                    "/api/key-pairs",
                    headers={"Authorization": token},
                    json={"service": service, "designation": f"K{i}", "csr_pem": csrs[i].decode()},
                ),
                url, clients=4, seconds=seconds, limit=len(csrs),
            )  # fmt: skip
            print(issued.line(health))
            print(f"  server peak RSS {peak_rss_mib(process.pid):.0f} MiB")
            agent.close()
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    options = parser.parse_args()
    cores = os.cpu_count()
    print(f"platform benchmark: scelle serve (hypercorn, 8 threads) on 127.0.0.1, {cores} cores")
    run("SQLite (embedded default)", None, options.seconds, options.clients)
    try:
        import psycopg

        psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        print(f"\nPostgreSQL is not reachable at {POSTGRES}: skipped")
        return
    name = f"scelle_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        run("PostgreSQL", f"{POSTGRES}/{name}", options.seconds, options.clients)
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
