"""`scelle deposit`, `scelle deposits list`, `scelle receipts verify`, `scelle tenders deposits`."""

from __future__ import annotations

import contextlib
import json
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import click
from cryptography import x509

from scelle.assistant import transparency
from scelle.assistant.times import platform_time, zone_named
from scelle.assistant.transparency import LogCheck
from scelle.cli.console import (
    ask_password,
    human_size,
    password_file_option,
    progress_bars,
    say,
)
from scelle.cli.remote import (
    connect,
    home_of,
    json_option,
    platform_zone,
    print_table,
)
from scelle.cli.session import Session, pass_session, token_option
from scelle.client.api import Deposit, Recipient
from scelle.client.login import load_login
from scelle.core import certs, note, proofkit, tlog
from scelle.core.errors import N_, InvalidInputError, LogError, LogMisbehaviourError, ScelleError
from scelle.core.files import PRIVATE_FILE_MODE, atomic_output, write_all
from scelle.core.passwords import check_password_strength
from scelle.core.receipt import (
    Receipt,
    VerifiedCommitment,
    VerifiedReceipt,
    verify_commitment,
    verify_receipt,
    verify_withdrawal,
)
from scelle.i18n import _

PUBLIC_FILE_MODE = 0o644


def _envelope(value: str) -> tuple[str, Path]:
    kind, sep, path = value.partition("=")
    if not sep or not kind.strip() or not path:
        raise click.BadParameter(f"{value!r}: write KIND=FILE_OR_FOLDER, e.g. offre=./offre")
    return kind.strip().lower(), Path(path)


@click.command(name="deposit")
@click.argument("reference")
@click.option(
    "--envelope", "envelopes", multiple=True, required=True, metavar="KIND=PATH",
    help="An envelope (candidature, offre, anonymat) and the file or folder it holds; "
    "one per envelope of the tender.",
)  # fmt: skip
@click.option(
    "--receipt", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the receipt (default: ./receipt-<deposit id>.json).",
)  # fmt: skip
@click.option(
    "--expect-rsf", metavar="CODE",
    help="The recipient-set fingerprint printed in the tender notice: nothing is sent "
    "when the tender's recipients give another.",
)  # fmt: skip
@click.option(
    "--commit", is_flag=True,
    help="First register the SHA-256 of each sealed envelope (a small request; the "
    "envelopes are sealed once more to hash them): a signed, timestamped commitment "
    "receipt, saved beside the receipt, to prove what you were sending if the upload "
    "is late.",
)  # fmt: skip
@click.option(
    "--proof-kit", type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a proof kit (dossier de preuve) there: the receipt and each "
    "envelope's content key, sealed under a password you choose. With it and the stored "
    "envelope, `scelle proof verify` shows what the envelope held, without any buyer "
    "key. Keep it to yourself.",
)  # fmt: skip
@password_file_option("With --proof-kit: read its password from the first line of this file.")
@pass_session
def deposit(
    session: Session,
    reference: str,
    envelopes: tuple[str, ...],
    receipt: Path | None,
    expect_rsf: str | None,
    commit: bool,
    proof_kit: Path | None,
    password_file: Path | None,
) -> None:
    """Seal the envelopes on this machine and deposit them to the tender REFERENCE.

    Before sending, it shows the recipient-set fingerprint (RSF) of the
    certificates it encrypts to: compare it with the tender notice. Run it
    again after an interruption: it continues where the upload stopped, and
    fetches the receipt again if the platform recorded the deposit.
    """
    from scelle.assistant.deposit import deposit as seal_and_deposit
    from scelle.assistant.deposit import pinned_authority

    sources = [_envelope(value) for value in envelopes]
    if receipt is not None and receipt.exists():
        raise InvalidInputError(f"{receipt} already exists", hint="Choose another --receipt.")
    if proof_kit is not None and proof_kit.exists():
        raise InvalidInputError(f"{proof_kit} already exists", hint="Choose another --proof-kit.")
    kit_password = None if proof_kit is None else _kit_password(password_file)
    saved = load_login(home_of(session), now=session.clock())
    with connect(session) as client:
        authority = pinned_authority(saved.authority_pem, client.platform_ca()["certificate_pem"])
        # The store's passphrase is asked now, on a line of its own: a prompt under a
        # live progress bar is erased at once and the command looks hung.
        session.store.unlock()
        with progress_bars() as bars, _resumable():
            done = seal_and_deposit(
                client,
                session.store,
                reference,
                sources,
                authority=authority,
                now=session.clock(),
                expect_rsf=expect_rsf,
                progress=bars,
                say=lambda message: say(_(message)),
                show_recipients=_show_recipients,
                committed=(lambda verified, document: _save_commitment(
                    verified, document, receipt, session)) if commit else None,
            )  # fmt: skip
    target = receipt or Path(f"receipt-{done.receipt.deposit}.json")
    _save_receipt(done.receipt_document, target)
    _say_deposited(done.receipt, target, session)
    if proof_kit is not None and kit_password is not None:
        kit = proofkit.make_kit(done.receipt_document, done.content_keys, kit_password)
        with atomic_output(proof_kit, mode=PRIVATE_FILE_MODE) as handle:
            write_all(handle, kit)
        say(_("Proof kit: {path} (keep it, and its password, to yourself)", path=proof_kit))
    click.echo(target)


