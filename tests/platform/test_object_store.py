"""Envelopes in an S3-compatible object store, against a real one (SeaweedFS): parts of
5 MiB or more with their SHA-256, the tail any host resumes from, offers the store
itself refuses to delete, the sweep, and a store that fails. The deposit and opening
tests of test_deposits run on the store too."""
# ruff: noqa: F811 (test_deposits' fixtures `tender` and `company`, imported)

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from scelle.platform.audit.models import Event
from scelle.platform.deposits import objectstore, services, storage
from scelle.platform.deposits.models import Deposit, Envelope, Upload
from tests.platform.conftest import api_client, sealed
from tests.platform.test_deposits import (  # noqa: F401 (fixtures)
    DEADLINE,
    TUS,
    Bidder,
    company,
    tender,
)
from tests.seaweed import SeaweedFS

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _store(object_store: str, settings: Any, tmp_path: Any) -> None:
    settings.SCELLE_ENVELOPES_DIR = tmp_path / "envelopes"


def _another_host() -> None:
    """What a second application host knows of the uploads: nothing but the store."""
    objectstore._stores.clear()


def _listing(seaweed: SeaweedFS, url: str) -> dict[str, Any]:
    bucket, prefix = objectstore.parse_url(url)
    client = seaweed.client()
    return {
        "objects": [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get(
            "Contents", [])],
        "uploads": [u["Key"] for u in client.list_multipart_uploads(
            Bucket=bucket, Prefix=prefix).get("Uploads", [])],
    }  # fmt: skip


def test_chunks_become_parts_any_host_takes_the_next(
    tender: str, company: Bidder, seaweed: SeaweedFS, object_store: str
):
    offre = sealed(12 * MiB)
    location = company.create(tender, "offre", len(offre))["Location"]
    name = f"{location.rsplit('/', 1)[1]}.p7m"
    chunk = 3 * MiB
    for start in range(0, len(offre), chunk):
        _another_host()  # each chunk to another host: none keeps anything in memory
        answer = company.patch(location, start, offre[start : start + chunk])
        assert answer.status_code == 204, answer.content
        assert company.head(location)["Upload-Offset"] == str(min(start + chunk, len(offre)))
    store = objectstore.store_for(object_store)
    state = store.state(name)
    # 3 + 3 MiB made the first part, the next 3 + 3 the second; the rest is the tail.
    assert [int(p["Size"]) for p in state.parts] == [6 * MiB, 6 * MiB]
    assert state.tail is not None and state.tail.size == len(offre) - 12 * MiB
    _another_host()
    candidature = sealed(10)
    uploads = {"candidature": company.upload(tender, "candidature", candidature),
               "offre": name.removesuffix(".p7m")}  # fmt: skip
    answer = company.finalise(tender, uploads, offre=hashlib.sha256(offre).hexdigest())
    assert answer.status_code == 201, answer.content
    assert answer.json()["envelopes"][1]["sha256"] == hashlib.sha256(offre).hexdigest()
    # One object now: the multipart upload completed, its tail gone.
    assert _listing(seaweed, object_store)["uploads"] == []
    with storage.open_envelope(name) as handle:
        handle.seek(len(offre) - 100)
        assert handle.read() == offre[-100:]


def test_what_a_host_stored_last_is_not_trusted_past_another_host(
    tender: str, company: Bidder, object_store: str
):
    """A host remembers what it stored last, to check the next chunk's offset without
    asking the store; once another host has stored more, a chunk at the first host's
    offset is refused under the lock, and one at the store's is taken."""
    offre = sealed(9 * MiB)
    location = company.create(tender, "offre", len(offre))["Location"]
    chunk = 3 * MiB
    assert company.patch(location, 0, offre[:chunk]).status_code == 204  # host A
    host_a = dict(objectstore._stores)
    _another_host()
    assert company.patch(location, chunk, offre[chunk : 2 * chunk]).status_code == 204  # B
    objectstore._stores.update(host_a)  # back to A, which stored 3 MiB last
    stale = company.patch(location, chunk, offre[chunk : 2 * chunk])
    assert stale.status_code == 409, stale.content
    assert company.head(location)["Upload-Offset"] == str(2 * chunk)
    assert company.patch(location, 2 * chunk, offre[2 * chunk :]).status_code == 204
    uploads = {"candidature": company.upload(tender, "candidature", sealed(10)),
               "offre": location.rsplit("/", 1)[1]}  # fmt: skip
    answer = company.finalise(tender, uploads, offre=hashlib.sha256(offre).hexdigest())
    assert answer.status_code == 201, answer.content


