"""The platform's one settings file: every value comes from a `SCELLE_*` variable.

- SCELLE_DATA_DIR (./scelle-data): the embedded database and the envelopes.
- SCELLE_ENVELOPES_DIR (DATA_DIR/envelopes): the sealed envelopes, a folder shared by
  every app process.
- SCELLE_METRICS_ADDRESS (none): host:port where `scelle serve` gives its metrics in
  Prometheus' format (/metrics): requests by class, queue waits, shed requests, uploads
  in progress, bytes ingested. A private address: never the public port.
- SCELLE_SMTP_HOST (none: each e-mail a file in DATA_DIR/outbox), SCELLE_SMTP_PORT
  (587), SCELLE_SMTP_USER, SCELLE_SMTP_PASSWORD, SCELLE_SMTP_STARTTLS (true): the
  server the platform's e-mails go through (deposit receipts, failed remote jobs, key
  pairs expiring while in use, deadlines passed); SCELLE_MAIL_FROM their sender
  (Scellé <ne-pas-repondre@the first allowed host>).
- SCELLE_KEY_EXPIRY_WARNING_DAYS (30): a key pair in use by an unclosed tender whose
  certificate ends within this many days is announced to its service's key managers.
- SCELLE_STORAGE_URL (none: the envelopes folder): s3://bucket/prefix puts envelopes in
  an S3-compatible object store instead, shared by every host; its endpoint and
  credentials come from the standard AWS variables (AWS_ENDPOINT_URL,
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION). The bucket needs Object Lock
  (`scelle admin storage create`).
- SCELLE_RETENTION_YEARS (5): in the object store, each envelope of a real tender is
  kept under Object Lock retention in COMPLIANCE mode until this many years after the
  tender's close (after its deadline until it closes): nobody can delete it before.
- SCELLE_MAX_DEPOSIT_BYTES (20 GiB): the largest deposit, all envelopes together.
- SCELLE_MAX_OPEN_UPLOADS (20): uploads a company may have in progress at once.
- SCELLE_MAX_ANNOUNCED_BYTES (twice SCELLE_MAX_DEPOSIT_BYTES): the bytes a company's
  uploads in progress to one tender may announce in all.
- SCELLE_UPLOAD_IDLE_HOURS (24): an upload that received nothing for this long is
  removed by the sweep (`scelle admin sweep`, and `scelle serve` every 10 minutes);
  a closed or cancelled tender's uploads are removed at the next sweep.
- SCELLE_DATABASE_URL (SQLite in the data folder): postgresql://user@host:port/name.
- SCELLE_KEYS_DIR (DATA_DIR/platform-keys): the CA's and the receipt signer's keys;
  keep it outside the data folder in production.
- SCELLE_SECRET_KEY_FILE (KEYS_DIR/secret-key): Django's secret, also the passphrase
  of the key files; created 0600 on the first start.
- SCELLE_PLATFORM_NAME (Scellé): the name in the platform's own certificates.
- SCELLE_LOG_ORIGIN (the first allowed host, then /log): the transparency log's name,
  its public address without https:// (e.g. marches.example.fr/log); witnesses and
  companies' clients know the log by it, so it is chosen once.
- SCELLE_LOG_WITNESSES (none): the witnesses whose cosignatures the log publishes, as
  their verifier keys (`name+id+key`, `scelle witness key` prints one), comma-separated.
- SCELLE_TRANSPARENCY_LOG (true): false only to measure what the log costs (bench/
  deposit.py): receipts then carry no proof of inclusion.
- SCELLE_OPENING_WINDOW_DAYS (90): a tender's key pairs stay valid this long after
  its deadline.
- SCELLE_CERTIFICATE_DAYS (730): validity of the encryption certificates issued.
- SCELLE_TOKEN_DAYS (30): lifetime of an API token.
- SCELLE_LOGIN_MAX_FAILURES (5): failed logins for one address from one client (IP
  address, or IPv6 /64) before that client waits for that address: one more every
  3 minutes. The right password from another client is never refused.
- SCELLE_LOGIN_CLIENT_FAILURES (20): failed logins from one client, whatever the
  addresses, before it waits: one more a minute.
- SCELLE_ALLOWED_HOSTS (127.0.0.1,localhost,[::1]): host names served, comma-separated.
- SCELLE_DEBUG (false): Django's debug mode, never in production.
- SCELLE_TIME_ZONE (Europe/Paris): the zone of every time people read or type on the
  pages and in messages; JSON keeps ISO 8601 with offsets.
- SCELLE_SECURE_COOKIES (true): session and CSRF cookies only over HTTPS (browsers
  also send them to http://127.0.0.1 and localhost, the embedded default).
- SCELLE_TRUSTED_PROXIES (none): addresses or networks of the reverse proxies in front
  of `scelle serve` (e.g. 127.0.0.1,10.0.0.0/8); their X-Forwarded-For names the client,
  for admission and login throttling alike.
- SCELLE_HTTPS (false): served behind a proxy that ends TLS and sets
  X-Forwarded-Proto: Django then knows requests are HTTPS, redirects http:// to
  https:// and sends Strict-Transport-Security for SCELLE_HSTS_SECONDS (31536000,
  a year; 0 sends none).
- SCELLE_CLIENT_THREADS (2): threads one client (IPv4 address, IPv6 /64) may hold at
  once in one class of requests; its other requests wait their turn.
- SCELLE_CLIENT_QUEUE (64): requests of one client that may wait in one class; more are
  answered 503 at once.
- SCELLE_ANONYMOUS_RATE (20/second), SCELLE_LOGIN_RATE (60/second): requests one client
  may send without logging in, and to log in (the login page and its static files
  included); faster ones are answered 503. Written as `limits` reads them ("N/second",
  "N/minute").
- SCELLE_QUEUE_SECONDS (5): a request that waited this long for a thread is answered 503
  with Retry-After.
- SCELLE_DATABASE_BUSY_SECONDS (5): how long a request waits for SQLite's write lock
  (or for a PostgreSQL connection) before it is answered 503 with Retry-After.

Boolean variables take `true` or `false` and nothing else; a number that is
not a number stops the start with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

from scelle.core.clock import clock_from_environment
from scelle.core.errors import N_, InvalidInputError
from scelle.core.files import ensure_private_dir, write_private_file


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default).strip() or default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise InvalidInputError(
            N_("{name} must be true or false, not {value!r}"), name=name, value=value
        )
    return value.lower() == "true"


def _env_int(name: str, default: int, *, minimum: int = 1) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InvalidInputError(
            N_("{name} must be a whole number, not {value!r}"), name=name, value=value
        ) from None
    if number < minimum:
        raise InvalidInputError(
            N_("{name} must be at least {minimum}, not {number}"),
            name=name,
            minimum=minimum,
            number=number,
        )
    return number


def _secret_key(path: Path) -> str:
    """The secret in `path`, created (0600, O_EXCL) on the first start."""
    if not path.exists():
        ensure_private_dir(path.parent)
        write_private_file(path, secrets.token_urlsafe(48).encode())
    return path.read_text("utf-8").strip()


DATA_DIR = Path(_env("SCELLE_DATA_DIR", "scelle-data")).expanduser().resolve()
KEYS_DIR = Path(_env("SCELLE_KEYS_DIR", str(DATA_DIR / "platform-keys"))).expanduser().resolve()
SECRET_KEY = _secret_key(
    Path(_env("SCELLE_SECRET_KEY_FILE", str(KEYS_DIR / "secret-key"))).expanduser()
)
DEBUG = _env_bool("SCELLE_DEBUG", False)
ALLOWED_HOSTS = [
    host.strip()
    for host in _env("SCELLE_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

SCELLE_PLATFORM_NAME = _env("SCELLE_PLATFORM_NAME", "Scellé")
SCELLE_LOG_ORIGIN = _env(
    "SCELLE_LOG_ORIGIN",
    (ALLOWED_HOSTS[0].lstrip(".").replace("*", "") or "localhost") + "/log",
)
SCELLE_TRANSPARENCY_LOG = _env_bool("SCELLE_TRANSPARENCY_LOG", True)
SCELLE_LOG_WITNESSES = [
    key.strip() for key in _env("SCELLE_LOG_WITNESSES", "").split(",") if key.strip()
]
SCELLE_OPENING_WINDOW_DAYS = _env_int("SCELLE_OPENING_WINDOW_DAYS", 90, minimum=0)
SCELLE_CERTIFICATE_DAYS = _env_int("SCELLE_CERTIFICATE_DAYS", 730)
SCELLE_TOKEN_DAYS = _env_int("SCELLE_TOKEN_DAYS", 30)
SCELLE_LOGIN_MAX_FAILURES = _env_int("SCELLE_LOGIN_MAX_FAILURES", 5)
SCELLE_LOGIN_CLIENT_FAILURES = _env_int("SCELLE_LOGIN_CLIENT_FAILURES", 20)
SCELLE_ENVELOPES_DIR = (
    Path(_env("SCELLE_ENVELOPES_DIR", str(DATA_DIR / "envelopes"))).expanduser().resolve()
)
SCELLE_METRICS_ADDRESS = _env("SCELLE_METRICS_ADDRESS", "")
SCELLE_SMTP_HOST = _env("SCELLE_SMTP_HOST", "")
if SCELLE_SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = SCELLE_SMTP_HOST
    EMAIL_PORT = _env_int("SCELLE_SMTP_PORT", 587)
    EMAIL_HOST_USER = _env("SCELLE_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("SCELLE_SMTP_PASSWORD", "")
    EMAIL_USE_TLS = _env_bool("SCELLE_SMTP_STARTTLS", True)
else:  # no SMTP server: each mail a file in the data folder, nothing lost
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(DATA_DIR / "outbox")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = _env(
    "SCELLE_MAIL_FROM",
    f"{SCELLE_PLATFORM_NAME} <ne-pas-repondre@"
    f"{ALLOWED_HOSTS[0].lstrip('.').replace('*', '') or 'localhost'}>",
)
SCELLE_KEY_EXPIRY_WARNING_DAYS = _env_int("SCELLE_KEY_EXPIRY_WARNING_DAYS", 30)
SCELLE_STORAGE_URL = _env("SCELLE_STORAGE_URL", "")
SCELLE_RETENTION_YEARS = _env_int("SCELLE_RETENTION_YEARS", 5)
SCELLE_MAX_DEPOSIT_BYTES = _env_int("SCELLE_MAX_DEPOSIT_BYTES", 20 << 30)
SCELLE_MAX_OPEN_UPLOADS = _env_int("SCELLE_MAX_OPEN_UPLOADS", 20)
SCELLE_MAX_ANNOUNCED_BYTES = _env_int("SCELLE_MAX_ANNOUNCED_BYTES", 2 * SCELLE_MAX_DEPOSIT_BYTES)
SCELLE_UPLOAD_IDLE_HOURS = _env_int("SCELLE_UPLOAD_IDLE_HOURS", 24)
SCELLE_TEST_TENDER = _env_bool("SCELLE_TEST_TENDER", True)
"""Keep a *Consultation de test* every company may deposit to (tenders.testing)."""
SCELLE_TEST_DEPOSIT_MAX_BYTES = _env_int("SCELLE_TEST_DEPOSIT_MAX_BYTES", 50 << 20)
SCELLE_TEST_DEPOSITS_KEPT = _env_int("SCELLE_TEST_DEPOSITS_KEPT", 10)
"""Test deposits a company may have at once; each goes after SCELLE_TEST_DEPOSIT_HOURS."""
SCELLE_TEST_DEPOSIT_HOURS = _env_int("SCELLE_TEST_DEPOSIT_HOURS", 48)
SCELLE_CLIENT_THREADS = _env_int("SCELLE_CLIENT_THREADS", 2)
SCELLE_CLIENT_QUEUE = _env_int("SCELLE_CLIENT_QUEUE", 64)
SCELLE_QUEUE_SECONDS = _env_int("SCELLE_QUEUE_SECONDS", 5)
SCELLE_ANONYMOUS_RATE = _env("SCELLE_ANONYMOUS_RATE", "20/second")
SCELLE_LOGIN_RATE = _env("SCELLE_LOGIN_RATE", "60/second")
SCELLE_DATABASE_BUSY_SECONDS = _env_int("SCELLE_DATABASE_BUSY_SECONDS", 5)
SCELLE_TRUSTED_PROXIES = [
    part.strip() for part in _env("SCELLE_TRUSTED_PROXIES", "").split(",") if part.strip()
]
SCELLE_CLOCK = clock_from_environment(os.environ)
"""Where the platform reads the time: the system's, moved only by the test suite's
SCELLE_TEST_CLOCK_FILE (a running server's) or replaced by a movable clock (in-process)."""


def _database() -> dict[str, Any]:
    url = os.environ.get("SCELLE_DATABASE_URL", "").strip()
    if url:
        if not url.startswith(("postgres://", "postgresql://")):
            raise InvalidInputError(
                N_(
                    "SCELLE_DATABASE_URL must be a postgresql:// URL; "
                    "leave it unset for the embedded SQLite database"
                )
            )
        database: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        )
        # A server that is down or restarting, or a lock held by another, is a 503
        # within seconds, not a hung thread.
        database["OPTIONS"] = {
            **database.get("OPTIONS", {}),
            "connect_timeout": SCELLE_DATABASE_BUSY_SECONDS,
            "options": f"-c lock_timeout={SCELLE_DATABASE_BUSY_SECONDS * 1000}",
        }
        return database
    ensure_private_dir(DATA_DIR)
    name = DATA_DIR / "scelle.sqlite3"
    # Password hashes and token digests live here: 0600 from the start (SQLite
    # gives its -wal and -shm files the database file's mode).
    os.close(os.open(name, os.O_RDWR | os.O_CREAT, 0o600))
    return {
        "ENGINE": "scelle.platform.sqlite",
        "NAME": name,
        # One connection per server thread, kept between requests: opening one
        # (and its PRAGMAs) cost more than many a request's queries.
        "CONN_MAX_AGE": None,
        "OPTIONS": {
            # WAL lets readers run beside the one writer; IMMEDIATE takes the
            # write lock when a transaction starts, so two writers queue on
            # the busy timeout instead of failing half-way (the audit chain
            # reads its last link and appends in one transaction).
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            "transaction_mode": "IMMEDIATE",
            # A lock held longer (a backup, another process) is a 503, not a 30 s wait.
            "timeout": SCELLE_DATABASE_BUSY_SECONDS,
        },
    }


