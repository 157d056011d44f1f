"""A commission's envelopes (core.commission): k of n members' shares open them, k - 1 do
not, a share is bound to its tender, deadline and envelope, and OpenSSL still opens them
with a backup key pair, skipping the recipient it does not know."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms

from scelle.core import commission, envelope
from scelle.core.errors import DecryptionError, InvalidInputError
from tests.conftest import NOW, Identity, make_identity, require_tool

DEADLINE = NOW + dt.timedelta(days=30)
AFTER = DEADLINE + dt.timedelta(minutes=1)
TENDER = uuid.UUID("6f1d2c3b-0000-4000-8000-00000000c0de")


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Identity]:
    folder = tmp_path_factory.mktemp("commission")
    return [make_identity(folder, name) for name in ("membre-a", "membre-b", "membre-c")]


def _seal(
    plaintext: bytes, members: list[Identity], backups: list[Identity], *, k: int = 2,
    tender: uuid.UUID = TENDER, deadline: dt.datetime = DEADLINE,
) -> bytes:  # fmt: skip
    chosen = commission.Commission(tender, deadline, tuple(m.certificate for m in members), k)
    keys = envelope.EnvelopeKeys.for_recipients(
        [b.certificate for b in backups],
        also=lambda content_key: commission.recipient_info(content_key, chosen),
    )
    out = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(plaintext), out, keys)
    return out.getvalue()


def _c(members: list[Identity], *, k: int = 2, tender: uuid.UUID = TENDER) -> commission.Commission:
    """The commission as a member's workstation knows it from the tender."""
    return commission.Commission(tender, DEADLINE, tuple(m.certificate for m in members), k)


def _forged(taken: list[bytes]) -> bytes:
    """A share of random bytes at a coordinate none of `taken` has (a share the server or a
    member made up, of the right shape)."""
    used = {share[-1] for share in taken}
    return os.urandom(32) + bytes([min(set(range(1, 256)) - used)])


def _sealed_shares(sealed: bytes) -> commission.SealedShares:
    infos = cms.ContentInfo.load(sealed)["content"]["recipient_infos"].dump()
    found = commission.read(infos)
    assert found is not None
    return found


def _open_with(sealed: bytes, content_key: bytes) -> bytes:
    out = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO(sealed), out, [envelope.KnownContentKey(content_key)], deposit=True
    )
    return out.getvalue()


def test_any_two_of_three_members_open_and_one_alone_does_not(
    members: list[Identity], bob: Identity
) -> None:
    plaintext = os.urandom(200_000)
    sealed = _seal(plaintext, members, [bob])
    shares = _sealed_shares(sealed)
    assert shares.threshold == 2 and len(shares.shares) == 3
    taken = {
        m.certificate: commission.decrypt_share(shares, m.decryption_key, _c(members), now=AFTER)
        for m in members
    }
    for pair in itertools.combinations(members, 2):
        key = commission.combine([taken[m.certificate] for m in pair], shares)
        assert _open_with(sealed, key) == plaintext
    for alone in members:
        with pytest.raises(DecryptionError, match="1 share"):
            commission.combine([taken[alone.certificate]], shares)
        forged = commission.combine(
            [taken[alone.certificate], _forged(list(taken.values()))], shares
        )
        with pytest.raises(DecryptionError):
            _open_with(sealed, forged)


def test_a_share_is_bound_to_its_tender_deadline_and_envelope(
    members: list[Identity], bob: Identity
) -> None:
    first, second = _seal(b"offre 1", members, [bob]), _seal(b"offre 2", members, [bob])
    one, two = _sealed_shares(first), _sealed_shares(second)
    member = members[0].decryption_key
    with pytest.raises(DecryptionError, match="no share of this envelope"):
        commission.decrypt_share(
            one, member, _c(members, tender=uuid.uuid4()), now=AFTER
        )  # another tender
    with pytest.raises(DecryptionError, match="stays sealed until"):
        commission.decrypt_share(one, member, _c(members), now=DEADLINE - dt.timedelta(seconds=1))
    # A deadline a server moved earlier: the label the member computes does not match.
    moved = commission.SealedShares(one.threshold, NOW, one.envelope, one.shares)
    with pytest.raises(DecryptionError, match="no share of this envelope"):
        commission.decrypt_share(moved, member, _c(members), now=AFTER)
    # The second envelope's shares put into the first's: they decrypt to nothing.
    swapped = commission.SealedShares(one.threshold, one.not_before, one.envelope, two.shares)
    with pytest.raises(DecryptionError, match="no share of this envelope"):
        commission.decrypt_share(swapped, member, _c(members), now=AFTER)
    with pytest.raises(DecryptionError, match="no share"):
        commission.decrypt_share(one, bob.decryption_key, _c(members), now=AFTER)  # not a member
    # A commission described otherwise than the company sealed to: another k, or a member's
    # certificate swapped (for the server's own, say): the label differs, nothing decrypts.
    with pytest.raises(DecryptionError, match="no share of this envelope"):
        commission.decrypt_share(one, member, _c(members, k=3), now=AFTER)
    with pytest.raises(DecryptionError, match="no share of this envelope"):
        commission.decrypt_share(one, member, _c([*members[:2], bob]), now=AFTER)


