"""`scelle serve` and `scelle admin …`: run and set up a platform on this machine.

The only commands that load the platform (Django), and only when they run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from scelle.cli.console import password_file_option, read_password_file, say
from scelle.cli.session import Session, pass_session
from scelle.core.errors import InvalidInputError
from scelle.i18n import _, language

DEFAULT_THREADS = 8
"""Requests that Django works on at once in `scelle serve`; requests still arriving hold
no thread (its event loop holds every connection)."""

_Command = TypeVar("_Command", bound=Callable[..., Any])


def data_option(command: _Command) -> _Command:
    """--data DIR, the same on `serve` and every `admin` command."""
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        help="The platform's data folder (default: $SCELLE_DATA_DIR, else ./scelle-data). "
        "SCELLE_DATABASE_URL=postgresql://… puts the database in PostgreSQL.",
    )(command)


def _platform(session: Session, data: Path | None, *, create: bool = False) -> None:
    """Load the platform in `data`; only `serve` and `admin init` create one."""
    from scelle.core.errors import ScelleError
    from scelle.platform import server

    if not create and not server.exists(data):
        folder, keys = server.folders(data)
        raise ScelleError(
            _("no platform in {folder} (no certificate authority in {keys})",
              folder=folder, keys=keys),
            hint=_("Run this where `scelle serve` runs, pass --data or set SCELLE_DATA_DIR; "
                   "`scelle admin init` creates a platform."),
        )  # fmt: skip
    server.configure(data)
    from django.utils import translation

    # `scelle admin` calls the services here: their messages in the command's language.
    translation.activate(language())
    if server.prepare(session.clock):
        say(_("Created the platform's certificate authority and receipt-signing key."))


@click.command()
@data_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
    help="Port to listen on (0: any free port).",
)  # fmt: skip
@click.option(
    "--threads", type=click.IntRange(1, 256), default=DEFAULT_THREADS, show_default=True,
    help="Requests served at once.",
)  # fmt: skip
@click.option(
    "--processes", type=click.IntRange(0, 64), default=1, show_default=True,
    help="Serving processes sharing the port, each with its threads (0: one per core; "
         "several need a POSIX system).",
)  # fmt: skip
@pass_session
def serve(
    session: Session, data: Path | None, host: str, port: int, threads: int, processes: int
) -> None:
    """Run the platform (SQLite and a local folder unless SCELLE_DATABASE_URL is set)."""
    from scelle.platform import server

    _platform(session, data, create=True)
    from scelle.platform.accounts.models import Organisation
    from scelle.platform.deposits import storage

    storage.check()  # an object store without Object Lock is refused before serving
    if not Organisation.objects.exists():
        say(_("No organisation yet: create one with `scelle admin create-organisation`."))
    server.serve(
        host,
        port,
        threads=threads,
        processes=processes or os.cpu_count() or 1,
        clock=session.clock,
        ready=lambda url: say(_("Scellé platform running on {url} (Ctrl+C to stop).", url=url)),
    )


@click.group()
def admin() -> None:
    """Set up the platform: organisations, services, users; check the audit log."""


@admin.command("init")
@data_option
@pass_session
def init(session: Session, data: Path | None) -> None:
    """Create a platform in the data folder (database and keys), as `scelle serve` does."""
    from scelle.platform import server

    existed = server.exists(data)
    _platform(session, data, create=True)
    folder = server.folders(data)[0]
    if existed:
        say(_("A platform is already there: {folder}; brought up to date.", folder=folder))
    else:
        say(_("Platform created in {folder}.", folder=folder))


@admin.command("create-organisation")
@click.argument("name")
@click.option("--kind", type=click.Choice(["buyer", "bidder"]), required=True)
@data_option
@pass_session
def create_organisation(session: Session, name: str, kind: str, data: Path | None) -> None:
    """Create a public buyer or a bidding company."""
    _platform(session, data)
    from scelle.platform.accounts import services

    organisation = services.create_organisation(name, kind, now=session.clock())
    say(_("Organisation {name} created ({kind}).", name=organisation.name, kind=_(kind)))


@admin.command("create-service")
@click.argument("organisation")
@click.argument("name")
@data_option
@pass_session
def create_service(session: Session, organisation: str, name: str, data: Path | None) -> None:
    """Create a service of a buyer organisation."""
    _platform(session, data)
    from scelle.platform.accounts import services

    service = services.create_service(
        services.find_organisation(organisation), name, now=session.clock()
    )
    say(_("Service {name} created.", name=service.name))


@admin.command("create-user")
@click.argument("email")
@click.option("--organisation", required=True, help="The user's organisation.")
@password_file_option("Read the user's password from the first line of this file.")
@click.option("--service", help="The service the permissions apply to.")
@click.option(
    "--permission", "permissions", multiple=True,
    type=click.Choice(["manage_keys", "manage_tenders", "open", "administer"]),
    help="A permission on --service; repeat for more.",
)  # fmt: skip
@data_option
@pass_session
def create_user(
    session: Session,
    email: str,
    organisation: str,
    password_file: Path | None,
    service: str | None,
    permissions: tuple[str, ...],
    data: Path | None,
) -> None:
    """Create a user (an agent of a buyer, or a company's user)."""
    if password_file is None:
        raise InvalidInputError("a user's password is read from a file: pass --password-file F")
    if permissions and service is None:
        raise click.UsageError("--permission needs --service")
    password = read_password_file(password_file)
    _platform(session, data)
    from scelle.platform.accounts import services

    found = services.find_organisation(organisation)
    chosen = services.find_service(found, service) if service else None
    user = services.create_user(
        email, found, password, service=chosen, permissions=permissions, now=session.clock()
    )
    say(_("User {email} created in {organisation}.", email=user.email, organisation=found.name))


@admin.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@data_option
@pass_session
def list_(session: Session, as_json: bool, data: Path | None) -> None:
    """List organisations, their services, users and permissions."""
    _platform(session, data)
    from scelle.platform.accounts import services

    listing = services.organisation_summary()
    if as_json:
        click.echo(json.dumps(listing, ensure_ascii=False, indent=2))
        return
    if not listing:
        say(_("No organisation yet: create one with `scelle admin create-organisation`."))
    for organisation in listing:
        click.echo(f"{organisation['name']} ({_(organisation['kind'])})")
        for service in organisation["services"]:
            click.echo("  " + _("service") + f": {service}")
        for user in organisation["users"]:
            held = ", ".join(user["permissions"]) or "-"
            click.echo(f"  {user['email']}: {held}")


@admin.command("audit-verify")
@data_option
@click.option(
    "--receipts", "receipts_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of deposit receipts (receipt-*.json) to check the log against too.",
)  # fmt: skip
@pass_session
def audit_verify(session: Session, data: Path | None, receipts_dir: Path | None) -> None:
    """Check the audit log: its hash chain, its signed checkpoints, and receipts if given."""
    _platform(session, data)
    from scelle.core.errors import ScelleError
    from scelle.platform.audit.anchors import verify_anchors
    from scelle.platform.audit.services import verify_chain

    receipts = []
    if receipts_dir is not None:
        for path in sorted(receipts_dir.glob("*.json")):
            with path.open("rb") as handle:  # a receipt is small: read no more than 2 MiB
                receipts.append((path.name, handle.read(1 << 21)))
    report = verify_chain()
    anchors = verify_anchors(receipts)
    problems = list(anchors.problems)
    if report.broken_at is not None:
        problems.insert(0, f"the chain is broken at event #{report.broken_at}: {report.reason}")
    for problem in problems:
        say(f"- {problem}")
    if problems:
        raise ScelleError(f"the audit log does not hold: {len(problems)} problem(s), listed above")
    say(_("The audit log holds: {count} events, chain intact.", count=report.events))
    say(
        _(
            "Anchors checked: {checkpoints} signed checkpoints, {receipts} receipts; "
            "all agree with the log.",
            checkpoints=anchors.checkpoints,
            receipts=anchors.receipts,
        )
    )


@admin.command("checkpoint")
@data_option
@pass_session
def audit_checkpoint(session: Session, data: Path | None) -> None:
    """Sign a checkpoint of the audit log's head now (`scelle serve` does it hourly)."""
    _platform(session, data)
    from scelle.platform.audit.anchors import checkpoint

    made = checkpoint(now=session.clock(), reason="admin")
    if made is None:
        say(_("Nothing new in the audit log since the last checkpoint."))
    else:
        say(_("Checkpoint #{id} signed at event #{sequence}.", id=made.id, sequence=made.sequence))


@admin.group("storage")
def storage_group() -> None:
    """The object store of SCELLE_STORAGE_URL (s3://bucket/prefix), when envelopes go
    there rather than to the data folder."""


@storage_group.command("create")
@data_option
@pass_session
def storage_create(session: Session, data: Path | None) -> None:
    """Create the bucket with Object Lock (envelopes under retention nobody can delete),
    then check it."""
    _platform(session, data)
    from scelle.platform.deposits import storage

    if not storage.retaining():
        raise InvalidInputError(
            _("SCELLE_STORAGE_URL is not set: envelopes go to {folder}", folder=storage.where())
        )
    made = storage.check(create=True)
    say(
        _("Created {url}, with Object Lock.", url=storage.where())
        if made
        else _("{url} was already there, with Object Lock.", url=storage.where())
    )


@storage_group.command("check")
@data_option
@pass_session
def storage_check(session: Session, data: Path | None) -> None:
    """Check that envelopes can be stored: the object store answers and has Object Lock
    (or the data folder, when SCELLE_STORAGE_URL is not set)."""
    _platform(session, data)
    from scelle.platform.deposits import storage

    storage.check()
    say(_("Envelopes are stored in {where}.", where=storage.where()))


@admin.command("backup")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@data_option
@pass_session
def backup(session: Session, archive: Path, data: Path | None) -> None:
    """Write the whole platform to ARCHIVE while it runs: database, envelopes (from the
    folder or the object store) and the platform's keys. The archive is 0600 and as
    secret as the keys folder."""
    _platform(session, data)
    from scelle.cli.console import progress_bar
    from scelle.platform import backup as backups

    with progress_bar(_("Backing up"), None) as progress:
        report = backups.backup(archive, now=session.clock(), progress=progress)
    say(_("Backed up {count} envelopes ({size} bytes), the database and the keys to {path}.",
          count=report.envelopes, size=report.bytes, path=archive))  # fmt: skip
    if report.missing:
        say(_("{count} envelopes were removed meanwhile (test deposits swept): not kept.",
              count=len(report.missing)))  # fmt: skip


@admin.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@data_option
@pass_session
def restore(session: Session, archive: Path, data: Path | None) -> None:
    """Restore ARCHIVE (made by `scelle admin backup`) onto a fresh platform here, with
    the same database engine: envelopes checked one by one, then the database, then the
    keys."""
    from scelle.platform import server

    server.configure(data)
    from django.utils import translation

    translation.activate(language())
    from scelle.cli.console import progress_bar
    from scelle.platform import backup as backups

    with progress_bar(_("Restoring"), None) as progress:
        report = backups.restore(archive, progress=progress)
    server.prepare(session.clock)  # the schema brought up to date, if the backup is older
    say(_("Restored {count} envelopes ({size} bytes), the database and the keys.",
          count=report.envelopes, size=report.bytes))  # fmt: skip


@admin.command("sweep")
@data_option
@pass_session
def sweep(session: Session, data: Path | None) -> None:
    """Remove uploads that will never become deposits (idle, or to a closed tender), and
    test deposits whose time is up."""
    _platform(session, data)
    from scelle.platform.assistants.services import expire_jobs
    from scelle.platform.deposits.services import sweep_test_deposits, sweep_uploads

    report = sweep_uploads(now=session.clock())
    expired = expire_jobs(now=session.clock())
    tries = sweep_test_deposits(now=session.clock())
    say(
        _(
            "Removed {idle} idle uploads, {closed} to tenders taking no deposit, "
            "{orphans} files belonging to nothing; {busy} receiving a chunk, left for later.",
            idle=report.idle,
            closed=report.closed,
            orphans=report.orphans,
            busy=report.busy,
        )
    )
    say(_("{count} remote jobs that no assistant took or reported failed.", count=expired))
    say(_("Removed {count} test deposits received too long ago.", count=tries))