def _kit_password(password_file: Path | None) -> str:
    """The proof kit's password, chosen now (twice on a terminal), before anything is sent."""
    password = ask_password(
        _("Proof kit password: "),
        password_file=password_file,
        confirm=True,
        what=_("the proof kit's password"),
    )
    check_password_strength(password)
    return password


def _say_deposited(done: Receipt, target: Path, session: Session) -> None:
    late = _(" (late: after the deadline)") if done.late else ""
    if done.grace:
        late = _(" (after the deadline, on time within the tender's grace window: it matches "
                 "your commitment)")  # fmt: skip
    if done.test:
        say(
            _(
                "A test deposit: never an offer. Open it with `scelle open {tender} "
                "--test-key` to see what a buyer would get.",
                tender=done.tender,
            )
        )
    say(
        _(
            "Deposited to {tender} on {at}{late}; receipt: {path}",
            tender=done.tender,
            at=platform_time(done.received_at.isoformat(), platform_zone(session)),
            late=late,
            path=target,
        )
    )


def _save_commitment(
    verified: VerifiedCommitment, document: bytes, receipt: Path | None, session: Session
) -> None:
    """Keep the commitment receipt at once, beside where the receipt will go."""
    done = verified.commitment
    folder = Path() if receipt is None else receipt.parent
    target = folder / f"commitment-{done.commitment}.json"
    _save_receipt(document, target)
    say(_("Commitment registered on {at}: {count} envelope hash(es); commitment receipt: {path}",
          at=platform_time(done.committed_at, platform_zone(session)),
          count=len(done.envelopes), path=target))  # fmt: skip


@contextlib.contextmanager
def _resumable() -> Iterator[None]:
    """Ctrl-C during a deposit: say that the same command continues it."""
    try:
        yield
    except KeyboardInterrupt:
        say(_("Interrupted: run the same command again to resume where the upload stopped."))
        raise


def _show_recipients(rsf: str, recipients: list[Recipient]) -> None:
    say(_("Sealing for {count} key pair(s) of the buyer:", count=len(recipients)))
    for recipient in recipients:
        say(f"  {recipient['designation']} (CN {recipient['common_name']}) "
            f"{recipient['fingerprint_sha256']}")  # fmt: skip
    say(_("Recipient-set fingerprint: {rsf}", rsf=rsf))
    say(_("Check that the tender notice gives this fingerprint."))


def _save_receipt(document: bytes, target: Path) -> None:
    with atomic_output(target, mode=PUBLIC_FILE_MODE) as handle:
        write_all(handle, document)


@click.group(name="deposits")
def deposits() -> None:
    """Your company's deposits."""


@deposits.command(name="list")
@json_option
@pass_session
def list_deposits(session: Session, as_json: bool) -> None:
    """List your company's deposits, with their state and receipt ids."""
    with connect(session) as client:
        found = client.my_deposits()
    _print_deposits(found, as_json, _("Tender"), "tender")


