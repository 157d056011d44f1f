"""Opening a tender's deposits on the buyer's workstation (DESIGN.md, Opening flow).

For each chosen deposit and envelope: download the ciphertext (resumable),
check it against the SHA-256 the platform recorded at deposit, decrypt it
with the workstation's keys into a temporary file (plaintext is used only
once the tag verified), check the manifest is for this tender, envelope and
company, extract it safely into OUT/<company>/<deposit>/<envelope>/, and
report the opening to the platform. A failing envelope is reported and the
others still open.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scelle.client import api
from scelle.core import archive, envelope
from scelle.core.errors import (
    ArchiveError,
    DecryptionError,
    InvalidInputError,
    ScelleError,
)
from scelle.core.files import ensure_private_dir, private_temporary_file

Progress = Callable[[int], None]
WORK_FOLDER = ".scelle-work"


@dataclass(frozen=True)
class Opened:
    """An envelope now readable in `folder`."""

    bidder: str
    deposit: str
    kind: str
    folder: Path
    files: int
    late: bool


@dataclass(frozen=True)
class Failed:
    """An envelope that could not be opened, and why."""

    bidder: str
    deposit: str
    kind: str
    reason: str


@dataclass
class OpeningReport:
    opened: list[Opened] = field(default_factory=list)
    already: list[Opened] = field(default_factory=list)
    """Opened by an earlier run: their folders exist."""
    failed: list[Failed] = field(default_factory=list)


def choose_deposits(deposits: Sequence[api.Deposit], *, include_late: bool) -> list[api.Deposit]:
    """Each company's last deposit on time (rule 7); with `include_late`, late ones too."""
    last_on_time: dict[str, api.Deposit] = {}
    late = []
    for deposit in sorted(deposits, key=lambda d: d["received_at"]):
        if deposit["late"]:
            late.append(deposit)
        else:
            last_on_time[deposit["bidder"]] = deposit
    chosen = list(last_on_time.values())
    if include_late:
        chosen += late
    return sorted(chosen, key=lambda d: (d["bidder"].casefold(), d["received_at"]))


_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def folder_name(value: str) -> str:
    """A company's name as a folder name that every system accepts."""
    cleaned = _UNSAFE.sub("_", value).strip(" .")[:100]
    return cleaned or "_"


def open_tender(
    client: api.PlatformClient,
    keys: Sequence[envelope.DecryptionKey],
    reference: str,
    out: Path,
    *,
    kinds: Sequence[str] = (),
    include_late: bool = False,
    progress: Callable[[str, int], Progress | None] = lambda _label, _total: None,
) -> OpeningReport:
    """Open the tender's chosen deposits into `out`."""
    tender = client.tender(reference)
    unknown = [kind for kind in kinds if kind not in tender["envelopes"]]
    if unknown:
        raise InvalidInputError(
            f"{tender['reference']} has no envelope {unknown[0]!r}; "
            f"its envelopes are {', '.join(tender['envelopes'])}"
        )
    chosen = choose_deposits(client.tender_deposits(reference), include_late=include_late)
    existed = out.exists()
    work = ensure_private_dir(out / WORK_FOLDER)
    try:
        return _open_all(client, keys, tender, chosen, out, work, kinds, progress)
    finally:
        # Keep partial downloads to resume from; leave no empty folder behind.
        if work.is_dir() and not any(work.iterdir()):
            work.rmdir()
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _open_all(
    client: api.PlatformClient,
    keys: Sequence[envelope.DecryptionKey],
    tender: api.Tender,
    chosen: list[api.Deposit],
    out: Path,
    work: Path,
    kinds: Sequence[str],
    progress: Callable[[str, int], Progress | None],
) -> OpeningReport:
    report = OpeningReport()
    for deposit in chosen:
        for item in deposit["envelopes"]:
            if kinds and item["kind"] not in kinds:
                continue
            target = out / folder_name(deposit["bidder"]) / deposit["id"] / item["kind"]
            entry = (deposit["bidder"], deposit["id"], item["kind"])
            if target.exists():
                files = sum(1 for path in target.rglob("*") if path.is_file())
                report.already.append(Opened(*entry, target, files, deposit["late"]))
                continue
            try:
                manifest = _open_one(
                    client, keys, tender["reference"], deposit, item, target, work, progress
                )
            except (DecryptionError, ArchiveError, _Mismatch) as error:
                report.failed.append(Failed(*entry, error.message))
                continue
            client.report_opened(deposit["id"], item["kind"], files=len(manifest.files))
            report.opened.append(Opened(*entry, target, len(manifest.files), deposit["late"]))
    return report


class _Mismatch(ScelleError):
    """The downloaded envelope is not the one the platform recorded."""


def _download(
    client: api.PlatformClient,
    deposit: api.Deposit,
    item: api.ReceivedEnvelope,
    work: Path,
    progress: Progress | None,
) -> Path:
    """The envelope's ciphertext in `work`, resumed if an earlier run got part of it."""
    part = work / f"{deposit['id']}-{item['kind']}.p7m"
    start = part.stat().st_size if part.exists() else 0
    if start > item["size"]:
        part.unlink()
        start = 0
    if start < item["size"]:
        try:
            with part.open("ab") as sink:
                client.download_envelope(deposit["id"], item["kind"], sink, start=start)
        except ScelleError:
            if part.stat().st_size == 0:
                part.unlink()  # nothing to resume from
            raise
    digest = hashlib.sha256()
    with part.open("rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    if digest.hexdigest() != item["sha256"]:
        part.unlink()
        raise _Mismatch(
            "the downloaded envelope is not the one the platform recorded at deposit "
            "(SHA-256 differs)"
        )
    if progress is not None:
        progress(item["size"])
    return part


def _open_one(
    client: api.PlatformClient,
    keys: Sequence[envelope.DecryptionKey],
    reference: str,
    deposit: api.Deposit,
    item: api.ReceivedEnvelope,
    target: Path,
    work: Path,
    progress: Callable[[str, int], Progress | None],
) -> archive.Manifest:
    label = f"{deposit['bidder']} — {item['kind']}"
    ciphertext = _download(client, deposit, item, work, progress(label, item["size"]))

    def expect(manifest: archive.Manifest) -> None:
        sealed_for = (manifest.tender, manifest.envelope, manifest.bidder)
        if sealed_for != (reference, item["kind"], deposit["bidder"]):
            raise ArchiveError(
                f"this envelope was sealed for {manifest.tender} / {manifest.envelope} / "
                f"{manifest.bidder}, not for this deposit: refusing it"
            )

    with private_temporary_file(work) as plaintext:
        with ciphertext.open("rb") as source:
            envelope.decrypt_stream(source, plaintext, keys)
        plaintext.flush()
        plaintext.seek(0)
        manifest = archive.open_archive(plaintext, target, expect=expect)
    ciphertext.unlink()
    return manifest
