"""A commission's opening on the workstations (DESIGN.md, "Commission").

A member who takes part: this workstation reads each envelope's recipients only (the
platform sends them for the whole tender in a few requests), decrypts
the member's own share under the label it computes itself from the tender (by its own
clock: never before the deadline), and encrypts it again to the opener's certificate as
the launch recorded it, a member's of the commission the companies sealed to; never to a
key the server names. The opener: its workstation gathers the shares the platform
relays, keeps one per member that opens for this opener and envelope, adds its own, and
combines k of them into the envelope's content key (assistant.opening opens with it).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509

from scelle.assistant.tenders import LaunchRecord, choose_deposits, tender_commission, tender_rsf
from scelle.client import api
from scelle.core import ber, certs, commission
from scelle.core.envelope import DecryptionKey, KnownContentKey, ProgressCallback
from scelle.core.errors import (
    N_,
    DecryptionError,
    PlatformAnswerError,
    RuleViolationError,
    ScelleError,
)
from scelle.keystore import KeyStore

RELAYED_AT_ONCE = 100
RELAY_WORKERS = 4
"""Envelopes whose share is relayed at once, as the opening opens them (WORKERS)."""
POLL_SECONDS = 2.0
"""How often the opener asks for shares while an envelope waits for them."""


@dataclass(frozen=True)
class Member:
    """This workstation's member key pair in a tender's commission, and the commission."""

    key: DecryptionKey
    certificate: x509.Certificate
    commission: commission.Commission


def member_here(store: KeyStore, tender: api.Tender, keys: list[DecryptionKey]) -> Member | None:
    """This workstation's member of the tender's commission, among `keys`; None when the
    tender has no commission, or none of its members' key pairs is here."""
    found = tender_commission(tender)
    if found is None:
        return None
    for key in keys:
        if key.certificate is not None and key.certificate in found.members:
            return Member(key, key.certificate, found)
    return None


def _checked_commission(tender: api.Tender, record: LaunchRecord | None) -> commission.Commission:
    """The tender's commission from its certificates, checked against the RSF they give
    and, when this workstation launched the tender, against what it recorded then."""
    rsf = tender_rsf(tender)
    found = tender_commission(tender)
    if found is None:
        raise RuleViolationError(
            N_("no commission opens {reference}: any of its key pairs opens it alone"),
            reference=tender["reference"],
        )
    if record is not None and record.rsf != rsf:
        raise PlatformAnswerError(
            N_(
                "the platform's key pairs for {reference} ({rsf}) differ from those recorded "
                "on this workstation at launch ({recorded}): nothing was relayed"
            ),
            reference=tender["reference"],
            rsf=rsf or "",
            recorded=record.rsf,
        )
    return found


@dataclass
class TakePartReport:
    reference: str
    opener: str
    relayed: int = 0
    already: int = 0
    """Shares the platform had kept from an earlier run."""
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    """(company, envelope kind, why) of each envelope whose share was not relayed."""


def take_part(
    client: api.PlatformClient,
    keys: list[DecryptionKey],
    reference: str,
    *,
    now: dt.datetime,
    record: LaunchRecord | None = None,
    progress: Callable[[str, int], ProgressCallback | None] = lambda _label, _total: None,
) -> TakePartReport:
    """Take part in the opening of `reference`: relay this member's share of each
    envelope to the opener (see the module's text).

    Long because it is the member's checks in order, each before anything is relayed: the
    deadline by this clock, the commission, the opener, then envelope by envelope.
    """
    tender = client.tender(reference)
    deadline = dt.datetime.fromisoformat(tender["deadline"])
    if now < deadline:
        raise RuleViolationError(
            N_(
                "the deadline of {reference} has not passed on this workstation's clock: "
                "no share was relayed"
            ),
            reference=tender["reference"],
        )
    found = _checked_commission(tender, record)
    mine = [k for k in keys if k.certificate is not None and k.certificate in found.members]
    if not mine:
        raise RuleViolationError(
            N_("none of the key pairs here is a member of the commission of {reference}"),
            reference=tender["reference"],
        )
    member = mine[0]
    state = client.take_part(tender["id"])
    opener = _opener(state, found, tender["reference"])
    if opener == member.certificate:
        raise RuleViolationError(
            N_("you opened {reference}: your own share stays on your workstation"),
            reference=tender["reference"],
        )
    report = TakePartReport(tender["reference"], state["opener"] or "")
    chosen = choose_deposits(client.tender_deposits(tender["id"]), include_late=True)
    items = [(d, e) for d in chosen for e in d["envelopes"]]
    advance = progress(N_("Relaying shares"), sum(item["size"] for _d, item in items))
    headers = _headers(client, tender["id"])

    def relay(pair: tuple[api.Deposit, api.ReceivedEnvelope]) -> bytes | ScelleError:
        try:
            infos = headers.get((pair[0]["id"], pair[1]["kind"]))
            return _relay(infos, member, found, opener, now)
        except ScelleError as error:  # this envelope's only: the others go on
            return error

    batch: list[tuple[str, str, bytes]] = []
    # A few at a time: RSA on a token or in OpenSSL leaves the other cores free.
    with concurrent.futures.ThreadPoolExecutor(RELAY_WORKERS, "relay") as pool:
        for (deposit, item), relayed in zip(items, pool.map(relay, items), strict=True):
            if isinstance(relayed, ScelleError):
                report.failed.append((deposit["bidder"], item["kind"], relayed.message))
            else:
                batch.append((deposit["id"], item["kind"], relayed))
            if len(batch) >= RELAYED_AT_ONCE:
                _send(client, tender["id"], batch, report)
            if advance is not None:
                advance(item["size"])  # the bids' bytes covered (their headers only are read)
    if batch:
        _send(client, tender["id"], batch, report)
    return report


