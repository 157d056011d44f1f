"""A tender's recipient set as the workstation sees it (DESIGN.md, "Trust").

The recipient-set fingerprint (core.rsf) is always recomputed here from the
certificates the platform lists, never taken from the server's word: a
server stating a code that its own certificates do not give is lying.
Launching from this workstation checks that the personal key pairs assigned
are ones its store holds, and records the set, so that the opening later
checks envelopes against what was seen at launch.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509

from scelle.client import api
from scelle.core import certs
from scelle.core.commission import Commission
from scelle.core.envelope import DecryptionKey
from scelle.core.errors import (
    N_,
    InvalidInputError,
    NotFoundError,
    PlatformAnswerError,
    ScelleError,
)
from scelle.core.rsf import commission_set_fingerprint, recipient_set_fingerprint
from scelle.keystore import KeyStore

MEMBER = "member"
"""The role of a commission member's key pair in a tender's assignment."""


def threshold_of(tender: api.Tender) -> int | None:
    """k when a commission opens the tender, None otherwise."""
    commission = tender.get("commission")
    return None if commission is None else commission["threshold"]


def set_fingerprint(tender: api.Tender, roles: Iterable[tuple[str, str]]) -> str:
    """The RSF of (fingerprint, role) pairs of `tender`: with its commission's members and
    k when it has one (core.rsf). A commission the certificates cannot make is the
    platform's lie."""
    pairs = list(roles)
    threshold = threshold_of(tender)
    if threshold is None:
        return recipient_set_fingerprint(fingerprint for fingerprint, _role in pairs)
    try:
        return commission_set_fingerprint(
            [fingerprint for fingerprint, role in pairs if role != MEMBER],
            [fingerprint for fingerprint, role in pairs if role == MEMBER],
            threshold,
        )
    except InvalidInputError:
        raise PlatformAnswerError(
            N_(
                "the platform describes a commission for {reference} that its key pairs cannot make"
            ),
            reference=tender["reference"],
        ) from None


def checked_certificates(tender: api.Tender) -> list[tuple[api.Recipient, x509.Certificate]]:
    """Each recipient's certificate, which must hash to the fingerprint listed beside it."""
    found = []
    for recipient in tender["key_pairs"]:
        try:
            certificate = certs.load_certificate(recipient["certificate_pem"].encode())
        except ScelleError:
            raise PlatformAnswerError(
                N_("the platform sent a certificate for {designation} that cannot be read"),
                designation=recipient["designation"],
            ) from None
        if certs.fingerprint_sha256(certificate) != recipient["fingerprint_sha256"]:
            raise PlatformAnswerError(
                N_("the certificate of {designation} does not match its fingerprint"),
                designation=recipient["designation"],
            )
        found.append((recipient, certificate))
    return found


def tender_commission(tender: api.Tender) -> Commission | None:
    """Who must cooperate to open the tender's envelopes, from its certificates (checked
    as `tender_rsf` checks them); None without a commission."""
    threshold = threshold_of(tender)
    if threshold is None:
        return None
    members = tuple(c for r, c in checked_certificates(tender) if r["role"] == MEMBER)
    try:
        return Commission(
            uuid.UUID(str(tender["id"])),
            dt.datetime.fromisoformat(str(tender["deadline"])),
            members,
            threshold,
        )
    except (InvalidInputError, ValueError):
        raise PlatformAnswerError(
            N_(
                "the platform describes a commission for {reference} that its key pairs cannot make"
            ),
            reference=tender["reference"],
        ) from None


def tender_rsf(tender: api.Tender) -> str | None:
    """The tender's RSF recomputed from its certificates (None for a draft).

    Each certificate must hash to the fingerprint listed beside it, and the
    code the platform states, when it states one, must be this one.
    """
    if not tender["key_pairs"]:
        return None
    checked = checked_certificates(tender)
    computed = set_fingerprint(tender, ((r["fingerprint_sha256"], r["role"]) for r, _c in checked))
    if tender["rsf"] is not None and tender["rsf"] != computed:
        raise PlatformAnswerError(
            N_(
                "the platform states {rsf} for {reference}, but the certificates it lists give "
                "{computed}: do not deposit, tell the buyer"
            ),
            rsf=tender["rsf"],
            reference=tender["reference"],
            computed=computed,
        )
    return computed


