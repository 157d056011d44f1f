"""The transparency log's formats, as C2SP writes them, and the checks a client makes
with them (DESIGN.md, "Formats" and "Trust").

- checkpoint (c2sp.org/tlog-checkpoint): the note text "<origin>\\n<size>\\n<root,
  base64>\\n", signed by the log's Ed25519 key, whose name is the origin;
- tiles (c2sp.org/tlog-tiles): `tile/<L>/<N>[.p/<W>]` holds the hashes of tree level
  8L, 256 to a full tile; `tile/entries/<N>[.p/<W>]` the entries themselves, each
  prefixed by its length (2 bytes, big-endian);
- proof (c2sp.org/tlog-proof): "c2sp.org/tlog-proof@v1", optionally "extra <base64>",
  "index <i>", the inclusion path one base64 hash a line, a blank line, the checkpoint.

Entries are canonical JSON objects with a "type" (`entry`): a receipt is logged as the
SHA-256 of its signed body only, so that the log names no company.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scelle.core import merkle, note
from scelle.core.errors import N_, LogError, LogMisbehaviourError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_ENTRY_BYTES = (1 << 16) - 1
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64


def entry(kind: str, **fields: Any) -> bytes:  # noqa: ANN401 - JSON values
    """One entry of the log: `{"type": kind, ...}` in canonical JSON."""
    data = json.dumps(
        {"type": kind, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    if len(data) > MAX_ENTRY_BYTES:
        raise LogError(N_("an entry of the log must stay under 64 KiB"))
    return data


@dataclass(frozen=True)
class Checkpoint:
    """A tree head of the log: its origin, size and root hash."""

    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        try:
            origin, size, root = lines[0], lines[1], base64.b64decode(lines[2], validate=True)
            if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size) or len(root) != merkle.HASH_BYTES:
                raise ValueError(size)
        except (IndexError, ValueError, binascii.Error):
            raise LogError(N_("this is not a checkpoint of a transparency log")) from None
        return cls(note.check_name(origin), int(size), root)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature verified, with the note it came in."""

    checkpoint: Checkpoint
    note: note.Note

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def __str__(self) -> str:
        return str(self.note)


def open_checkpoint(data: bytes | str, log: note.Verifier) -> SignedCheckpoint:
    """Read a checkpoint and check the log's signature on it; its origin is the key's name."""
    signed = note.parse(data)
    checkpoint = Checkpoint.from_text(signed.text)
    if checkpoint.origin != log.name or not signed.signed_by(log):
        raise LogError(
            N_("the checkpoint is not signed by the log {origin}"),
            origin=log.name,
        )
    return SignedCheckpoint(checkpoint, signed)


def sign_checkpoint(checkpoint: Checkpoint, signer: note.Signer) -> str:
    return note.sign(checkpoint.text, signer)


