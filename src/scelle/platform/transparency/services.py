"""The platform's transparency log: appending entries, signing checkpoints, proving
inclusion, serving tiles, keeping witnesses' cosignatures (DESIGN.md, "Formats").

Appends happen inside the transaction of what they log (a deposit, a launch…), under
the audit chain's lock: the log and the chain are written in one order, and a deposit
whose transaction fails leaves no entry. Every append signs a new checkpoint, so that
the receipt made in that transaction carries a proof against it.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from scelle.core import merkle, note, tlog
from scelle.core.errors import N_, LogError, RuleViolationError
from scelle.platform.audit.services import lock_chain
from scelle.platform.keypairs.authority import log_signer
from scelle.platform.transparency.models import Cosignature, LogCheckpoint, LogEntry, LogHash

OPENING_PART = 400
"""Receipt hashes one opening entry lists: entries stay under 64 KiB."""


def enabled() -> bool:
    return bool(settings.SCELLE_TRANSPARENCY_LOG)


def log_key() -> str:
    """The log's verifier key, as receipts carry it and clients pin it."""
    return log_signer().verifier.vkey


def _read(ids: Iterable[tuple[int, int]], known: dict[tuple[int, int], bytes]) -> None:
    missing = [pair for pair in ids if pair not in known]
    if not missing:
        return
    query = functools.reduce(operator.or_, (Q(level=lv, index=ix) for lv, ix in missing))
    for level, index, value in LogHash.objects.filter(query).values_list("level", "index", "hash"):
        known[level, index] = bytes(value)
    if any(pair not in known for pair in missing):
        raise LogError(N_("the transparency log's tree is incomplete"))


def _size() -> int:
    last = LogEntry.objects.order_by("-index").values_list("index", flat=True).first()
    return 0 if last is None else last + 1


@dataclass(frozen=True)
class Appended:
    """What `append` gives back: each entry's proof against the checkpoint it signed."""

    proofs: list[tlog.Proof]
    checkpoint: str


def append(entries: Sequence[bytes], *, now: dt.datetime) -> Appended | None:
    """Add `entries` to the log, sign the new checkpoint, prove each; None when the log
    is off. Call it inside the transaction of what the entries record."""
    if not enabled() or not entries:
        return None
    with transaction.atomic():
        lock_chain()
        size = _size()
        known: dict[tuple[int, int], bytes] = {}
        _read(merkle.subtrees(0, size), known)  # the right edge: all that appending needs
        start, rows = size, []
        for data in entries:
            value, level, index = merkle.leaf_hash(data), 0, size
            known[0, index] = value
            rows.append(LogHash(level=0, index=index, hash=value))
            while index & 1:
                value = merkle.node_hash(known[level, index - 1], value)
                level, index = level + 1, index >> 1
                known[level, index] = value
                rows.append(LogHash(level=level, index=index, hash=value))
            size += 1
        proving = [functools.partial(merkle.inclusion_path, i, size) for i in range(start, size)]
        _read(set().union(*(merkle.needed(p) for p in proving)), known)

        def read(level: int, index: int) -> bytes:
            return known[level, index]

        checkpoint = tlog.sign_checkpoint(
            tlog.Checkpoint(log_signer().name, size, merkle.tree_root(size, read)), log_signer()
        )
        LogEntry.objects.bulk_create(
            LogEntry(index=start + i, data=data, at=now) for i, data in enumerate(entries)
        )
        LogHash.objects.bulk_create(rows)
        LogCheckpoint.objects.create(size=size, note=checkpoint, at=now)
    proofs = [
        tlog.Proof(start + i, tuple(prove(read)), checkpoint) for i, prove in enumerate(proving)
    ]
    return Appended(proofs, checkpoint)


def log_receipt(body_sha256: str, kind: str, *, now: dt.datetime, **more: str) -> tlog.Proof | None:
    """Log a signed receipt (a deposit's, a withdrawal's, a commitment's) by its hash."""
    appended = append([tlog.entry(kind, receipt=body_sha256, **more)], now=now)
    return None if appended is None else appended.proofs[0]


