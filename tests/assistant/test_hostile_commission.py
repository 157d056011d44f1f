"""A commission's members and opener against a platform that lies (DESIGN.md, "Commission").

The real command runs against a real HTTP server on 127.0.0.1 whose answers each test
sets: a server that names another opener, swaps a member's certificate, asks before the
deadline, drops, duplicates or moves shares, or serves a malformed commission, gets
nothing it could use and opens nothing it should not.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from scelle.cli.main import EXIT_FAILURE, EXIT_OK, run
from scelle.cli.session import Session
from scelle.client.login import SavedLogin, save_login
from scelle.core import archive, authority, certs, commission, envelope
from scelle.core.rsf import commission_set_fingerprint
from scelle.keystore import KeyStore
from tests.assistant import hostile
from tests.assistant.hostile import (
    DEADLINE,
    REFERENCE,
    HostilePlatform,
    authority_json,
    hostile_platform,
    me_json,
    recipient_json,
)
from tests.conftest import NOW, STORE_PASSPHRASE

TENDER = uuid.UUID("0c0ffee0-0000-4000-8000-00000000c0de")
AFTER = DEADLINE + dt.timedelta(hours=1)
BIDDER = "BTP Normandie"


@dataclass(frozen=True)
class Member:
    name: str
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def opening_key(self) -> envelope.DecryptionKey:
        return envelope.DecryptionKey(self.key, self.certificate)


@dataclass(frozen=True)
class Commission:
    ca: authority.Authority
    members: list[Member]
    """MEMBRE-1 (the opener), MEMBRE-2, MEMBRE-3, then the server's own, INTRUS."""
    backup: Member

    @property
    def honest(self) -> commission.Commission:
        return commission.Commission(
            TENDER, DEADLINE, tuple(m.certificate for m in self.members[:3]), 2
        )


@pytest.fixture(scope="module")
def world() -> Commission:
    ca = authority.create_authority("Plateforme de test — autorité", now=NOW)

    def member(name: str) -> Member:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        request = authority.load_csr(authority.build_csr(key, name))
        certificate = authority.issue_encryption_certificate(
            ca, request, organisation="Ville de Rouen", service="Marchés", days=730, now=NOW
        )
        return Member(name, key, certificate)

    names = ("MEMBRE-1", "MEMBRE-2", "MEMBRE-3", "INTRUS")
    return Commission(ca, [member(n) for n in names], member("SECOURS"))


def _recipient(member: Member, role: str) -> dict[str, object]:
    return {**recipient_json(member.certificate, member.name), "role": role}


def tender_json(world: Commission, members: list[Member] | None = None) -> dict[str, Any]:
    """The tender as the platform lists it; `members` lets it lie about who they are, with
    an RSF recomputed to match its lie."""
    chosen = members or world.members[:3]
    fingerprint = certs.fingerprint_sha256
    recipients = [_recipient(m, "member") for m in chosen] + [_recipient(world.backup, "backup")]
    certificates = [m.certificate for m in chosen] + [world.backup.certificate]
    return {
        **hostile.tender_json(recipients, certificates),
        "id": str(TENDER),
        "rsf": commission_set_fingerprint(
            [fingerprint(world.backup.certificate)], [fingerprint(m.certificate) for m in chosen], 2
        ),
        "commission": {"threshold": 2},
    }


def opening_json(world: Commission, opener: Member, *, started: bool = True) -> dict[str, Any]:
    return {
        "reference": REFERENCE,
        "threshold": 2,
        "started": started,
        "started_at": AFTER.isoformat() if started else None,
        "opener": opener.name if started else None,
        "opener_fingerprint_sha256": certs.fingerprint_sha256(opener.certificate)
        if started
        else None,
        "members": [],
    }


def sealed(world: Commission, folder: Path, kind: str, text: str) -> bytes:
    """An envelope as a company seals it to the commission and the backup key pair."""
    source = folder / kind
    source.mkdir(parents=True)
    (source / f"{kind}.txt").write_text(text, encoding="utf-8")
    plan = archive.plan_archive(source, tender=REFERENCE, envelope=kind, bidder=BIDDER)
    content = io.BytesIO()
    archive.write_archive(plan, content)
    content.seek(0)
    keys = envelope.EnvelopeKeys.for_recipients(
        [world.backup.certificate],
        also=lambda content_key: commission.recipient_info(content_key, world.honest),
    )
    sink = io.BytesIO()
    envelope.encrypt_stream(content, sink, keys)
    return sink.getvalue()


def shares_of(data: bytes) -> commission.SealedShares:
    found = commission.read(cms.ContentInfo.load(data)["content"]["recipient_infos"].dump())
    assert found is not None
    return found


