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
from collections.abc import Sequence

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


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, leaves): the audit path of leaf `index` in the tree of `leaves`."""
    if not 0 <= index < len(leaves):
        raise InvalidInputError(
            N_("no leaf {index} in a tree of {size}"), index=index, size=len(leaves)
        )
    path: list[bytes] = []
    low, high = 0, len(leaves)
    while high - low > 1:
        k = _split(high - low)
        if index - low < k:
            path.append(root(leaves[low + k : high]))
            high = low + k
        else:
            path.append(root(leaves[low : low + k]))
            low += k
    return path[::-1]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, leaves): that the tree of the first `old_size` leaves is a prefix
    of the tree of all of them."""
    if not 0 < old_size <= len(leaves):
        raise InvalidInputError(
            N_("no consistency proof from {old} to {size} leaves"),
            old=old_size,
            size=len(leaves),
        )
    return _subproof(old_size, leaves, complete=True)


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root(leaves[:k])]


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
