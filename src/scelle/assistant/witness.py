"""A witness of platforms' transparency logs (`scelle witness`): run by someone other
than the platform (a prefecture, a federation of companies), it fetches a log's
checkpoint, checks that it extends the last one it cosigned, and only then cosigns it
(c2sp.org/tlog-cosignature) and hands the cosignature to the platform, which publishes
it. A log that shows it another history is named with the two checkpoints, and never
cosigned again.

Its Ed25519 key is sealed in SCELLE_HOME under the store's passphrase, as buyers' keys
are; what it cosigned last, per log, is kept beside it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from scelle.assistant import transparency
from scelle.client.api import PlatformClient
from scelle.core import note, tlog
from scelle.core.errors import N_, InvalidInputError, StoreError
from scelle.core.files import ensure_private_dir, write_private_file
from scelle.keystore import KeyStore

FOLDER = "witness"
KEY_FILE = "witness-key.json"
STATE = "witness-logs"


def _context(name: str) -> bytes:
    return f"scelle:witness:{name}".encode()


def create_key(store: KeyStore, name: str) -> note.Signer:
    """The witness's key, made on the first call and sealed in the store's home."""
    path = store.home / FOLDER / KEY_FILE
    if path.is_file():
        signer = load_key(store)
        if signer.name != name:
            raise StoreError(
                N_("this workstation's witness is already named {name}"), name=signer.name
            )
        return signer
    signer = note.Signer(note.check_name(name), ed25519.Ed25519PrivateKey.generate(),
                         note.COSIGNATURE)  # fmt: skip
    raw = signer.key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    sealed = store.unlock().seal(raw, _context(name))
    ensure_private_dir(store.home / FOLDER)
    document = {"name": name, "key": base64.b64encode(sealed).decode()}
    write_private_file(path, json.dumps(document, indent=2).encode())
    return signer


def load_key(store: KeyStore) -> note.Signer:
    path = store.home / FOLDER / KEY_FILE
    if not path.is_file():
        raise StoreError(
            N_("this workstation has no witness key"),
            hint=N_("Make one with: scelle witness key --name NAME"),
        )
    try:
        document = json.loads(path.read_text("utf-8"))
        name, sealed = str(document["name"]), base64.b64decode(document["key"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StoreError(N_("{path} is damaged"), path=path) from error
    raw = store.unlock().unseal(sealed, _context(name))
    return note.Signer(name, ed25519.Ed25519PrivateKey.from_private_bytes(raw), note.COSIGNATURE)


def log_key_of(client: PlatformClient, home: Path, given: note.Verifier | None) -> note.Verifier:
    """The key of the log the witness follows: the one given (the first time), else the
    one it kept from then; never one the platform names on its own."""
    if given is not None:
        transparency.check_key(transparency.remembered(home, given.name, STATE), given)
        return given
    origin = tlog.Checkpoint.from_text(note.parse(client.log_checkpoint()).text).origin
    kept = transparency.remembered(home, origin, STATE)
    if kept is None:
        raise InvalidInputError(
            N_("the first look at a log needs its key: pass --log-key"),
            hint=N_("Its operator publishes it, and the platform at /log/key: compare them."),
        )
    return kept.key


@dataclass(frozen=True)
class Witnessed:
    """What one round of the witness did."""

    checkpoint: tlog.SignedCheckpoint
    cosigned: bool
    """False when the log had not grown since the last cosignature (nothing to send)."""


def witness_once(
    client: PlatformClient,
    home: Path,
    signer: note.Signer,
    log: note.Verifier,
    *,
    now: Callable[[], int],
) -> Witnessed:
    """Fetch the log's checkpoint, check it extends the last one cosigned, cosign it and
    send the cosignature; LogMisbehaviourError, with both checkpoints, when it does not."""
    kept = transparency.remembered(home, log.name, STATE)
    transparency.check_key(kept, log)
    current = tlog.open_checkpoint(client.log_checkpoint(), log)
    if kept is not None:
        tlog.check_consistency(kept.checkpoint, current, client.log_tile)
        if kept.checkpoint.size == current.size:
            return Witnessed(current, cosigned=False)
    line = note.parse_signature(note.cosign(current.note.text, signer, now()))
    by_log = tuple(s for s in current.note.signatures if s.name == log.name)
    client.send_cosignature(note.Note(current.note.text, by_log).with_signatures([line]))
    transparency.remember(home, log, current, STATE)
    return Witnessed(current, cosigned=True)
