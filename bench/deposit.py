"""Deposit benchmark: concurrent companies depositing to `scelle serve` on 127.0.0.1.

Two rounds: 50 companies at once with 20 MB each, then 4 companies at once
with 1 GiB each. Every company is its own process, as on its own machine,
logged in beforehand (a token lasts 30 days), and all start together. Each
round is measured twice:
  - platform ingest: the companies upload their envelopes already sealed and
    finalise; the server's part alone, which the >= 70% target is about;
  - whole deposit path: `scelle.assistant.deposit` (pack, encrypt to the two
    key pairs, tus upload in 16 MiB chunks, finalise, verify the receipt),
    whose packing and encryption here share the server's cores.
For each: aggregate MB/s, p50/p99 per deposit, the server's peak RSS, CPU
seconds (server and companies), and the ratio to writing the same bytes to
the same disk with fsync, measured in the same run. Every deposit must be
listed for the buyer: none lost.

The transparency log's cost: 50 companies at once deposit 1 MB each (the whole
path) to a platform with its log and to one without (SCELLE_TRANSPARENCY_LOG=false),
in turns, several times; deposits per second, and their ratio (target: the log
costs at most 10 %). Then the size of a receipt's proof of inclusion in logs of
10^3 and 10^6 entries.

    python bench/deposit.py [--small 50] [--small-mb 20] [--large 4] [--large-mib 1024]
    python bench/deposit.py --only-log [--log-companies 50] [--log-turns 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import multiprocessing
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from scelle.client.api import PlatformClient
from scelle.core import certs
from scelle.keystore import KeyStore

PASSWORD = "Mot-de-passe-Bench-2026!"
STORE = "Magasin-Bench-2026!"
MB = 1_000_000


def seed(data: Path, companies: int) -> None:
    """A buyer, its agent and `companies` companies, through the platform's services."""
    from scelle.platform import server

    server.configure(data)
    server.prepare()
    from scelle.core.clock import system_clock
    from scelle.platform.accounts import services

    now = system_clock()
    buyer = services.create_organisation("Ville de Rouen", "buyer", now=now)
    service = services.create_service(buyer, "Marchés", now=now)
    services.create_user(
        "acheteur@rouen.fr", buyer, PASSWORD, service=service,
        permissions=("manage_keys", "manage_tenders", "open"), now=now,
    )  # fmt: skip
    for index in range(companies):
        company = services.create_organisation(f"Entreprise {index:03d}", "bidder", now=now)
        services.create_user(f"offres@e{index:03d}.fr", company, PASSWORD, now=now)


SERVER_CORE = 0
COMPANIES_CORE = 1