def choose_deposits(deposits: Sequence[api.Deposit], *, include_late: bool) -> list[api.Deposit]:
    """Each company's last deposit on time (rule 7) that it did not withdraw; with
    `include_late`, late ones too."""
    last_on_time: dict[str, api.Deposit] = {}
    late = []
    for deposit in sorted(deposits, key=lambda d: d["received_at"]):
        if deposit.get("withdrawn_at") is not None:
            continue
        if deposit["late"]:
            late.append(deposit)
        else:
            last_on_time[deposit["bidder"]] = deposit
    chosen = list(last_on_time.values())
    if include_late:
        chosen += late
    return sorted(chosen, key=lambda d: (d["bidder"].casefold(), d["received_at"]))


@dataclass(frozen=True)
class LaunchRecord:
    """What the launching agent's workstation recorded of the tender's recipients."""

    rsf: str
    fingerprints: frozenset[str]


def opening_keys(
    store: KeyStore, tender: api.Tender, record: LaunchRecord | None
) -> list[DecryptionKey]:
    """The store's key pairs among the tender's recipients (as recorded at launch, or as
    the platform lists them), so that a token is asked its PIN only when one of its key
    pairs can open; every key pair when none is among them (the opening then says which
    envelope nothing here opens)."""
    wanted = {entry["fingerprint_sha256"] for entry in tender["key_pairs"]}
    wanted |= record.fingerprints if record else frozenset()
    names = [key.name for key in store.key_pairs() if key.fingerprint_sha256 in wanted]
    return store.decryption_keys(names or None)


def launch_record(store: KeyStore, platform: str, reference: str) -> LaunchRecord | None:
    """The recipient set this workstation kept when it launched the tender, if it did."""
    kept = store.tender_record(platform, reference)
    return LaunchRecord(kept[0], frozenset(kept[1])) if kept else None


@dataclass(frozen=True)
class Launched:
    """A tender launched from this workstation, as checked here."""

    tender: api.Tender
    rsf: str
    held_here: list[str]
    """Designations of the tender's key pairs whose certificate this store holds."""
    not_vouched: list[str]
    """Personal key pairs assigned that this store does not hold: nobody here can
    vouch they are the service's own."""
    meant: list[tuple[str, str]] = field(default_factory=list)
    """(name given, designation on the platform) when a name of this store's was given."""


def launch(
    client: api.PlatformClient,
    store: KeyStore,
    reference: str,
    keys: list[str],
    *,
    commission_threshold: int | None = None,
) -> Launched:
    """Launch the tender, check its personal key pairs against the store, record its set.

    Each of `keys` is a designation or a CN on the platform, or the name of a key
    pair in this store, which is taken as the platform's key pair with the same
    certificate. With `commission_threshold` (k), they are the members of the tender's
    commission, k of whom must take part to open.
    """
    meant: list[tuple[str, str]] = []
    try:
        tender = client.launch_tender(reference, keys, commission_threshold=commission_threshold)
    except NotFoundError:
        # A name the platform does not know may be this store's name of a key pair.
        mapped, meant = _designations(client, store, keys)
        if not meant:
            raise
        tender = client.launch_tender(reference, mapped, commission_threshold=commission_threshold)
    rsf = tender_rsf(tender)
    if rsf is None:
        raise PlatformAnswerError(
            N_("the platform launched {reference} without any key pair"),
            reference=reference,
        )
    local = {key.fingerprint_sha256 for key in store.key_pairs()}
    held = [r["designation"] for r in tender["key_pairs"] if r["fingerprint_sha256"] in local]
    not_vouched = [
        r["designation"]
        for r in tender["key_pairs"]
        if r["role"] == "personal" and r["fingerprint_sha256"] not in local
    ]
    store.save_tender_record(
        client.url,
        tender["reference"],
        rsf,
        [r["fingerprint_sha256"] for r in tender["key_pairs"]],
    )
    return Launched(tender, rsf, held, not_vouched, meant)


def _designations(
    client: api.PlatformClient, store: KeyStore, keys: list[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """`keys` with this store's names replaced by the platform's designations of the same
    certificates; the names left as they are go to the platform (designation or CN)."""
    local = {key.name.casefold(): key for key in store.key_pairs()}
    if not any(name.strip().casefold() in local for name in keys):
        return keys, []
    registered = client.key_pairs()["key_pairs"]
    designations = {k["designation"].casefold() for k in registered}
    chosen, meant = [], []
    for name in keys:
        key = local.get(name.strip().casefold())
        same = [k for k in registered if key and k["fingerprint_sha256"] == key.fingerprint_sha256]
        if key is None or name.strip().casefold() in designations or len(same) != 1:
            chosen.append(name)
            continue
        chosen.append(same[0]["designation"])
        if same[0]["designation"] != name:
            meant.append((name, same[0]["designation"]))
    return chosen, meant
