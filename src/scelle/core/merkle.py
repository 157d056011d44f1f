"""Merkle trees as RFC 6962 / RFC 9162 (section 2.1) define them: the hashing of a log's
entries, inclusion proofs and consistency proofs, made and verified (the transparency
log, DESIGN.md, "Trust").

    leaf hash  = SHA-256(0x00 || entry)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two below n

Functions take leaf hashes, not entries: a log keeps those. Verifying follows RFC 9162's
algorithms (2.1.3.2, 2.1.4.2) step by step, and refuses any proof of the wrong length.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from scelle.core.errors import N_, InvalidInputError

HASH_BYTES = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of these leaf hashes, without recursion: each complete subtree is
    folded as it closes, then the partial ones right to left."""
    if not leaves:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (height, hash) of complete subtrees, left first
    for leaf in leaves:
        height, value = 0, leaf
        while stack and stack[-1][0] == height:
            value = node_hash(stack.pop()[1], value)
            height += 1
        stack.append((height, value))
    value = stack.pop()[1]
    while stack:
        value = node_hash(stack.pop()[1], value)
    return value


Reader = Callable[[int, int], bytes]
"""`read(level, index)`: the hash of the complete subtree of 2**level leaves that starts
at leaf index * 2**level (level 0: the leaf hashes). A log stores these as it grows."""


def subtrees(low: int, high: int) -> list[tuple[int, int]]:
    """The complete subtrees that make up leaves [low, high), left to right, as
    (level, index): the hashes `range_root` folds."""
    parts = []
    while low < high:
        level = (high - low).bit_length() - 1
        if low:
            level = min(level, (low & -low).bit_length() - 1)
        parts.append((level, low >> level))
        low += 1 << level
    return parts


def range_root(low: int, high: int, read: Reader) -> bytes:
    """MTH(D[low:high]) from stored subtree hashes, for the ranges proofs use (`low` a
    multiple of a power of two at least `high - low`)."""
    if low >= high:
        return EMPTY_ROOT
    hashes = [read(level, index) for level, index in subtrees(low, high)]
    value = hashes.pop()
    while hashes:
        value = node_hash(hashes.pop(), value)
    return value


def tree_root(size: int, read: Reader) -> bytes:
    return range_root(0, size, read)


def inclusion_path(index: int, size: int, read: Reader) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf `index` in the tree of `size`."""
    if not 0 <= index < size:
        raise InvalidInputError(N_("no leaf {index} in a tree of {size}"), index=index, size=size)
    path: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        k = _split(high - low)
        if index - low < k:
            path.append(range_root(low + k, high, read))
            high = low + k
        else:
            path.append(range_root(low, low + k, read))
            low += k
    return path[::-1]


def consistency_path(old_size: int, size: int, read: Reader) -> list[bytes]:
    """PROOF(old_size, D[0:size]): that the tree of the first `old_size` leaves is a
    prefix of the tree of `size` leaves."""
    if not 0 < old_size <= size:
        raise InvalidInputError(
            N_("no consistency proof from {old} to {size} leaves"), old=old_size, size=size
        )
    proof: list[bytes] = []
    low, high, m, complete = 0, size, old_size, True
    while m != high - low:
        k = _split(high - low)
        if m <= k:
            proof.append(range_root(low + k, high, read))
            high = low + k
        else:
            proof.append(range_root(low, low + k, read))
            low, m, complete = low + k, m - k, False
    if not complete:
        proof.append(range_root(low, high, read))
    return proof[::-1]


def needed(compute: Callable[[Reader], object]) -> set[tuple[int, int]]:
    """The subtree hashes `compute` reads, found by running it on zeroes: which ones
    depends only on the sizes and indices, so a store can fetch them in one go."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(HASH_BYTES)

    compute(record)
    return wanted


def _reader(leaves: Sequence[bytes]) -> Reader:
    return lambda level, index: root(leaves[index << level : (index + 1) << level])


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves), from the leaves themselves."""
    return inclusion_path(index, len(leaves), _reader(leaves))


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, leaves), from the leaves themselves."""
    return consistency_path(old_size, len(leaves), _reader(leaves))


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162, 2.1.3.2: whether `proof` shows leaf `index` of a tree of `size` leaves,
    of tree head `expected_root`, to be `leaf`."""
    if not 0 <= index < size or any(len(node) != HASH_BYTES for node in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for node in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(node, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, expected_root)


def verify_consistency(
    old_size: int, size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """RFC 9162, 2.1.4.2: whether `proof` shows the tree of `old_size` leaves, of head
    `old_root`, to be a prefix of the tree of `size` leaves, of head `new_root`."""
    if not 0 < old_size <= size or any(len(node) != HASH_BYTES for node in proof):
        return False
    if old_size == size:
        return not proof and hmac.compare_digest(old_root, new_root)
    if not proof:
        return False
    nodes = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old head starts the path
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for node in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)
