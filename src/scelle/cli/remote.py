"""Commands that talk to the platform: login, the service's key registry, tenders.

Thin: resolve names to ids, call one client method, present the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from scelle.assistant import times
from scelle.assistant.times import platform_time
from scelle.cli.console import ask_password, password_file_option, plain_console, say
from scelle.cli.session import Session, pass_session, token_option
from scelle.client import api
from scelle.client.login import load_login
from scelle.core.clock import placed_in
from scelle.core.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from scelle.i18n import _, language
from scelle.keystore import StoredKey, default_home


def home_of(session: Session) -> Path:
    """This workstation's SCELLE_HOME: the store and the saved login."""
    return session.home or default_home()


def platform_zone(session: Session) -> zoneinfo.ZoneInfo:
    """The platform's time zone, as said at login (UTC without one)."""
    return times.platform_zone(home_of(session), now=session.clock())


def connect(session: Session) -> api.PlatformClient:
    """A client for the platform this workstation is logged in to."""
    saved = load_login(home_of(session), now=session.clock())
    return api.PlatformClient(
        saved.url, saved.token, language=language(), busy_retries=api.BUSY_RETRIES
    )


def choose_service(client: api.PlatformClient, name: str | None, permission: str) -> api.Service:
    """The service named `name`, or the only one where the user holds `permission`."""
    services = client.me()["services"]
    if name is not None:
        for service in services:
            if service.get("name", "").casefold() == name.strip().casefold():
                return service
        raise NotFoundError(f"you have no permission on a service named {name!r}")
    allowed = [service for service in services if permission in service["permissions"]]
    if len(allowed) == 1:
        return allowed[0]
    if not allowed:
        raise PermissionDeniedError(f"you have the {permission} permission on no service")
    names = ", ".join(service["name"] for service in allowed)
    raise InvalidInputError(
        f"you have the {permission} permission on several services: pass --service "
        f"(one of: {names})"
    )


