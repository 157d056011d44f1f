"""Opening a tender's deposits on the buyer's workstation (DESIGN.md, Opening flow).

For each chosen deposit and envelope: download the ciphertext (resumable),
check it against the SHA-256 the platform recorded at deposit, check whom it
was encrypted to against the tender's recipient set, decrypt it with the
workstation's keys straight into the archive reader (one pass: the files
land in a hidden staging folder as they are decrypted), check the manifest
is for this tender, envelope and company, and once the tag has verified,
report the opening to the platform, and only then rename the staging folder
into OUT/<company>/<deposit>/<envelope>/.

Nothing the server says becomes a path unchecked (DESIGN.md, "Trust"):
deposit ids are UUIDs (validated by the client), envelope kinds must be the
tender's, company names are cleaned into unique folder names. No envelope
can stop the others: any failure of one, the network's, the archive's or the
disk's, is reported for that envelope, and the others open. Envelopes are
opened a few at a time, so that one downloads while another decrypts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import re
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.assistant.commission import ShareBox
from scelle.assistant.tenders import (
    LaunchRecord,
    choose_deposits,
    set_fingerprint,
    tender_commission,
)
from scelle.client import api
from scelle.core import archive, certs, commission, envelope, recipients
from scelle.core.clock import Clock, system_clock
from scelle.core.errors import (
    N_,
    ArchiveError,
    DecryptionError,
    InvalidInputError,
    NotAuthenticatedError,
    PlatformAnswerError,
    ReceiptError,
    ScelleError,
)
from scelle.core.files import Readable, ensure_private_dir, write_all
from scelle.core.pipeline import ChunkPipe
from scelle.core.receipt import verify_withdrawal

Progress = Callable[[int], None]
WORK_FOLDER = ".scelle-work"
WORKERS = 4
"""Envelopes opened at once: enough to overlap download, decryption and extraction
on two cores, few enough to keep memory and disk traffic flat."""
MAX_FOLDER_CHARACTERS = 80
MAX_REPORTED = 100
"""Envelopes in one report to the platform (its limit)."""
REPORT_GATHER_SECONDS = 0.25
"""How long opened envelopes wait for others to be reported with them."""
COMMISSION_WAIT_SECONDS = 1800.0
"""How long an opener's opening waits for the commission's members to take part."""


@dataclass(frozen=True)
class _Together:
    """An opening by a commission's opener: the other members' shares come through `box`."""

    box: ShareBox
    found: commission.Commission
    opener: envelope.DecryptionKey
    clock: Clock


@dataclass(frozen=True)
class Opened:
    """An envelope now readable in `folder`."""

    bidder: str
    deposit: str
    kind: str
    folder: Path
    files: int
    late: bool
    outside: tuple[str, ...] = ()
    """Recipients of the envelope outside the tender's set (it opened all the same)."""


@dataclass(frozen=True)
class Failed:
    """An envelope that could not be opened, and why."""

    bidder: str
    deposit: str
    kind: str
    reason: str


@dataclass(frozen=True)
class Withdrawn:
    """A deposit its company withdrew, as its signed withdrawal receipt says."""

    bidder: str
    deposit: str
    at: str
    """When, as the platform's receipt says (ISO 8601)."""


def withdrawn_deposits(deposits: Sequence[api.Deposit]) -> tuple[list[Withdrawn], list[Failed]]:
    """The deposits the platform says were withdrawn: each must come with a withdrawal
    receipt, signed, logged, naming that deposit; one that does not is a failure shown."""
    found, failed = [], []
    for deposit in deposits:
        if deposit.get("withdrawn_at") is None:
            continue
        try:
            verified = verify_withdrawal((deposit.get("withdrawal") or "").encode())
            if verified.withdrawal.deposit != deposit["id"]:
                raise ReceiptError(N_("the withdrawal receipt names another deposit"))
        except ScelleError as error:
            reason = f"withdrawn, the platform says, without a valid withdrawal receipt: {error}"
            failed.append(Failed(deposit["bidder"], deposit["id"], "", reason))
            continue
        at = verified.withdrawal.withdrawn_at.isoformat()
        found.append(Withdrawn(deposit["bidder"], deposit["id"], at))
    return found, failed