def _print_deposits(
    found: list[Deposit], as_json: bool, first: str, key: Literal["tender", "bidder"]
) -> None:
    """Deposits as JSON or a table whose first column is the tender or the company."""
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    if not found:
        say(_("No deposit yet."))
        return
    buyer = key == "bidder"
    print_table(
        [first, _("Received"), _("State"), _("Envelopes"), _("Deposit (receipt id)")]
        + ([_("Commitment")] if buyer else []),
        [
            [d[key], d["received_at"], _deposit_state(d),
             ", ".join(f"{e['kind']} {human_size(e['size'])}" for e in d["envelopes"]),
             d["id"]] + ([_commitment_state(d)] if buyer else [])
            for d in found
        ],
    )  # fmt: skip


def _deposit_state(found: Deposit) -> str:
    if found.get("withdrawn_at") is not None:
        return _("withdrawn")
    if found.get("by_grace"):
        return _("on time (grace window)")
    return _state(found["late"], found.get("test", False))


def _commitment_state(found: Deposit) -> str:
    return {
        "matched": _("matches its commitment"),
        "differs": _("differs from its commitments"),
    }.get(found.get("commitment") or "none", _("none"))


def _state(late: bool, test: bool) -> str:
    if test:
        return _("test (never an offer)")
    return _("late") if late else _("on time")


@deposits.command(name="receipt")
@click.argument("deposit_id", metavar="DEPOSIT")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it (default: ./receipt-<deposit id>.json).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@pass_session
def fetch_receipt(session: Session, deposit_id: str, output: Path | None, force: bool) -> None:
    """Fetch the signed receipt of one of your deposits again, and check it."""
    from scelle.assistant.deposit import fetch_receipt as fetch

    saved = load_login(home_of(session), now=session.clock())
    with connect(session) as client:
        verified, document = fetch(client, deposit_id, saved_authority_pem=saved.authority_pem)
    target = output or Path(f"receipt-{verified.deposit}.json")
    if target.exists() and not force:
        raise InvalidInputError(f"{target} already exists", hint="Pass --force to replace it.")
    if force:
        target.unlink(missing_ok=True)
    _save_receipt(document, target)
    say(_("The receipt of deposit {deposit} is valid; saved in {path}",
          deposit=verified.deposit, path=target))  # fmt: skip
    click.echo(target)


@deposits.command(name="withdraw")
@click.argument("deposit_id", metavar="DEPOSIT")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the withdrawal receipt (default: ./withdrawal-<deposit id>.json).",
)  # fmt: skip
@click.option("--yes", is_flag=True, help="Withdraw without asking to confirm.")
@pass_session
def withdraw(session: Session, deposit_id: str, output: Path | None, yes: bool) -> None:
    """Withdraw one of your deposits before the deadline (retrait): it will not be opened.

    The platform signs a withdrawal receipt, logged in its transparency log; it is
    checked, then saved. Your other deposits to the tender stay as they are.
    """
    from scelle.assistant.deposit import withdraw as withdraw_deposit

    target = output or Path(f"withdrawal-{deposit_id.strip().lower()}.json")
    if target.exists():
        raise InvalidInputError(f"{target} already exists", hint="Choose another --output.")
    if not yes and not click.confirm(
        _("Withdraw deposit {deposit}? It will not be opened; this cannot be undone.",
          deposit=deposit_id), err=True):  # fmt: skip
        raise ScelleError(_("nothing was withdrawn"))
    saved = load_login(home_of(session), now=session.clock())
    with connect(session) as client:
        verified, document = withdraw_deposit(
            client, deposit_id, saved_authority_pem=saved.authority_pem
        )
    _save_receipt(document, target)
    done = verified.withdrawal
    say(_("Deposit {deposit} to {tender} is withdrawn ({at}); withdrawal receipt: {path}",
          deposit=done.deposit, tender=done.tender,
          at=platform_time(done.withdrawn_at, platform_zone(session)), path=target))  # fmt: skip


@click.group(name="receipts")
def receipts() -> None:
    """Deposit receipts (accusés de réception)."""


