"""Depositing a bid from the bidder's machine (DESIGN.md, Deposit flow).

For each envelope: pack the files (core.archive, pass 1 hashes them), encrypt
the archive to every recipient of the tender while it is being written, and
send the ciphertext in tus chunks. Nothing unencrypted leaves the machine and
nothing is staged on disk: the archive flows through a pipe into the
encryptor, whose output goes straight to the upload.

An interrupted deposit resumes: the envelopes' content keys and nonces stay
sealed in the local store (`KeyStore.save_pending`) until the receipt
arrives, so a new run re-creates the very same ciphertext from the start
(cheap) and sends only the bytes the platform lacks. The receipt is checked
against the platform's CA and against the SHA-256 of what was sent.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509

from scelle.assistant.tenders import MEMBER, tender_commission, tender_rsf
from scelle.client import api
from scelle.core import archive, certs, envelope
from scelle.core.authority import issued_by
from scelle.core.commission import recipient_info
from scelle.core.errors import (
    N_,
    CertificateError,
    InvalidInputError,
    NotFoundError,
    ReceiptError,
    RuleViolationError,
)
from scelle.core.receipt import (
    Receipt,
    VerifiedCommitment,
    VerifiedWithdrawal,
    body_sha256,
    verify_commitment,
    verify_receipt,
    verify_withdrawal,
)
from scelle.core.rsf import commission_set_fingerprint, normalise_rsf
from scelle.keystore import KeyStore

CHUNK_BYTES = 16 << 20
"""Bytes per tus PATCH: the most that is sent again after an interruption."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Deposited:
    """A finished deposit: the signed receipt as received, and what it says."""

    receipt_document: bytes
    receipt: Receipt
    content_keys: dict[str, bytes] = field(default_factory=dict, repr=False)
    """Each envelope's content key, by kind: what a proof kit keeps (core.proofkit)."""


@dataclass
class _Envelope:
    kind: str
    source: Path
    plan: archive.PackPlan
    keys: envelope.EnvelopeKeys
    upload: str = ""

    @property
    def size(self) -> int:
        return envelope.envelope_size(self.keys, self.plan.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": str(self.source),
            "upload": self.upload,
            "manifest": json.loads(self.plan.manifest_bytes),
            "content_key": self.keys.content_key.hex(),
            "nonce": self.keys.nonce.hex(),
            "recipient_infos": base64.b64encode(self.keys.recipient_infos).decode(),
        }


def check_recipients(
    tender: api.Tender,
    authority: x509.Certificate,
    *,
    now: dt.datetime,
    expect_rsf: str | None = None,
) -> tuple[list[x509.Certificate], str]:
    """The tender's recipient certificates, each checked before anything is sealed to
    it, and their recipient-set fingerprint, recomputed here (DESIGN.md, "Trust").

    A certificate not issued by the platform CA pinned at login is accepted only
    when the tender says it was referenced as it is *and* the company confirmed
    the RSF published in the tender notice (`expect_rsf`): otherwise a server
    could add its own key to the recipients and read the bid.

    Long because it is one check after another, each with its own refusal, in the order the
    deposit page makes them too.
    """
    rsf = tender_rsf(tender)
    if rsf is None:  # no key pair
        raise RuleViolationError(
            N_("the tender {reference} has no key pair assigned"),
            reference=tender["reference"],
        )
    deadline = dt.datetime.fromisoformat(tender["deadline"])
    if expect_rsf is not None and normalise_rsf(expect_rsf) != rsf:
        raise RuleViolationError(
            N_(
                "the tender's recipients give {rsf}, not the {normalise_rsf} expected: nothing "
                "was sent"
            ),
            hint=N_("Do not deposit: tell the buyer, whose tender notice gives the fingerprint."),
            rsf=rsf,
            normalise_rsf=normalise_rsf(expect_rsf),
        )
    checked = []
    for recipient in tender["key_pairs"]:
        certificate = certs.load_certificate(recipient["certificate_pem"].encode())
        name = recipient["designation"]
        certs.check_recipient(certificate, now=now, until=deadline)
        if not issued_by(certificate, authority):
            if recipient["issued_by_platform"]:
                raise CertificateError(
                    N_(
                        "the certificate of {name} was not issued by the platform's CA: refusing "
                        "to seal the bid to it"
                    ),
                    name=name,
                )
            if expect_rsf is None:
                raise CertificateError(
                    N_(
                        "the certificate of {name} was not issued by the platform's CA (the "
                        "buyer referenced it as it is): Scellé seals to it only once you have "
                        "checked that the tender notice gives {rsf}"
                    ),
                    hint=N_(
                        'Check the notice, then run the command again with --expect-rsf "{rsf}".'
                    ),
                    name=name,
                    rsf=rsf,
                )
        checked.append(certificate)
    return checked, rsf


