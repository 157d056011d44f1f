"""`scelle proof verify`: a stored envelope, shown against the company's proof kit."""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click

from scelle.assistant.times import platform_time
from scelle.cli.console import ask_password, human_size, password_file_option, progress_bar, say
from scelle.cli.deposits import trusted_authority
from scelle.cli.remote import json_option, print_json
from scelle.cli.session import Session, pass_session
from scelle.core import certs, proofkit
from scelle.core.errors import InvalidInputError
from scelle.i18n import _

if TYPE_CHECKING:
    from scelle.assistant.proof import CheckedEnvelope


@click.group(name="proof")
def proof() -> None:
    """Proof kits (dossiers de preuve): what a deposited envelope held."""


@proof.command(name="verify")
@click.argument("kit", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument(
    "envelope", metavar="ENVELOPE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@password_file_option("Read the proof kit's password from the first line of this file.")
@click.option(
    "--extract", type=click.Path(file_okay=False, path_type=Path),
    help="Also write the envelope's files into this new folder, once every one checked out.",
)  # fmt: skip
@json_option
@pass_session
def verify(
    session: Session,
    kit: Path,
    envelope: Path,
    password_file: Path | None,
    extract: Path | None,
    as_json: bool,
) -> None:
    """Show that ENVELOPE, as the platform stored it, is the one the kit's receipt names
    (its SHA-256), and list the files it decrypts to with the content key the company
    kept in the proof KIT: no buyer key is needed.

    The receipt's signature is checked, and its CA compared with the one saved at login
    when this workstation has one.
    """
    from scelle.assistant.proof import check_envelope

    if extract is not None and extract.exists():
        raise InvalidInputError(f"{extract} already exists", hint="Choose a new --extract folder.")
    read = proofkit.read_kit(kit.read_bytes())
    trusted, zone = trusted_authority(session)
    proofkit.verified_receipt(read, trusted_authority=trusted)  # before asking the password
    password = ask_password(
        _("Proof kit password: "), password_file=password_file, confirm=False,
        what=_("the proof kit's password"),
    )  # fmt: skip
    with progress_bar(_("Decrypting"), envelope.stat().st_size) as bar:
        checked = check_envelope(
            read, envelope, password, trusted_authority=trusted, extract=extract, progress=bar
        )
    if as_json:
        _print_json(checked, trusted is not None, extract)
    else:
        _show(checked, envelope, extract, trusted is not None, zone)


def _print_json(checked: CheckedEnvelope, against_login: bool, extract: Path | None) -> None:
    receipt, item, manifest = checked.receipt.receipt, checked.envelope, checked.manifest
    print_json(
        {
            "tender": receipt.tender,
            "bidder": receipt.bidder,
            "deposit": receipt.deposit,
            "received_at": receipt.received_at.isoformat(),
            "authority_fingerprint_sha256": certs.fingerprint_sha256(checked.receipt.authority),
            "authority_checked_against_login": against_login,
            "envelope": {"kind": item.kind, "size": item.size, "sha256": item.sha256},
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in manifest.files],
            "extracted_to": None if extract is None else str(extract),
        }
    )


def _show(
    checked: CheckedEnvelope,
    envelope: Path,
    extract: Path | None,
    against_login: bool,
    zone: zoneinfo.ZoneInfo,
) -> None:
    receipt, item, manifest = checked.receipt.receipt, checked.envelope, checked.manifest
    say(_("The receipt is valid: signed by {signer}.",
          signer=checked.receipt.signer.subject.rfc4514_string()))  # fmt: skip
    rows = [
        (_("Tender"), receipt.tender),
        (_("Company"), receipt.bidder),
        (_("Received"), platform_time(receipt.received_at.isoformat(), zone)),
        (item.kind, f"{human_size(item.size)} ({item.size}), SHA-256 {item.sha256}"),
    ]
    width = max(len(label) for label, _value in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
    say(_("{path} is that envelope: its SHA-256 is the one the receipt gives.", path=envelope))
    say(_("With the content key kept in the proof kit, and no buyer key, it decrypts to "
          "{count} file(s), each matching the envelope's manifest:",
          count=len(manifest.files)))  # fmt: skip
    for file in manifest.files:
        click.echo(f"  {file.name}  {human_size(file.size)} ({file.size})  SHA-256 {file.sha256}")
    if extract is not None:
        say(_("The files are in {folder}.", folder=extract))
    if not against_login:
        fingerprint = certs.fingerprint_sha256(checked.receipt.authority)
        say(_("Compare the platform CA's fingerprint with the one the platform publishes: "
              "{fingerprint}", fingerprint=fingerprint))  # fmt: skip
