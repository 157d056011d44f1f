"""`scelle encrypt` and `scelle decrypt`: envelopes from and to files or pipes."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import click
from cryptography import x509

from scelle.cli.console import (
    ask_password,
    force_option,
    password_file_option,
    progress_bar,
    say,
)
from scelle.cli.session import Session, pass_session, token_option
from scelle.core import certs, envelope, pkcs12
from scelle.core.errors import DecryptionError, InvalidInputError, KeyNotFoundError
from scelle.core.files import Readable, atomic_output, private_temporary_file
from scelle.i18n import _

STDIO = "-"
ENVELOPE_SUFFIXES = (".p7m", ".cms", ".p7e")
IO_BUFFER = 1 << 20


def _recipient(session: Session, value: str) -> x509.Certificate:
    """A -r value: a certificate file (PEM or DER), else a key pair name of the store."""
    path = Path(value)
    if path.is_file():
        return certs.load_certificate(path.read_bytes(), source=value)
    try:
        return session.store.get(value).certificate
    except KeyNotFoundError:
        raise InvalidInputError(
            f"recipient {value!r} is neither a certificate file nor a key pair of the store"
        ) from None


@contextlib.contextmanager
def _input(path: str) -> Iterator[tuple[Readable, int | None]]:
    """The input stream and its size when known (for the progress bar)."""
    if path == STDIO:
        yield cast(Readable, sys.stdin.buffer), None
        return
    try:
        handle = Path(path).open("rb", buffering=IO_BUFFER)  # noqa: SIM115 - closed below
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        size = Path(path).stat().st_size
        yield cast(Readable, handle), size if size else None


def _stdout() -> BinaryIO:
    if sys.stdout.isatty():
        raise InvalidInputError(
            "refusing to write binary data to the terminal", hint="Use -o FILE or a pipe."
        )
    return sys.stdout.buffer


@click.command()
@click.option(
    "-r", "--recipient", "recipients", multiple=True, required=True, metavar="RECIPIENT",
    help="A certificate file (PEM or DER) or a key pair name of the store; repeat for more.",
)  # fmt: skip
@click.option("-o", "--output", help="The envelope to write (default: IN.p7m; - for stdout).")
@force_option
@click.argument("source", metavar="IN")
@pass_session
def encrypt(
    session: Session, recipients: tuple[str, ...], output: str | None, force: bool, source: str
) -> None:
    """Seal IN (a file, or - for stdin) into an envelope for each RECIPIENT."""
    now = session.clock()
    chosen = [_recipient(session, value) for value in recipients]
    for certificate in chosen:
        certs.check_recipient(certificate, now=now)
    keys = envelope.EnvelopeKeys.for_recipients(chosen)
    if output is None:
        output = STDIO if source == STDIO else source + ".p7m"
    with _input(source) as (stream, size), progress_bar(_("Encrypting"), size) as progress:
        if output == STDIO:
            sink = _stdout()
            envelope.encrypt_stream(stream, sink, keys, progress=progress)
            sink.flush()
            return
        with atomic_output(Path(output), overwrite=force) as handle:
            envelope.encrypt_stream(stream, handle, keys, progress=progress)
    say(_("Encrypted for {count} recipient(s): {path}", count=len(chosen), path=output))


def _default_plaintext_name(source: str) -> str:
    for suffix in ENVELOPE_SUFFIXES:
        if source.lower().endswith(suffix) and len(source) > len(suffix):
            return source[: -len(suffix)]
    raise click.UsageError(
        f"cannot guess the output name of {source!r}: pass -o FILE (or -o - for stdout)"
    )


def decryption_keys(
    session: Session, names: tuple[str, ...], pfx: Path | None, password_file: Path | None
) -> list[envelope.DecryptionKey]:
    if pfx is not None:
        password = ask_password(
            _("Password of {path}", path=pfx), password_file=password_file, confirm=False
        )
        bundle = pkcs12.import_pkcs12(pfx.read_bytes(), password, source=str(pfx))
        return [envelope.DecryptionKey(bundle.private_key, bundle.certificate)]
    return session.store.decryption_keys(names)


@click.command()
@click.option(
    "-k", "--key", "names", multiple=True, metavar="NAME",
    help="A key pair of the store (default: try every one); repeat for more.",
)  # fmt: skip
@click.option(
    "--pfx", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use the key pair of this .pfx file instead of the store.",
)  # fmt: skip
@password_file_option("With --pfx: read its password from the first line of this file.")
@click.option("-o", "--output", help="The file to write (default: IN without .p7m; - for stdout).")
@force_option
@click.argument("source", metavar="IN")
@token_option
@pass_session
def decrypt(
    session: Session,
    names: tuple[str, ...],
    pfx: Path | None,
    password_file: Path | None,
    output: str | None,
    force: bool,
    source: str,
) -> None:
    """Open the envelope IN (a file, or - for stdin).

    The output appears only once the envelope has verified: nothing is left
    behind when it fails.
    """
    if names and pfx is not None:
        raise click.UsageError("use either -k/--key or --pfx, not both")
    if password_file is not None and pfx is None:
        raise click.UsageError("--password-file goes with --pfx")
    if output is None:
        output = STDIO if source == STDIO else _default_plaintext_name(source)
    if output != STDIO and Path(output).exists() and not force:
        raise InvalidInputError(f"{output} already exists", hint="Choose -o FILE or --force.")
    keys = decryption_keys(session, names, pfx, password_file)
    with _input(source) as (stream, size):
        try:
            with progress_bar(_("Decrypting"), size) as progress:
                if output == STDIO:
                    sink = _stdout()
                    # Plaintext reaches stdout only after the tag has verified.
                    with private_temporary_file() as temporary:
                        envelope.decrypt_stream(stream, temporary, keys, progress=progress)
                        temporary.seek(0)
                        shutil.copyfileobj(temporary, sink, IO_BUFFER)
                    sink.flush()
                    return
                envelope.open_envelope_to_file(
                    stream, Path(output), keys, overwrite=force, progress=progress
                )
        except DecryptionError as error:
            raise DecryptionError(f"{source}: {error.message}") from None
    say(_("Decrypted: {path}", path=output))