def log_launch(reference: str, rsf: str, deadline: dt.datetime, *, now: dt.datetime) -> None:
    append(
        [tlog.entry("launch", tender=reference, rsf=rsf, deadline=deadline.isoformat())],
        now=now,
    )


def log_opening(reference: str, receipts: Sequence[str], *, now: dt.datetime) -> None:
    """An opening: which deposits (by their receipts' hashes) were opened, when."""
    parts = [receipts[i : i + OPENING_PART] for i in range(0, len(receipts), OPENING_PART)]
    parts = parts or [[]]
    append(
        [
            tlog.entry(
                "opening",
                tender=reference,
                at=now.isoformat(),
                deposits=list(part),
                part=number,
                parts=len(parts),
            )
            for number, part in enumerate(parts, start=1)
        ],
        now=now,
    )


# --- reading: checkpoint, tiles, entries --------------------------------------------------


def _witnesses() -> list[note.Verifier]:
    return [note.Verifier.parse(vkey) for vkey in settings.SCELLE_LOG_WITNESSES]


def checkpoint_note(size: int | None = None) -> str | None:
    """The signed checkpoint of `size` entries (the latest when None), with the witnesses'
    cosignatures received for it; None before the first entry."""
    found = LogCheckpoint.objects.order_by("-size")
    if size is not None:
        found = found.filter(size=size)
    last = found.first()
    if last is None:
        return None
    lines = Cosignature.objects.filter(size=last.size).values_list("line", flat=True)
    return note.parse(last.note).with_signatures([note.parse_signature(s) for s in lines])


def tile(level: int, index: int, width: int) -> bytes | None:
    """The tile's hashes, or None when the tree does not have them (yet)."""
    first = index * tlog.TILE_WIDTH
    hashes = list(
        LogHash.objects.filter(
            level=level * tlog.TILE_HEIGHT, index__gte=first, index__lt=first + width
        )
        .order_by("index")
        .values_list("hash", flat=True)
    )
    return b"".join(bytes(h) for h in hashes) if len(hashes) == width else None


def entry_bundle(index: int, width: int) -> bytes | None:
    first = index * tlog.TILE_WIDTH
    data = list(
        LogEntry.objects.filter(index__gte=first, index__lt=first + width)
        .order_by("index")
        .values_list("data", flat=True)
    )
    return tlog.entry_bundle([bytes(d) for d in data]) if len(data) == width else None


# --- witnesses ---------------------------------------------------------------------------


def add_cosignatures(data: bytes, *, now: dt.datetime) -> list[str]:
    """Keep the cosignatures a witness sends: the log's checkpoint with the witness's
    signature added. Each must be by a witness the platform knows, over a checkpoint the
    log signed; the names of the witnesses whose cosignatures were kept."""
    sent = note.parse(data)
    size = tlog.Checkpoint.from_text(sent.text).size
    stored = LogCheckpoint.objects.filter(size=size).values_list("note", flat=True).first()
    if stored is None or note.parse(stored).text != sent.text:
        raise RuleViolationError(N_("the log signed no such checkpoint of {size} entries"),
                                 size=size)  # fmt: skip
    witnesses = {w.name: w for w in _witnesses()}
    kept = []
    for signature in sent.signatures:
        witness = witnesses.get(signature.name)
        if witness is None or not note.Note(sent.text, (signature,)).signed_by(witness):
            continue
        with transaction.atomic():
            if not Cosignature.objects.filter(size=size, line=signature.line).exists():
                Cosignature.objects.create(
                    size=size, witness=witness.name, line=signature.line, received_at=now
                )
        kept.append(witness.name)
    if not kept:
        raise RuleViolationError(
            N_("no cosignature of a witness of this log over that checkpoint"),
            hint=N_("The platform's operator lists its witnesses in SCELLE_LOG_WITNESSES."),
        )
    return kept


def witnessed() -> dict[str, str]:
    """For each witness, the latest checkpoint it cosigned, with its cosignature."""
    found: dict[str, str] = {}
    for witness in _witnesses():
        last = Cosignature.objects.filter(witness=witness.name).order_by("-size", "-id").first()
        if last is None:
            continue
        stored = LogCheckpoint.objects.get(size=last.size).note
        found[witness.name] = note.parse(stored).with_signatures([note.parse_signature(last.line)])
    return found