def start(
    data: Path,
    *,
    pinned: bool = False,
    cheroot: bool = False,
    log: bool = True,
    options: Sequence[str] = (),
    settings: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`scelle serve` on `data` (`cheroot`: the server before the gateway, for reference),
    on core SERVER_CORE when `pinned`, with its transparency log unless not `log`,
    `options` (such as --processes) after its own, and `settings` in its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    env.update(settings or {})
    if not log:
        env["SCELLE_TRANSPARENCY_LOG"] = "false"
    command = [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0",
               *options]  # fmt: skip
    if cheroot:
        rush = str(Path(__file__).with_name("rush.py"))
        command = [sys.executable, rush, "--cheroot", "8:60", "--data", str(data)]
    if pinned and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", str(SERVER_CORE), *command]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    for _ in range(50):
        found = re.search(r"running on (http://\S+)", process.stderr.readline().decode())
        if found:
            return process, found.group(1)
    raise SystemExit("scelle serve did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its living children have used so far
    (Linux): `scelle serve --processes N` serves from its children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux): each round gets its own peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def launch_tender(url: str, reference: str) -> None:
    """A tender with one envelope, sealed to a personal and a backup key pair."""
    from scelle.core.authority import build_csr

    with PlatformClient(url) as anonymous:
        token = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        service = client.me()["services"][0]["id"]
        for name, role in ((f"PERSO-{reference}", "personal"), (f"SECOURS-{reference}", "backup")):
            csr = build_csr(certs.generate_private_key(), name)
            client.publish_key_pair(service=service, role=role, designation=name, csr_pem=csr)
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        client.create_tender(
            service=service, reference=reference, title="Bench", deadline=deadline,
            envelopes=["offre"],
        )  # fmt: skip
        client.launch_tender(reference, [f"PERSO-{reference}"])


def bidder(
    mode: str,
    url: str,
    token: str,
    reference: str,
    source: str,
    home: str,
    barrier: threading.Barrier,
    results: queue.Queue[tuple[float, float]],
) -> None:
    """One company in its own process, as on its own machine: everything imported and
    set up, then waiting at `barrier` so that all start at once.

    `deposit`: the real path (pack, encrypt to the recipients, upload, finalise,
    verify the receipt). `ingest`: upload `source`, already sealed, and finalise.
    """
    from scelle.assistant.deposit import deposit

    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {COMPANIES_CORE})  # the server has the other core
    try:
        with PlatformClient(url, token) as client:
            authority = certs.load_certificate(client.platform_ca()["certificate_pem"].encode())
            store = KeyStore(Path(home), lambda _new: STORE)
            barrier.wait(timeout=600)
            began = time.perf_counter()
            cpu = time.process_time()
            if mode == "deposit":
                deposit(
                    client, store, reference, [("offre", Path(source))],
                    authority=authority, now=dt.datetime.now(dt.UTC),
                )  # fmt: skip
            else:
                size = Path(source).stat().st_size
                with Path(source).open("rb") as sealed:
                    upload = client.create_upload(tender=reference, envelope="offre", length=size)
                    offset = 0
                    while chunk := sealed.read(16 << 20):
                        offset = client.send_chunk(upload, offset, chunk)
                client.finalise_deposit(reference, [("offre", upload.rsplit("/", 1)[1], None)])
            results.put((time.perf_counter() - began, time.process_time() - cpu))
    except BaseException:
        results.put((-1.0, 0.0))  # the parent stops instead of waiting
        raise