def test_openssl_opens_with_a_backup_key_and_skips_the_commission(
    members: list[Identity], bob: Identity, alice: Identity, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    plaintext = b"%PDF offre de test\n" * 5000
    (tmp_path / "offre.p7m").write_bytes(_seal(plaintext, members, [alice, bob]))
    for backup in (alice, bob):
        opened = subprocess.run(
            [openssl, "cms", "-decrypt", "-binary", "-inform", "DER",
             "-in", str(tmp_path / "offre.p7m"), "-inkey", str(backup.key_pem),
             "-recip", str(backup.cert_pem)],
            capture_output=True, check=True,
        )  # fmt: skip
        assert opened.stdout == plaintext
    out = io.BytesIO()
    envelope.decrypt_stream(
        io.BytesIO((tmp_path / "offre.p7m").read_bytes()), out, [bob.decryption_key], deposit=True
    )
    assert out.getvalue() == plaintext


def test_a_malformed_commission_recipient_is_named_and_the_backup_still_opens(
    members: list[Identity], bob: Identity
) -> None:
    bad = cms.RecipientInfo(
        name="ori",
        value=cms.OtherRecipientInfo(
            {"ori_type": commission.COMMISSION_OID, "ori_value": cms.OctetString(b"\x00" * 9)}
        ),
    )
    keys = envelope.EnvelopeKeys.for_recipients([bob.certificate], also=lambda _key: bad)
    sealed = io.BytesIO()
    envelope.encrypt_stream(io.BytesIO(b"pli"), sealed, keys)
    infos = cms.ContentInfo.load(sealed.getvalue())["content"]["recipient_infos"].dump()
    with pytest.raises(InvalidInputError, match="commission recipient is malformed"):
        commission.read(infos)
    out = io.BytesIO()
    envelope.decrypt_stream(io.BytesIO(sealed.getvalue()), out, [bob.decryption_key])
    assert out.getvalue() == b"pli"


@pytest.mark.parametrize(("count", "k"), [(1, 1), (2, 1), (2, 3)])
def test_a_commission_needs_two_members_to_open(
    members: list[Identity], count: int, k: int
) -> None:
    with pytest.raises(InvalidInputError, match="at least 2 of them"):
        commission.Commission(TENDER, DEADLINE, tuple(m.certificate for m in members[:count]), k)
    with pytest.raises(InvalidInputError, match="once"):
        commission.Commission(TENDER, DEADLINE, (members[0].certificate,) * 2, 2)


SEAL_JS = Path(__file__).resolve().parents[2] / "src/scelle/platform/web/js/seal.js"


def test_the_page_seals_a_commission_the_command_opens(
    members: list[Identity], bob: Identity
) -> None:
    """seal.js (the browser's sealing, run by Node.js as the page runs it) writes the
    RecipientInfos of a commission tender: the command's members decrypt their shares from
    it and combine any two into the page's content key; the backup key pair's is intact."""
    import json
    import shutil

    from cryptography.hazmat.primitives.serialization import Encoding

    node = shutil.which("node")
    if node is None or not (SEAL_JS.parents[5] / "node_modules").exists():
        pytest.skip("Node.js and the npm packages are installed by scripts/build-js")
    script = f"""
import {{ recipientInfos }} from {json.dumps(SEAL_JS.as_uri())};
import {{ readFileSync }} from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
const contentKey = crypto.getRandomValues(new Uint8Array(32));
const infos = await recipientInfos(contentKey, [bytes(input.backup)], {{
  tender: input.tender, notBefore: new Date(input.deadline), members: input.members.map(bytes),
  threshold: 2,
}});
console.log(JSON.stringify({{ key: Buffer.from(contentKey).toString("hex"),
                             infos: Buffer.from(infos).toString("hex") }}));
"""
    payload = {
        "backup": bob.certificate.public_bytes(Encoding.DER).hex(),
        "members": [m.certificate.public_bytes(Encoding.DER).hex() for m in members],
        "tender": str(TENDER),
        "deadline": DEADLINE.isoformat(),
    }
    run = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(payload),
                         capture_output=True, text=True, check=True)  # fmt: skip
    answer = json.loads(run.stdout)
    infos = bytes.fromhex(answer["infos"])
    sealed = commission.read(infos)
    assert sealed is not None and sealed.threshold == 2 and sealed.not_before == DEADLINE
    taken = [
        commission.decrypt_share(sealed, m.decryption_key, _c(members), now=AFTER) for m in members
    ]
    for pair in itertools.combinations(taken, 2):
        assert commission.combine(list(pair), sealed).hex() == answer["key"]
    ktri = [i.chosen for i in cms.RecipientInfos.load(infos) if i.name == "ktri"]
    assert (
        len(ktri) == 1
        and bob.key.decrypt(ktri[0]["encrypted_key"].native, envelope._OAEP_SHA256).hex()
        == answer["key"]
    )