def _opener(
    state: api.CommissionOpening, found: commission.Commission, reference: str
) -> x509.Certificate:
    """The opener's certificate: a member's of the commission as this workstation knows
    it, whichever the platform names; never a key of the platform's choosing."""
    named = state["opener_fingerprint_sha256"]
    if not state["started"] or named is None:
        raise RuleViolationError(
            N_("the commission's opening of {reference} has not been started"),
            reference=reference,
        )
    for certificate in found.members:
        if certs.fingerprint_sha256(certificate) == named:
            return certificate
    raise PlatformAnswerError(
        N_(
            "the platform names as opener of {reference} a key pair that is not a member of "
            "its commission: nothing was relayed"
        ),
        reference=reference,
    )


def _headers(client: api.PlatformClient, tender: str) -> dict[tuple[str, str], str | None]:
    """Each envelope's recipients as the platform reads them from its stored header
    (base64), by deposit and kind: a few requests for the whole tender."""
    found: dict[tuple[str, str], str | None] = {}
    after, more = 0, True
    while more:
        page = client.envelope_headers(tender, after=after)
        for header in page["headers"]:
            found.setdefault((header["deposit"], header["kind"]), header["recipient_infos"])
            after = max(after, header["id"])
        more = page["more"] and bool(page["headers"])
    return found


def _relay(
    infos: str | None,
    member: DecryptionKey,
    found: commission.Commission,
    opener: x509.Certificate,
    now: dt.datetime,
) -> bytes:
    """This member's share of one envelope, encrypted to the opener, from its recipients
    as the platform sent them (believed in nothing: the share's label binds the rest)."""
    if infos is None:
        raise PlatformAnswerError(N_("the platform sent no header for this envelope"))
    try:
        sealed = commission.read(base64.b64decode(infos, validate=True))
    except (binascii.Error, ValueError, *ber.MALFORMED):
        raise PlatformAnswerError(N_("the platform sent a header that is not one")) from None
    if sealed is None:
        raise DecryptionError(N_("this envelope holds no commission's shares"))
    if member.certificate is None:
        raise DecryptionError(N_("the member's certificate is needed to relay a share"))
    share = commission.decrypt_share(sealed, member, found, now=now)
    return commission.relay_share(share, sealed, found, opener=opener, member=member.certificate)


def _send(
    client: api.PlatformClient,
    tender: str,
    batch: list[tuple[str, str, bytes]],
    report: TakePartReport,
) -> None:
    new = client.relay_shares(tender, batch)
    report.relayed += new
    report.already += len(batch) - new
    batch.clear()


# --- the opener -------------------------------------------------------------------------


class ShareBox:
    """The shares relayed to this opener, fetched from the platform while envelopes wait
    for them: one request for the whole tender every POLL_SECONDS at most, from the last
    share received on."""

    def __init__(self, client: api.PlatformClient, tender: str, *, until: float) -> None:
        self._client = client
        self._tender = tender
        self._until = until
        """When waiting ends (time.monotonic()): the opening does not wait for ever."""
        self._lock = threading.Lock()
        self._after = 0
        self._last_poll = -POLL_SECONDS
        self._shares: dict[tuple[str, str], list[tuple[str, bytes]]] = {}

    def _poll(self) -> None:
        """Fetch what is new; under the lock, so that one worker asks for all."""
        if time.monotonic() - self._last_poll < POLL_SECONDS:
            return
        more = True
        while more:
            page = self._client.relayed_shares(self._tender, after=self._after)
            for share in page["shares"]:
                self._after = max(self._after, share["id"])
                try:
                    relayed = base64.b64decode(share["relayed"], validate=True)
                except binascii.Error:
                    continue  # the platform's lie: this share is worth nothing
                key = (share["deposit"], share["kind"])
                self._shares.setdefault(key, []).append((share["member"], relayed))
            more = page["more"] and bool(page["shares"])
        self._last_poll = time.monotonic()

    def content_key(
        self,
        deposit: str,
        kind: str,
        sealed: commission.SealedShares,
        found: commission.Commission,
        opener: DecryptionKey,
        *,
        now: dt.datetime,
    ) -> KnownContentKey:
        """The envelope's content key from the opener's own share and k - 1 others
        relayed; waits for them until the box's time is up."""
        own = commission.decrypt_share(sealed, opener, found, now=now)
        members = {certs.fingerprint_sha256(c): c for c in found.members}
        while True:
            with self._lock:
                self._poll()
                relayed = list(self._shares.get((deposit, kind), []))
            shares = (
                {certs.fingerprint_sha256(opener.certificate): own} if opener.certificate else {}
            )
            for fingerprint, blob in relayed:
                member = members.get(fingerprint)
                if member is None or fingerprint in shares:
                    continue  # not a member's, or this member's share is in already
                try:
                    shares[fingerprint] = commission.receive_share(
                        blob, sealed, found, opener=opener, member=member
                    )
                except DecryptionError:
                    continue  # moved from another envelope, opener or member: refused
            if len(shares) >= sealed.threshold:
                return KnownContentKey(commission.combine(list(shares.values()), sealed))
            if time.monotonic() >= self._until:
                raise DecryptionError(
                    N_(
                        "{given} share(s) of the {threshold} needed: the envelope stays "
                        "sealed until more members of the commission take part"
                    ),
                    given=len(shares),
                    threshold=sealed.threshold,
                )
            time.sleep(min(POLL_SECONDS, max(0.0, self._until - time.monotonic())))
