"""Deadline-rush benchmark: thousands of slow connections against one server on 127.0.0.1.

Three kinds of connections, in equal parts, as hostile or badly connected
companies would open them:
  - idle: connect and send nothing;
  - slow headers: a request head sent one byte every 2 s;
  - slow PATCH: a tus chunk of a real upload sent at 64 KiB/s.
A connection the server closes is opened again, so the count holds. The load
ramps up (250, 500, 1,000, then up to 5,000) until /api/health's p99 passes
1 s; at each step a monitoring probe asks /api/health on a fresh connection
five times a second for 10 s (a probe unanswered after 5 s counts as 5 s). At
1,000 connections a company that has not logged in yet logs in and deposits
10 MB (`scelle.assistant.deposit`, the command's path).

Each architecture runs on the same data, the server pinned to core 0 and
the load to core 1:
  - cheroot, 8 threads, 60 s socket timeout: the server before this change
    (the reference);
  - cheroot, 1,200 threads, 10 s socket timeout: a thread per connection,
    made large;
  - scelle serve: hypercorn's event loop holding the connections, tus bodies
    streamed from it, Django in 8 threads (scelle.platform.gateway).
Printed per step: connections held, health p50/p99, server RSS; per
architecture: the most connections held with p99 under 1 s, server CPU
seconds, whether the fresh deposit completed, and the ratios to the reference.

    python bench/rush.py [--max 5000] [--only scelle]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from deposit import PASSWORD, STORE, cpu_seconds, launch_tender, seed
from scelle.client.api import PlatformClient

STEPS = (250, 500, 1000, 1500, 2000, 3000, 4000, 5000)
MEASURE_SECONDS = 10.0
PROBES_PER_SECOND = 5
PROBE_TIMEOUT = 5.0
SLOW_RATE = 64 << 10
"""Bytes per second of a slow PATCH."""
UPLOADS_PER_COMPANY = 20
UPLOAD_LENGTH = 1 << 30
REFERENCE = "RUSH-2026"
FRESH_MB = 10
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@dataclass
class Architecture:
    name: str
    command: list[str]


def architectures(data: Path) -> list[Architecture]:
    me = [sys.executable, str(Path(__file__).resolve())]
    return [
        Architecture(
            "cheroot, 8 threads, 60 s (before)", [*me, "--cheroot", "8:60", "--data", str(data)]
        ),
        Architecture(
            "cheroot, 1200 threads, 10 s", [*me, "--cheroot", "1200:10", "--data", str(data)]
        ),
        Architecture(
            "scelle serve (hypercorn + gateway)",
            [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0"],
        ),
    ]


def serve_cheroot(data: Path, threads: int, timeout: int) -> None:
    """The server as it was before the gateway: cheroot, a thread per request."""
    from cheroot import wsgi

    from scelle.platform import server

    server.configure(data)
    server.prepare()
    from scelle.platform.wsgi import application

    cheroot = wsgi.Server(
        ("127.0.0.1", 0), application, numthreads=threads, server_name="Scelle",
        request_queue_size=256, timeout=timeout,
    )  # fmt: skip
    cheroot.max_request_body_size = 0
    cheroot.prepare()
    print(f"running on http://127.0.0.1:{cheroot.bind_addr[1]}", file=sys.stderr, flush=True)
    cheroot.serve()


def start(architecture: Architecture) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    process = subprocess.Popen(
        ["taskset", "-c", "0", *architecture.command],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    for _ in range(50):
        line = process.stderr.readline().decode()
        if "running on " in line:
            return process, line.split("running on ", 1)[1].split()[0]
    raise SystemExit(f"{architecture.name} did not start")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Load:
    """The hostile connections, kept at `wanted` of each kind."""

    host: str
    port: int
    uploads: list[tuple[str, str]]
    """(path, token) of the uploads the slow PATCHes write to, one connection each."""
    held: int = 0
    ended: collections.Counter[str] = field(default_factory=collections.Counter)
    """Connections of each kind that ended (closed by the server, or refused)."""
    patch_bytes: int = 0
    """Bytes the slow PATCHes sent."""
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _connection(self, kind: str, index: int) -> None:
        while True:
            writer = None
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.held += 1
                try:
                    if kind == "idle":
                        await reader.read()
                    elif kind == "headers":
                        await self._slow_headers(reader, writer)
                    else:
                        await self._slow_patch(reader, writer, *self.uploads[index])
                finally:
                    self.held -= 1
            except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                pass
            finally:
                if writer is not None:
                    writer.close()
            self.ended[kind] += 1
            await asyncio.sleep(0.1)

    async def _slow_headers(self, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
        closed = asyncio.ensure_future(reader.read())
        try:
            for byte in head:
                w.write(bytes([byte]))
                await w.drain()
                done, _ = await asyncio.wait({closed}, timeout=2.0)
                if done:
                    return
        finally:
            closed.cancel()

    async def _slow_patch(
        self, reader: asyncio.StreamReader, w: asyncio.StreamWriter, path: str, token: str
    ) -> None:
        common = f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        w.write(f"HEAD {path} HTTP/1.1\r\n{common}\r\n".encode())
        await w.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        offset = next(
            int(line.split(b":", 1)[1])
            for line in answer.split(b"\r\n")
            if line.lower().startswith(b"upload-offset:")
        )
        count = min(256 << 20, UPLOAD_LENGTH - offset)
        w.write(
            f"PATCH {path} HTTP/1.1\r\n{common}Upload-Offset: {offset}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {count}\r\n\r\n"
            .encode()
        )  # fmt: skip
        closed = asyncio.ensure_future(reader.read(1))
        piece = b"\0" * (SLOW_RATE // 4)
        try:
            while count > 0:
                w.write(piece[:count])
                count -= len(piece)
                self.patch_bytes += len(piece)
                await w.drain()
                done, _ = await asyncio.wait({closed}, timeout=0.25)
                if done:
                    return
        finally:
            closed.cancel()

    def grow(self, per_kind: int) -> None:
        current = len(self.tasks) // 3
        for index in range(current, per_kind):
            for kind in ("idle", "headers", "patch"):
                self.tasks.append(asyncio.ensure_future(self._connection(kind, index)))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()


async def probe(host: str, port: int) -> float:
    """Seconds for /api/health on a fresh connection (PROBE_TIMEOUT when unanswered)."""
    began = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(HEALTH)
            await writer.drain()
            answer = await reader.read()
        if b'"ok"' not in answer:
            return PROBE_TIMEOUT
        return time.perf_counter() - began
    except (TimeoutError, OSError):
        return PROBE_TIMEOUT
    finally:
        if writer is not None:
            writer.close()


async def measure(host: str, port: int) -> list[float]:
    probes = []
    for _ in range(int(MEASURE_SECONDS * PROBES_PER_SECOND)):
        probes.append(asyncio.ensure_future(probe(host, port)))
        await asyncio.sleep(1 / PROBES_PER_SECOND)
    return list(await asyncio.gather(*probes))


def fresh_company(url: str, email: str, source: str, home: str, results: object) -> None:
    """A company that logs in during the rush and deposits (its own process)."""
    from scelle.assistant.deposit import deposit
    from scelle.core import certs
    from scelle.keystore import KeyStore

    began = time.perf_counter()
    with PlatformClient(url) as anonymous:
        token = anonymous.login(email, PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        authority = certs.load_certificate(client.platform_ca()["certificate_pem"].encode())
        store = KeyStore(Path(home), lambda _new: STORE)
        deposit(
            client, store, REFERENCE, [("offre", Path(source))],
            authority=authority, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    results.put(time.perf_counter() - began)  # type: ignore[attr-defined]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Outcome:
    held_under_1s: int = 0
    p50_1000: float = float("nan")
    p99_1000: float = float("nan")
    rss_peak: float = 0.0
    cpu: float = 0.0
    deposit: str = "not tried"


async def rush(
    architecture: Architecture, uploads: list[tuple[str, str]], fresh: tuple[str, Path, Path],
    maximum: int,
) -> Outcome:  # fmt: skip
    process, url = start(architecture)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    load = Load(host, port, uploads)
    outcome = Outcome()
    cpu_before = cpu_seconds(process.pid)
    print(f"\n{architecture.name}")
    try:
        for step in (s for s in STEPS if s <= maximum):
            load.grow(step // 3)
            await asyncio.sleep(3)
            deposit_process = None
            if step == 1000:
                email, source, home = fresh
                context = multiprocessing.get_context("spawn")
                results = context.Queue()
                deposit_process = context.Process(
                    target=fresh_company, args=(url, email, str(source), str(home), results)
                )
                deposit_process.start()
            ended, sent = load.ended.copy(), load.patch_bytes
            latencies = await measure(host, port)
            ended, sent = load.ended - ended, load.patch_bytes - sent
            held = load.held
            rss = rss_mib(process.pid)
            outcome.rss_peak = max(outcome.rss_peak, rss)
            p50, high = statistics.median(latencies), p99(latencies)
            print(f"  {step:5d} wanted  {held:5d} held  health p50 {p50:6.3f} s  "
                  f"p99 {high:6.3f} s  server RSS {rss:5.0f} MiB  ended in {MEASURE_SECONDS:.0f} s:"
                  f" idle {ended['idle']}, headers {ended['headers']}, PATCH {ended['patch']}; "
                  f"PATCHes sent {sent / MEASURE_SECONDS / 1e6:.1f} MB/s")  # fmt: skip
            if high < 1.0:
                outcome.held_under_1s = max(outcome.held_under_1s, held)
            if deposit_process is not None:
                outcome.p50_1000, outcome.p99_1000 = p50, high
                seconds = await asyncio.to_thread(_wait_for, deposit_process, results, 120)
                outcome.deposit = (
                    f"completed in {seconds:.1f} s" if seconds is not None else "NOT completed"
                )
                print(f"         fresh company: login + {FRESH_MB} MB deposit {outcome.deposit}")
            if step >= 1000 and high >= 1.0:
                break
    finally:
        outcome.cpu = cpu_seconds(process.pid) - cpu_before
        await load.stop()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return outcome


def _wait_for(process: multiprocessing.process.BaseProcess, results: object, limit: float) -> (
    float | None
):  # fmt: skip
    process.join(limit)
    if process.is_alive():
        process.kill()
        process.join()
        return None
    with contextlib.suppress(Exception):
        return float(results.get(timeout=1))  # type: ignore[attr-defined]
    return None


def prepare(data: Path, companies: int) -> tuple[list[tuple[str, str]], str]:
    """Seed the platform, launch the tender, open the slow PATCHes' uploads; returns
    them and the fresh company's address."""
    seed(data, companies + 1)
    process, url = start(architectures(data)[-1])
    uploads = []
    try:
        launch_tender(url, REFERENCE)
        for index in range(companies):
            with PlatformClient(url) as anonymous:
                token = anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"]
            with PlatformClient(url, token) as client:
                for _ in range(UPLOADS_PER_COMPANY):
                    location = client.create_upload(
                        tender=REFERENCE, envelope="offre", length=UPLOAD_LENGTH
                    )
                    uploads.append((urlsplit(location).path, token))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return uploads, f"offres@e{companies:03d}.fr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=STEPS[-1], help="most connections tried")
    parser.add_argument("--only", help="run only the architectures whose name contains this")
    parser.add_argument("--cheroot", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.cheroot:
        threads, timeout = (int(part) for part in options.cheroot.split(":"))
        serve_cheroot(options.data, threads, timeout)
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 3 * options.max:
        raise SystemExit(f"raise the open files limit (ulimit -n {3 * options.max})")
    print(f"deadline-rush benchmark on 127.0.0.1, SQLite, {os.cpu_count()} cores: "
          "server on core 0, load on core 1")  # fmt: skip
    os.sched_setaffinity(0, {1})
    companies = -(-options.max // 3 // UPLOADS_PER_COMPANY)
    results: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="scelle-rush-", dir="/var/tmp") as name:
        folder = Path(name)
        data = folder / "data"
        uploads, email = prepare(data, companies)
        source = folder / "offre.bin"
        source.write_bytes(os.urandom(FRESH_MB * 1_000_000))
        for architecture in architectures(data):
            if options.only and options.only not in architecture.name:
                continue
            home = folder / f"home-{len(results)}"
            results[architecture.name] = asyncio.run(
                rush(architecture, uploads, (email, source, home), options.max)
            )
    print("\nsummary")
    reference = next(iter(results.values()))
    for label, outcome in results.items():
        held = (
            f"x{outcome.held_under_1s / reference.held_under_1s:.1f} the reference"
            if reference.held_under_1s
            else "the reference held none"
        )
        print(f"  {label}: held {outcome.held_under_1s} with p99 < 1 s ({held}); at 1,000: "
              f"p50 {outcome.p50_1000:.3f} s, p99 {outcome.p99_1000:.3f} s "
              f"(x{reference.p99_1000 / outcome.p99_1000:.0f} faster than the reference, "
              f"whose probes time out at {PROBE_TIMEOUT:.0f} s); peak RSS "
              f"{outcome.rss_peak:.0f} MiB; server CPU {outcome.cpu:.1f} s; fresh deposit "
              f"{outcome.deposit}")  # fmt: skip


if __name__ == "__main__":
    main()
