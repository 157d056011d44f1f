"""The one root exception of Scellé and its families.

Every public function raises a subclass of `ScelleError` with a message in the
user's words; no bare `ValueError` or `KeyError` leaves the public API.
"""

from __future__ import annotations


class ScelleError(Exception):
    """Root of every error Scellé reports to its user."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message, followed by what the user can do about it when we know."""
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


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
        self, message: str, *, hint: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        """Seconds to wait, when known."""


class PlatformUnavailableError(ScelleError):
    """The platform cannot be reached, or failed to answer."""


class PlatformAnswerError(PlatformUnavailableError):
    """The platform answered something that is not what its API says: a lying or
    broken server. Nothing of the answer is used."""