@receipts.command(name="verify")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--online", is_flag=True,
    help="Also ask the platform for its transparency log now: it must still hold each "
    "receipt's tree, and the tree this workstation saw last.",
)  # fmt: skip
@click.option(
    "--witness", "witnesses", multiple=True, metavar="KEY", envvar="SCELLE_WITNESSES",
    help="A witness that must have cosigned a tree holding the receipt (its key, as "
    "`scelle witness key` prints it; repeat for several). Implies --online.",
)  # fmt: skip
@json_option
@pass_session
def verify(
    session: Session,
    files: tuple[Path, ...],
    online: bool,
    witnesses: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check receipts offline: signature, platform certificate, envelope hashes, and the
    proof that the platform's transparency log holds each one.

    The CA is compared with the one saved at login when this workstation has one.
    With several files, each is checked and named; the command fails if one fails.
    """
    trusted, zone = trusted_authority(session)
    required = [note.Verifier.parse(key) for key in witnesses]
    check = _online_check(session, required) if online or required else None
    if len(files) == 1:
        _verify_one(files[0], trusted, as_json, zone, check)
        return
    failed = 0
    for file in files:
        say(f"== {file}")
        try:
            _verify_one(file, trusted, as_json, zone, check)
        except ScelleError as error:
            failed += 1
            say(_("{file}: {error}", file=file, error=error.message))
    if failed:
        raise ScelleError(
            _("{failed} of {count} receipts did not check out", failed=failed, count=len(files))
        )


def trusted_authority(session: Session) -> tuple[x509.Certificate | None, zoneinfo.ZoneInfo]:
    """The platform CA saved at login on this workstation, and the platform's time zone:
    (None, UTC) where nobody logged in."""
    try:
        saved = load_login(home_of(session), now=session.clock())
    except ScelleError:  # not logged in here: check without the saved CA
        return None, zone_named(None)
    trusted = None
    if saved.authority_pem:
        trusted = certs.load_certificate(saved.authority_pem.encode())
    return trusted, zone_named(saved.time_zone)


OnlineCheck = Callable[[VerifiedReceipt], LogCheck | None]


def _online_check(session: Session, witnesses: list[note.Verifier]) -> OnlineCheck:
    def check(verified: VerifiedReceipt) -> LogCheck | None:
        receipt, shown = verified.receipt, verified.logged
        if receipt.log is None or shown is None:
            return None
        with connect(session) as client:
            try:
                return transparency.check_online(
                    client,
                    home_of(session),
                    note.Verifier.parse(receipt.log),
                    shown,
                    witnesses=witnesses,
                )
            except LogMisbehaviourError as error:
                say(_("The two signed checkpoints that prove it:"))
                click.echo(f"{error.earlier}\n{error.later}", err=True)
                raise

    return check


def _verify_one(
    file: Path,
    trusted: x509.Certificate | None,
    as_json: bool,
    zone: zoneinfo.ZoneInfo,
    check: OnlineCheck | None,
) -> None:
    data = file.read_bytes()
    kind = _document_kind(data)
    if kind == "withdrawal":
        _verify_withdrawal(data, trusted, as_json, zone)
        return
    if kind == "commitment":
        _verify_commitment(data, trusted, as_json, zone)
        return
    verified = verify_receipt(data, trusted_authority=trusted)
    receipt = verified.receipt
    online = None if check is None else check(verified)
    if check is not None and online is None:
        raise LogError(
            N_("this receipt names no transparency log: there is nothing to check online")
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    **receipt.to_json(),
                    "signer": certs.common_name(verified.signer.subject),
                    "authority": certs.common_name(verified.authority.subject),
                    "authority_fingerprint_sha256": certs.fingerprint_sha256(verified.authority),
                    "authority_checked_against_login": trusted is not None,
                    **_log_json(verified, online),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    say(
        _(
            "The receipt is valid: signed by {signer}.",
            signer=verified.signer.subject.rfc4514_string(),
        )
    )
    rows = _receipt_rows(verified, zone) + _log_rows(verified, online)
    for e in receipt.envelopes:
        rows.append((e.kind, f"{human_size(e.size)} ({e.size}), SHA-256 {e.sha256}"))
        encrypted_to = _("encrypted to")
        rows += [("", f"{encrypted_to} {fingerprint}") for fingerprint in e.recipients]
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    if trusted is None:
        say(_("Compare the platform CA's fingerprint with the one the platform publishes."))


def _receipt_rows(verified: VerifiedReceipt, zone: zoneinfo.ZoneInfo) -> list[tuple[str, str]]:
    receipt = verified.receipt
    rows = [
        (_("Tender"), receipt.tender),
        (_("Company"), receipt.bidder),
        (_("Deposit (receipt id)"), receipt.deposit),
        (_("Received"), platform_time(receipt.received_at, zone)),
        (
            _("State"),
            _("on time (grace window)") if receipt.grace else _state(receipt.late, receipt.test),
        ),
        (_("Platform CA"), certs.fingerprint_sha256(verified.authority)),
    ]
    if receipt.rsf is not None:
        rows.append((_("Recipient set"), receipt.rsf))
    if receipt.commission is not None:
        needed = receipt.commission.threshold
        rows.append((_("Commission"), _("{threshold} members must take part to open",
                                         threshold=needed)))  # fmt: skip
        rows += [("", _("member {fingerprint}", fingerprint=fp))
                 for fp in receipt.commission.members]  # fmt: skip
    if receipt.audit_head is not None:
        head = receipt.audit_head
        rows.append((_("Audit log"), f"#{head.sequence} {head.hash}"))
    if receipt.commitment is not None:
        rows.append((_("Commitment"), _("matches the commitment {sha256}",
                                        sha256=receipt.commitment)))  # fmt: skip
    return rows


def _document_kind(data: bytes) -> str | None:
    """ "withdrawal" or "commitment" for those receipts; None for a deposit receipt or
    anything else (verify_receipt then says what is wrong)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    return next((k for k in ("withdrawal", "commitment") if k in document), None)


def _verify_commitment(
    data: bytes, trusted: x509.Certificate | None, as_json: bool, zone: zoneinfo.ZoneInfo
) -> None:
    verified = verify_commitment(data, trusted_authority=trusted)
    done = verified.commitment
    if as_json:
        shown = verified.logged
        logged = {} if shown is None else {"transparency": {
            "index": shown.index, **tlog.checkpoint_summary(shown.checkpoint)}}  # fmt: skip
        click.echo(json.dumps({**done.to_json(), "sha256": verified.digest, **logged},
                              ensure_ascii=False, indent=2))  # fmt: skip
        return
    say(_("The commitment receipt is valid: signed by {signer}.",
          signer=verified.signer.subject.rfc4514_string()))  # fmt: skip
    rows = [
        (_("Tender"), done.tender),
        (_("Company"), done.bidder),
        (_("Committed"), platform_time(done.committed_at, zone)),
        *((kind, f"SHA-256 {sha256}") for kind, sha256 in done.envelopes),
    ]
    if verified.logged is not None:
        rows.append((_("Transparency log"), _where(verified.logged)))
    rows.append((_("Its SHA-256"), verified.digest))
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


def _where(shown: tlog.Inclusion) -> str:
    tree = shown.checkpoint.checkpoint
    return _("entry {index} of {origin}, in its tree of {size} entries",
             index=shown.index, origin=tree.origin, size=tree.size)  # fmt: skip


def _verify_withdrawal(
    data: bytes, trusted: x509.Certificate | None, as_json: bool, zone: zoneinfo.ZoneInfo
) -> None:
    verified = verify_withdrawal(data, trusted_authority=trusted)
    done = verified.withdrawal
    if as_json:
        shown = verified.logged
        logged = {} if shown is None else {"transparency": {
            "index": shown.index, **tlog.checkpoint_summary(shown.checkpoint)}}  # fmt: skip
        click.echo(json.dumps({**done.to_json(), **logged}, ensure_ascii=False, indent=2))
        return
    say(_("The withdrawal receipt is valid: signed by {signer}.",
          signer=verified.signer.subject.rfc4514_string()))  # fmt: skip
    rows = [
        (_("Tender"), done.tender),
        (_("Company"), done.bidder),
        (_("Deposit withdrawn"), done.deposit),
        (_("Withdrawn"), platform_time(done.withdrawn_at, zone)),
        (_("Its receipt (SHA-256)"), done.deposit_receipt),
    ]
    if verified.logged is not None:
        rows.append((_("Transparency log"), _where(verified.logged)))
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


def _log_json(verified: VerifiedReceipt, online: LogCheck | None) -> dict[str, object]:
    shown = verified.logged
    if shown is None:
        return {}
    found: dict[str, object] = {
        "transparency": {
            "index": shown.index, **tlog.checkpoint_summary(shown.checkpoint)
        }
    }  # fmt: skip
    if online is not None:
        found["transparency_now"] = {
            **tlog.checkpoint_summary(online.current), "witnessed": online.witnessed
        }  # fmt: skip
    return found


def _log_rows(verified: VerifiedReceipt, online: LogCheck | None) -> list[tuple[str, str]]:
    shown = verified.logged
    if shown is None:
        return []
    rows = [(_("Transparency log"), _where(shown))]
    if online is not None:
        now = _("checked online: the log now holds {size} entries and still holds this tree",
                size=online.current.size)  # fmt: skip
        rows.append(("", now))
        for name, size in online.witnessed.items():
            rows.append(("", _("cosigned by {witness} in its tree of {size} entries",
                               witness=name, size=size)))  # fmt: skip
    return rows


@click.command(name="deposits")
@click.argument("reference")
@json_option
@pass_session
def tender_deposits(session: Session, reference: str, as_json: bool) -> None:
    """Who deposited to a tender, when, sizes, late or not (never the content)."""
    with connect(session) as client:
        found = client.tender_deposits(reference)
    _print_deposits(found, as_json, _("Company"), "bidder")


@click.command(name="open")
@click.argument("reference")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path),
    help="Where the opened envelopes go (default: ./plis-REFERENCE).",
)  # fmt: skip
@click.option(
    "--envelope", "kinds", multiple=True, metavar="KIND",
    help="Open only this envelope (candidature, offre, anonymat); repeat for more.",
)  # fmt: skip
@click.option("-k", "--key", "names", multiple=True, metavar="NAME",
              help="A key pair of the store (default: try every one).")  # fmt: skip