def test_a_member_relays_a_share_only_the_recorded_opener_receives_here(
    members: list[Identity], bob: Identity, alice: Identity
) -> None:
    sealed_bytes = _seal(b"offre", members, [bob])
    first, other = _sealed_shares(sealed_bytes), _sealed_shares(_seal(b"autre", members, [bob]))
    opener, member = members[0], members[1]
    share = commission.decrypt_share(first, member.decryption_key, _c(members), now=AFTER)
    relayed = commission.relay_share(
        share, first, _c(members), opener=opener.certificate, member=member.certificate
    )
    assert share not in relayed
    received = commission.receive_share(
        relayed, first, _c(members), opener=opener.decryption_key, member=member.certificate
    )
    own = commission.decrypt_share(first, opener.decryption_key, _c(members), now=AFTER)
    assert _open_with(sealed_bytes, commission.combine([own, received], first)) == b"offre"
    refused = [
        (first, alice.decryption_key, member.certificate),  # another opener's key
        (other, opener.decryption_key, member.certificate),  # moved to another envelope
        (first, opener.decryption_key, members[2].certificate),  # said to be another member's
    ]
    for sealed, key, said in refused:
        with pytest.raises(DecryptionError, match=r"does not open for this opener|not a member"):
            commission.receive_share(relayed, sealed, _c(members), opener=key, member=said)
    # Never relayed to a key that is not a member's, whatever the server names.
    with pytest.raises(DecryptionError, match="opener is not a member"):
        commission.relay_share(
            share, first, _c(members), opener=alice.certificate, member=member.certificate
        )


CHECKS_JS = SEAL_JS.with_name("checks.js")


def test_the_page_computes_a_commissions_rsf_as_the_command_does() -> None:
    """checks.js's commission_set_fingerprint is core.rsf's, for several sets and k."""
    import json
    import shutil

    from scelle.core.rsf import commission_set_fingerprint

    node = shutil.which("node")
    if node is None or not (SEAL_JS.parents[5] / "node_modules").exists():
        pytest.skip("Node.js and the npm packages are installed by scripts/build-js")
    cases: list[dict[str, Any]] = []
    for backups, members, k in [(1, 2, 2), (2, 3, 2), (1, 5, 3), (3, 4, 4)]:
        ders = [os.urandom(40 + n) for n in range(backups + members)]
        cases.append({"backups": [d.hex() for d in ders[:backups]],
                      "members": [d.hex() for d in ders[backups:]], "k": k})  # fmt: skip
    script = f"""
import {{ commissionSetFingerprint }} from {json.dumps(CHECKS_JS.as_uri())};
import {{ readFileSync }} from "node:fs";
const bytes = (h) => new Uint8Array(Buffer.from(h, "hex"));
const out = [];
for (const c of JSON.parse(readFileSync(0, "utf8")))
  out.push(await commissionSetFingerprint(c.backups.map(bytes), c.members.map(bytes), c.k));
console.log(JSON.stringify(out));
"""
    run = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(cases),
                         capture_output=True, text=True, check=True)  # fmt: skip
    import hashlib

    def fingerprints(hexes: list[str]) -> list[bytes]:
        return [hashlib.sha256(bytes.fromhex(h)).digest() for h in hexes]

    assert json.loads(run.stdout) == [
        commission_set_fingerprint(fingerprints(c["backups"]), fingerprints(c["members"]), c["k"])
        for c in cases
    ]


def test_every_subset_of_k_minus_one_members_fails_and_every_k_subset_opens(
    tmp_path_factory: pytest.TempPathFactory, bob: Identity
) -> None:
    """Three of five: each of the ten pairs is refused before decrypting (too few shares)
    and, given a third share of its own making, decrypts nothing; each trio opens."""
    folder = tmp_path_factory.mktemp("five")
    five = [make_identity(folder, f"membre-{n}") for n in range(5)]
    plaintext = os.urandom(5000)
    sealed = _seal(plaintext, five, [bob], k=3)
    shares = _sealed_shares(sealed)
    chosen = _c(five, k=3)
    taken = [commission.decrypt_share(shares, m.decryption_key, chosen, now=AFTER) for m in five]
    for pair in itertools.combinations(taken, 2):
        with pytest.raises(DecryptionError, match="2 share"):
            commission.combine(list(pair), shares)
        forged = commission.combine([*pair, _forged(taken)], shares)
        with pytest.raises(DecryptionError):
            _open_with(sealed, forged)
    for trio in itertools.combinations(taken, 3):
        assert _open_with(sealed, commission.combine(list(trio), shares)) == plaintext