def companies_at_once(
    mode: str, url: str, tokens: list[str], reference: str, sources: list[Path], homes: Path
) -> tuple[float, list[float], float]:
    """Wall time from the common start until every company is done, each one's time, and
    the CPU seconds the companies used in all."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(tokens) + 1)
    results = context.Queue()
    workers = [
        context.Process(
            target=bidder,
            args=(
                mode,
                url,
                token,
                reference,
                str(source),
                str(homes / f"e{i:03d}"),
                barrier,
                results,
            ),
        )
        for i, (token, source) in enumerate(zip(tokens, sources, strict=True))
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=600)
    began = time.perf_counter()
    done = [results.get(timeout=3600) for _ in workers]
    elapsed = time.perf_counter() - began
    if any(wall < 0 for wall, _ in done):
        raise SystemExit("a company's deposit failed: see its traceback above")
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a company's process failed (exit {worker.exitcode})")
    return elapsed, [wall for wall, _ in done], sum(cpu for _, cpu in done)


def raw_disk(folder: Path, count: int, size: int) -> float:
    """Seconds to write `count` files of `size` bytes with `count` writers, fsync each."""
    block = os.urandom(1 << 20)

    def write(index: int) -> None:
        path = folder / f"raw-{index}.bin"
        with path.open("wb", buffering=0) as handle:
            left = size
            while left > 0:
                left -= handle.write(block[: min(len(block), left)])
            os.fsync(handle.fileno())
        path.unlink()

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(write, range(count)))
    return time.perf_counter() - began


def round_(
    label: str, url: str, pid: int, first: int, count: int, source: Path, folder: Path
) -> None:
    reference = f"BENCH-{label}"
    launch_tender(url, reference)
    size = source.stat().st_size
    # Companies log in once, days before (a token lasts 30 days): not part of a deposit.
    tokens = []
    for index in range(first, first + count):
        with PlatformClient(url) as anonymous:
            tokens.append(anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"])
    envelopes = folder / "data" / "envelopes"
    before = set(envelopes.glob("*.p7m"))
    reset_peak(pid)
    server_cpu = cpu_seconds(pid)
    elapsed, times, companies_cpu = companies_at_once(
        "deposit", url, tokens, reference, [source] * count, folder / "homes"
    )
    server_cpu = cpu_seconds(pid) - server_cpu
    rss = peak_rss_mib(pid)
    with PlatformClient(url) as anonymous:
        token = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        received = client.tender_deposits(reference)
    total = sum(e["size"] for d in received for e in d["envelopes"])
    raw = raw_disk(envelopes, count, total // count)
    # Each company's own ciphertext again, uploaded as it is (a second deposit each).
    sealed = sorted(set(envelopes.glob("*.p7m")) - before)
    reset_peak(pid)
    ingest_server_cpu = cpu_seconds(pid)
    ingest, ingest_times, ingest_companies_cpu = companies_at_once(
        "ingest", url, tokens, reference, sealed, folder / "homes"
    )
    ingest_server_cpu = cpu_seconds(pid) - ingest_server_cpu
    ingest_rss = peak_rss_mib(pid)
    rate = total / elapsed / MB
    raw_rate = total / raw / MB
    ingest_rate = total / ingest / MB
    print(f"\n{label}: {count} companies x {size / MB:.0f} MB at once "
          f"({total / MB:.0f} MB sealed)")  # fmt: skip
    print(f"  raw disk + fsync      {raw_rate:8.1f} MB/s  (same bytes, {count} writers)")
    print(f"  platform ingest       {ingest_rate:8.1f} MB/s  ratio {ingest_rate / raw_rate:.2f} "
          f"(target >= 0.70)  p50 {statistics.median(ingest_times):.2f} s  "
          f"p99 {p99(ingest_times):.2f} s  server peak RSS {ingest_rss:.0f} MiB")  # fmt: skip
    print(f"  whole deposit path    {rate:8.1f} MB/s  ratio {rate / raw_rate:.2f} "
          f"p50 {statistics.median(times):.2f} s  p99 {p99(times):.2f} s  "
          f"server peak RSS {rss:.0f} MiB")  # fmt: skip
    gigabytes = total / 1e9
    print(f"  server CPU per GB     ingest {ingest_server_cpu / gigabytes:.2f} s  "
          f"whole path {server_cpu / gigabytes:.2f} s  (target < 3.6 s)")  # fmt: skip
    print(f"  CPU seconds           whole path: server {server_cpu:.1f}, companies "
          f"{companies_cpu:.1f} | ingest: server {ingest_server_cpu:.1f}, companies "
          f"{ingest_companies_cpu:.1f} | {os.cpu_count()} cores x {elapsed:.1f} s = "
          f"{(os.cpu_count() or 1) * elapsed:.1f}")  # fmt: skip
    print(f"  deposits lost         {count - len(received):8d}  (of {count})")


def log_turn(url: str, reference: str, count: int, source: Path, homes: Path) -> float:
    """Deposits per second: `count` companies at once, each depositing `source`."""
    launch_tender(url, reference)
    tokens = []
    for index in range(count):
        with PlatformClient(url) as anonymous:
            tokens.append(anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"])
    elapsed, _times, _cpu = companies_at_once(
        "deposit", url, tokens, reference, [source] * count, homes
    )
    with PlatformClient(url) as anonymous:
        token = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        received = client.tender_deposits(reference)
    if len(received) != count:
        raise SystemExit(f"{count - len(received)} deposits lost")
    return count / elapsed


def log_size(url: str) -> int:
    import httpx

    answer = httpx.get(f"{url}/log/checkpoint")
    return int(answer.text.split("\n")[1]) if answer.status_code == 200 else 0


def log_cost(companies: int, turns: int) -> None:
    """The transparency log on and off, in turns on two platforms: deposits per second."""
    print(f"\ntransparency log: {companies} companies at once x 1 MB, whole deposit path, "
          f"{turns} turns each, on and off in alternation")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scelle-bench-log-", dir="/var/tmp") as name:
        folder = Path(name)
        source = folder / "offre-1MB.bin"
        source.write_bytes(os.urandom(MB))
        rates: dict[bool, list[float]] = {True: [], False: []}
        servers = {}
        for log in (True, False):
            data = folder / f"data-{'on' if log else 'off'}"
            # Each platform seeded in a process of its own: Django is set up once per process.
            seeding = multiprocessing.get_context("spawn").Process(
                target=seed, args=(data, companies)
            )
            seeding.start()
            seeding.join()
            servers[log] = start(data, pinned=True, log=log)
        try:
            for turn in range(turns):
                for log in (True, False) if turn % 2 == 0 else (False, True):
                    _process, url = servers[log]
                    rate = log_turn(url, f"LOG-{turn}", companies, source, folder / "homes")
                    rates[log].append(rate)
                    state = "on " if log else "off"
                    print(f"  turn {turn + 1} log {state}  {rate:6.2f} deposits/s")
            sizes = {log: log_size(url) for log, (_process, url) in servers.items()}
            print(f"  entries logged: log on {sizes[True]}, log off {sizes[False]}")
        finally:
            for process, _url in servers.values():
                process.terminate()
                process.wait(timeout=30)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    # Each turn's two runs follow each other: their ratio cancels the drift between turns.
    paired = statistics.median(a / b for a, b in zip(rates[True], rates[False], strict=True))
    print(f"  median: log on {on:.2f} deposits/s, off {off:.2f} deposits/s; median ratio of "
          f"each turn's pair {paired:.3f} (cost {100 * (1 - paired):.1f} %, "
          "target <= 10 %)")  # fmt: skip


def proof_sizes() -> None:
    """A receipt's proof (c2sp.org/tlog-proof: index, path, signed checkpoint) in logs of
    10^3 and 10^6 entries, with a real signed checkpoint."""
    import hashlib
    import json

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from scelle.core import merkle, note, tlog

    signer = note.Signer("marches.example.fr/log", ed25519.Ed25519PrivateKey.generate())

    def read(level: int, index: int) -> bytes:
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    print("\nproof of inclusion in a receipt (c2sp.org/tlog-proof)")
    for size in (10**3, 10**6):
        index = 0  # the leftmost entry: the longest path a tree of that size has
        path = merkle.inclusion_path(index, size, read)
        checkpoint = tlog.sign_checkpoint(
            tlog.Checkpoint(signer.name, size, merkle.tree_root(size, read)), signer
        )
        proof = str(tlog.Proof(index, tuple(path), checkpoint))
        in_json = len(json.dumps({"transparency": proof})) - len('{"transparency": }')
        print(f"  {size:>9,} entries: {len(path):2d} hashes, {len(proof)} bytes "
              f"({len(checkpoint)} of them the signed checkpoint), {in_json} bytes in the "
              f"receipt's JSON")  # fmt: skip


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--small-mb", type=int, default=20)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument(
        "--cheroot", action="store_true", help="the server before the gateway, for reference"
    )
    parser.add_argument("--log-companies", type=int, default=50)
    parser.add_argument("--log-turns", type=int, default=3)
    parser.add_argument("--only-log", action="store_true", help="only the log's cost")
    options = parser.parse_args()
    if options.only_log:
        log_cost(options.log_companies, options.log_turns)
        proof_sizes()
        return
    server = "cheroot, 8 threads (before)" if options.cheroot else "hypercorn + gateway"
    print(f"deposit benchmark: scelle serve ({server}) on 127.0.0.1 core {SERVER_CORE}, "
          f"companies on core {COMPANIES_CORE}, SQLite, {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir="/var/tmp") as name:
        folder = Path(name)
        data = folder / "data"
        seed(data, options.small + options.large)
        process, url = start(data, pinned=True, cheroot=options.cheroot)
        try:
            sources = Path(tempfile.mkdtemp(prefix="scelle-bench-src-", dir="/dev/shm"))
            small = sources / "offre-20MB.bin"
            small.write_bytes(os.urandom(options.small_mb * MB))
            large = sources / "offre-1GiB.bin"
            with large.open("wb") as handle:
                for _ in range(options.large_mib):
                    handle.write(os.urandom(1 << 20))
            round_("small", url, process.pid, 0, options.small, small, folder)
            round_("large", url, process.pid, options.small, options.large, large, folder)
        finally:
            process.terminate()
            process.wait(timeout=30)
            for path in sources.iterdir():
                path.unlink()
            sources.rmdir()
    log_cost(options.log_companies, options.log_turns)
    proof_sizes()


if __name__ == "__main__":
    main()