def _pending_name(platform: str, tender_id: str) -> str:
    return hashlib.sha256(f"{platform}\n{tender_id.casefold()}".encode()).hexdigest()[:32]


class _UploadSink:
    """Receives the envelope as it is encrypted; sends it in chunks past `skip` bytes.

    A sender thread does the HTTP, with at most two chunks waiting, so that
    encryption goes on while a chunk is on the wire and the platform fsyncs it.
    """

    def __init__(
        self, client: api.PlatformClient, upload: str, *, skip: int, progress: Progress | None
    ) -> None:
        self._client = client
        self._upload = upload
        self._skip = skip
        self._position = 0
        self._buffer = bytearray()
        self._progress = progress
        self._chunks: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=2)
        self._failure: list[BaseException] = []
        self._sender = threading.Thread(target=self._send_all, name="upload", daemon=True)
        self._sender.start()
        self.digest = hashlib.sha256()

    def _send_all(self) -> None:
        while (item := self._chunks.get()) is not None:
            if self._failure:
                continue  # drain: the writer learns of the failure at its next put
            offset, chunk = item
            try:
                self._client.send_chunk(self._upload, offset, chunk)
            except BaseException as error:  # noqa: BLE001 - re-raised by the writer
                self._failure.append(error)
                continue
            if self._progress is not None:
                self._progress(len(chunk))

    def _queue(self, count: int) -> None:
        if self._failure:
            raise self._failure[0]
        offset = self._position - len(self._buffer)
        self._chunks.put((offset, bytes(self._buffer[:count])))
        del self._buffer[:count]

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        self.digest.update(view)
        start = self._position
        self._position += len(view)
        if self._position <= self._skip:
            return len(view)
        self._buffer += view[max(0, self._skip - start) :]
        while len(self._buffer) >= CHUNK_BYTES:
            self._queue(CHUNK_BYTES)
        return len(view)

    def finish(self) -> int:
        """Send what is left and wait for every chunk; returns the envelope's size."""
        try:
            if self._buffer:
                self._queue(len(self._buffer))
        finally:
            self._chunks.put(None)
            self._sender.join()
        if self._failure:
            raise self._failure[0]
        return self._position

    def abandon(self) -> None:
        """Stop the sender after a failure upstream."""
        self._failure.append(RuntimeError("abandoned"))
        self._chunks.put(None)
        self._sender.join()


