"""Deadline-day benchmark: one laptop's attacks on one server on 127.0.0.1, one at a time.

Each attack holds N hostile connections (1,000, then more) while a buyer and a company
use the platform:
  - idle: connect and send nothing;
  - slow head: a request head sent one byte every 2 s;
  - slow PATCH: a tus chunk of a real upload sent at 64 KiB/s, from N addresses (as
    many companies);
  - pipelined: three OpenAPI documents (61 KB, no login) asked at once, read 512 B/s
    (a slow-read tool's way), from N addresses of 127.0.0.0/8;
  - slow readers: one document asked, read 256 B/s through a 4 KiB window;
  - many ranges: three heads of a thousand ranges each, pipelined, answers read;
  - flood from one address / from many addresses: each connection asks for the document again
    as soon as it has the answer (keep-alive), from 127.0.0.1 or from N addresses.
A connection the server closes is opened again, so the count holds. During each
attack: /api/health probed five times a second for 10 s on fresh connections (an
unanswered probe counts as 5 s), the login page once, a company logs in and deposits
10 MB (`scelle.assistant.deposit`, the command's path), the server's RSS. Then the
attack stops, its sockets reset as a killed process's are, and the bench counts the
seconds until health and the login page answer again.

Four servers, on the same data, the server on core 0 and the load on core 1:
  - before (the reference): tus PATCHes streamed on the loop, every other request
    straight to Django through a2wsgi, 8 threads, one first-come queue, the OpenAPI
    document built for each request: the platform before admission control;
  - admission, hypercorn's HTTP/1.1 as it is: this change without `pipelining`;
  - scelle serve: admission, and hypercorn reading on while a request runs;
  - nginx before two `scelle serve` (bench/front.py, deploy/nginx as shipped): the attacks
    meet nginx, the hosts see only what it passes on.
`--only scelle` runs the last two, each against `scelle serve` as the reference.

    python bench/rush.py [--levels 1000,3000] [--only scelle] [--attacks pipelined,...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from deposit import PASSWORD, STORE, cpu_seconds, launch_tender, seed
from front import launch
from scelle.client.api import BUSY_RETRIES, PlatformClient

LEVELS = (1000, 3000)
MANY_ADDRESSES = "flood from many addresses"
FRONT = "nginx, then two scelle serve (bench/front.py)"
ATTACKS = (
    "idle", "slow head", "slow PATCH", "pipelined", "slow readers", "many ranges",
    "flood from one address", MANY_ADDRESSES,
)  # fmt: skip
RAMP_SECONDS = 3.0
MEASURE_SECONDS = 10.0
PROBES_PER_SECOND = 5
PROBE_TIMEOUT = 5.0
DEPOSIT_TIMEOUT = 60.0
RECOVERY_LIMIT = 60.0
SLOW_RATE = 64 << 10
UPLOADS_PER_COMPANY = 20
UPLOAD_LENGTH = 1 << 30
REFERENCE = "RUSH-2026"
FRESH_MB = 10
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
LOGIN_PAGE = b"GET /connexion/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
DOCUMENT = b"GET /api/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
MANY_RANGES = (
    b"GET /api/openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes="
    + b",".join(b"%d-%d" % (i, i) for i in range(1000))
    + b"\r\n\r\n"
)


@dataclass
class Architecture:
    name: str
    command: list[str]


def architectures(data: Path) -> list[Architecture]:
    me = [sys.executable, str(Path(__file__).resolve()), "--data", str(data)]
    return [
        Architecture("before: hypercorn + a2wsgi, one queue", [*me, "--serve", "before"]),
        Architecture("admission, hypercorn's HTTP/1.1 as is", [*me, "--serve", "unpatched"]),
        Architecture(
            "scelle serve",
            [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0"],
        ),
        Architecture(
            FRONT, [sys.executable, str(Path(__file__).with_name("front.py")), "--data", str(data)]
        ),
    ]


def serve_variant(data: Path, variant: str) -> None:
    """The reference servers, in this process: `before` rebuilds the platform as it was
    (a2wsgi's pool behind hypercorn, the schema built per request); `unpatched` is
    `scelle serve` without `pipelining`."""
    from scelle.platform import pipelining, server

    server.configure(data)
    server.prepare()
    pipelining.install = lambda: None
    if variant == "before":
        from a2wsgi import WSGIMiddleware

        from scelle.platform import api, gateway

        build = api.ScelleAPI.get_openapi_schema

        def uncached(self: api.ScelleAPI, **options: object) -> object:
            self._schemas.clear()
            return build(self, **options)  # type: ignore[arg-type]

        api.ScelleAPI.get_openapi_schema = uncached  # type: ignore[assignment, method-assign]

        current = gateway.Gateway

        class Before:
            """tus PATCHes streamed on the loop as before; the rest straight to a2wsgi."""

            def __init__(self, application: object, **options: object) -> None:
                self.django = WSGIMiddleware(application, workers=8)  # type: ignore[arg-type]
                self.patches = current(application, **options)  # type: ignore[arg-type]

            async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
                if scope["type"] == "http" and scope["method"] == "PATCH":
                    await self.patches(scope, receive, send)  # type: ignore[arg-type]
                elif scope["type"] == "lifespan":
                    await gateway._lifespan(receive, send)  # type: ignore[arg-type]
                elif scope["type"] == "http":
                    await self.django(scope, receive, send)  # type: ignore[arg-type]

        gateway.Gateway = Before  # type: ignore[assignment, misc]
    server.serve(
        "127.0.0.1", 0, threads=8,
        ready=lambda url: print(f"running on {url}", file=sys.stderr, flush=True),
    )  # fmt: skip


def start(architecture: Architecture) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    return launch(["taskset", "-c", "0", *architecture.command], env, architecture.name)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mib(pid: int) -> float:
    """The resident memory of a process and its living children (nginx and two hosts)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024 + sum(rss_mib(int(child)) for child in children)
    return float("nan")


def source(index: int) -> str:
    """The index-th attacking address in 127.0.0.0/8."""
    return f"127.{10 + index // 250}.{index % 250 // 50}.{index % 50 + 1}"


@dataclass
class Attack:
    """N connections of one kind, each opened again when the server closes it."""

    kind: str
    host: str
    port: int
    uploads: list[tuple[str, str]]
    held: int = 0
    answers: int = 0
    """Answers the flooding connections got."""
    sockets: set[socket.socket] = field(default_factory=set)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def grow(self, count: int) -> None:
        for index in range(len(self.tasks), count):
            self.tasks.append(asyncio.ensure_future(self._connection(index)))

    async def stop(self) -> None:
        """End the attack as a killed process ends: every socket reset at once."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        self.tasks.clear()

    async def _connection(self, index: int) -> None:
        # A thousand companies uploading come from a thousand addresses: from one, the
        # platform takes 66 chunks at once (two at work, 64 waiting) and sheds the rest.
        many = self.kind in ("slow PATCH", "pipelined", "slow readers", "many ranges",
                             MANY_ADDRESSES)  # fmt: skip
        while True:
            writer = None
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.sockets.add(sock)
                if self.kind in ("pipelined", "slow readers"):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                if many:
                    sock.bind((source(index), 0))
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, (self.host, self.port))
                reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
                self.held += 1
                try:
                    await self._behave(index, reader, writer)
                finally:
                    self.held -= 1
            except (OSError, asyncio.IncompleteReadError, ValueError, RuntimeError):
                pass  # refused, shed (no Upload-Offset: StopIteration, as RuntimeError)
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(0.1)

    async def _behave(
        self, index: int, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        if self.kind == "idle":
            await reader.read()
        elif self.kind == "slow head":
            head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
            for byte in head:
                w.write(bytes([byte]))
                await w.drain()
                await asyncio.sleep(2.0)
        elif self.kind == "slow PATCH":
            await _slow_patch(reader, w, *self.uploads[index % len(self.uploads)])
        elif self.kind in ("pipelined", "slow readers"):
            w.write(DOCUMENT * 3 if self.kind == "pipelined" else DOCUMENT)
            await w.drain()
            rate = 512 if self.kind == "pipelined" else 256
            while await reader.read(rate):
                await asyncio.sleep(1.0)
        elif self.kind == "many ranges":
            while True:
                w.write(MANY_RANGES * 3)
                await w.drain()
                for _ in range(3):
                    await _read_answer(reader)
                    self.answers += 1
        else:  # floods
            while True:
                w.write(DOCUMENT)
                await w.drain()
                await _read_answer(reader)
                self.answers += 1


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    await reader.readexactly(length)
    if b"connection: close" in head.lower():
        raise ValueError("closed by the server")
    return head


async def _slow_patch(
    reader: asyncio.StreamReader, w: asyncio.StreamWriter, path: str, token: str
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
            await w.drain()
            done, _ = await asyncio.wait({closed}, timeout=0.25)
            if done:
                return
    finally:
        closed.cancel()


async def timed(host: str, port: int, request: bytes, expect: bytes) -> float:
    """Seconds for `request` on a fresh connection (PROBE_TIMEOUT when unanswered)."""
    began = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            await writer.drain()
            answer = await reader.read()
        return time.perf_counter() - began if expect in answer else PROBE_TIMEOUT
    except (TimeoutError, OSError):
        return PROBE_TIMEOUT
    finally:
        if writer is not None:
            writer.close()


async def probes(host: str, port: int) -> list[float]:
    started = []
    for _ in range(int(MEASURE_SECONDS * PROBES_PER_SECOND)):
        started.append(asyncio.ensure_future(timed(host, port, HEALTH, b'"ok"')))
        await asyncio.sleep(1 / PROBES_PER_SECOND)
    return list(await asyncio.gather(*started))


async def recovery(host: str, port: int) -> float:
    """Seconds until health and the login page both answer (RECOVERY_LIMIT at most)."""
    began = time.perf_counter()
    while time.perf_counter() - began < RECOVERY_LIMIT:
        if (
            await timed(host, port, HEALTH, b'"ok"') < PROBE_TIMEOUT
            and await timed(host, port, LOGIN_PAGE, b"200") < PROBE_TIMEOUT
        ):
            return time.perf_counter() - began
        await asyncio.sleep(0.1)
    return float("inf")


def fresh_company(url: str, email: str, source: str, home: str, results: object) -> None:
    """A company that logs in during the attack and deposits (its own process)."""
    from scelle.assistant.deposit import deposit
    from scelle.core import certs
    from scelle.keystore import KeyStore

    began = time.perf_counter()
    # As the command does: a 503 is sent again after its Retry-After.
    with PlatformClient(url, busy_retries=BUSY_RETRIES) as anonymous:
        token = anonymous.login(email, PASSWORD)["token"]
    with PlatformClient(url, token, busy_retries=BUSY_RETRIES) as client:
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
class Row:
    attack: str
    level: int
    held: int
    p50: float
    p99: float
    login: float
    deposit: float | None
    rss: float
    recovered: float


async def one_attack(
    process: subprocess.Popen[bytes], url: str, kind: str, level: int,
    uploads: list[tuple[str, str]], fresh: tuple[str, Path, Path],
) -> Row:  # fmt: skip
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    attack = Attack(kind, host, port, uploads)
    attack.grow(level)
    try:
        await asyncio.sleep(RAMP_SECONDS)
        email, source_file, home = fresh
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        company = context.Process(
            target=fresh_company, args=(url, email, str(source_file), str(home), results)
        )
        company.start()
        latencies = await probes(host, port)
        login = await timed(host, port, LOGIN_PAGE, b"200")
        rss = rss_mib(process.pid)
        held = attack.held
        seconds = await asyncio.to_thread(_wait_for, company, results, DEPOSIT_TIMEOUT)
    finally:
        await attack.stop()
    recovered = await recovery(host, port)
    return Row(
        kind, level, held, statistics.median(latencies), p99(latencies), login, seconds, rss,
        recovered,
    )  # fmt: skip


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


def show(row: Row) -> None:
    deposit = f"{row.deposit:6.1f} s" if row.deposit is not None else "  FAILED"
    recovered = f"{row.recovered:5.1f} s" if row.recovered != float("inf") else "  never"
    print(f"  {row.attack:22s} {row.level:5d} {row.held:5d}  {row.p50:6.3f} {row.p99:6.3f}"
          f"  {row.login:6.3f}   {deposit}  {row.rss:6.0f}   {recovered}", flush=True)  # fmt: skip


async def run(
    architecture: Architecture, attacks: list[str], levels: list[int],
    uploads: list[tuple[str, str]], fresh: tuple[str, Path, Path],
) -> list[Row]:  # fmt: skip
    rows = []
    print(f"\n{architecture.name}")
    print("  attack                 conns  held  health p50    p99  login page  10 MB deposit"
          "  RSS MiB  recovered")  # fmt: skip
    process, url = start(architecture)
    cpu_before = cpu_seconds(process.pid)
    try:
        for kind in attacks:
            for level in levels:
                row = await one_attack(process, url, kind, level, uploads, fresh)
                show(row)
                rows.append(row)
                if row.recovered == float("inf"):  # start again, so the next is fair
                    stop(process)
                    process, url = start(architecture)
    finally:
        print(f"  server CPU: {cpu_seconds(process.pid) - cpu_before:.0f} s (last process)")
        stop(process)
    return rows


def prepare(data: Path, companies: int) -> tuple[list[tuple[str, str]], str]:
    """Seed the platform, launch the tender, open the slow PATCHes' uploads; returns
    them and the fresh company's address."""
    seed(data, companies + 1)
    process, url = start(architectures(data)[2])
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
        stop(process)
    return uploads, f"offres@e{companies:03d}.fr"


def summary(results: dict[str, list[Row]]) -> None:
    print("\nsummary at 1,000 connections (ratios: the reference's figure / this one's)")
    reference = {row.attack: row for row in next(iter(results.values())) if row.level == 1000}
    for label, rows in results.items():
        print(f"  {label}")
        for row in (r for r in rows if r.level == 1000 and r.attack in reference):
            base = reference[row.attack]
            print(f"    {row.attack:22s} health p99 {row.p99:6.3f} s (x{base.p99 / row.p99:5.1f})"
                  f"  recovered in {row.recovered:5.1f} s (x{base.recovered / row.recovered:5.1f})"
                  f"  deposit {'ok' if row.deposit is not None else 'FAILED'}")  # fmt: skip
        most = max((r for r in rows if r.p99 < 1.0), key=lambda r: r.held, default=None)
        if most is not None:
            print(f"    most held with health p99 < 1 s: {most.held} ({most.attack})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--only", help="run only the servers whose name contains this")
    parser.add_argument(
        "--reference-levels", default="1000", help="levels of the reference servers (slow)"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve_variant(options.data, options.serve)
        return
    levels = [int(part) for part in options.levels.split(",")]
    attacks = [part.strip() for part in options.attacks.split(",")]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * max(levels) + 100:
        raise SystemExit(f"raise the open files limit (ulimit -n {2 * max(levels) + 100})")
    print(f"deadline-day benchmark on 127.0.0.1, SQLite, {os.cpu_count()} cores: "
          "server on core 0, load on core 1")  # fmt: skip
    os.sched_setaffinity(0, {1})
    companies = -(-max(levels) // UPLOADS_PER_COMPANY)
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="scelle-rush-", dir="/var/tmp") as name:
        folder = Path(name)
        data = folder / "data"
        uploads, email = prepare(data, companies)
        source_file = folder / "offre.bin"
        source_file.write_bytes(os.urandom(FRESH_MB * 1_000_000))
        for architecture in architectures(data):
            if options.only and options.only not in architecture.name:
                continue
            reference = architecture.name not in ("scelle serve", FRONT)
            chosen = [int(p) for p in options.reference_levels.split(",")] if reference else levels
            home = folder / f"home-{len(results)}"
            results[architecture.name] = asyncio.run(
                run(architecture, attacks, chosen, uploads, (email, source_file, home))
            )
    summary(results)


if __name__ == "__main__":
    main()
