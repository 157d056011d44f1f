"""Signed notes, checkpoints, tiles and proofs of the transparency log (core.note,
core.tlog): the reference implementation's example note byte for byte, the tile paths
of C2SP's text, and a tree served as tiles whose every fork is caught."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from scelle.core import merkle, note, tlog
from scelle.core.errors import LogError, LogMisbehaviourError

# golang.org/x/mod/sumdb/note's documented example: key, text and signature.
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
SIGNED = (
    TEXT + "\n\N{EM DASH} PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _signer(name: str, kind: int = note.ED25519) -> note.Signer:
    seed = hashlib.sha256(name.encode()).digest()
    return note.Signer(name, ed25519.Ed25519PrivateKey.from_private_bytes(seed), kind)


def test_the_reference_note_is_signed_byte_for_byte_and_verifies() -> None:
    signer = note.Signer("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(SEED))
    assert signer.verifier.vkey == VKEY
    assert note.sign(TEXT, signer) == SIGNED
    verifier = note.Verifier.parse(VKEY)
    assert note.parse(SIGNED).signed_by(verifier)
    assert not note.parse(SIGNED.replace("problem,", "problem;")).signed_by(verifier)
    assert str(note.parse(SIGNED)) == SIGNED


def test_mangled_keys_and_notes_are_refused() -> None:
    for cut in range(1, len(VKEY)):
        with pytest.raises(LogError):
            note.Verifier.parse(VKEY[:cut])
    with pytest.raises(LogError):
        note.Verifier.parse(VKEY.replace("c74f20a3", "c74f20a4"))
    too_large = b"x" * (note.MAX_NOTE_BYTES + 1)
    for bad in (b"", b"text\n", TEXT.encode(), b"\xff\n\n\xe2\x80\x94 a b\n", b"a\n\nnot a line\n",
                SIGNED.replace("\n", "\r\n").encode(), too_large):  # fmt: skip
        with pytest.raises(LogError):
            note.parse(bad)
    for name in ("", "a b", "a+b", "a\nb"):
        with pytest.raises(LogError):
            note.check_name(name)


def test_a_cosignature_verifies_for_its_witness_only_and_says_its_time() -> None:
    log, witness, other = (
        _signer("log.example"),
        _signer("w1", note.COSIGNATURE),
        _signer("w2", note.COSIGNATURE),
    )
    checkpoint = tlog.Checkpoint("log.example", 3, bytes(32))
    signed = note.parse(tlog.sign_checkpoint(checkpoint, log))
    line = note.parse_signature(note.cosign(checkpoint.text, witness, 1_700_000_000))
    cosigned = note.parse(signed.with_signatures([line]))
    assert cosigned.signed_by(log.verifier) and cosigned.signed_by(witness.verifier)
    assert cosigned.cosigned_at(witness.verifier) == 1_700_000_000
    assert not cosigned.signed_by(other.verifier)
    # the same signature on another tree does not verify
    moved = note.parse(tlog.sign_checkpoint(tlog.Checkpoint("log.example", 4, bytes(32)), log))
    assert not note.parse(moved.with_signatures([line])).signed_by(witness.verifier)
    # a witness's key is not a log's
    assert not cosigned.signed_by(note.Verifier("w1", note.ED25519, witness.verifier.public))


def test_checkpoints_open_only_under_their_log_key() -> None:
    log = _signer("log.example")
    checkpoint = tlog.Checkpoint("log.example", 12, hashlib.sha256(b"x").digest())
    text = tlog.sign_checkpoint(checkpoint, log)
    assert tlog.open_checkpoint(text, log.verifier).checkpoint == checkpoint
    with pytest.raises(LogError):
        tlog.open_checkpoint(text, _signer("log.example").verifier.__class__(
            "log.example", note.ED25519, _signer("other").verifier.public))  # fmt: skip
    with pytest.raises(LogError):
        tlog.open_checkpoint(text.replace("\n12\n", "\n13\n"), log.verifier)
    for bad in ("o\n-1\nAAAA\n", "o\n01\n" + base64.b64encode(bytes(32)).decode() + "\n", "o\n1\n"):
        with pytest.raises(LogError):
            tlog.Checkpoint.from_text(bad)


def test_tile_paths_are_those_of_the_specification() -> None:
    assert tlog.tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tlog.tile_path(2, 0, 1) == "tile/2/000.p/1"
    assert tlog.tile_path("entries", 1000, 17) == "tile/entries/x001/000.p/17"
    assert tlog.parse_tile_path("tile/0/x001/x234/067") == (0, 1234067, 256)
    assert tlog.parse_tile_path("tile/entries/x001/000.p/17") == (None, 1000, 17)
    for bad in ("tile/0/1234067", "tile/64/000", "tile/0/000.p/256", "tile/0/000.p/0",
                "tile/01/000", "tile/0/x000/001", "tile/0/../000", "tile/0/000/"):  # fmt: skip
        assert tlog.parse_tile_path(bad) is None
    # a tree of 70,000: 273 full tiles and one of 112 at level 0, 1 and 17 at level 1
    assert tlog.tile_width(0, 272, 70_000) == 256
    assert tlog.tile_width(0, 273, 70_000) == 112
    assert (tlog.tile_width(1, 0, 70_000), tlog.tile_width(1, 1, 70_000)) == (256, 17)
    assert tlog.tile_width(2, 0, 70_000) == 1


def test_entry_bundles_hold_exactly_their_entries() -> None:
    entries = [b"a", b"", b"x" * 300]
    bundle = tlog.entry_bundle(entries)
    assert tlog.read_entry_bundle(bundle, 3) == entries
    for bad, count in ((bundle[:-1], 3), (bundle, 2), (bundle + b"\x00", 3), (bundle, 4)):
        with pytest.raises(LogError):
            tlog.read_entry_bundle(bad, count)


class _Tiles:
    """A log of these leaves served as tiles, as a platform would."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.fetched: list[str] = []

    def fetch(self, path: str) -> bytes:
        self.fetched.append(path)
        parsed = tlog.parse_tile_path(path)
        assert parsed is not None
        level, index, width = parsed
        assert level is not None
        span = 1 << (8 * level)
        return b"".join(
            merkle.root(self.leaves[(index * 256 + i) * span : (index * 256 + i + 1) * span])
            for i in range(width)
        )


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 300, 65536 + 700])
def test_hashes_read_from_tiles_are_the_tree_s(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    reader = tlog.TileReader(size, _Tiles(leaves).fetch)
    assert merkle.tree_root(size, reader.read) == merkle.root(leaves)
    for old in {1, size // 3 or 1, size - 1 or 1}:
        proof = merkle.consistency_path(old, size, reader.read)
        assert merkle.verify_consistency(
            old, size, proof, merkle.root(leaves[:old]), merkle.root(leaves)
        )


def test_a_fork_and_a_log_cut_short_are_named_with_both_checkpoints() -> None:
    log = _signer("log.example")
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(40)]

    def signed(part: list[bytes]) -> tlog.SignedCheckpoint:
        tree = tlog.Checkpoint("log.example", len(part), merkle.root(part))
        return tlog.open_checkpoint(tlog.sign_checkpoint(tree, log), log.verifier)

    honest = _Tiles(leaves)
    tlog.check_consistency(signed(leaves[:10]), signed(leaves), honest.fetch)
    tlog.check_consistency(signed(leaves), signed(leaves[:10]), honest.fetch, either_order=True)
    with pytest.raises(LogMisbehaviourError, match="fewer than the 40"):
        tlog.check_consistency(signed(leaves), signed(leaves[:10]), honest.fetch)
    rewritten = [*leaves[:5], merkle.leaf_hash(b"other"), *leaves[6:]]
    for earlier, later, tiles in (
        (signed(leaves[:10]), signed(rewritten), _Tiles(rewritten)),  # entry 5 rewritten
        (signed(leaves[:10]), signed(leaves[:4] + leaves[5:]), _Tiles(leaves[:4] + leaves[5:])),
        (signed(leaves[:10]), signed(rewritten[:10]), _Tiles(rewritten)),  # same size, forked
        (signed(leaves[:10]), signed(rewritten), honest),  # the tiles lie about the new tree
    ):
        with pytest.raises(LogMisbehaviourError) as caught:
            tlog.check_consistency(earlier, later, tiles.fetch)
        assert caught.value.earlier == str(earlier) and caught.value.later == str(later)


def test_a_proof_round_trips_and_shows_its_entry_only() -> None:
    log = _signer("log.example")
    entries = [tlog.entry("receipt", sha256=f"{i:064x}") for i in range(7)]
    leaves = [merkle.leaf_hash(e) for e in entries]
    checkpoint = tlog.sign_checkpoint(tlog.Checkpoint("log.example", 7, merkle.root(leaves)), log)
    proof = tlog.Proof(4, tuple(merkle.inclusion_proof(4, leaves)), checkpoint, b"extra")
    again = tlog.Proof.parse(str(proof))
    assert again == proof
    shown = tlog.verify_proof(again, entries[4], log.verifier)
    assert (shown.index, shown.checkpoint.size) == (4, 7)
    with pytest.raises(LogError):
        tlog.verify_proof(again, entries[3], log.verifier)
    with pytest.raises(LogError):
        tlog.verify_proof(tlog.Proof(3, proof.hashes, checkpoint), entries[4], log.verifier)
    for bad in ("", str(proof).replace("index 4", "index -4"), str(proof).replace("\n\n", "\n"),
                str(proof).replace(tlog.PROOF_HEADER, "c2sp.org/tlog-proof@v2")):  # fmt: skip
        with pytest.raises(LogError):
            tlog.Proof.parse(bad)
