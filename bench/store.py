"""Ingest into the envelopes folder and into an S3 object store (SeaweedFS), against
SeaweedFS's own client upload of the same bytes, in the same run.

4 companies at once each upload a 1 GiB sealed envelope (16 MiB tus chunks) and
finalise it, to `scelle serve` storing in its folder, then to one storing in
SeaweedFS (parts, tails, completion, the object read back for the receipt's
SHA-256, retention). The reference: the same 4 x 1 GiB uploaded at once straight to
SeaweedFS by boto3's managed multipart upload (`aws s3 cp`'s way: 8 MiB parts, 10
threads each). Server on core 0, companies and boto3 on core 1, SeaweedFS anywhere.
Prints MB/s and each ratio to the reference (target >= 0.7).

    python bench/store.py [--companies 4] [--mib 1024]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.seaweed import SeaweedFS

from deposit import (
    COMPANIES_CORE,
    MB,
    PASSWORD,
    STORE,
    companies_at_once,
    cpu_seconds,
    launch_tender,
    peak_rss_mib,
    seed,
    start,
)
from scelle.client.api import PlatformClient


def deposit_whole_way(url: str, reference: str, plaintext: Path, home: Path) -> None:
    """Company 0 deposits `plaintext` the whole way (sealed to the tender's key pairs):
    the envelope it stored is what every company then uploads."""
    import datetime as dt

    from scelle.assistant.deposit import deposit
    from scelle.core import certs
    from scelle.keystore import KeyStore

    with PlatformClient(url) as anonymous:
        token = anonymous.login("offres@e000.fr", PASSWORD)["token"]
    with PlatformClient(url, token) as client:
        authority = certs.load_certificate(client.platform_ca()["certificate_pem"].encode())
        deposit(
            client, KeyStore(home, lambda _new: STORE), reference, [("offre", plaintext)],
            authority=authority, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip


def stored_envelope(data: Path, seaweed: SeaweedFS, url: str | None, into: Path) -> Path:
    """The one envelope stored so far, copied to `into`: from the folder, or the store."""
    target = into / "sealed.p7m"
    if url is None:
        (found,) = (data / "envelopes").glob("*.p7m")
        shutil.copyfile(found, target)
        return target
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    client = seaweed.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]
    (key,) = [item["Key"] for item in listed if "/tails/" not in item["Key"]]
    client.download_file(bucket, key, str(target))
    return target


def boto3_upload(args: tuple[dict[str, str], str, str, str]) -> float:
    environment, bucket, key, source = args
    import boto3
    from boto3.s3.transfer import TransferConfig

    os.environ.update(environment)
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {COMPANIES_CORE})
    client = boto3.client("s3")
    began = time.perf_counter()
    client.upload_file(source, bucket, key, Config=TransferConfig())
    return time.perf_counter() - began


def reference_upload(seaweed: SeaweedFS, source: Path, count: int) -> float:
    """MB/s of `count` boto3 uploads of `source` at once, each in its own process."""
    bucket = seaweed.new_bucket()
    context = multiprocessing.get_context("spawn")
    jobs = [(seaweed.environment(), bucket, f"ref-{i}", str(source)) for i in range(count)]
    began = time.perf_counter()
    with context.Pool(count) as pool:
        pool.map(boto3_upload, jobs)
    elapsed = time.perf_counter() - began
    return count * source.stat().st_size / elapsed / MB


def ingest(
    label: str,
    folder: Path,
    settings: dict[str, str],
    plaintext: Path,
    count: int,
    seaweed: SeaweedFS,
) -> float:
    """MB/s of `count` companies uploading and finalising a sealed envelope at once."""
    data = folder / "data"
    process, url = start(data, pinned=True, settings=settings)
    try:
        reference = f"BENCH-{label.upper()}"
        launch_tender(url, reference)
        deposit_whole_way(url, reference, plaintext, folder / f"home-{label}")
        sealed = stored_envelope(data, seaweed, settings.get("SCELLE_STORAGE_URL"), folder)
        tokens = []
        for index in range(count):
            with PlatformClient(url) as anonymous:
                tokens.append(anonymous.login(f"offres@e{index:03d}.fr", PASSWORD)["token"])
        server_cpu = cpu_seconds(process.pid)
        elapsed, times, _cpu = companies_at_once(
            "ingest", url, tokens, reference, [sealed] * count, folder / f"homes-{label}"
        )
        server_cpu = cpu_seconds(process.pid) - server_cpu
        total = count * sealed.stat().st_size
        rate = total / elapsed / MB
        rss = peak_rss_mib(process.pid)
        print(f"  {label:<28} {rate:8.1f} MB/s  slowest {max(times):6.1f} s  server CPU "
              f"{server_cpu / (total / 1e9):.2f} s/GB  peak RSS {rss:.0f} MiB")  # fmt: skip
        return rate
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=4)
    parser.add_argument("--mib", type=int, default=1024)
    options = parser.parse_args()
    print(f"ingest: {options.companies} companies x {options.mib} MiB at once, "
          f"{os.cpu_count()} cores, SQLite")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="scelle-bench-store-", dir="/var/tmp") as name:
        folder = Path(name)
        seaweed = SeaweedFS(folder / "seaweedfs")
        try:
            plaintext = Path(tempfile.mkdtemp(prefix="scelle-bench-", dir="/dev/shm")) / "offre"
            with plaintext.open("wb") as handle:
                for _ in range(options.mib):
                    handle.write(os.urandom(1 << 20))
            seed(folder / "data", options.companies)
            bucket = seaweed.new_bucket()
            to_store = {**seaweed.environment(), "SCELLE_STORAGE_URL": f"s3://{bucket}/bench"}
            folder_rate = ingest("folder", folder, {}, plaintext, options.companies, seaweed)
            store_rate = ingest(
                "seaweedfs", folder, to_store, plaintext, options.companies, seaweed
            )
            # The reference twice, around a second SeaweedFS round: the machine's noise shows.
            first = reference_upload(seaweed, folder / "sealed.p7m", options.companies)
            to_new = {**to_store, "SCELLE_STORAGE_URL": f"s3://{seaweed.new_bucket()}/bench"}
            again = ingest("seaweedfs-2", folder, to_new, plaintext, options.companies, seaweed)
            second = reference_upload(seaweed, folder / "sealed.p7m", options.companies)
            reference = (first + second) / 2
            store_rate = (store_rate + again) / 2
            print(f"  {'boto3 upload_file (reference)':<28} {first:8.1f} MB/s, then "
                  f"{second:.1f} MB/s")  # fmt: skip
            print(f"means: SeaweedFS {store_rate:.1f} MB/s, reference {reference:.1f} MB/s")
            print(f"ratio to SeaweedFS's own upload (target >= 0.7): folder "
                  f"{folder_rate / reference:.2f}, "
                  f"SeaweedFS {store_rate / reference:.2f}")  # fmt: skip
        finally:
            seaweed.stop()
            shutil.rmtree(plaintext.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
