"""The recipient-set fingerprint: stable, order-free, sensitive to every certificate."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scelle.core import certs
from scelle.core.errors import InvalidInputError
from scelle.core.rsf import normalise_rsf, recipient_set_fingerprint, rsf_of_certificates
from tests.conftest import Identity

FP = st.binary(min_size=32, max_size=32)


def test_known_value() -> None:
    # Pinned: the code is printed in published notices, it must never drift.
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    expected = hashlib.sha256(b"scelle-rsf-v1" + b"".join(sorted([a, b]))).digest()
    value = int.from_bytes(expected, "big") >> 156
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    symbols = "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(20)))
    code = recipient_set_fingerprint([a, b])
    assert code == "RSF " + "-".join(symbols[i : i + 4] for i in range(0, 20, 4))
    assert code == recipient_set_fingerprint([a.hex(":").upper(), b.hex()])


@given(st.lists(FP, min_size=1, max_size=6, unique=True), st.randoms())
def test_order_and_repetition_do_not_matter(fingerprints: list[bytes], random) -> None:
    shuffled = fingerprints * 2
    random.shuffle(shuffled)
    assert recipient_set_fingerprint(shuffled) == recipient_set_fingerprint(fingerprints)


@given(st.lists(FP, min_size=1, max_size=5, unique=True), FP)
def test_adding_a_recipient_changes_the_code(fingerprints: list[bytes], extra: bytes) -> None:
    if extra in fingerprints:
        return
    assert recipient_set_fingerprint([*fingerprints, extra]) != recipient_set_fingerprint(
        fingerprints
    )


def test_of_certificates_matches_their_fingerprints(alice: Identity, bob: Identity) -> None:
    fps = [certs.fingerprint_sha256(alice.certificate), certs.fingerprint_sha256(bob.certificate)]
    assert rsf_of_certificates([bob.certificate, alice.certificate]) == (
        recipient_set_fingerprint(fps)
    )


def test_normalise_reads_what_people_type() -> None:
    code = recipient_set_fingerprint([hashlib.sha256(b"x").digest()])
    typed = code.lower().replace("-", " ").replace("rsf ", "")
    assert normalise_rsf(typed) == code
    assert normalise_rsf(code.replace("0", "o").replace("1", "l")) == code
    for bad in ("", "RSF 1234", "RSF UUUU-UUUU-UUUU-UUUU-UUUU", code + "X"):
        with pytest.raises(InvalidInputError):
            normalise_rsf(bad)


def test_refuses_what_is_not_a_fingerprint() -> None:
    for bad in ([], ["00:11"], [b"short"], ["zz" * 32]):
        with pytest.raises(InvalidInputError):
            recipient_set_fingerprint(bad)


def test_a_commission_set_covers_who_is_member_who_is_backup_and_k() -> None:
    from scelle.core.rsf import commission_set_fingerprint

    a, b, c, d = (bytes([n]) * 32 for n in (1, 2, 3, 4))
    code = commission_set_fingerprint([a], [b, c, d], 2)
    assert code == commission_set_fingerprint([a, a], [d, c, b], 2)  # sets, in any order
    assert code.startswith("RSF ") and normalise_rsf(code) == code
    different = {
        commission_set_fingerprint([a], [b, c, d], 3),  # another k
        commission_set_fingerprint([b], [a, c, d], 2),  # a member made a backup
        commission_set_fingerprint([a], [b, c], 2),  # a member fewer
        commission_set_fingerprint([a, b], [c, d], 2),
        recipient_set_fingerprint([a, b, c, d]),  # the same certificates, no commission
    }
    assert code not in different and len(different) == 5
    for backups, members, k in (([], [b, c], 2), ([a], [b], 1), ([a], [a, b], 2)):
        with pytest.raises(InvalidInputError, match="commission's recipient set"):
            commission_set_fingerprint(backups, members, k)
