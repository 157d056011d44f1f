"""Deposit benchmark: concurrent companies depositing to `scelle serve` on 127.0.0.1.

Two rounds, each through the real deposit path (pack, encrypt to the tender's
two key pairs, tus upload in 16 MiB chunks, finalise, verify the receipt):
  - 50 companies at once, 20 MB each;
  - 4 companies at once, 1 GiB each.
For each: aggregate MB/s, p50/p99 time per deposit, the server's peak RSS,
and the ratio to writing the same bytes to the same disk with fsync (the
reference, measured in the same run). Every deposit must come back with a
verified receipt, and the buyer must see every one: none lost.

    python bench/deposit.py [--small 50] [--large 4] [--large-mib 1024]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
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


def start(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCELLE_", "DJANGO_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "scelle.cli", "serve", "--data", str(data), "--port", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    for _ in range(50):
        found = re.search(r"running on (http://\S+)", process.stderr.readline().decode())
        if found:
            return process, found.group(1)
    raise SystemExit("scelle serve did not start")


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


def one_deposit(url: str, index: int, reference: str, source: Path, homes: Path) -> float:
    from scelle.assistant.deposit import deposit

    began = time.perf_counter()
    with PlatformClient(url) as anonymous:
        token = anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"]
        authority = certs.load_certificate(anonymous.platform_ca()["certificate_pem"].encode())
    store = KeyStore(homes / f"e{index:03d}", lambda _new: STORE)
    with PlatformClient(url, token) as client:
        deposit(
            client, store, reference, [("offre", source)],
            authority=authority, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
    return time.perf_counter() - began


def ingest_only(url: str, first: int, count: int, reference: str, sealed: Path) -> float:
    """Seconds for `count` companies to upload already-sealed bytes and finalise: the
    platform's own work, without the bidders' packing and encryption on these cores."""
    size = sealed.stat().st_size

    def one(index: int) -> None:
        with PlatformClient(url) as anonymous:
            token = anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"]
        with PlatformClient(url, token) as client, sealed.open("rb") as source:
            upload = client.create_upload(tender=reference, envelope="offre", length=size)
            offset = 0
            while chunk := source.read(16 << 20):
                offset = client.send_chunk(upload, offset, chunk)
            client.finalise_deposit(reference, [("offre", upload.rsplit("/", 1)[1], None)])

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(first, first + count)))
    return time.perf_counter() - began


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
    reset_peak(pid)
    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        times = list(
            pool.map(
                lambda i: one_deposit(url, first + i, reference, source, folder / "homes"),
                range(count),
            )
        )
    elapsed = time.perf_counter() - began
    rss = peak_rss_mib(pid)
    with PlatformClient(url) as anonymous:
        token = anonymous.login("acheteur@rouen.fr", PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        received = client.tender_deposits(reference)
    total = sum(e["size"] for d in received for e in d["envelopes"])
    raw = raw_disk(folder / "data" / "envelopes", count, total // count)
    # The same ciphertext again, uploaded as it is (a second deposit per company).
    stored = max((folder / "data" / "envelopes").glob("*.p7m"), key=lambda p: p.stat().st_size)
    ingest = ingest_only(url, first, count, reference, stored)
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = total / elapsed / MB
    raw_rate = total / raw / MB
    print(f"\n{label}: {count} companies x {size / MB:.0f} MB at once")
    print(f"  deposits          {rate:8.1f} MB/s  ({total / MB:.0f} MB sealed in {elapsed:.1f} s)")
    print(f"  raw disk + fsync  {raw_rate:8.1f} MB/s  (same bytes, {count} writers)")
    print(f"  ratio             {rate / raw_rate:8.2f}  (target >= 0.70)")
    ingest_rate = total / ingest / MB
    print(
        f"  platform ingest   {ingest_rate:8.1f} MB/s  (pre-sealed bytes: the server's part alone)"
    )
    print(f"  ingest ratio      {ingest_rate / raw_rate:8.2f}")
    print(f"  per deposit       p50 {statistics.median(times):.2f} s  p99 {p99:.2f} s")
    print(f"  server peak RSS   {rss:8.0f} MiB  (target <= 300)")
    print(f"  deposits lost     {count - len(received):8d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--small-mb", type=int, default=20)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mib", type=int, default=1024)
    options = parser.parse_args()
    print(f"deposit benchmark: scelle serve (waitress, 8 threads) on 127.0.0.1, "
          f"SQLite, {os.cpu_count()} cores")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scelle-bench-", dir="/var/tmp") as name:
        folder = Path(name)
        data = folder / "data"
        seed(data, options.small + options.large)
        process, url = start(data)
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


if __name__ == "__main__":
    main()