service_option = click.option("--service", help="The service (default: your only one).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def print_json(data: object) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on stdout, as wide as it needs when piped."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    # Piped, rich would squeeze the table into 80 columns: let lines be long.
    plain_console(soft_wrap=True, width=None if sys.stdout.isatty() else 240).print(table)


def _day(value: str) -> str:
    return value[:10]


# --- login ---------------------------------------------------------------------


@click.command()
@click.argument("url")
@click.option("--email", required=True, help="Your e-mail address on the platform.")
@password_file_option()
@pass_session
def login(session: Session, url: str, email: str, password_file: Path | None) -> None:
    """Log in to the platform at URL; the token is kept in this workstation's $SCELLE_HOME."""
    from scelle.assistant.login import log_in

    def password(shown_url: str) -> str:
        return ask_password(
            _("Password of {email} on {url}", email=email, url=shown_url),
            password_file=password_file,
            confirm=False,
        )

    done = log_in(home_of(session), url, email, password, language=language())
    zone = times.zone_named(done.saved.time_zone)
    say(
        _(
            "Logged in to {url} as {email} ({organisation}); the login expires on {date}.",
            url=done.saved.url,
            email=done.saved.email,
            organisation=done.organisation,
            date=platform_time(done.saved.expires_at, zone),
        )
    )


@click.command()
@pass_session
def logout(session: Session) -> None:
    """Revoke this workstation's token and forget it."""
    from scelle.assistant.login import log_out

    saved, unreachable = log_out(home_of(session), now=session.clock())
    if unreachable is not None:
        say(_("Warning: {message}; the token was only forgotten here.", message=unreachable))
    say(_("Logged out of {url}.", url=saved.url))


# --- publishing a key pair of the store ------------------------------------------


def publish(
    session: Session,
    name: str,
    *,
    backup: bool,
    designation: str | None,
    service_name: str | None,
    as_is: bool,
) -> None:
    """Reference the store's key pair `name` on the platform (shared by generate --publish)."""
    from scelle.assistant.keys import publish_key_pair

    with connect(session) as client:
        service = choose_service(client, service_name, "manage_keys")
        done = publish_key_pair(
            client,
            session.store,
            name,
            service=service["id"],
            backup=backup,
            designation=designation,
            as_is=as_is,
        )
    stored, published = done.stored, done.registered
    say(
        _(
            "The key pair {name} is on the platform as {designation} ({role}, service {service}).",
            name=stored.name,
            designation=published["designation"],
            role=_(published["role"]),
            service=published["service_name"],
        )
    )
    _print_published(stored)


def _print_published(key: StoredKey) -> None:
    say(f"  {_('Issued by')}: {key.issuer}")
    say(f"  {_('Expires')}: {key.not_after:%Y-%m-%d}")
    say(f"  {_('SHA-256 fingerprint')}: {key.fingerprint_sha256}")


# --- the service's key registry --------------------------------------------------


@click.group(name="service-keys")
def service_keys() -> None:
    """The key pairs of your services on the platform (the key page)."""


def _find_key_pair(
    client: api.PlatformClient, designation: str, service: str | None
) -> api.KeyPair:
    service_id = choose_service(client, service, "manage_keys")["id"] if service else None
    wanted = designation.strip().casefold()
    found = [
        key_pair
        for key_pair in client.key_pairs(service_id)["key_pairs"]
        if key_pair["designation"].casefold() == wanted
    ]
    if not found:
        raise NotFoundError(f"no key pair designated {designation!r} on your services")
    if len(found) > 1:
        names = ", ".join(key_pair["service_name"] for key_pair in found)
        raise InvalidInputError(
            f"several services have a key pair designated {designation!r} ({names}): pass --service"
        )
    return found[0]


@service_keys.command(name="list")
@service_option
@json_option
@pass_session
def list_service_keys(session: Session, service: str | None, as_json: bool) -> None:
    """List the key pairs of your services, with the tenders that use them."""
    with connect(session) as client:
        service_id = choose_service(client, service, "manage_keys")["id"] if service else None
        registry = client.key_pairs(service_id)
    if as_json:
        print_json(registry)
        return
    if not registry["key_pairs"]:
        say(_("No key pair on the platform for your services yet."))
    else:
        print_table(
            [_("Designation"), _("CN"), _("Role"), _("Service"), _("Expires"),
             _("Open tenders"), _("SHA-256 fingerprint")],
            [
                [k["designation"], k["common_name"], _(k["role"]), k["service_name"],
                 _day(k["not_after"]), str(len(k["open_tenders"])), k["fingerprint_sha256"]]
                for k in registry["key_pairs"]
            ],
        )  # fmt: skip
    for warning in registry["warnings"]:
        say(_("Warning: {message}", message=warning))


@service_keys.command(name="rename")
@click.argument("designation")
@click.argument("new_designation")
@service_option
@pass_session
def rename_service_key(
    session: Session, designation: str, new_designation: str, service: str | None
) -> None:
    """Change the designation of a key pair on the platform."""
    with connect(session) as client:
        key_pair = _find_key_pair(client, designation, service)
        renamed = client.rename_key_pair(key_pair["id"], new_designation)
    say(
        _(
            "The key pair {old} is now designated {new}.",
            old=key_pair["designation"],
            new=renamed["designation"],
        )
    )


@service_keys.command(name="delete")
@click.argument("designation")
@service_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_session
def delete_service_key(session: Session, designation: str, service: str | None, yes: bool) -> None:
    """Remove a key pair from the platform (refused while a tender not closed uses it)."""
    with connect(session) as client:
        key_pair = _find_key_pair(client, designation, service)
        if not yes:
            if not sys.stdin.isatty():
                raise InvalidInputError("deleting a key pair needs --yes when not on a terminal")
            question = _(
                "Remove the key pair {designation} ({cn}) from the platform?",
                designation=key_pair["designation"],
                cn=key_pair["common_name"],
            )
            if not click.confirm(question, default=False, err=True):
                say(_("Nothing deleted."))
                return
        client.delete_key_pair(key_pair["id"])
    say(_("The key pair {designation} was removed from the platform.",
          designation=key_pair["designation"]))  # fmt: skip


# --- tenders ---------------------------------------------------------------------


@click.group()
def tenders() -> None:
    """Tenders (consultations): create, launch with their key pairs, list, close."""


def parse_deadline(value: str, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """An ISO 8601 date and time; without an offset, in the platform's time zone."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date and time, such as 2027-03-01T12:00+01:00"
        ) from None
    if moment.tzinfo is not None:
        return moment
    placed = placed_in(moment, zone)
    if placed is None:
        raise click.BadParameter(
            f"{value} does not exist once in {zone.key} (a change of time): give the offset"
        )
    return placed


@tenders.command(name="create")
@click.option("--reference", required=True, help="The tender's reference, unique on the platform.")
@click.option("--title", required=True, help="The tender's title.")
@click.option(
    "--deadline",
    required=True,
    help="Deposit deadline, ISO 8601; without an offset, in the platform's time zone.",
)
@click.option(
    "--envelopes", default="candidature,offre", show_default=True,
    help="Envelope kinds, comma-separated: candidature, offre, anonymat.",
)  # fmt: skip
@click.option(
    "--grace-minutes", type=click.IntRange(1, 3 * 24 * 60),
    help="Only where the law provides it (Spain: 1440): a deposit completed this long after "
    "the deadline is on time when it matches a commitment made before it. Off by default, "
    "as French law accepts only what arrives before the deadline.",
)  # fmt: skip
@service_option
@pass_session
def create_tender(
    session: Session,
    reference: str,
    title: str,
    deadline: str,
    envelopes: str,
    grace_minutes: int | None,
    service: str | None,
) -> None:
    """Create a draft tender."""
    zone = platform_zone(session)
    moment = parse_deadline(deadline, zone)
    with connect(session) as client:
        chosen = choose_service(client, service, "manage_tenders")
        tender = client.create_tender(
            service=chosen["id"],
            reference=reference,
            title=title,
            deadline=moment,
            envelopes=[kind.strip() for kind in envelopes.split(",") if kind.strip()],
            grace_minutes=grace_minutes,
        )
    say(
        _(
            "Draft tender {reference} created (deadline {deadline}); launch it with "
            "`scelle tenders launch {reference} --key DESIGNATION`.",
            reference=tender["reference"],
            deadline=platform_time(tender["deadline"], zone),
        )
    )


@tenders.command(name="launch")
@click.argument("reference")
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="NAME",
    help="A personal key pair of the service, by its designation, its CN or its name in this "
    "workstation's store; repeat for more. Backup key pairs are added.",
)
@click.option(
    "--commission", "threshold", type=click.IntRange(2, 255), metavar="K",
    help="A commission opens the offers: the key pairs given with --key are its members, "
    "each held by another agent allowed to open, and K of them must take part.",
)  # fmt: skip
@token_option
@pass_session
def launch_tender(
    session: Session, reference: str, keys: tuple[str, ...], threshold: int | None
) -> None:
    """Publish a draft tender; its key pairs become definitive.

    This workstation checks that the personal key pairs assigned are ones its
    store holds, and keeps the tender's recipient set for the opening.
    """
    from scelle.assistant.tenders import launch

    with connect(session) as client:
        launched = launch(
            client, session.store, reference, list(keys), commission_threshold=threshold
        )
    tender = launched.tender
    for given, designation in launched.meant:
        say(_("{given}: the key pair designated {designation} on the platform",
              given=given, designation=designation))  # fmt: skip
    say(_("Tender {reference} is published. Its key pairs, definitive:",
          reference=tender["reference"]))  # fmt: skip
    _print_recipients(session, tender["key_pairs"])
    _say_commission(tender, say)
    say(_("Recipient-set fingerprint: {rsf}", rsf=launched.rsf))
    for designation in launched.not_vouched:
        say(
            _(
                "Warning: the personal key pair {designation} is not in this workstation's "
                "store: Scellé cannot vouch that it is your service's own.",
                designation=designation,
            )
        )
    say(
        _(
            "Publish the notice text in the tender notice (`scelle tenders notice {reference}`): "
            "companies check the fingerprint before they deposit.",
            reference=tender["reference"],
        )
    )


def _say_commission(tender: api.Tender, tell: Callable[[str], None]) -> None:
    """Who must take part to open, when a commission opens the tender."""
    from scelle.assistant.tenders import MEMBER, threshold_of

    threshold = threshold_of(tender)
    if threshold is None:
        return
    members = sum(1 for r in tender["key_pairs"] if r["role"] == MEMBER)
    tell(
        _(
            "A commission opens the offers: {threshold} of its {members} members must take "
            "part, each from their own workstation; each backup key pair opens alone.",
            threshold=threshold,
            members=members,
        )
    )


def _print_recipients(session: Session, recipients: list[api.Recipient]) -> None:
    # The buyer's check against a swapped certificate (DESIGN.md, threats):
    # say which recipients match a key pair of this workstation's store.
    local = {key.fingerprint_sha256: key for key in session.store.key_pairs()}
    for recipient in recipients:
        mine = local.get(recipient["fingerprint_sha256"])
        here = (
            "" if mine is None
            else _("on this workstation's token") if mine.token
            else _("in this workstation's store")
        )  # fmt: skip
        holder = f", {recipient['holder']}" if recipient.get("holder") else ""
        say(
            f"  {recipient['designation']} ({_role(recipient['role'])}{holder}, "
            f"{recipient['common_name']}, {_('expires')} {_day(recipient['not_after'])}) "
            f"{recipient['fingerprint_sha256']} {here}".rstrip()
        )


def _role(role: str) -> str:
    """A key pair's role in a tender, as people read it."""
    return _("commission member") if role == "member" else _(role)


@tenders.command(name="list")
@json_option
@pass_session
def list_tenders(session: Session, as_json: bool) -> None:
    """List the tenders you can see."""
    with connect(session) as client:
        found = client.tenders()
    if as_json:
        print_json(found)
        return
    if not found:
        say(_("No tender."))
        return
    zone = platform_zone(session)
    # The id names a tender whose reference another buyer uses too.
    print_table(
        [_("Reference"), _("Title"), _("Buyer"), _("Service"), _("Deadline"), _("Status"),
         _("Key pairs"), _("Id")],
        [
            [t["reference"], t["title"], t["organisation"], t["service"],
             platform_time(t["deadline"], zone),
             _("test tender") if t.get("test") else _(t["status"]),
             str(len(t["key_pairs"])), t["id"]]
            for t in found
        ],
    )  # fmt: skip


@tenders.command(name="show")
@click.argument("reference")
@json_option
@token_option
@pass_session
def show_tender(session: Session, reference: str, as_json: bool) -> None:
    """Show a tender, with its key pairs and their fingerprints."""
    from scelle.assistant.tenders import tender_rsf, threshold_of

    with connect(session) as client:
        tender = client.tender(reference)
    rsf = tender_rsf(tender)  # recomputed here, checked against what the platform says
    if as_json:
        print_json(tender)
        return
    zone = platform_zone(session)
    rows = [
        (_("Reference"), tender["reference"]),
        (_("Title"), tender["title"]),
        (_("Buyer"), f"{tender['organisation']} — {tender['service']}"),
        (_("Deadline"), platform_time(tender["deadline"], zone)),
        (_("Opening window ends"), platform_time(tender["opening_window_ends"], zone)),
        (_("Envelopes"), ", ".join(tender["envelopes"])),
        (_("Status"), _(tender["status"])),
        (_("Id"), tender["id"]),
    ]
    if tender.get("cancel_reason"):
        rows.append((_("Reason for cancelling"), tender.get("cancel_reason", "")))
    if rsf is not None:
        rows.append((_("Recipient set"), rsf))
    threshold = threshold_of(tender)
    if threshold is not None:
        rows.append(
            (_("Commission"), _("{threshold} members must take part to open", threshold=threshold))
        )
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    if tender["key_pairs"]:
        click.echo(_("Key pairs:"))
        for recipient in tender["key_pairs"]:
            holder = f", {recipient['holder']}" if recipient.get("holder") else ""
            click.echo(
                f"  {recipient['designation']} ({_role(recipient['role'])}{holder}, "
                f"{recipient['common_name']}, {_('expires')} {_day(recipient['not_after'])}) "
                f"{recipient['fingerprint_sha256']}"
            )


@tenders.command(name="notice")
@click.argument("reference")
@pass_session
def tender_notice(session: Session, reference: str) -> None:
    """Print the text to publish in the tender notice (BOAMP, JOUE): the key pairs'
    fingerprints and the recipient-set fingerprint companies check."""
    from scelle.assistant.tenders import tender_rsf

    with connect(session) as client:
        tender = client.tender(reference)
    rsf = tender_rsf(tender)
    if rsf is None:
        raise InvalidInputError(
            f"{tender['reference']} is not launched: its key pairs are not fixed yet"
        )
    click.echo(
        _(
            "Electronic deposit of offers for {reference} ({title}): offers are encrypted on "
            "the company's computer for the buyer's encryption key pairs below, and stay "
            "unreadable, by the platform too, until they are opened after the deadline.",
            reference=tender["reference"],
            title=tender["title"],
        )
    )
    for recipient in tender["key_pairs"]:
        click.echo(
            f"  - {recipient['designation']} ({_role(recipient['role'])}, "
            f"CN {recipient['common_name']}) SHA-256 {recipient['fingerprint_sha256']}"
        )
    _say_commission(tender, click.echo)
    click.echo(_("Recipient-set fingerprint: {rsf}", rsf=rsf))
    click.echo(
        _(
            "Before depositing, check that your deposit tool shows this fingerprint "
            '(scelle deposit {reference} --expect-rsf "{rsf}"); if it differs, do not deposit '
            "and tell the buyer.",
            reference=tender["reference"],
            rsf=rsf,
        )
    )


@tenders.command(name="close")
@click.argument("reference")
@pass_session
def close_tender(session: Session, reference: str) -> None:
    """Close a tender after its deadline; its key pairs may then be deleted."""
    with connect(session) as client:
        tender = client.close_tender(reference)
    say(_("Tender {reference} is closed.", reference=tender["reference"]))


@tenders.command(name="cancel")
@click.argument("reference")
@click.option("--reason", required=True, help="Why the tender stops early (kept in the audit log).")
@pass_session
def cancel_tender(session: Session, reference: str, reason: str) -> None:
    """Stop a launched tender before its deadline: it takes no deposit any more."""
    with connect(session) as client:
        tender = client.cancel_tender(reference, reason)
    say(
        _(
            "Tender {reference} is cancelled: it takes no deposit any more. Its key pairs stay "
            "in use until you close it after its deadline.",
            reference=tender["reference"],
        )
    )
