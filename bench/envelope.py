"""Envelope throughput: `scelle encrypt/decrypt` against `openssl cms` and `cp`.

Encrypts and decrypts one random file (1 GiB by default) in tmpfs with:
- Scellé's command line (AES-256-GCM, RSA-OAEP-SHA256, the key in a store);
- `openssl cms` with the same algorithms, `-stream` when encrypting;
- `cp` of the same file: the limit, where only the copy costs (in the kernel);
- `dd bs=1M`: the same copy through user space, the floor for a streaming tool.
Each is run 3 times (best time kept, highest RSS kept) under GNU time
(`apt-get install time`), which reports each command's peak RSS. Prints MB/s,
peak RSS and the ratios.

    python bench/envelope.py [--size-mib 1024] [--runs 3] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from scelle.core import certs

PASSPHRASE = "Bench-Store-Passphrase-2026"
GNU_TIME = "/usr/bin/time"  # Debian package "time"


class ToolFailed(Exception):
    """A reference tool could not do the job (openssl cms above 2 GiB, say)."""


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float


def measure(command: list[str], env: dict[str, str]) -> Run:
    """Run `command`, return its wall time and peak RSS.

    GNU time reports the peak RSS of the command itself; wait4() on a child
    forked from this Python process would count Python's pages too.
    """
    started = time.perf_counter()
    done = subprocess.run(
        [GNU_TIME, "-f", "%M", *command], env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    stderr = done.stderr.decode(errors="replace").strip()
    if done.returncode:
        raise ToolFailed(f"{command[0]} failed ({done.returncode}): {stderr.splitlines()[0]}")
    return Run(elapsed, int(stderr.splitlines()[-1]) / 1024)


def best_of(runs: int, command: list[str], env: dict[str, str], cleanup: Path) -> Run:
    results = []
    for _ in range(runs):
        cleanup.unlink(missing_ok=True)
        results.append(measure(command, env))
    best = min(results, key=lambda run: run.seconds)
    return Run(best.seconds, max(run.peak_rss_mib for run in results))


def dd(source: Path, target: Path) -> list[str]:
    """A copy through user space, as any tool that transforms the bytes must do.

    cp moves the bytes inside the kernel (copy_file_range); dd reads and
    writes them, which is the floor for encryption that streams.
    """
    return ["dd", f"if={source}", f"of={target}", "bs=1M", "status=none"]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            step = min(remaining, 16 << 20)
            handle.write(os.urandom(step))
            remaining -= step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"))
    args = parser.parse_args()

    scelle = shutil.which("scelle") or str(Path(sys.executable).with_name("scelle"))
    work = Path(tempfile.mkdtemp(prefix="scelle-bench-", dir=args.dir))
    try:
        size = args.size_mib << 20
        plain, sealed, opened = work / "plain.bin", work / "sealed.p7m", work / "opened.bin"
        key_pem, cert_pem, pfx = work / "key.pem", work / "cert.pem", work / "key.pfx"
        write_random(plain, size)

        key = certs.generate_private_key()
        now = dt.datetime.now(dt.UTC)
        certificate = certs.self_signed_certificate(key, "bench", days=30, now=now)
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_pem.write_bytes(certs.certificate_pem(certificate))
        env = dict(os.environ, SCELLE_HOME=str(work / "home"), SCELLE_STORE_PASSPHRASE=PASSPHRASE)
        password_file = work / "password"
        password_file.write_text("Bench-Export-2026!\n")
        subprocess.run(
            [scelle, "keys", "generate", "unused", "--days", "30"], env=env, check=True,
            capture_output=True,
        )  # fmt: skip
        # Import the same key pair openssl uses, through a .pfx, as a buyer would.
        from scelle.core.pkcs12 import KeyBundle, export_pkcs12

        pfx.write_bytes(export_pkcs12(KeyBundle(key, certificate), "Bench-Export-2026!"))
        subprocess.run(
            [scelle, "keys", "import", str(pfx), "--name", "bench",
             "--password-file", str(password_file)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip

        openssl_oaep = [
            "-keyopt", "rsa_padding_mode:oaep",
            "-keyopt", "rsa_oaep_md:sha256",
            "-keyopt", "rsa_mgf1_md:sha256",
        ]  # fmt: skip
        results: dict[str, dict[str, Run]] = {"encrypt": {}, "decrypt": {}}

        results["encrypt"]["cp"] = best_of(args.runs, ["cp", str(plain), str(sealed)], env, sealed)
        results["encrypt"]["dd bs=1M"] = best_of(args.runs, dd(plain, sealed), env, sealed)
        results["encrypt"]["openssl cms"] = best_of(
            args.runs,
            ["openssl", "cms", "-encrypt", "-binary", "-stream", "-aes-256-gcm",
             "-outform", "DER", "-in", str(plain), "-out", str(sealed),
             "-recip", str(cert_pem), *openssl_oaep],
            env, sealed,
        )  # fmt: skip
        results["encrypt"]["scelle"] = best_of(
            args.runs, [scelle, "encrypt", "-r", str(cert_pem), "-o", str(sealed), str(plain)],
            env, sealed,
        )  # fmt: skip

        # Decrypt what Scellé wrote, with each tool.
        results["decrypt"]["cp"] = best_of(args.runs, ["cp", str(sealed), str(opened)], env, opened)
        results["decrypt"]["dd bs=1M"] = best_of(args.runs, dd(sealed, opened), env, opened)
        failures: dict[str, str] = {}
        try:
            results["decrypt"]["openssl cms"] = best_of(
                args.runs,
                ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(sealed),
                 "-inkey", str(key_pem), "-recip", str(cert_pem), "-out", str(opened)],
                env, opened,
            )  # fmt: skip
        except ToolFailed as failure:
            # OpenSSL reads the whole envelope into one buffer: past 2 GiB it fails.
            failures["decrypt openssl cms"] = str(failure)
        results["decrypt"]["scelle"] = best_of(
            args.runs, [scelle, "decrypt", "-k", "bench", "-o", str(opened), str(sealed)],
            env, opened,
        )  # fmt: skip
        if sha256(opened) != sha256(plain):
            raise SystemExit("decrypted output differs from the input")

        print(f"envelope benchmark: {args.size_mib} MiB random file in {args.dir}, "
              f"best of {args.runs}, {os.cpu_count()} cores")  # fmt: skip
        print(f"{'':8} {'tool':12} {'MB/s':>8} {'peak RSS MiB':>13}")
        for direction, by_tool in results.items():
            for tool, run in by_tool.items():
                rate = size / run.seconds / 1e6
                print(f"{direction:8} {tool:12} {rate:8.0f} {run.peak_rss_mib:13.1f}")
        for what, reason in failures.items():
            print(f"{what}: {reason}")
        for direction, by_tool in results.items():
            ours = by_tool["scelle"].seconds
            openssl = by_tool.get("openssl cms")
            versus_openssl = f"{openssl.seconds / ours:.2f}x" if openssl else "n/a"
            print(
                f"{direction}: scelle = {versus_openssl} openssl cms;"
                f" {by_tool['cp'].seconds / ours:.0%} of cp;"
                f" {by_tool['dd bs=1M'].seconds / ours:.0%} of dd bs=1M"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