def relayed_by(world: Commission, member: Member, data: bytes, *, to: Member) -> bytes:
    """What an honest member's workstation relays for one envelope."""
    sealed_shares = shares_of(data)
    share = commission.decrypt_share(sealed_shares, member.opening_key, world.honest, now=AFTER)
    return commission.relay_share(
        share, sealed_shares, world.honest, opener=to.certificate, member=member.certificate
    )


def deposit_json(deposit: str, envelopes: dict[str, bytes]) -> dict[str, object]:
    return {
        "id": deposit,
        "tender": REFERENCE,
        "bidder": BIDDER,
        "received_at": NOW.isoformat(),
        "late": False,
        "envelopes": [
            {"kind": kind, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
             "recipients": [], "upload": None}
            for kind, data in envelopes.items()
        ],
    }  # fmt: skip


@pytest.fixture
def bid(world: Commission, tmp_path: Path) -> dict[str, bytes]:
    return {
        kind: sealed(world, tmp_path / "bid", kind, f"{kind} de {BIDDER}\n")
        for kind in ("candidature", "offre")
    }


DEPOSIT = str(uuid.UUID("0d0d0d0d-0000-4000-8000-000000000001"))


def serve(platform: HostilePlatform, world: Commission, envelopes: dict[str, bytes],
          tender: dict[str, Any] | None = None) -> None:  # fmt: skip
    """The tender, its deposit and envelopes, by reference and by id."""
    listed = tender or tender_json(world)
    for key in (REFERENCE, str(TENDER)):
        platform.set_json("GET", f"/api/tenders/{key}", listed)
        platform.set_json("GET", f"/api/tenders/{key}/deposits", [deposit_json(DEPOSIT, envelopes)])
    platform.set_json("GET", f"/api/tenders/{TENDER}/commission/headers", {
        "headers": [
            {"id": n, "deposit": DEPOSIT, "kind": kind, "recipient_infos": base64.b64encode(
                cms.ContentInfo.load(data)["content"]["recipient_infos"].dump()).decode()}
            for n, (kind, data) in enumerate(envelopes.items(), 1)
        ],
        "more": False,
    })  # fmt: skip
    for kind, data in envelopes.items():
        path = f"/api/deposits/{DEPOSIT}/envelopes/{kind}"
        platform.set("GET", path, (200, {}, data))
        platform.set("POST", f"{path}/opened", (204, {}, b""))
    platform.set("POST", "/api/opened-envelopes", (204, {}, b""))


def station(platform: HostilePlatform, world: Commission, home: Path, member: Member) -> None:
    """This workstation: logged in to the fake platform, holding `member`'s key pair."""
    store = KeyStore(home, lambda _new: STORE_PASSPHRASE)
    store.add(member.name, member.key, member.certificate, exportable=True,
              origin="generated", now=NOW)  # fmt: skip
    save_login(
        home,
        SavedLogin(
            url=platform.url, email="agent@rouen.fr", token="scl_test_token",
            expires_at=NOW + dt.timedelta(days=90),
            authority_pem=certs.certificate_pem(world.ca.certificate).decode(),
        ),
    )  # fmt: skip


@pytest.fixture
def platform(world: Commission, scelle_env: Path) -> Any:
    with hostile_platform() as fake:
        fake.set_json("GET", "/api/platform/ca", authority_json(world.ca))
        fake.set_json("GET", "/api/me", me_json())
        yield fake


def scelle(capsys, *args: str, clock: dt.datetime = AFTER) -> tuple[int, str, str]:
    status = run(list(args), Session(clock=lambda: clock))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


# --- a member taking part ------------------------------------------------------------------


def _relayed_posts(platform: HostilePlatform) -> list[dict[str, Any]]:
    return [
        json.loads(r.body)
        for r in platform.asked("POST", f"/api/tenders/{TENDER}/commission/shares")
    ]


def test_a_member_relays_to_the_opener_only_what_the_opener_can_read(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path, capsys
) -> None:
    serve(platform, world, bid)
    opener, member = world.members[0], world.members[1]
    station(platform, world, scelle_env, member)
    participation = f"/api/tenders/{TENDER}/commission/participation"
    platform.set_json("POST", participation, opening_json(world, opener))
    platform.set_json("POST", f"/api/tenders/{TENDER}/commission/shares", {"relayed": 2})
    status, _, err = scelle(capsys, "take-part", REFERENCE)
    assert status == EXIT_OK, err
    assert "2 share(s) sent to the opener MEMBRE-1" in err
    (posted,) = _relayed_posts(platform)
    assert {(s["deposit"], s["kind"]) for s in posted["shares"]} == {
        (DEPOSIT, "candidature"), (DEPOSIT, "offre")
    }  # fmt: skip
    for item in posted["shares"]:
        blob = base64.b64decode(item["relayed"])
        sealed_shares = shares_of(bid[item["kind"]])
        # Only the opener's key reads it; the member's share in clear is not what was sent.
        share = commission.receive_share(
            blob, sealed_shares, world.honest, opener=opener.opening_key,
            member=member.certificate,
        )  # fmt: skip
        assert share not in blob


