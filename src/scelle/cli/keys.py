"""`scelle keys …`: the key pairs of this workstation's store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from scelle.cli.console import (
    ask_password,
    force_option,
    password_file_option,
    plain_console,
    say,
    spinner,
)
from scelle.cli.session import Session, pass_session, token_option
from scelle.core import certs
from scelle.core.errors import InvalidInputError
from scelle.core.files import atomic_output, write_all
from scelle.i18n import _
from scelle.keystore import StoredKey, check_key_name

PUBLIC_FILE_MODE = 0o644


@click.group()
def keys() -> None:
    """Generate, list, export, import and delete key pairs (bi-clés)."""


def _describe(key: StoredKey) -> list[tuple[str, str]]:
    return [
        (_("Name"), key.name),
        (_("Issued to (CN)"), key.cn),
        (_("Issued by"), key.issuer),
        (_("Valid from"), f"{key.certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"),
        (_("Expires"), f"{key.not_after:%Y-%m-%d %H:%M} UTC"),
        (_("Key"), f"RSA-{key.to_json()['key_size']}"),
        (_("Serial number"), format(key.certificate.serial_number, "X")),
        (_("SHA-256 fingerprint"), key.fingerprint_sha256),
        (_("Exportable"), _("yes") if key.exportable else _("no")),
        (_("Origin"), _(key.origin)),
        *([(_("Token"), key.token)] if key.token else []),
    ]


def _print_summary(key: StoredKey) -> None:
    for label, value in _describe(key)[1:]:
        if label in (_("Issued to (CN)"), _("Expires"), _("SHA-256 fingerprint")):
            say(f"  {label}: {value}")


@keys.command()
@click.argument("name")
@click.option("--cn", help="Common Name of the certificate (default: the name).")
@click.option(
    "--bits",
    type=click.Choice(["3072", "4096"]),
    default=str(certs.DEFAULT_RSA_BITS),
    show_default=True,
    help="RSA key size.",
)
@click.option(
    "--days",
    type=click.IntRange(1, certs.MAX_VALIDITY_DAYS),
    default=certs.DEFAULT_VALIDITY_DAYS,
    show_default=True,
    help="Validity of the certificate.",
)
@click.option("--publish", "then_publish", is_flag=True, help="Then publish it on the platform.")
@click.option("--backup", is_flag=True, help="With --publish: as a backup key pair of the service.")
@click.option("--designation", help="With --publish: its designation (default: the name).")
@click.option("--service", help="With --publish: the service (default: your only one).")
@token_option
@pass_session
def generate(
    session: Session,
    name: str,
    cn: str | None,
    bits: str,
    days: int,
    then_publish: bool,
    backup: bool,
    designation: str | None,
    service: str | None,
) -> None:
    """Generate a key pair in this workstation's store (self-signed certificate).

    With --token, the key pair is made on the token, which it never leaves. With
    --publish, the platform CA then certifies it for one of your services.
    """
    if not then_publish and (backup or designation or service):
        raise click.UsageError("--backup, --designation and --service go with --publish")
    if then_publish:
        from scelle.cli.remote import connect

        connect(session).close()  # not logged in: say so before the slow generation
    from scelle.assistant.keys import generate_key_pair

    name = check_key_name(name)
    common_name = certs.check_common_name(cn if cn is not None else name)
    store = session.store
    store.check_name_free(name)  # before the passphrase (the PIN), and the slow part
    (store.token or store).unlock()
    token = store.token.label if store.token is not None else None
    doing = (_("Generating an RSA-{bits} key pair on the token {token}…", bits=bits, token=token)
             if token else _("Generating an RSA-{bits} key pair…", bits=bits))  # fmt: skip
    with spinner(doing):
        stored = generate_key_pair(
            store, name, common_name, bits=int(bits), days=days, now=session.clock()
        )
    say(_("The key pair {name} has been created on the token {token}: its private key cannot "
          "leave it.", name=stored.name, token=token) if token else
        _("The key pair {name} has been created and saved in this workstation's store.",
          name=stored.name))  # fmt: skip
    _print_summary(stored)
    if then_publish:
        from scelle.cli.remote import publish as publish_key_pair

        publish_key_pair(
            session,
            stored.name,
            backup=backup,
            designation=designation,
            service_name=service,
            as_is=False,
        )


@keys.command()
@click.argument("name")
@click.option("--backup", is_flag=True, help="A backup key pair of the service.")
@click.option("--designation", help="Its designation on the platform (default: the name).")
@click.option("--service", help="The service (default: your only one with manage_keys).")
@click.option(
    "--as-is", is_flag=True,
    help="Reference the existing certificate instead of having the platform CA issue one.",
)  # fmt: skip
@token_option
@pass_session
def publish(
    session: Session,
    name: str,
    backup: bool,
    designation: str | None,
    service: str | None,
    as_is: bool,
) -> None:
    """Publish a key pair of the store on the platform, for one of your services."""
    from scelle.cli.remote import publish as publish_key_pair

    publish_key_pair(
        session, name, backup=backup, designation=designation, service_name=service, as_is=as_is
    )


@keys.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@token_option
@pass_session
def list_(session: Session, as_json: bool) -> None:
    """List the key pairs of this workstation's store."""
    found = session.store.key_pairs()
    if as_json:
        click.echo(json.dumps([key.to_json() for key in found], ensure_ascii=False, indent=2))
        return
    if not found:
        say(_("No key pair in this workstation's store ({home}).", home=session.store.home))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for header in (_("Name"), _("Issued to (CN)"), _("Issued by"), _("Expires"), _("Exportable")):
        table.add_column(header)
    for key in found:
        table.add_row(
            key.name,
            key.cn,
            key.issuer,
            f"{key.not_after:%Y-%m-%d}",
            _("yes") if key.exportable else _("no"),
        )
    plain_console(soft_wrap=True).print(table)