def test_each_part_is_checked_by_the_store(
    tender: str, company: Bidder, monkeypatch: pytest.MonkeyPatch
):
    data = sealed(6 * MiB)
    location = company.create(tender, "offre", len(data))["Location"]
    company.client.raise_request_exception = False
    real = objectstore._body
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()

    def wrong_digest(body: Any, size: int, digest: Any = None) -> dict[str, Any]:
        sent = real(body, size, digest)
        sent["request"]["ChecksumSHA256"] = other
        return sent

    monkeypatch.setattr(objectstore, "_body", wrong_digest)
    answer = company.patch(location, 0, data)
    # The store refused the part (BadDigest): nothing held, a 503 to send it again.
    assert answer.status_code == 503
    assert company.head(location)["Upload-Offset"] == "0"
    monkeypatch.setattr(objectstore, "_body", real)
    assert company.patch(location, 0, data).status_code == 204
    assert company.head(location)["Upload-Offset"] == str(len(data))


def test_the_receipt_hashes_what_the_store_holds(
    tender: str, company: Bidder, seaweed: SeaweedFS, object_store: str
):
    offre = sealed(7 * MiB)
    location = company.create(tender, "offre", len(offre))["Location"]
    upload = location.rsplit("/", 1)[1]
    assert company.patch(location, 0, offre[: 6 * MiB]).status_code == 204
    assert company.patch(location, 6 * MiB, offre[6 * MiB :]).status_code == 204
    store = objectstore.store_for(object_store)
    state = store.state(f"{upload}.p7m")
    assert state.upload_id is not None and state.tail is not None
    client, bucket = seaweed.client(), seaweed.bucket
    candidature = company.upload(tender, "candidature", sealed(10))
    uploads = {"candidature": candidature, "offre": upload}
    sha256 = hashlib.sha256(offre).hexdigest()

    # The tail rewritten behind the platform's back (same size): its name says the
    # SHA-256 it was written with, and finalisation refuses it.
    altered = bytes(state.tail.size)
    client.put_object(Bucket=bucket, Key=state.tail.key, Body=altered)
    refused = company.finalise(tender, uploads, offre=sha256)
    assert refused.status_code == 409 and "was changed in the store" in refused.json()["detail"]
    # Put back, then the first part sent again by someone else: its ETag is not the one
    # this host was answered, so the object is read back, and its SHA-256 differs.
    client.put_object(Bucket=bucket, Key=state.tail.key, Body=offre[6 * MiB :])
    time.sleep(1.1)  # the store's times are to the second: the part sent again is the later
    client.upload_part(
        Bucket=bucket, Key=store.key(f"{upload}.p7m"), UploadId=state.upload_id, PartNumber=1,
        Body=bytes(6 * MiB),
    )  # fmt: skip
    refused = company.finalise(tender, uploads, offre=sha256)
    assert refused.status_code == 409 and "not the one sent" in refused.json()["detail"]
    assert not Deposit.objects.exists()


def test_a_deposit_from_one_host_is_hashed_without_reading_it_back(
    tender: str, company: Bidder, monkeypatch: pytest.MonkeyPatch
):
    offre = sealed(7 * MiB)
    uploads = {
        "candidature": company.upload(tender, "candidature", sealed(10)),
        "offre": company.upload(tender, "offre", offre, chunk=4 * MiB),
    }

    def no_reading_back(*_args: object) -> str:
        raise AssertionError("read back")

    monkeypatch.setattr(objectstore.ObjectStore, "sha256_of", no_reading_back)
    answer = company.finalise(tender, uploads, offre=hashlib.sha256(offre).hexdigest())
    assert answer.status_code == 201, answer.content