# --- tiles ------------------------------------------------------------------------------


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """`tile/<level>/<index as x001/x234/067>[.p/<width>]`; level "entries" for bundles."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{path}{suffix}"


_TILE = re.compile(
    r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> tuple[int | None, int, int] | None:
    """(level, None for entries; index; width) of a tile path, or None if it is not one."""
    found = _TILE.fullmatch(path)
    if found is None:
        return None
    level_text, index_text, width_text = found.groups()
    width = TILE_WIDTH if width_text is None else int(width_text)
    groups = index_text.replace("x", "").split("/")
    leading_zeroes = len(groups) > 1 and groups[0] == "000"
    if (width_text and width >= TILE_WIDTH) or len(groups) > 7 or leading_zeroes:
        return None
    level = None if level_text == "entries" else int(level_text)
    if level is not None and level > 63:
        return None
    return level, int("".join(groups)), width


def entry_bundle(entries: Sequence[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def read_entry_bundle(data: bytes, count: int) -> list[bytes]:
    """The `count` entries of a bundle; refuse a bundle that holds anything else."""
    entries: list[bytes] = []
    at = 0
    while at < len(data) and len(entries) < count:
        length = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + length > len(data):
            break
        entries.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if len(entries) != count or at != len(data):
        raise LogError(N_("an entry bundle of the log is damaged"))
    return entries


def tile_width(level: int, index: int, size: int) -> int:
    """How many hashes tile (level, index) holds in a tree of `size` (0: none yet)."""
    hashes = size >> (TILE_HEIGHT * level)
    if (index + 1) * TILE_WIDTH <= hashes:
        return TILE_WIDTH
    return max(0, hashes - index * TILE_WIDTH)


class TileReader:
    """Subtree hashes of a tree of `size` from its tiles, fetched through `fetch(path)`.

    The tiles come from the platform and prove nothing alone: what is computed from them
    is checked against signed roots (`check_consistency`), so a lying tile only makes
    a proof fail.
    """

    def __init__(self, size: int, fetch: Callable[[str], bytes]) -> None:
        self.size = size
        self.fetch = fetch
        self.tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        if (level, index) not in self.tiles:
            width = tile_width(level, index, self.size)
            data = self.fetch(tile_path(level, index, width)) if width else b""
            if not width or len(data) != width * merkle.HASH_BYTES:
                raise LogError(
                    N_("the log's tile {path} is missing or damaged"),
                    path=tile_path(level, index, max(width, 1)),
                )
            self.tiles[level, index] = [data[i : i + 32] for i in range(0, len(data), 32)]
        return self.tiles[level, index]

    def read(self, level: int, index: int) -> bytes:
        tile_level, below = divmod(level, TILE_HEIGHT)
        first = index << below
        hashes = self._tile(tile_level, first // TILE_WIDTH)
        start = first % TILE_WIDTH
        part = hashes[start : start + (1 << below)]
        if len(part) != 1 << below:
            raise LogError(N_("the log's tiles do not cover its checkpoint"))
        return merkle.root(part)


def check_consistency(
    earlier: SignedCheckpoint,
    later: SignedCheckpoint,
    fetch: Callable[[str], bytes],
    *,
    either_order: bool = False,
) -> None:
    """Whether the log of `later` extends the log of `earlier`, both signed by the log:
    raise LogMisbehaviourError, naming both, when it does not. A `later` tree smaller
    than `earlier` is a log cut short, unless `either_order` (two trees seen apart, such
    as a witness's and a receipt's: one must extend the other)."""
    old, new = earlier.checkpoint, later.checkpoint
    if new.size < old.size and not either_order:
        raise LogMisbehaviourError(
            N_(
                "the transparency log {origin} now holds {new} entries, fewer than the "
                "{old} it signed before: entries were dropped"
            ),
            hint=N_("Keep both signed checkpoints: together they prove it."),
            earlier=str(earlier),
            later=str(later),
            origin=old.origin,
            old=old.size,
            new=new.size,
        )
    if new.size < old.size:
        old, new, earlier, later = new, old, later, earlier
    if old.size == new.size:
        consistent = old.root == new.root
    elif old.size == 0:
        consistent = True
    else:
        proof = merkle.consistency_path(old.size, new.size, TileReader(new.size, fetch).read)
        consistent = merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    if not consistent:
        raise LogMisbehaviourError(
            N_(
                "the transparency log {origin} contradicts itself: its tree of {new} "
                "entries does not extend its tree of {old} (a fork, or entries rewritten "
                "or dropped)"
            ),
            hint=N_("Keep both signed checkpoints: together they prove it."),
            earlier=str(earlier),
            later=str(later),
            origin=old.origin,
            old=old.size,
            new=new.size,
        )


# --- proofs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """c2sp.org/tlog-proof: an entry's index, its inclusion path, the checkpoint."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    """The signed checkpoint, as the log wrote it."""
    extra: bytes | None = None

    def __str__(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> Proof:
        head, blank, checkpoint = text.partition("\n\n")
        lines = head.split("\n")
        try:
            if lines.pop(0) != PROOF_HEADER or not blank:
                raise ValueError(PROOF_HEADER)
            extra = None
            if lines and lines[0].startswith("extra "):
                extra = base64.b64decode(lines.pop(0)[6:], validate=True)
            index_line = lines.pop(0)
            if not re.fullmatch(r"index (0|[1-9][0-9]{0,18})", index_line):
                raise ValueError(index_line)
            hashes = tuple(base64.b64decode(line, validate=True) for line in lines)
            if len(hashes) > MAX_PROOF_HASHES or any(len(h) != 32 for h in hashes):
                raise ValueError("hashes")
        except (IndexError, ValueError, binascii.Error):
            raise LogError(N_("this is not a proof of a transparency log")) from None
        return cls(int(index_line[6:]), hashes, checkpoint, extra)


@dataclass(frozen=True)
class Inclusion:
    """An entry shown at `index` in the tree of a checkpoint the log signed."""

    index: int
    checkpoint: SignedCheckpoint


def verify_proof(proof: Proof, logged: bytes, log: note.Verifier) -> Inclusion:
    """Check that `logged` (an entry) is in the log at the proof's index, in the tree the
    log signed."""
    signed = open_checkpoint(proof.checkpoint, log)
    tree = signed.checkpoint
    if not merkle.verify_inclusion(
        proof.index, tree.size, merkle.leaf_hash(logged), proof.hashes, tree.root
    ):
        raise LogError(
            N_("the transparency log's proof does not show this entry in its tree"),
        )
    return Inclusion(proof.index, signed)


def checkpoint_summary(signed: SignedCheckpoint) -> Mapping[str, object]:
    tree = signed.checkpoint
    return {"origin": tree.origin, "size": tree.size, "root": base64.b64encode(tree.root).decode()}