@dataclass
class OpeningReport:
    opened: list[Opened] = field(default_factory=list)
    already: list[Opened] = field(default_factory=list)
    """Opened by an earlier run: their folders exist."""
    failed: list[Failed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """About the tender as a whole (its recipient set)."""
    withdrawn: list[Withdrawn] = field(default_factory=list)
    """Deposits their companies withdrew before the deadline: not opened."""

    @property
    def outside(self) -> list[Opened]:
        """Envelopes encrypted to a recipient outside the tender's set."""
        return [done for done in self.opened + self.already if done.outside]

    @property
    def ok(self) -> bool:
        return not (self.failed or self.outside or self.warnings)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?", re.IGNORECASE)


def folder_name(value: str) -> str:
    """A company's name as a folder name that every system accepts."""
    cleaned = unicodedata.normalize("NFC", value)
    cleaned = _UNSAFE.sub("_", cleaned).strip(" .")[:MAX_FOLDER_CHARACTERS].strip(" .")
    if not cleaned or set(cleaned) <= {"."}:
        return "_"
    if _WINDOWS_RESERVED.fullmatch(cleaned):
        return f"_{cleaned}"
    return cleaned


def folder_names(bidders: Sequence[str]) -> dict[str, str]:
    """A folder name for each company, unique even where two names clean alike
    (compared as Windows and macOS compare them: case-insensitively)."""
    taken: set[str] = set()
    names = {}
    for bidder in sorted(set(bidders)):
        base = folder_name(bidder)
        candidate, number = base, 2
        while candidate.casefold() in taken:
            candidate, number = f"{base} ({number})", number + 1
        taken.add(candidate.casefold())
        names[bidder] = candidate
    return names


class _Mismatch(ScelleError):
    """The downloaded envelope is not the one the platform recorded."""


@dataclass(frozen=True)
class _Job:
    deposit: api.Deposit
    item: api.ReceivedEnvelope
    target: Path

    @property
    def entry(self) -> tuple[str, str, str]:
        return (self.deposit["bidder"], self.deposit["id"], self.item["kind"])


class _Opening:
    """One run of `open_tender`: the tender, the keys, the recipient set, the folders."""

    def __init__(
        self,
        client: api.PlatformClient,
        keys: Sequence[envelope.DecryptionKey],
        tender: api.Tender,
        recipients: list[x509.Certificate],
        work: Path,
        progress: Callable[[str, int], Progress | None],
        together: _Together | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.together = together
        self.tender = tender
        self.recipients = recipients
        self.work = work
        self.progress = progress
        self.reporter = _Reporter(client)

    def open(self, job: _Job) -> Outcome:
        """Open one envelope into the work folder; it appears at its place once the platform
        has recorded its opening (the reporter does that, while this worker goes on)."""
        try:
            return self._open(job)
        except (ScelleError, OSError) as error:
            # Whatever went wrong, with this envelope only: the others go on.
            return _settled(_failure(job, error))

    def already_opened(self, job: _Job) -> Outcome:
        """An envelope opened by an earlier run: reported (rule 7) and counted."""
        try:
            files = sum(1 for path in job.target.rglob("*") if path.is_file())
        except OSError as error:
            return _settled(_failure(job, error))
        opened = Opened(*job.entry, job.target, files, job.deposit["late"])
        return self.reporter.submit(job, files, lambda: opened, lambda: None)

    def _open(self, job: _Job) -> Outcome:
        deposit, item = job.deposit, job.item
        label = f"{deposit['bidder']} — {item['kind']}"
        ciphertext = self._download(deposit, item, self.progress(label, item["size"]))
        with ciphertext.open("rb") as source:
            found = recipients.read_recipients(source)
        outside = tuple(
            recipient.description
            for recipient in found
            if not any(recipient.matches(c) for c in self.recipients)
        )
        bidder = deposit["bidder"]

        def expect(manifest: archive.Manifest) -> None:
            sealed_for = (manifest.tender, manifest.envelope, manifest.bidder)
            if sealed_for != (self.tender["reference"], item["kind"], bidder):
                raise ArchiveError(
                    N_(
                        "this envelope was sealed for {tender} / {envelope} / {bidder}, not for "
                        "this deposit: refusing it"
                    ),
                    tender=manifest.tender,
                    envelope=manifest.envelope,
                    bidder=manifest.bidder,
                )

        keys = self._keys_for(ciphertext, deposit, item)
        # Both parts of the name were validated (a UUID, an envelope kind of the tender).
        staged = self.work / f"{deposit['id']}-{item['kind']}.opened"
        shutil.rmtree(staged, ignore_errors=True)  # what a run cut short left
        manifest = self._decrypt_and_extract(ciphertext, staged, expect, keys)
        ciphertext.unlink()
        opened = Opened(*job.entry, job.target, len(manifest.files), deposit["late"], outside)

        def publish() -> Opened:
            job.target.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(job.target)
            return opened

        return self.reporter.submit(
            job, len(manifest.files), publish, lambda: shutil.rmtree(staged, ignore_errors=True)
        )

    def _keys_for(
        self, ciphertext: Path, deposit: api.Deposit, item: api.ReceivedEnvelope
    ) -> Sequence[envelope.OpeningKey]:
        """This workstation's keys; for a commission's opener, the content key that the
        opener's own share and k - 1 members' relayed shares make (assistant.commission)."""
        together = self.together
        if together is None:
            return self.keys
        with ciphertext.open("rb") as source:
            sealed = commission.read(envelope.read_recipient_infos(source))
        if sealed is None:
            raise DecryptionError(
                N_("this envelope holds no commission's shares: only a backup key pair opens it")
            )
        key = together.box.content_key(
            deposit["id"], item["kind"], sealed, together.found, together.opener,
            now=together.clock(),
        )  # fmt: skip
        return [key]

    def _decrypt_and_extract(
        self,
        ciphertext: Path,
        target: Path,
        expect: Callable[[archive.Manifest], None],
        keys: Sequence[envelope.OpeningKey],
    ) -> archive.Manifest:
        """Decrypt into the archive reader, the files landing in a hidden staging folder
        and appearing at `target` (in the work folder) only once the tag has verified."""
        with ciphertext.open("rb") as source:
            return decrypt_into_archive(
                source,
                keys,
                lambda plaintext, verified: archive.open_archive(
                    plaintext, target, expect=expect, before_publish=verified
                ),
            )

    def _download(
        self, deposit: api.Deposit, item: api.ReceivedEnvelope, progress: Progress | None
    ) -> Path:
        """The envelope's ciphertext in the work folder, resumed if an earlier run got part."""
        # Both parts of the name were validated (a UUID, an envelope kind of the tender).
        part = self.work / f"{deposit['id']}-{item['kind']}.p7m"
        start = part.stat().st_size if part.exists() else 0
        if start > item["size"]:
            part.unlink()
            start = 0
        # The SHA-256 runs as the bytes arrive: the ciphertext is not read again.
        digest = hashlib.sha256()
        if start:
            with part.open("rb") as handle:
                while piece := handle.read(1 << 20):
                    digest.update(piece)
        if start < item["size"]:
            try:
                with part.open("ab") as sink:
                    self.client.download_envelope(
                        deposit["id"],
                        item["kind"],
                        _Hashing(sink, digest),
                        start=start,
                        size=item["size"],
                    )
            except PlatformAnswerError:
                part.unlink(missing_ok=True)  # what came is not to be trusted
                raise
            except ScelleError:
                if part.exists() and part.stat().st_size == 0:
                    part.unlink()  # nothing to resume from
                raise
        if digest.hexdigest() != item["sha256"]:
            part.unlink()
            raise _Mismatch(
                "the downloaded envelope is not the one the platform recorded at deposit "
                "(SHA-256 differs)"
            )
        if progress is not None:
            progress(item["size"])
        return part


Outcome: TypeAlias = "concurrent.futures.Future[Opened | Failed]"
"""An envelope's result, once the platform has recorded its opening."""


ArchiveReading = Callable[[Readable, Callable[[archive.Manifest], None]], archive.Manifest]
"""Reads an envelope's plaintext archive (archive.open_archive, archive.check_archive),
calling the function it is given once it has read everything, before it keeps anything."""


def decrypt_into_archive(
    source: Readable, keys: Sequence[envelope.OpeningKey], read: ArchiveReading
) -> archive.Manifest:
    """Decrypt `source` into the archive reader `read` through an in-process pipe: one
    pass, no plaintext file.

    What `read` is given to call at the end waits for the decryption and raises its
    failure: nothing is kept before the tag has verified. Whatever fails, a wrong key or
    a damaged envelope reads as the one DecryptionError (the archive's complaint about
    garbage would otherwise say which).
    """
    plaintext = ChunkPipe()
    failure: list[BaseException] = []

    def decrypt() -> None:
        try:
            envelope.decrypt_stream(source, plaintext, keys, deposit=True)
        except BaseException as error:  # noqa: BLE001 - handed to the reader below
            failure.append(error)
        with contextlib.suppress(BrokenPipeError):
            plaintext.finish()

    def verified(_manifest: archive.Manifest) -> None:
        decryptor.join()  # the archive was read to its end: the tag is checked now
        if failure:
            raise failure[0]

    decryptor = threading.Thread(target=decrypt, name="decrypt", daemon=True)
    decryptor.start()
    try:
        return read(plaintext, verified)
    except BaseException:
        # Let the decryption finish, so that a wrong key or a bad tag is what is said.
        while plaintext.read(1 << 20):
            pass
        decryptor.join()
        if failure and isinstance(failure[0], DecryptionError):
            raise failure[0] from None
        raise
    finally:
        plaintext.close()
        decryptor.join()


def _settled(result: Opened | Failed) -> concurrent.futures.Future[Opened | Failed]:
    done: concurrent.futures.Future[Opened | Failed] = concurrent.futures.Future()
    done.set_result(result)
    return done


def _failure(job: _Job, error: ScelleError | OSError) -> Failed:
    reason = error.message if isinstance(error, ScelleError) else _disk_error(error)
    _remove_empty(job.target.parent, job.target.parent.parent)
    return Failed(*job.entry, reason)


@dataclass
class _Staged:
    """An envelope opened in the work folder, waiting for the platform to record it."""

    job: _Job
    files: int
    publish: Callable[[], Opened]
    """Moves its files to their place: run once the platform recorded the opening."""
    discard: Callable[[], None]
    done: concurrent.futures.Future[Opened | Failed]

    @property
    def entry(self) -> tuple[str, str, int]:
        return (self.job.deposit["id"], self.job.item["kind"], self.files)


class _Reporter:
    """Records opened envelopes on the platform, then shows their files (rule 7), on a
    thread of its own: the workers go on to the next envelope meanwhile, and the envelopes
    that wait while a report is on its way go together in the next one (group commit: one
    transaction and one signed checkpoint for all of them on the platform). A report the
    platform refuses as a whole is sent again envelope by envelope, so that each hears its
    own refusal."""

    def __init__(self, client: api.PlatformClient) -> None:
        self._client = client
        self._ready = threading.Condition()
        self._waiting: list[_Staged] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="opening-report", daemon=True)
        self._thread.start()

    def submit(
        self, job: _Job, files: int, publish: Callable[[], Opened], discard: Callable[[], None]
    ) -> concurrent.futures.Future[Opened | Failed]:
        staged = _Staged(job, files, publish, discard, concurrent.futures.Future())
        with self._ready:
            self._waiting.append(staged)
            self._ready.notify()
        return staged.done

    def close(self) -> None:
        """Once every envelope submitted is reported (or failed)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                # A moment for others to join: nothing waits on the report but the files'
                # appearance, and one report of many costs the platform about one of one.
                until = time.monotonic() + REPORT_GATHER_SECONDS
                while len(self._waiting) < MAX_REPORTED and not self._closed:
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._ready.wait(left)
                batch = self._waiting[:MAX_REPORTED]
                del self._waiting[:MAX_REPORTED]
            if not batch:
                return
            try:
                self._send(batch)
            except Exception as error:  # noqa: BLE001 - handed to the worker waiting on it
                for staged in batch:
                    if not staged.done.done():
                        staged.discard()
                        staged.done.set_exception(error)

    def _send(self, batch: list[_Staged]) -> None:
        try:
            if len(batch) == 1:
                deposit, kind, files = batch[0].entry
                self._client.report_opened(deposit, kind, files=files)
            else:
                self._client.report_opened_together([staged.entry for staged in batch])
        except ScelleError as error:
            if len(batch) > 1 and not isinstance(error, NotAuthenticatedError):
                for staged in batch:
                    self._send([staged])
                return
            for staged in batch:
                staged.discard()
                staged.done.set_result(_failure(staged.job, error))
            return
        for staged in batch:
            try:
                staged.done.set_result(staged.publish())
            except OSError as error:
                staged.discard()
                staged.done.set_result(_failure(staged.job, error))


class _Hashing:
    """A sink that hashes what is written to it."""

    def __init__(self, sink: BinaryIO, digest: hashlib._Hash) -> None:
        self._sink = sink
        self._digest = digest

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._digest.update(data)
        write_all(self._sink, data)
        return len(data)


def _remove_empty(*folders: Path) -> None:
    """Leave no empty company or deposit folder behind a failed envelope."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (another envelope, or another deposit), or never made


def _disk_error(error: OSError) -> str:
    name = Path(str(error.filename)).name[:80] if error.filename else ""
    where = f" ({name})" if name else ""
    why = error.strerror or type(error).__name__
    return f"cannot write this envelope's files on this workstation: {why}{where}"


def tender_recipients(
    tender: api.Tender, record: LaunchRecord | None
) -> tuple[list[x509.Certificate], list[str]]:
    """The certificates envelopes may be encrypted to, and warnings about them.

    With the launching workstation's record, only the certificates it names;
    otherwise the tender's, checked against the RSF the platform states.
    """
    warnings = []
    loaded = {}
    roles = []
    for recipient in tender["key_pairs"]:
        try:
            certificate = certs.load_certificate(recipient["certificate_pem"].encode())
        except ScelleError:
            warnings.append(f"the certificate of {recipient['designation']} cannot be read")
            continue
        loaded[certs.fingerprint_sha256(certificate)] = certificate
        roles.append((certs.fingerprint_sha256(certificate), recipient["role"]))
    if not loaded:
        return [], warnings
    try:
        computed = set_fingerprint(tender, roles)
    except ScelleError as error:
        return [], [*warnings, error.message]
    if record is not None:
        if record.rsf != computed:
            warnings.append(
                f"the platform's key pairs for this tender ({computed}) differ from those "
                f"recorded on this workstation at launch ({record.rsf})"
            )
        return [c for fp, c in loaded.items() if fp in record.fingerprints], warnings
    if tender["rsf"] is not None and tender["rsf"] != computed:
        warnings.append(
            f"the platform states {tender['rsf']} for this tender, but its key pairs give "
            f"{computed}"
        )
    return list(loaded.values()), warnings


def published_test_key(client: api.PlatformClient, reference: str) -> envelope.DecryptionKey:
    """The key pair the platform publishes for its test tender `reference`, with which a
    company opens its own test deposits; refused for any other tender, or a key that does
    not match its certificate (nothing the server says is believed)."""
    tender = client.tender(reference)
    if not tender.get("test"):
        raise InvalidInputError(
            N_("{reference} is not a test tender: only test deposits open with the test key"),
            reference=tender["reference"],
        )
    published = client.test_key(str(tender["id"]))
    try:
        key = serialization.load_pem_private_key(
            published["private_key_pem"].encode(), password=None
        )
        certificate = certs.load_certificate(published["certificate_pem"].encode())
    except (ValueError, TypeError, UnsupportedAlgorithm, ScelleError):
        raise PlatformAnswerError(N_("the platform's test key cannot be read")) from None
    if not isinstance(key, rsa.RSAPrivateKey) or not certs.key_matches_certificate(
        key, certificate
    ):
        raise PlatformAnswerError(N_("the platform's test key does not match its certificate"))
    return envelope.DecryptionKey(key, certificate)


def open_tender(
    client: api.PlatformClient,
    keys: Sequence[envelope.DecryptionKey],
    reference: str,
    out: Path,
    *,
    kinds: Sequence[str] = (),
    include_late: bool = False,
    record: LaunchRecord | None = None,
    workers: int = WORKERS,
    progress: Callable[[str, int], Progress | None] = lambda _label, _total: None,
    clock: Clock = system_clock,
    commission_wait: float = COMMISSION_WAIT_SECONDS,
) -> OpeningReport:
    """Open the tender's chosen deposits into `out`; `record` is the launch set kept
    by this workstation's store, when it launched the tender.

    For a tender a commission opens, when none of `keys` is a backup key pair but one is
    a member's, this workstation opens as the commission's opener: each envelope waits
    (up to `commission_wait` seconds in all) for k - 1 other members' shares."""
    tender = client.tender(reference)
    unknown = [kind for kind in kinds if kind not in tender["envelopes"]]
    if unknown:
        raise InvalidInputError(
            N_("{reference} has no envelope {value!r}; its envelopes are {join}"),
            reference=tender["reference"],
            value=unknown[0],
            join=", ".join(tender["envelopes"]),
        )
    listed = client.tender_deposits(reference)
    chosen = choose_deposits(listed, include_late=include_late)
    report = OpeningReport()
    report.withdrawn, report.failed = withdrawn_deposits(listed)
    recipients, report.warnings = tender_recipients(tender, record)
    existed = out.exists()
    work = ensure_private_dir(out / WORK_FOLDER)
    try:
        together = _together(client, keys, tender, clock, commission_wait)
        opening = _Opening(client, keys, tender, recipients, work, progress, together)
        _open_all(opening, chosen, out, kinds, report, workers)
        return report
    finally:
        # Keep partial downloads to resume from; leave no empty folder behind.
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _together(
    client: api.PlatformClient,
    keys: Sequence[envelope.DecryptionKey],
    tender: api.Tender,
    clock: Clock,
    wait: float,
) -> _Together | None:
    """The commission's opening with this workstation as opener, started on the platform,
    when the tender has a commission and this workstation holds a member's key pair and no
    backup one (which opens alone); None otherwise."""
    found = tender_commission(tender)
    if found is None:
        return None
    held = [key for key in keys if key.certificate is not None]
    if any(key.certificate not in found.members for key in held):
        return None  # a backup key pair (or the test key) opens each envelope alone
    mine = [key for key in held if key.certificate in found.members]
    if not mine:
        return None
    client.start_commission_opening(tender["id"])
    box = ShareBox(client, tender["id"], until=time.monotonic() + wait)
    return _Together(box, found, mine[0], clock)


def _open_all(
    opening: _Opening,
    chosen: list[api.Deposit],
    out: Path,
    kinds: Sequence[str],
    report: OpeningReport,
    workers: int,
) -> None:
    folders = folder_names([deposit["bidder"] for deposit in chosen])
    root = out.resolve()
    jobs, already = [], []
    for deposit in chosen:
        for item in deposit["envelopes"]:
            if kinds and item["kind"] not in kinds:
                continue
            target = out / folders[deposit["bidder"]] / deposit["id"] / item["kind"]
            job = _Job(deposit, item, target)
            if item["kind"] not in opening.tender["envelopes"]:
                report.failed.append(
                    Failed(*job.entry, "the platform lists an envelope this tender does not have")
                )
            elif not target.parent.resolve().is_relative_to(root):
                report.failed.append(Failed(*job.entry, "its folder would lie outside OUT"))
            elif target.exists():
                already.append(job)
            else:
                jobs.append(job)
    try:
        earlier = [opening.already_opened(job) for job in already]
        with concurrent.futures.ThreadPoolExecutor(max(1, workers), "opening") as pool:
            now = list(pool.map(opening.open, jobs))
    finally:
        opening.reporter.close()
    for done in earlier:
        _file(report, done.result(), report.already)
    for done in now:
        _file(report, done.result(), report.opened)


def _file(report: OpeningReport, result: Opened | Failed, into: list[Opened]) -> None:
    if isinstance(result, Failed):
        report.failed.append(result)
    else:
        into.append(result)