@keys.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@token_option
@pass_session
def show(session: Session, name: str, as_json: bool) -> None:
    """Show one key pair."""
    key = session.store.get(name)
    if as_json:
        click.echo(json.dumps(key.to_json(), ensure_ascii=False, indent=2))
        return
    rows = _describe(key)
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    chain = _("Chain")
    for issuer in key.chain:
        click.echo(f"{chain:<{width}}  {issuer.subject.rfc4514_string()}")


@keys.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@force_option
@token_option
@pass_session
def cert(session: Session, name: str, output: Path | None, force: bool) -> None:
    """Print or write the certificate of a key pair (PEM)."""
    pem = certs.certificate_pem(session.store.get(name).certificate)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(pem)
        return
    with atomic_output(output, overwrite=force, mode=PUBLIC_FILE_MODE) as handle:
        write_all(handle, pem)


@keys.command(name="export")
@click.argument("name")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The .pfx file to write.",
)  # fmt: skip
@click.option("--legacy", is_flag=True, help="3DES/SHA-1 for Windows before 10 1709 and Java 8.")
@password_file_option()
@force_option
@token_option
@pass_session
def export(
    session: Session,
    name: str,
    output: Path,
    legacy: bool,
    password_file: Path | None,
    force: bool,
) -> None:
    """Export a key pair, private key included, to a password-protected .pfx."""
    from scelle.assistant.keys import export_key_pair

    store = session.store
    stored = store.get(name)
    if not stored.exportable:
        store.export_bundle(name)  # raises the not-exportable error
    if output.exists() and not force:
        raise InvalidInputError(f"{output} already exists", hint="Choose another name or --force.")
    password = ask_password(
        _("Password protecting {path}", path=output), password_file=password_file, confirm=True
    )
    _stored, data = export_key_pair(store, name, password, legacy=legacy)
    with atomic_output(output, overwrite=force) as handle:
        write_all(handle, data)
    say(_("The key pair {name} has been exported to {path}.", name=stored.name, path=output))
    say(
        _(
            "Keep the password safe: there is no way to recover it, and without it the file "
            "cannot be opened."
        )
    )
    if not password.isascii():
        say(_("Note: Java's keytool cannot open a .pfx whose password has non-ASCII characters."))


@keys.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Name in the store (default: the file's friendly name, or CN).")
@password_file_option()
@click.option("--not-exportable", is_flag=True, help="Refuse any later export of this key pair.")
@token_option
@pass_session
def import_(
    session: Session, file: Path, name: str | None, password_file: Path | None, not_exportable: bool
) -> None:
    """Import a key pair from a .pfx / .p12 file."""
    data = file.read_bytes()
    password = ask_password(
        _("Password of {path}", path=file), password_file=password_file, confirm=False
    )
    from scelle.assistant.keys import import_key_pair

    stored = import_key_pair(
        session.store, data, password, name=name, source=str(file),
        exportable=not not_exportable, now=session.clock(),
    )  # fmt: skip
    say(_("The key pair {name} has been imported into this workstation's store.", name=stored.name))
    _print_summary(stored)


@keys.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@token_option
@pass_session
def delete(session: Session, name: str, yes: bool) -> None:
    """Delete a key pair from this workstation's store, for good."""
    store = session.store
    stored = store.get(name)
    if not yes:
        question = _(
            "Delete the key pair {name} ({cn}, expires {expires})? Envelopes sealed only to it "
            "could never be opened again.",
            name=stored.name,
            cn=stored.cn,
            expires=f"{stored.not_after:%Y-%m-%d}",
        )
        if not sys.stdin.isatty():
            raise InvalidInputError("deleting a key pair needs --yes when not on a terminal")
        if not click.confirm(question, default=False, err=True):
            say(_("Nothing deleted."))
            return
    store.delete(stored.name)
    say(_("The key pair {name} has been deleted from this workstation's store.", name=stored.name))