def _seal_and_send(item: _Envelope, sink: _UploadSink | _HashSink) -> None:
    """archive → pipe → encrypt → sink, with the archive written on its own thread."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def pack() -> None:
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                archive.write_archive(item.plan, pipe)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread below
            failure.append(error)

    packer = threading.Thread(target=pack, name=f"pack-{item.kind}", daemon=True)
    packer.start()
    try:
        with io.BufferedReader(io.FileIO(read_fd, "r"), buffer_size=1 << 20) as pipe:
            envelope.encrypt_stream(pipe, sink, item.keys)
    finally:
        packer.join()
    if failure and not isinstance(failure[0], BrokenPipeError):
        raise failure[0]


def _restore(
    saved: dict[str, Any], plans: dict[str, archive.PackPlan], sources: dict[str, Path]
) -> list[_Envelope] | None:
    """The saved envelopes, if they are for exactly the same files; else None."""
    restored = []
    for entry in saved["envelopes"]:
        kind = entry["kind"]
        plan = plans.get(kind)
        if plan is None or Path(entry["source"]) != sources[kind]:
            return None
        if entry["manifest"] != json.loads(plan.manifest_bytes):
            return None
        keys = envelope.EnvelopeKeys(
            bytes.fromhex(entry["content_key"]),
            bytes.fromhex(entry["nonce"]),
            base64.b64decode(entry["recipient_infos"]),
        )
        restored.append(_Envelope(kind, sources[kind], plan, keys, entry["upload"]))
    return restored if len(restored) == len(plans) else None


def deposit(
    client: api.PlatformClient,
    store: KeyStore,
    reference: str,
    sources: Sequence[tuple[str, Path]],
    *,
    authority: x509.Certificate,
    now: dt.datetime,
    expect_rsf: str | None = None,
    progress: Callable[[str, int], Progress | None] = lambda _label, _total: None,
    say: Callable[[str], None] = lambda _message: None,
    show_recipients: Callable[[str, list[api.Recipient]], None] = lambda _rsf, _list: None,
    committed: Callable[[VerifiedCommitment, bytes], None] | None = None,
) -> Deposited:
    """Seal and deposit `sources` ((envelope kind, file or folder), …) to the tender.

    `show_recipients` is told the recipient-set fingerprint, as recomputed here,
    before anything is sent; `expect_rsf` refuses to send when it differs. With
    `committed`, the envelopes are first sealed once to hash them, and their SHA-256
    registered as a commitment before the upload starts: `committed` gets its checked
    receipt at once, to keep even if the upload then fails.

    Long because it tells the deposit's story in order (check, plan, resume or start, send,
    finalise), one call a step.
    """
    tender = client.tender(reference)
    by_kind = _sources_for(tender, sources)
    recipients, rsf = check_recipients(tender, authority, now=now, expect_rsf=expect_rsf)
    show_recipients(rsf, tender["key_pairs"])
    fingerprints = sorted(certs.fingerprint_sha256(c) for c in recipients)
    sealing = _sealing(tender, recipients)
    bidder = client.me()["organisation"]["name"]
    total_plain = 0
    for path in by_kind.values():
        total_plain += sum(f.stat().st_size for f in _files(path))
    hashing = progress(N_("Hashing"), total_plain)
    plans = {
        kind: archive.plan_archive(
            path, tender=tender["reference"], envelope=kind, bidder=bidder, progress=hashing
        )
        for kind, path in by_kind.items()
    }
    # The tender's id, not its reference, names it to the platform: another buyer may
    # use the same reference.
    name = _pending_name(client.url, tender["id"])
    saved = store.load_pending(name)
    if saved:
        recovered = _recover_receipt(client, store, name, json.loads(saved), authority)
        if recovered is not None:
            say("The platform had recorded this deposit: its receipt was fetched again.")
            return recovered
    items = _restore(json.loads(saved), plans, by_kind) if saved else None
    if saved and items is None:
        say("The files changed since the interrupted deposit: starting it again.")
        for entry in json.loads(saved)["envelopes"]:
            _abandon(client, entry["upload"])
    if items is None:
        items = _new_envelopes(client, tender, plans, by_kind, sealing)
        _save(store, name, client.url, tender["reference"], items)
        if committed is not None:
            committed(*_commit(client, tender, items, authority, progress))
    offsets = _offsets(client, store, name, items)
    if any(offsets.values()):
        say("Resuming the interrupted deposit where its upload stopped.")
    sending = progress(N_("Sealing and sending"), sum(i.size - offsets[i.kind] for i in items))
    hashes = {item.kind: _send(client, item, offsets[item.kind], sending) for item in items}
    # Kept before finalising: if its answer is lost, a new run finds the deposit by
    # its uploads and checks the receipt fetched again against these.
    _save(store, name, client.url, tender["reference"], items, hashes, rsf, fingerprints)
    answer = client.finalise_deposit(
        tender["id"],
        [(item.kind, _upload_id(item.upload), hashes[item.kind][1]) for item in items],
    )
    verified = _check_receipt(answer, hashes, rsf, fingerprints, authority)
    store.delete_pending(name)
    return replace(verified, content_keys={i.kind: i.keys.content_key for i in items})


class _HashSink:
    """Receives a sealed envelope only to hash it: nothing is kept or sent."""

    def __init__(self, progress: Progress | None) -> None:
        self.digest = hashlib.sha256()
        self._progress = progress

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.digest.update(data)
        if self._progress is not None:
            self._progress(len(data))
        return len(data)


def _commit(
    client: api.PlatformClient,
    tender: api.Tender,
    items: list[_Envelope],
    authority: x509.Certificate,
    progress: Callable[[str, int], Progress | None],
) -> tuple[VerifiedCommitment, bytes]:
    """Seal each envelope once to hash it, and register the hashes (engagement horodaté):
    the checked commitment receipt, and the document to keep."""
    hashing = progress(N_("Sealing to commit"), sum(item.size for item in items))
    hashes = {}
    for item in items:
        sink = _HashSink(hashing)
        _seal_and_send(item, sink)
        hashes[item.kind] = sink.digest.hexdigest()
    answer = client.commit(tender["id"], hashes)
    document = answer["receipt"].encode()
    verified = verify_commitment(document, trusted_authority=authority)
    said = verified.commitment
    if dict(said.envelopes) != hashes or said.tender != tender["reference"]:
        raise ReceiptError(
            N_("the platform's commitment receipt does not name the envelopes sent: keep it, "
               "and contact the buyer")
        )  # fmt: skip
    return verified, document


def _sources_for(tender: api.Tender, sources: Sequence[tuple[str, Path]]) -> dict[str, Path]:
    """The file or folder of each envelope, when the tender takes a deposit of exactly
    these envelopes."""
    if tender["status"] != "published":
        raise RuleViolationError(
            N_("the tender {reference} takes no deposit now"),
            reference=tender["reference"],
        )
    by_kind = dict(sources)
    if len(by_kind) != len(sources) or sorted(by_kind) != sorted(tender["envelopes"]):
        raise InvalidInputError(
            f"{tender['reference']} takes exactly one of each envelope: "
            + ", ".join(f"--envelope {kind}=FILE_OR_FOLDER" for kind in tender["envelopes"])
        )
    return by_kind


def _sealing(
    tender: api.Tender, recipients: list[x509.Certificate]
) -> Callable[[], envelope.EnvelopeKeys]:
    """How each envelope's content key is sealed: to every recipient (checked, in the
    tender's order), or, when a commission opens the tender, to its backup key pairs and
    split among its members (core.commission)."""
    commission = tender_commission(tender)
    if commission is None:
        return lambda: envelope.EnvelopeKeys.for_recipients(recipients)
    ordinary = [
        certificate
        for recipient, certificate in zip(tender["key_pairs"], recipients, strict=True)
        if recipient["role"] != MEMBER
    ]
    return lambda: envelope.EnvelopeKeys.for_recipients(
        ordinary, also=lambda content_key: recipient_info(content_key, commission)
    )


def _new_envelopes(
    client: api.PlatformClient,
    tender: api.Tender,
    plans: dict[str, archive.PackPlan],
    by_kind: dict[str, Path],
    sealing: Callable[[], envelope.EnvelopeKeys],
) -> list[_Envelope]:
    """A new content key and upload for each envelope, once the deposit's size fits."""
    items = [_Envelope(kind, by_kind[kind], plans[kind], sealing()) for kind in tender["envelopes"]]
    total = sum(item.size for item in items)
    if total > tender["max_deposit_bytes"]:
        raise RuleViolationError(
            N_(
                "this deposit would hold {value:.2f} GiB; the platform takes at most "
                "{value2:.2f} GiB"
            ),
            value=total / (1 << 30),
            value2=tender["max_deposit_bytes"] / (1 << 30),
        )
    for item in items:
        item.upload = client.create_upload(
            tender=tender["id"], envelope=item.kind, length=item.size
        )
    return items