def test_offers_are_kept_under_retention_the_store_refuses_to_delete(
    tender: str, company: Bidder, rouen: Any, clock: Any, seaweed: SeaweedFS, object_store: str
):
    uploads = {kind: company.upload(tender, kind, sealed(10)) for kind in ("candidature", "offre")}
    assert company.finalise(tender, uploads).status_code == 201
    store = objectstore.store_for(object_store)
    names = list(Envelope.objects.values_list("storage_name", flat=True))
    for name in names:
        assert store.retained_until(name) == storage.retention_end(DEADLINE)
    # Not the platform, not the bucket's owner: the store itself refuses.
    client = seaweed.client()
    key = store.key(names[0])
    version = client.list_object_versions(Bucket=seaweed.bucket, Prefix=key)["Versions"][0]
    with pytest.raises(client.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(
            Bucket=seaweed.bucket, Key=key, VersionId=version["VersionId"],
            BypassGovernanceRetention=True,
        )  # fmt: skip
    storage.remove(names[0])
    with storage.open_envelope(names[0]) as handle:
        assert handle.read(4)
    # Closed a year after its deadline: kept five years after the close.
    clock.advance(days=400)
    owner = api_client(rouen.owner, clock)
    assert owner.post(f"/api/tenders/{tender}/close").status_code == 200
    assert store.retained_until(names[1]) == storage.retention_end(clock())


def test_the_sweep_aborts_abandoned_uploads_and_their_tails(
    tender: str, company: Bidder, clock: Any, settings: Any, seaweed: SeaweedFS,
    object_store: str,
):  # fmt: skip
    settings.SCELLE_UPLOAD_IDLE_HOURS = 24
    data = sealed(7 * MiB)
    idle = company.create(tender, "offre", len(data))["Location"]
    busy = company.create(tender, "candidature", len(data))["Location"]
    for location in (idle, busy):  # a part and a tail each
        assert company.patch(location, 0, data[: 6 * MiB]).status_code == 204
        assert company.patch(location, 6 * MiB, data[6 * MiB : 6 * MiB + 10]).status_code == 204
    orphan = "00000000-0000-4000-8000-000000000000.p7m"
    storage.create(orphan)  # a crash between the store and the row
    # The store's times are real ones: the platform's clock a day after them.
    clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    with _held_elsewhere(f"{busy.rsplit('/', 1)[1]}.p7m"):
        report = services.sweep_uploads(now=clock())
    assert (report.idle, report.busy, report.orphans) == (1, 1, 1)
    assert [str(u.id) for u in Upload.objects.all()] == [busy.rsplit("/", 1)[1]]
    swept = Event.objects.get(action="deposits.upload.swept")
    assert swept.details["bytes_held"] == 6 * MiB + 10
    left = _listing(seaweed, object_store)
    assert left["uploads"] == [
        objectstore.store_for(object_store).key(f"{busy.rsplit('/', 1)[1]}.p7m")
    ]
    (tail,) = [key for key in left["objects"] if "/tails/" in key]
    digest = hashlib.sha256(data[6 * MiB : 6 * MiB + 10]).hexdigest()
    name = f"{busy.rsplit('/', 1)[1]}.p7m"
    assert tail == objectstore.store_for(object_store).key(
        f"tails/{name}.1.{6 * MiB + 10}.{digest}"
    )
    report = services.sweep_uploads(now=clock())
    assert report.idle == 1 and not Upload.objects.exists()
    assert _listing(seaweed, object_store) == {"objects": [], "uploads": []}


@contextlib.contextmanager
def _held_elsewhere(name: str) -> Iterator[None]:
    """The upload's lock held by another thread, with its own database connection (as
    another host would hold it)."""
    from django.db import connection

    taken, done = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def hold() -> None:
        try:
            with storage.quiet(name) as free:
                assert free
                taken.set()
                done.wait(30)
        except BaseException as error:  # noqa: BLE001 (shown by the main thread)
            failed.append(error)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10), failed
    try:
        yield
    finally:
        done.set()
        holder.join()


def test_a_store_that_fails_is_a_503_and_records_nothing(
    tender: str, company: Bidder, monkeypatch: pytest.MonkeyPatch
):
    company.client.raise_request_exception = False
    location = company.create(tender, "offre", 100)["Location"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _another_host()
    assert company.create(tender, "offre", 100).status_code == 503
    assert company.patch(location, 0, b"x" * 10).status_code == 503
    assert company.head(location).status_code == 503
    assert Upload.objects.count() == 1
    assert not Event.objects.filter(action="deposits.upload.created").count() > 1


def test_the_bucket_must_have_object_lock(seaweed: SeaweedFS):
    from scelle.core.errors import InvalidInputError

    plain = f"plain-{seaweed.bucket}"
    seaweed.client().create_bucket(Bucket=plain)
    with pytest.raises(InvalidInputError, match="Object Lock"):
        objectstore.ObjectStore(f"s3://{plain}/envelopes").check()
    objectstore.ObjectStore(f"s3://{seaweed.bucket}/envelopes").check()
    with pytest.raises(InvalidInputError, match="s3://bucket/prefix"):
        objectstore.parse_url("https://example.com/x")
