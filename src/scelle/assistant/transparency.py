"""What a company's workstation checks of the platform's transparency log, online:
that the log it is shown now extends the one its receipt was proven in and the one this
workstation saw last (kept in SCELLE_HOME), and, when asked, that named witnesses
cosigned a tree holding the receipt (DESIGN.md, "Trust").

A log that forked, rewrote or dropped an entry is named with the two signed checkpoints
that prove it (core.errors.LogMisbehaviourError); what this workstation remembers is
only ever moved forward, never to a checkpoint that failed a check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scelle.client.api import PlatformClient
from scelle.core import note, tlog
from scelle.core.errors import N_, LogError, StoreError
from scelle.core.files import ensure_private_dir, write_private_file

FOLDER = "transparency"


@dataclass(frozen=True)
class Remembered:
    """The last checkpoint this workstation accepted from a log, and the log's key."""

    key: note.Verifier
    checkpoint: tlog.SignedCheckpoint


def _path(home: Path, origin: str, folder: str) -> Path:
    return home / folder / f"{hashlib.sha256(origin.encode()).hexdigest()[:32]}.json"


def remembered(home: Path, origin: str, folder: str = FOLDER) -> Remembered | None:
    """The last checkpoint of the log `origin` kept in `folder` of SCELLE_HOME."""
    path = _path(home, origin, folder)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        key = note.Verifier.parse(str(data["key"]))
        return Remembered(key, tlog.open_checkpoint(str(data["checkpoint"]), key))
    except (OSError, ValueError, KeyError, TypeError, LogError) as error:
        raise StoreError(N_("{path} is damaged"), path=path) from error


def remember(
    home: Path, key: note.Verifier, checkpoint: tlog.SignedCheckpoint, folder: str = FOLDER
) -> None:
    """Keep `checkpoint` as the last seen of its log, unless one as large is kept."""
    kept = remembered(home, key.name, folder)
    if kept is not None and kept.checkpoint.size >= checkpoint.size:
        return
    ensure_private_dir(home / folder)
    document = {"origin": key.name, "key": key.vkey, "checkpoint": str(checkpoint)}
    write_private_file(
        _path(home, key.name, folder), json.dumps(document, indent=2).encode(), overwrite=True
    )


def check_key(kept: Remembered | None, key: note.Verifier) -> None:
    """Refuse a log that now names another key than the one kept for its origin."""
    if kept is not None and kept.key != key:
        raise LogError(
            N_(
                "the transparency log {origin} now names another key than the one this "
                "workstation knows it by"
            ),
            hint=N_("Ask the platform's operator why its log changed key; keep both."),
            origin=key.name,
        )


@dataclass(frozen=True)
class LogCheck:
    """What an online check of a proven entry found."""

    current: tlog.SignedCheckpoint
    """The log's checkpoint now, consistent with every one checked against it."""
    witnessed: dict[str, int]
    """For each required witness, the size of the tree it cosigned holding the entry."""


def check_online(
    client: PlatformClient,
    home: Path,
    key: note.Verifier,
    shown: tlog.Inclusion,
    *,
    witnesses: Sequence[note.Verifier] = (),
) -> LogCheck:
    """Check that the platform's log, as it is now, still holds the tree in which the
    entry was `shown`, and agrees with what this workstation saw last."""
    kept = remembered(home, key.name)
    check_key(kept, key)
    fetch: Callable[[str], bytes] = client.log_tile
    current = tlog.open_checkpoint(client.log_checkpoint(), key)
    tlog.check_consistency(shown.checkpoint, current, fetch)
    if kept is not None:
        tlog.check_consistency(kept.checkpoint, current, fetch)
    witnessed = _witnessed(client, key, shown, witnesses, fetch)
    remember(home, key, current)
    return LogCheck(current, witnessed)


def _witnessed(
    client: PlatformClient,
    key: note.Verifier,
    shown: tlog.Inclusion,
    witnesses: Sequence[note.Verifier],
    fetch: Callable[[str], bytes],
) -> dict[str, int]:
    if not witnesses:
        return {}
    published = client.log_witnessed()
    sizes = {}
    for witness in witnesses:
        text = published.get(witness.name)
        cosigned = None if text is None else tlog.open_checkpoint(text, key)
        if cosigned is None or not cosigned.note.signed_by(witness):
            raise LogError(
                N_("the witness {name} has cosigned no checkpoint of this log"),
                name=witness.name,
            )
        tlog.check_consistency(shown.checkpoint, cosigned, fetch, either_order=True)
        if cosigned.size <= shown.index:
            raise LogError(
                N_(
                    "the witness {name} has not yet cosigned a tree holding this entry (it "
                    "cosigned {size} entries; the entry is number {index})"
                ),
                hint=N_("Check again later: witnesses follow the log every few minutes."),
                name=witness.name,
                size=cosigned.size,
                index=shown.index,
            )
        sizes[witness.name] = cosigned.size
    return sizes