def _offsets(
    client: api.PlatformClient, store: KeyStore, name: str, items: list[_Envelope]
) -> dict[str, int]:
    """What the platform already holds of each envelope's upload."""
    offsets = {}
    for item in items:
        try:
            offsets[item.kind] = client.upload_offset(item.upload)
        except NotFoundError:
            store.delete_pending(name)
            raise RuleViolationError(
                N_(
                    "the platform no longer has this deposit's uploads: they were abandoned or "
                    "already deposited"
                ),
                hint=N_(
                    "Check `scelle deposits list`, then run the command again to deposit anew."
                ),
            ) from None
    return offsets


def _send(
    client: api.PlatformClient, item: _Envelope, offset: int, sending: Progress | None
) -> tuple[int, str]:
    """Seal the envelope again and send what the platform lacks: its size and SHA-256."""
    sink = _UploadSink(client, item.upload, skip=offset, progress=sending)
    try:
        _seal_and_send(item, sink)
    except BaseException:
        sink.abandon()
        raise
    sent = sink.finish()
    if sent != item.size:
        raise InvalidInputError(
            N_("the envelope {kind} came out at an unexpected size"),
            kind=item.kind,
        )
    return sent, sink.digest.hexdigest()


def _upload_id(upload: str) -> str:
    return upload.rsplit("/", 1)[1]


