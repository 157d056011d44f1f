"""RFC 6962 Merkle trees (core.merkle): the RFC's reference vectors, and every proof of
every tree up to 40 leaves against a second implementation written from the RFC's
recursive definitions, with each proof's every one-bit change refused."""

from __future__ import annotations

import hashlib
import random

import pytest

from scelle.core import merkle
from scelle.core.errors import InvalidInputError

# The inputs and tree heads of RFC 6962's reference tests (Certificate Transparency).
ENTRIES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
LEAVES = [merkle.leaf_hash(entry) for entry in ENTRIES]


def test_the_rfc_tree_heads() -> None:
    assert [merkle.root(LEAVES[:n]).hex() for n in range(9)] == ROOTS


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_the_rfc_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    proof = merkle.inclusion_proof(index, LEAVES[:size])
    assert [node.hex() for node in proof] == path
    assert merkle.verify_inclusion(index, size, LEAVES[index], proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "size", "path"), CONSISTENCY)
def test_the_rfc_consistency_proofs(old: int, size: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(old, LEAVES[:size])
    assert [node.hex() for node in proof] == path
    old_root, new_root = bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[size])
    assert merkle.verify_consistency(old, size, proof, old_root, new_root)


# --- a second implementation: RFC 6962's recursive definitions, as written ----------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    return [*_path(m, d[:k]), _mth(d[k:])] if m < k else [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [_mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _flipped(proof: list[bytes]) -> list[list[bytes]]:
    """The proof with one bit changed, in each node in turn; and one node short or more."""
    changed = []
    for at in range(len(proof)):
        node = bytearray(proof[at])
        node[at % 32] ^= 1 << (at % 8)
        changed.append([*proof[:at], bytes(node), *proof[at + 1 :]])
    changed.append(proof[:-1])
    changed.append([*proof, proof[-1] if proof else merkle.EMPTY_ROOT])
    return changed


def test_every_proof_up_to_40_leaves_matches_the_definitions_and_none_other_verifies() -> None:
    rng = random.Random(6962)
    leaves = [merkle.leaf_hash(rng.randbytes(rng.randint(0, 40))) for _ in range(40)]
    for size in range(1, 41):
        tree = leaves[:size]
        head = merkle.root(tree)
        assert head == _mth(tree)
        for index in range(size):
            proof = merkle.inclusion_proof(index, tree)
            assert proof == _path(index, tree)
            assert merkle.verify_inclusion(index, size, tree[index], proof, head)
            assert not merkle.verify_inclusion(index, size, leaves[(index + 1) % 40], proof, head)
            if index + 1 < size:
                assert not merkle.verify_inclusion(index + 1, size, tree[index], proof, head)
            for wrong in _flipped(proof) if proof else []:
                assert not merkle.verify_inclusion(index, size, tree[index], wrong, head)
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(old, tree)
            assert proof == _subproof(old, tree, True)
            old_head = merkle.root(leaves[:old])
            assert merkle.verify_consistency(old, size, proof, old_head, head)
            if old < size:
                for wrong in _flipped(proof):
                    assert not merkle.verify_consistency(old, size, wrong, old_head, head)
                forked = merkle.root([*leaves[: old - 1], merkle.leaf_hash(b"fork")])
                assert not merkle.verify_consistency(old, size, proof, forked, head)


def test_proofs_of_what_is_not_there_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        merkle.inclusion_proof(8, LEAVES)
    with pytest.raises(InvalidInputError):
        merkle.consistency_proof(0, LEAVES)
    with pytest.raises(InvalidInputError):
        merkle.consistency_proof(9, LEAVES)
    head = bytes.fromhex(ROOTS[8])
    assert not merkle.verify_inclusion(8, 8, LEAVES[0], [], head)
    assert not merkle.verify_inclusion(0, 8, LEAVES[0], [b"short"] * 3, head)
    assert not merkle.verify_consistency(3, 2, [], head, head)
    assert not merkle.verify_consistency(1, 1, [head], head, head)