def _time_zone() -> str:
    import zoneinfo

    name = _env("SCELLE_TIME_ZONE", "Europe/Paris")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(
            N_("SCELLE_TIME_ZONE must be a time zone such as Europe/Paris, not {name!r}"),
            name=name,
        ) from None
    return name


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "ninja",  # the API documentation's own static files (Swagger UI), served here
    "scelle.platform.web",
    "scelle.platform.accounts",
    "scelle.platform.audit",
    "scelle.platform.keypairs",
    "scelle.platform.tenders",
    "scelle.platform.deposits",
    "scelle.platform.opening",
    "scelle.platform.assistants",
    "scelle.platform.transparency",
    "scelle.platform.mail",
]
# No django.contrib.admin: every change goes through the services, which
# enforce the domain rules and write the audit log.

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = ["scelle.platform.accounts.hashers.ScelleArgon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS: list[dict[str, Any]] = []  # the core's strength check applies

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]
ROOT_URLCONF = "scelle.platform.urls"
WSGI_APPLICATION = "scelle.platform.wsgi.application"
TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "scelle.platform.web.context.layout",
            ],
        },
    }
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [Path(__file__).resolve().parent.parent / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = _time_zone()
"""Pages and messages show times in this zone; the database and JSON keep offsets."""

# Pages: sessions in the database, cookies that scripts cannot read, sent only over
# HTTPS (and to loopback addresses, which browsers count as secure).
LOGIN_URL = "web:login"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env_bool("SCELLE_SECURE_COOKIES", True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600  # a working day
SESSION_COOKIE_NAME = "scelle_session"
CSRF_COOKIE_NAME = "scelle_csrf"
CSRF_COOKIE_HTTPONLY = True  # the pages send the token from the form, never the cookie
CSRF_FAILURE_VIEW = "scelle.platform.web.views.csrf_failure"

# Behind a proxy that ends TLS (SCELLE_HTTPS=true): requests are HTTPS when it says so.
if _env_bool("SCELLE_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^api/health$"]  # the proxy's own checks, over http
    SECURE_HSTS_SECONDS = _env_int("SCELLE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # the platform's name only: say more by hand

# Static files: the platform's own, htmx (django-htmx) and the API documentation's,
# served by the platform itself (whitenoise): nothing from another origin.
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # no collectstatic step: the two-command set-up stays two

# A strict Content-Security-Policy: no inline script or style, nothing from elsewhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = 1 << 20

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django": {"handlers": ["stderr"], "level": "WARNING"},
        # Every 4xx answer is a client's mistake (or a hostile client's flood): not logged,
        # 5xx are.
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
    },
}