@click.option(
    "--pfx", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use the key pair of this .pfx file instead of the store.",
)  # fmt: skip
@password_file_option("With --pfx: read its password from the first line of this file.")
@click.option(
    "--test-key", is_flag=True,
    help="Companies: open your own deposit to the platform's test tender with the key "
    "pair it publishes.",
)  # fmt: skip
@click.option("--include-late", is_flag=True, help="Open late deposits too.")
@click.option(
    "--wait", "wait_minutes", type=click.FloatRange(0, 24 * 60), default=30, show_default=True,
    metavar="MINUTES",
    help="A commission's opener: how long to wait for the other members to take part.",
)  # fmt: skip
@token_option
@pass_session
def open_(
    session: Session,
    reference: str,
    out: Path | None,
    kinds: tuple[str, ...],
    names: tuple[str, ...],
    pfx: Path | None,
    password_file: Path | None,
    test_key: bool,
    include_late: bool,
    wait_minutes: float,
) -> None:
    """Open the deposits of a tender on this workstation, after its deadline.

    Each company's last deposit on time is opened (late ones with
    --include-late) into OUT/<company>/<deposit>/<envelope>/. An envelope
    that fails is reported and the others still open; run the command again
    to retry: what was opened is kept. For a tender a commission opens, a
    member's workstation opens as the opener: the other members take part
    with `scelle take-part`, and each envelope opens once k shares are in.

    \f

    Long because it presents the opening's report (each envelope opened, refused or failed)
    as the buyer reads it.
    """
    from scelle.assistant.opening import open_tender, published_test_key
    from scelle.assistant.tenders import launch_record, opening_keys
    from scelle.cli.crypt import decryption_keys

    if sum((bool(names), pfx is not None, test_key)) > 1:
        raise click.UsageError("use one of -k/--key, --pfx and --test-key")
    target = out or Path(f"plis-{reference}")
    with connect(session) as client:
        if test_key:
            keys, record = [published_test_key(client, reference)], None
        else:
            record = launch_record(session.store, client.url, reference)
            keys = (
                decryption_keys(session, names, pfx, password_file)
                if names or pfx
                else opening_keys(session.store, client.tender(reference), record)
            )
        with progress_bars() as bars:
            report = open_tender(
                client,
                keys,
                reference,
                target,
                kinds=kinds,
                include_late=include_late,
                record=record,
                progress=bars,
                clock=session.clock,
                commission_wait=wait_minutes * 60,
            )
    for done in report.opened:
        late = _(" (late)") if done.late else ""
        say(
            _(
                "Opened {bidder} — {kind}{late}: {files} file(s) in {folder}",
                bidder=done.bidder, kind=done.kind, late=late, files=done.files, folder=done.folder,
            )
        )  # fmt: skip
    for done in report.already:
        say(_("Already opened: {bidder} — {kind} in {folder}",
              bidder=done.bidder, kind=done.kind, folder=done.folder))  # fmt: skip
    for failed in report.failed:
        say(_("FAILED {bidder} — {kind} (deposit {deposit}): {reason}",
              bidder=failed.bidder, kind=failed.kind, deposit=failed.deposit,
              reason=failed.reason))  # fmt: skip
    for done in report.outside:
        say(_("WARNING {bidder} — {kind} (deposit {deposit}): {problem}: {who}",
              bidder=done.bidder, kind=done.kind, deposit=done.deposit,
              problem=_("encrypted to a recipient outside the tender's set"),
              who="; ".join(done.outside)))  # fmt: skip
    for warning in report.warnings:
        say(_("WARNING: {message}", message=warning))
    for gone in report.withdrawn:
        say(_("Withdrawn by {bidder} on {at} (deposit {deposit}): not opened",
              bidder=gone.bidder, at=platform_time(gone.at, platform_zone(session)),
              deposit=gone.deposit))  # fmt: skip
    if not (report.opened or report.already or report.failed):
        say(_("No deposit to open."))
    total = len(report.opened) + len(report.already) + len(report.failed)
    if total:
        say(
            _(
                "Summary: {opened} opened, {already} already opened, {failed} failed, "
                "{outside} outside the tender's set.",
                opened=len(report.opened),
                already=len(report.already),
                failed=len(report.failed),
                outside=len(report.outside),
            )
        )
    if report.failed:
        raise ScelleError(_("{count} envelope(s) could not be opened", count=len(report.failed)))
    if not report.ok:
        raise ScelleError(_("the opening found envelopes or key pairs outside the tender's set"))