def _check_receipt(
    answer: api.DepositReceipt,
    hashes: dict[str, tuple[int, str]],
    rsf: str | None,
    fingerprints: list[str],
    authority: x509.Certificate,
) -> Deposited:
    """The signed receipt, checked against what was sent and to whom it was sealed."""
    document = answer["receipt"].encode()
    verified = verify_receipt(document, trusted_authority=authority).receipt
    got = {e.kind: (e.size, e.sha256) for e in verified.envelopes}
    if got != hashes or verified.deposit != answer["id"]:
        raise ReceiptError(
            N_(
                "the platform's receipt does not match what was sent: keep the receipt, and "
                "contact the buyer"
            ),
        )
    sealed_to = {tuple(e.recipients) for e in verified.envelopes}
    if (
        (verified.rsf is not None and verified.rsf != rsf)
        or sealed_to - {(), tuple(fingerprints)}
        or not _commission_agrees(verified, rsf, fingerprints)
    ):
        raise ReceiptError(
            N_(
                "the platform's receipt names other recipients than those the envelopes were "
                "sealed to: keep the receipt, and contact the buyer"
            ),
        )
    return Deposited(document, verified)


def _commission_agrees(receipt: Receipt, rsf: str | None, fingerprints: list[str]) -> bool:
    """A receipt's commission, when it states one, is the one the RSF checked here covers:
    its members among the envelopes' recipients, the others backups, and its k."""
    stated = receipt.commission
    if stated is None:
        return True
    members = set(stated.members)
    backups = set(fingerprints) - members
    try:
        made = commission_set_fingerprint(backups, members, stated.threshold)
    except InvalidInputError:
        return False
    return members <= set(fingerprints) and made == rsf