@pytest.mark.parametrize("lie", ["another opener", "a swapped member", "not started"])
def test_a_member_relays_nothing_to_a_key_the_server_chose(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path,
    capsys, lie: str,
) -> None:  # fmt: skip
    intruder = world.members[3]
    member = world.members[1]
    station(platform, world, scelle_env, member)
    participation = f"/api/tenders/{TENDER}/commission/participation"
    if lie == "another opener":
        # The server names its own key pair as the opener: not a member of the commission.
        serve(platform, world, bid)
        platform.set_json("POST", participation, opening_json(world, intruder))
        said = "not a member of its commission"
    elif lie == "a swapped member":
        # It lists its own certificate in place of MEMBRE-1's, with an RSF to match, and
        # names it opener: the member's shares decrypt to nothing under that commission.
        liar = tender_json(world, [intruder, member, world.members[2]])
        serve(platform, world, bid, liar)
        platform.set_json("POST", participation, opening_json(world, intruder))
        said = "no share of this envelope opens"
    else:
        serve(platform, world, bid)
        platform.set_json("POST", participation, opening_json(world, intruder, started=False))
        said = "has not been started"
    status, _, err = scelle(capsys, "take-part", REFERENCE)
    assert status == EXIT_FAILURE and said in err
    assert _relayed_posts(platform) == []


def test_a_header_that_is_not_one_fails_its_envelope_only(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path, capsys
) -> None:
    serve(platform, world, bid)
    station(platform, world, scelle_env, world.members[1])
    platform.set_json(
        "POST", f"/api/tenders/{TENDER}/commission/participation",
        opening_json(world, world.members[0]),
    )  # fmt: skip
    platform.set_json("POST", f"/api/tenders/{TENDER}/commission/shares", {"relayed": 1})
    honest = cms.ContentInfo.load(bid["candidature"])["content"]["recipient_infos"].dump()
    platform.set_json("GET", f"/api/tenders/{TENDER}/commission/headers", {
        "headers": [
            {"id": 1, "deposit": DEPOSIT, "kind": "candidature",
             "recipient_infos": base64.b64encode(honest).decode()},
            {"id": 2, "deposit": DEPOSIT, "kind": "offre",
             "recipient_infos": base64.b64encode(b"\x31\x83garbage").decode()},
        ],
        "more": False,
    })  # fmt: skip
    status, _, err = scelle(capsys, "take-part", REFERENCE)
    assert status == EXIT_FAILURE
    assert f"FAILED {BIDDER} — offre" in err and "a header that is not one" in err
    (posted,) = _relayed_posts(platform)
    assert [s["kind"] for s in posted["shares"]] == ["candidature"]


def test_a_member_relays_nothing_before_the_sealed_deadline(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path, capsys
) -> None:
    """The server says the deadline passed long ago; the envelopes say otherwise, and this
    workstation's clock is before their deadline: nothing is decrypted, nothing relayed."""
    early = {**tender_json(world), "deadline": (NOW - dt.timedelta(days=1)).isoformat()}
    serve(platform, world, bid, early)
    station(platform, world, scelle_env, world.members[1])
    platform.set_json(
        "POST", f"/api/tenders/{TENDER}/commission/participation",
        opening_json(world, world.members[0]),
    )  # fmt: skip
    status, _, err = scelle(capsys, "take-part", REFERENCE, clock=NOW)
    assert status == EXIT_FAILURE and "stays sealed until" in err
    assert _relayed_posts(platform) == []


# --- the opener ---------------------------------------------------------------------------


def _opener_station(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], home: Path,
    relayed: list[tuple[Member, str, bytes]],
) -> None:  # fmt: skip
    serve(platform, world, bid)
    station(platform, world, home, world.members[0])
    platform.set_json(
        "POST", f"/api/tenders/{TENDER}/commission", opening_json(world, world.members[0])
    )
    platform.set_json(
        "GET", f"/api/tenders/{TENDER}/commission/shares",
        {"shares": [
            {"id": n, "deposit": DEPOSIT, "kind": kind,
             "member": certs.fingerprint_sha256(member.certificate),
             "relayed": base64.b64encode(blob).decode()}
            for n, (member, kind, blob) in enumerate(relayed, 1)
        ], "more": False},
    )  # fmt: skip