@click.command(name="take-part")
@click.argument("reference")
@token_option
@pass_session
def take_part(session: Session, reference: str) -> None:
    """Take part in the opening of a tender a commission opens, as one of its members.

    After the deadline, once another member started the opening: this workstation reads
    each envelope's recipients only, decrypts your share of its key, and sends it
    encrypted to the opener's certificate (a member's, as the tender was launched), never
    to a key the platform names. Nothing is opened here.
    """
    from scelle.assistant.commission import take_part as relay
    from scelle.assistant.tenders import launch_record, opening_keys

    with connect(session) as client:
        record = launch_record(session.store, client.url, reference)
        keys = opening_keys(session.store, client.tender(reference), record)
        with progress_bars() as bars:
            report = relay(
                client, keys, reference, now=session.clock(), record=record, progress=bars
            )
    for bidder, kind, reason in report.failed:
        say(_("FAILED {bidder} — {kind}: {reason}", bidder=bidder, kind=kind, reason=reason))
    say(
        _(
            "{reference}: {relayed} share(s) sent to the opener {opener} ({already} sent "
            "before), {failed} envelope(s) failed.",
            reference=report.reference,
            relayed=report.relayed,
            opener=report.opener,
            already=report.already,
            failed=len(report.failed),
        )
    )
    if report.failed:
        raise ScelleError(_("some shares could not be sent: see above"))