def _recover_receipt(
    client: api.PlatformClient,
    store: KeyStore,
    name: str,
    saved: dict[str, Any],
    authority: x509.Certificate,
) -> Deposited | None:
    """The receipt of a deposit finalised by an earlier run whose answer was lost."""
    if "hashes" not in saved:
        return None  # the earlier run stopped before finalising
    uploads = {_upload_id(entry["upload"]) for entry in saved["envelopes"]}
    for found in client.my_deposits():
        if {e["upload"] for e in found["envelopes"]} == uploads:
            answer = client.my_deposit(found["id"])
            hashes = {kind: (int(v[0]), str(v[1])) for kind, v in saved["hashes"].items()}
            done = _check_receipt(answer, hashes, saved["rsf"], saved["fingerprints"], authority)
            store.delete_pending(name)
            keys = {e["kind"]: bytes.fromhex(e["content_key"]) for e in saved["envelopes"]}
            return replace(done, content_keys=keys)
    return None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return [path] if path.is_file() else []


def _abandon(client: api.PlatformClient, upload: str) -> None:
    with contextlib.suppress(NotFoundError):
        client.terminate_upload(upload)


def _save(
    store: KeyStore,
    name: str,
    platform: str,
    reference: str,
    items: list[_Envelope],
    hashes: dict[str, tuple[int, str]] | None = None,
    rsf: str | None = None,
    fingerprints: list[str] | None = None,
) -> None:
    document: dict[str, Any] = {
        "platform": platform,
        "tender": reference,
        "envelopes": [item.to_json() for item in items],
    }
    if hashes is not None:
        document |= {"hashes": hashes, "rsf": rsf, "fingerprints": fingerprints}
    store.save_pending(name, json.dumps(document).encode())


def pinned_authority(saved_pem: str | None, current_pem: str) -> x509.Certificate:
    """The platform CA the workstation checks recipients and receipts against: the one seen
    at login (a CA swapped since is refused), or today's when none was kept."""
    current = certs.load_certificate(current_pem.encode())
    if saved_pem is None:
        return current
    saved = certs.load_certificate(saved_pem.encode())
    if saved != current:
        raise CertificateError(
            N_("the platform's CA is not the one it had when you logged in: refusing to deposit"),
            hint=N_("If the platform announced a new CA, log in again to accept it."),
        )
    return saved


def fetch_receipt(
    client: api.PlatformClient, deposit_id: str, *, saved_authority_pem: str | None
) -> tuple[Receipt, bytes]:
    """One of the company's receipts, fetched again: signed by the platform CA seen at
    login, and the receipt of the deposit asked for (a platform that answers with another
    is refused). Returns the receipt and the signed document to keep."""
    authority = pinned_authority(saved_authority_pem, client.platform_ca()["certificate_pem"])
    answer = client.my_deposit(deposit_id)
    document = answer["receipt"].encode()
    receipt = verify_receipt(document, trusted_authority=authority).receipt
    if receipt.deposit != answer["id"] or receipt.deposit.lower() != deposit_id.strip().lower():
        raise ReceiptError(N_("the platform sent the receipt of another deposit"))
    return receipt, document


def withdraw(
    client: api.PlatformClient, deposit_id: str, *, saved_authority_pem: str | None
) -> tuple[VerifiedWithdrawal, bytes]:
    """Withdraw one of the company's deposits (before the deadline): the withdrawal
    receipt, checked to be signed by the platform CA seen at login, proven in its log, and
    to name the deposit asked for and its receipt. Returns it and the document to keep."""
    authority = pinned_authority(saved_authority_pem, client.platform_ca()["certificate_pem"])
    kept = client.my_deposit(deposit_id)["receipt"].encode()
    deposit = verify_receipt(kept, trusted_authority=authority)
    answer = client.withdraw_deposit(deposit_id)
    document = answer["receipt"].encode()
    verified = verify_withdrawal(document, trusted_authority=authority)
    withdrawal = verified.withdrawal
    named = body_sha256(json.loads(kept)["receipt"])
    if withdrawal.deposit != deposit.receipt.deposit or withdrawal.deposit_receipt != named:
        raise ReceiptError(N_("the platform sent the withdrawal receipt of another deposit"))
    return verified, document