def test_the_opener_opens_with_one_relayed_share_and_its_own(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path,
    tmp_path: Path, capsys,
) -> None:  # fmt: skip
    opener, member = world.members[0], world.members[1]
    relayed = [
        (member, kind, relayed_by(world, member, data, to=opener)) for kind, data in bid.items()
    ]
    _opener_station(platform, world, bid, scelle_env, relayed)
    out = tmp_path / "plis"
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), "--wait", "0")
    assert status == EXIT_OK, err
    offre = next((out / BIDDER).iterdir()) / "offre" / "offre.txt"
    assert offre.read_text(encoding="utf-8") == f"offre de {BIDDER}\n"


@pytest.mark.parametrize("lie", ["dropped", "duplicated", "moved", "said another member's"])
def test_the_opener_opens_nothing_with_shares_a_server_tampered_with(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path,
    tmp_path: Path, capsys, lie: str,
) -> None:  # fmt: skip
    opener, member, third = world.members[0], world.members[1], world.members[2]
    candidature = relayed_by(world, member, bid["candidature"], to=opener)
    offre = relayed_by(world, member, bid["offre"], to=opener)
    relayed = {
        "dropped": [(member, "candidature", candidature)],
        "duplicated": [(member, "candidature", candidature), (member, "offre", candidature),
                       (member, "offre", candidature)],
        "moved": [(member, "candidature", candidature), (member, "offre", candidature)],
        "said another member's": [(member, "candidature", candidature),
                                  (third, "offre", offre)],
    }[lie]  # fmt: skip
    _opener_station(platform, world, bid, scelle_env, relayed)
    out = tmp_path / "plis"
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), "--wait", "0")
    assert status == EXIT_FAILURE
    assert f"FAILED {BIDDER} — offre" in err and "1 share(s) of the 2 needed" in err
    assert (next((out / BIDDER).iterdir()) / "candidature" / "candidature.txt").is_file()
    assert not list(out.glob("*/*/offre"))


def test_a_malformed_commission_fails_its_envelope_only(
    platform: HostilePlatform, world: Commission, bid: dict[str, bytes], scelle_env: Path,
    tmp_path: Path, capsys,
) -> None:  # fmt: skip
    opener, member = world.members[0], world.members[1]
    broken = bytearray(bid["offre"])
    shares = shares_of(bytes(broken))
    at = bytes(broken).index(shares.envelope)
    # The 16-byte envelope identifier's OCTET STRING said to be 15 bytes: no longer ours.
    assert broken[at - 1] == 16
    broken[at - 1] = 15
    tampered = {**bid, "offre": bytes(broken)}
    relayed = [(member, "candidature", relayed_by(world, member, bid["candidature"], to=opener))]
    _opener_station(platform, world, tampered, scelle_env, relayed)
    out = tmp_path / "plis"
    status, _, err = scelle(capsys, "open", REFERENCE, "--out", str(out), "--wait", "0")
    assert status == EXIT_FAILURE
    assert f"FAILED {BIDDER} — offre" in err and "commission recipient is malformed" in err
    assert (next((out / BIDDER).iterdir()) / "candidature" / "candidature.txt").is_file()


def test_a_receipt_stating_another_commission_is_refused(world: Commission) -> None:
    """What the company's command checks of a receipt's commission: the members and k the
    RSF it computed covers, nothing else."""
    from scelle.assistant.deposit import _commission_agrees
    from scelle.core.receipt import Receipt, ReceiptCommission

    fingerprint = certs.fingerprint_sha256
    members = [fingerprint(m.certificate) for m in world.members[:3]]
    everyone = [*members, fingerprint(world.backup.certificate)]
    rsf = tender_json(world)["rsf"]

    def receipt(commission: ReceiptCommission | None) -> Receipt:
        return Receipt("P", REFERENCE, BIDDER, DEPOSIT, NOW, False, (), rsf, None, False,
                       commission)  # fmt: skip

    assert _commission_agrees(receipt(ReceiptCommission(2, tuple(sorted(members)))), rsf, everyone)
    assert _commission_agrees(receipt(None), rsf, everyone)
    lies = [
        ReceiptCommission(3, tuple(members)),  # another k
        ReceiptCommission(2, tuple(members[:2])),  # a member left out
        ReceiptCommission(2, (*members[:2], fingerprint(world.members[3].certificate))),
        ReceiptCommission(2, tuple(everyone)),  # the backup said to be a member
    ]
    for lie in lies:
        assert not _commission_agrees(receipt(lie), rsf, everyone), lie
