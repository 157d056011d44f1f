"""The one root exception of Scellé and its families.

Every public function raises a subclass of `ScelleError` with a message in the
user's words; no bare `ValueError` or `KeyError` leaves the public API.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


def _fill(template: str, values: dict[str, object]) -> str:
    if not values:
        return template
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder
        return template


_PLAIN_SPEC = re.compile(r"(\.[0-9]f)?")


def fill_plain(template: str, values: Mapping[str, object]) -> str | None:
    """`template` filled with `values` when it came from elsewhere (a workstation's job
    report): only `{name}` fields naming a given text or number, no attribute, no index;
    None otherwise, and the caller shows what it had instead."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return None
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if (
            not name.isidentifier()
            or not isinstance(values.get(name), str | int | float)
            or conversion not in (None, "r")
            or not _PLAIN_SPEC.fullmatch(spec or "")
        ):
            return None
    try:
        return template.format(**values)
    except ValueError:  # a number's format given a text ("{size:.2f}" with "a")
        return None


class ScelleError(Exception):
    """Root of every error Scellé reports to its user.

    `message` and `hint` are English templates whose `{name}` placeholders `values`
    fill: kept apart, so that the command and the pages say them in their user's
    language (`diagnostics(translate)`), from the one gettext catalogue.
    """

    def __init__(self, message: str, *, hint: str | None = None, **values: object) -> None:
        self.template = message
        self.hint_template = hint
        self.values = values
        self.message = _fill(message, values)
        self.hint = None if hint is None else _fill(hint, values)
        super().__init__(self.message)

    def localized(self, translate: Callable[[str], str]) -> tuple[str, str | None]:
        """(message, hint) in the language `translate` (a gettext) speaks."""
        message = _fill(translate(self.template), self.values)
        hint = (
            None
            if self.hint_template is None
            else _fill(translate(self.hint_template), self.values)
        )
        return message, hint

    def diagnostics(self, translate: Callable[[str], str] | None = None) -> str:
        """The message, followed by what the user can do about it when we know."""
        message, hint = (
            (self.message, self.hint) if translate is None else self.localized(translate)
        )
        return f"{message}\n{hint}" if hint else message


class InvalidInputError(ScelleError):
    """A file, name or value given by the user cannot be used as it is."""


class CertificateError(ScelleError):
    """A certificate cannot be used for what it is asked for."""


class UnsupportedKeyError(ScelleError):
    """A key of a type or size Scellé does not handle."""


class WeakPasswordError(ScelleError):
    """A password refused by the strength check."""


class WrongPasswordError(ScelleError):
    """A password that does not open what it should."""


class PKCS12Error(ScelleError):
    """A PKCS#12 (.pfx) file that cannot be read or written."""


class DecryptionError(ScelleError):
    """An envelope cannot be opened.

    Deliberately one class and one message whatever went wrong (wrong key,
    bad padding, bad tag, damaged structure): a decryptor that says which
    step failed is an oracle.
    """


class ArchiveError(ScelleError):
    """An envelope's content is not an archive Scellé can open safely."""


class ReceiptError(ScelleError):
    """A deposit receipt that does not verify."""


class LogError(ReceiptError):
    """A transparency log's note, checkpoint or proof that is malformed or does not
    verify: a receipt whose inclusion is not shown does not verify either."""


class LogMisbehaviourError(LogError):
    """A log that contradicts itself: two signed checkpoints that no honest log could
    both have signed (a fork, a rewrite, a log cut short). Both are kept here, to be
    shown to whoever must judge."""

    def __init__(
        self, message: str, *, earlier: str, later: str, hint: str | None = None, **values: object
    ) -> None:
        super().__init__(message, hint=hint, **values)
        self.earlier = earlier
        self.later = later


class EncryptionError(ScelleError):
    """An envelope cannot be written."""


class StoreError(ScelleError):
    """The local key store cannot do what was asked."""


class KeyNotFoundError(StoreError):
    """No key pair of that name in the local store."""


class DuplicateKeyError(StoreError):
    """A key pair of that name is already in the local store."""


class NotExportableError(StoreError):
    """The key pair was imported as not exportable."""


class OutputExistsError(InvalidInputError):
    """The output file exists and overwriting was not asked for."""


# --- what the platform answers (the API maps each to one HTTP status) --------


class NotAuthenticatedError(ScelleError):
    """No valid credentials: log in first (HTTP 401)."""


class PermissionDeniedError(ScelleError):
    """Logged in, but not allowed to do this (HTTP 403)."""


class NotFoundError(ScelleError):
    """Nothing of that name or id that the user may see (HTTP 404)."""


class ChecksumMismatchError(InvalidInputError):
    """A chunk arrived with a checksum that does not match its bytes (tus: HTTP 460)."""


class RuleViolationError(ScelleError):
    """A domain rule refuses the change, and says which (HTTP 409)."""


class TooLargeError(RuleViolationError):
    """More bytes than the platform takes: one deposit's, or a company's announced
    uploads (HTTP 413, as tus says)."""


class TooManyAttemptsError(ScelleError):
    """Too many failed attempts; wait before trying again (HTTP 429)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retry_after: int | None = None,
        **values: object,
    ) -> None:
        super().__init__(message, hint=hint, **values)
        self.retry_after = retry_after
        """Seconds to wait, when known."""


class PlatformUnavailableError(ScelleError):
    """The platform cannot be reached, or failed to answer."""


class PlatformAnswerError(PlatformUnavailableError):
    """The platform answered something that is not what its API says: a lying or
    broken server. Nothing of the answer is used."""
