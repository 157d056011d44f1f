"""Shamir's scheme as core.shamir writes it: any k of n shares give the secret back, fewer
do not, and the npm package the page uses (`shamir-secret-sharing`, pinned in
package-lock.json) reads our shares and we read its own, share for share."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scelle.core import shamir
from scelle.core.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "shamir-secret-sharing" / "esm" / "index.js"


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=48), st.integers(2, 6), st.data())
def test_any_k_shares_give_the_secret_and_fewer_do_not(secret: bytes, k: int, data) -> None:
    n = data.draw(st.integers(k, 7))
    shares = shamir.split(secret, n, k)
    assert len(shares) == n and all(len(share) == len(secret) + 1 for share in shares)
    assert len({share[-1] for share in shares}) == n and all(share[-1] for share in shares)
    for chosen in itertools.combinations(shares, k):
        assert shamir.combine(list(chosen)) == secret
    if len(secret) >= 16:  # k - 1 shares: any value, this one with probability 2^-128
        for fewer in itertools.combinations(shares, k - 1):
            if len(fewer) >= 2:
                assert shamir.combine(list(fewer)) != secret


def test_the_field_is_aes_gf256() -> None:
    # 0x57 * 0x83 = 0xC1 in the AES field (FIPS 197, 4.2).
    assert shamir._mul(0x57, 0x83) == 0xC1
    assert all(shamir._mul(a, shamir._div(1, a)) == 1 for a in range(1, 256))


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [(1, 1, "2 to 255 members"), (3, 4, "2 to 255 members"), (256, 2, "2 to 255 members")],
)
def test_what_cannot_be_shared_is_refused(shares: int, threshold: int, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        shamir.split(os.urandom(32), shares, threshold)


def test_shares_of_different_secrets_or_coordinates_are_refused() -> None:
    a, b = shamir.split(os.urandom(32), 3, 2)[:2]
    with pytest.raises(InvalidInputError, match="lengths differ"):
        shamir.combine([a, b[:-2] + b[-1:]])
    with pytest.raises(InvalidInputError, match="share a coordinate"):
        shamir.combine([a, a])
    with pytest.raises(InvalidInputError, match="share a coordinate"):
        shamir.combine([a, b[:-1] + b"\x00"])


def _node(script: str, payload: object) -> object:
    node = shutil.which("node")
    if node is None or not PACKAGE.exists():
        pytest.skip("Node.js and the npm packages are installed by scripts/build-js")
    run = subprocess.run(
        [node, "--input-type=module", "-e", script],
        input=json.dumps(payload), capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return json.loads(run.stdout)


def test_the_page_reads_our_shares_and_we_read_the_pages() -> None:
    script = f"""
import {{ split, combine }} from {json.dumps(PACKAGE.as_uri())};
import {{ readFileSync }} from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
const hex = (b) => Buffer.from(b).toString("hex");
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
const ours = [];
for (const shares of input.ours) ours.push(hex(await combine(shares.map(bytes))));
const theirs = [];
for (const secret of input.secrets) theirs.push((await split(bytes(secret), 5, 3)).map(hex));
console.log(JSON.stringify({{ ours, theirs }}));
"""
    secrets_ = [os.urandom(size).hex() for size in (1, 16, 32, 32, 64)]
    ours = [shamir.split(bytes.fromhex(s), 4, 3) for s in secrets_]
    answer = _node(script, {"ours": [[x.hex() for x in s[1:]] for s in ours],
                            "secrets": secrets_})  # fmt: skip
    assert isinstance(answer, dict)
    assert answer["ours"] == secrets_  # the package combined any 3 of our 4
    for secret, theirs in zip(secrets_, answer["theirs"], strict=True):
        shares = [bytes.fromhex(x) for x in theirs]
        for chosen in itertools.combinations(shares, 3):
            assert shamir.combine(list(chosen)).hex() == secret
