"""The assistant's own window: a local page on 127.0.0.1 (the Local Trust Force home).

Accueil (state, platform, workstation), Magasin de certificats (list, export to
.pfx, import a .pfx, delete), Traitements distants (this workstation's jobs),
Configuration (workstation name, openings folder).

Only this workstation's user may use it, and no web page may drive it:
- it listens on 127.0.0.1 only, on a port the system picks;
- the address printed by `scelle assistant` carries a secret token, turned into a
  cookie (HttpOnly, SameSite=Strict) at the first visit; anything else is refused;
- the Host header must name 127.0.0.1 or localhost with this port, so a site that
  rebinds its own name to 127.0.0.1 (DNS rebinding) is refused;
- every form carries a CSRF token, and a POST from another origin is refused;
- pages carry a Content-Security-Policy allowing nothing but this origin's style
  sheet: no script at all.

Standard library only (http.server), so that it runs the same on Windows, macOS and
Linux without more to install.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import html
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scelle.assistant.config import AssistantConfig, save_config, use_token
from scelle.assistant.keys import export_key_pair, import_key_pair
from scelle.assistant.remote import Assistant
from scelle.assistant.times import platform_time, platform_zone
from scelle.client import api
from scelle.core.errors import ScelleError, WrongPasswordError, fill_plain
from scelle.i18n import gettext_noop, gettext_of, translate
from scelle.keystore import StoredKey

MAX_BODY_BYTES = 2 << 20
"""A .pfx is a few kilobytes; forms are smaller still."""
COOKIE = "scelle_window"

# The window's words, listed for the catalogue: on Python 3.11 neither makemessages nor
# Babel sees a call inside an f-string, where the pages below use them.
_WORDS = (
    gettext_noop("Home"),
    gettext_noop("Certificate store"),
    gettext_noop("Remote jobs"),
    gettext_noop("Configuration"),
    gettext_noop("Scellé assistant"),
    gettext_noop("Main menu"),
    gettext_noop("starting"),
    gettext_noop("running, ready"),
    gettext_noop("the platform cannot be reached: trying again"),
    gettext_noop("the login expired or was revoked: run scelle login again"),
    gettext_noop("State"),
    gettext_noop("Platform"),
    gettext_noop("Workstation"),
    gettext_noop("Openings folder"),
    gettext_noop("Key pairs in the store"),
    gettext_noop("yes"),
    gettext_noop("no"),
    gettext_noop("Name"),
    gettext_noop("Issued to (CN)"),
    gettext_noop("Expires"),
    gettext_noop("SHA-256 fingerprint"),
    gettext_noop("Exportable"),
    gettext_noop("No key pair in the store."),
    gettext_noop("Export a key pair to a .pfx file"),
    gettext_noop("Key pair"),
    gettext_noop("Password protecting the file"),
    gettext_noop("Repeat the password"),
    gettext_noop("For Windows before 10 1709 and Java 8 (3DES, SHA-1)"),
    gettext_noop("Export"),
    gettext_noop("Import a .pfx file"),
    gettext_noop(".pfx or .p12 file"),
    gettext_noop("Password of the file"),
    gettext_noop("Name in the store (optional)"),
    gettext_noop("Import"),
    gettext_noop("Delete a key pair from the store"),
    gettext_noop("Envelopes sealed only to it could never be opened again."),
    gettext_noop("Delete"),
    gettext_noop("The two passwords differ."),
    gettext_noop("Choose a .pfx file."),
    gettext_noop("The key pair {name} has been imported into this workstation's store."),
    gettext_noop("Confirm the deletion."),
    gettext_noop("The key pair {name} has been deleted from this workstation's store."),
    gettext_noop("queued"),
    gettext_noop("started"),
    gettext_noop("finished"),
    gettext_noop("failed"),
    gettext_noop("add a key pair"),
    gettext_noop("open a tender's envelopes"),
    gettext_noop("Job"),
    gettext_noop("Start"),
    gettext_noop("End"),
    gettext_noop("Message"),
    gettext_noop("No remote job yet."),
    gettext_noop("change it with scelle login"),
    gettext_noop("Workstation name"),
    gettext_noop("Save"),
    gettext_noop("Saved."),
    gettext_noop("Where"),
    gettext_noop("Key pairs on a token cannot be exported: their private key never leaves it."),
    gettext_noop("this store"),
    gettext_noop("token {token}"),
    gettext_noop("Token"),
    gettext_noop("none"),
    gettext_noop("{token}: unlocked"),
    gettext_noop("{token}: locked, its PIN is needed to make or use its key pairs"),
    gettext_noop("Unlock the token {token}"),
    gettext_noop("PIN of the token"),
    gettext_noop("Unlock"),
    gettext_noop("The token {token} is unlocked until the assistant stops."),
    gettext_noop("PKCS#11 token (a pkcs11: URI; empty: none)"),
    gettext_noop("PKCS#11 module of the token (empty: SCELLE_PKCS11_MODULE, else OpenSC)"),
)

_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_STYLE = b"""
body { font: 1rem/1.5 system-ui, "Segoe UI", Roboto, Arial, sans-serif; margin: 0; color: #1e1e1e; }
header { padding: .75rem 1.5rem; border-bottom: 3px solid #000091; }
header strong { color: #000091; font-size: 1.3rem; }
nav ul { list-style: none; display: flex; gap: 1.5rem; margin: 0; padding: .5rem 1.5rem;
  border-bottom: 1px solid #c8c8c8; }
nav a[aria-current="page"] { font-weight: 700; }
a { color: #000091; }
main { padding: 1.5rem; max-width: 60rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem; border-bottom: 1px solid #c8c8c8; vertical-align: top; }
th { background: #f3f3f3; }
.fingerprint { font-family: ui-monospace, Consolas, monospace; font-size: .85rem;
  overflow-wrap: anywhere; }
label { display: block; font-weight: 600; margin-top: .75rem; }
input[type=text], input[type=password], select { font: inherit; padding: .35rem; min-width: 18rem;
  border: 1px solid #6b6b6b; }
button { display: block; font: inherit; margin-top: .75rem; padding: .4rem .9rem;
  background: #000091; color: #fff; border: 1px solid #000091; border-radius: .25rem;
  cursor: pointer; }
button.danger { background: #b10000; border-color: #b10000; }
.message { padding: .75rem 1rem; border-left: 4px solid #135c26; background: #e0f3e5; }
.error { padding: .75rem 1rem; border-left: 4px solid #b10000; background: #fee9e9; }
fieldset { margin-top: 1.5rem; border: 1px solid #c8c8c8; }
:focus-visible { outline: 3px solid #0a76f6; outline-offset: 2px; }
"""


TAKING_PART = gettext_noop(
    "Taking part, your workstation's assistant decrypts your share of each envelope's key "
    "and sends it encrypted to the opener's certificate; nothing is opened on your workstation."
)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Page:
    """One request's language, form and answer."""

    def __init__(self, lang: str, csrf: str) -> None:
        self.lang = lang
        self.csrf = csrf

    def job_said(self, job: api.Job) -> str:
        """A job's message in the page's language (its assistant's template, translated
        and filled with plain values); else the message as the platform gives it."""
        spoken = job["result"].get("said") if isinstance(job.get("result"), dict) else None
        if isinstance(spoken, dict) and isinstance(spoken.get("template"), str):
            values = spoken.get("values")
            filled = fill_plain(
                translate(self.lang, spoken["template"]), values if isinstance(values, dict) else {}
            )
            if filled is not None:
                return filled
        return translate(self.lang, job["message"])

    def _(self, message: str, /, **values: object) -> str:
        return translate(self.lang, message, **{k: html.escape(str(v)) for k, v in values.items()})

    def said(self, error: ScelleError) -> str:
        """An error's message in the page's language."""
        return error.localized(gettext_of(self.lang))[0]

    def form(self, action: str, inner: str, *, multipart: bool = False) -> str:
        kind = ' enctype="multipart/form-data"' if multipart else ""
        return (
            f'<form method="post" action="{action}"{kind}>'
            f'<input type="hidden" name="csrf" value="{self.csrf}">{inner}</form>'
        )

    def render(self, section: str, title: str, content: str, *, status: int = 200) -> Answer:
        links = [
            ("/", self._("Home")),
            ("/magasin", self._("Certificate store")),
            ("/traitements", self._("Remote jobs")),
            ("/configuration", self._("Configuration")),
        ]
        current = ' aria-current="page"'
        menu = "".join(
            f'<li><a href="{href}"{current if href == section else ""}>{label}</a></li>'
            for href, label in links
        )
        document = (
            f'<!DOCTYPE html><html lang="{self.lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)} — {self._('Scellé assistant')}</title>"
            f'<link rel="stylesheet" href="/style.css"></head><body>'
            f"<header><strong>{self._('Scellé assistant')}</strong></header>"
            f'<nav aria-label="{self._("Main menu")}"><ul>{menu}</ul></nav>'
            f"<main><h1>{html.escape(title)}</h1>{content}</main></body></html>"
        )
        return Answer(status, document.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _language(accept: str) -> str:
    first = accept.split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "fr"


class Window:
    """The local window of one running assistant."""

    def __init__(self, helper: Assistant, home: Path, *, port: int = 0) -> None:
        self.helper = helper
        self.home = home
        self.secret = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)
        window = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "Scelle-assistant"
            sys_version = ""

            def do_GET(self) -> None:
                window._serve(self, "GET")

            def do_POST(self) -> None:
                window._serve(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: ANN401
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address to open: it carries the secret token."""
        return f"http://127.0.0.1:{self.port}/?t={self.secret}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the gate: host, token, CSRF ---------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        try:
            answer = self._answer(request, method)
        except ScelleError as error:  # a refusal the page did not expect: said, not raised
            answer = Answer(400, html.escape(error.message).encode())
        request.send_response(answer.status)
        headers = {
            "Content-Security-Policy": _POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",  # "no-referrer" makes form posts say Origin: null
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
            **answer.headers,
        }
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer.body)))
        request.end_headers()
        request.wfile.write(answer.body)

    def _answer(self, request: BaseHTTPRequestHandler, method: str) -> Answer:
        host = request.headers.get("Host", "")
        if host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return Answer(421, b"this window answers only at 127.0.0.1")
        parsed = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(parsed.query)
        given = query.get("t", [""])[0]
        if given and hmac.compare_digest(given, self.secret):
            cookie = f"{COOKIE}={self.secret}; HttpOnly; SameSite=Strict; Path=/"
            return Answer(303, b"", {"Location": parsed.path or "/", "Set-Cookie": cookie})
        if not hmac.compare_digest(self._cookie(request), self.secret):
            return Answer(
                403,
                b"open the address that `scelle assistant` printed (it carries this window's key)",
            )
        if parsed.path == "/style.css":
            return Answer(200, _STYLE, {"Content-Type": "text/css; charset=utf-8"})
        page = Page(_language(request.headers.get("Accept-Language", "")), self.csrf)
        if method == "GET":
            view = self._pages().get(parsed.path)
            if view is None:
                return Answer(404, b"not found")
            return view(page, {})
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (
            f"http://127.0.0.1:{self.port}",
            f"http://localhost:{self.port}",
        ):
            return Answer(403, b"a form from another site")
        form = self._form(request)
        if not hmac.compare_digest(str(form.get("csrf", "")), self.csrf):
            return Answer(403, b"this form is not one of this window's: reload the page")
        action = self._actions().get(parsed.path)
        if action is None:
            return Answer(404, b"not found")
        return action(page, form)

    @staticmethod
    def _cookie(request: BaseHTTPRequestHandler) -> str:
        for part in request.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return ""

    @staticmethod
    def _form(request: BaseHTTPRequestHandler) -> dict[str, Any]:
        """The form's fields; a file field's value is (file name, bytes)."""
        length = request.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return {}
        body = request.rfile.read(int(length))
        kind = request.headers.get("Content-Type", "")
        if kind.startswith("application/x-www-form-urlencoded"):
            return {
                k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()
            }
        if not kind.startswith("multipart/form-data"):
            return {}
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + kind.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields: dict[str, Any] = {}
        if not message.is_multipart():
            return fields
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            fields[name] = (filename, data) if filename is not None else data.decode("utf-8")
        return fields

    # --- pages ------------------------------------------------------------------------

    def _pages(self) -> dict[str, Callable[[Page, dict[str, Any]], Answer]]:
        return {
            "/": self._home,
            "/magasin": self._store,
            "/traitements": self._jobs,
            "/configuration": self._configuration,
        }

    def _actions(self) -> dict[str, Callable[[Page, dict[str, Any]], Answer]]:
        return {
            "/magasin/exporter": self._export,
            "/magasin/importer": self._import,
            "/magasin/supprimer": self._delete,
            "/magasin/jeton": self._unlock,
            "/commission/prendre-part": self._take_part,
            "/configuration": self._save_configuration,
        }

    def _home(self, page: Page, _form: dict[str, Any]) -> Answer:
        helper = self.helper
        keys, unlisted = self._listed(page)
        states = {
            "starting": page._("starting"),
            "ready": page._("running, ready"),
            "unreachable": page._("the platform cannot be reached: trying again"),
            "logged-out": page._("the login expired or was revoked: run scelle login again"),
        }
        rows = [
            (page._("State"), states.get(helper.state, helper.state)),
            (page._("Platform"), helper.client.url),
            (page._("Workstation"), helper.config.workstation),
            (page._("Openings folder"), str(helper.config.openings)),
            (page._("Key pairs in the store"), str(len(keys))),
            (page._("Token"), unlisted or self._token_said(page)),
        ]
        facts = "".join(
            f"<tr><th scope=row>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows
        )
        return page.render("/", page._("Home"), f"<table>{facts}</table>{self._requests(page)}")

    def _requests(self, page: Page) -> str:
        """The commissions' openings this agent is asked to take part in, each with its
        button; nothing when there is none, or the platform does not answer."""
        try:
            asked = self.helper.client.commission_requests()
        except ScelleError:
            return ""
        if not asked:
            return ""
        zone = platform_zone(self.home, now=self.helper.clock())
        items = "".join(self._request(page, request, zone) for request in asked)
        return (
            f"<h2>{page._('Openings your commission asks you to take part in')}</h2>"
            f"<ul>{items}</ul><p>{page._(TAKING_PART)}</p>"
        )

    @staticmethod
    def _request(page: Page, request: api.CommissionRequest, zone: ZoneInfo) -> str:
        said = page._(
            "{reference}: {opener} started the opening on {at}.",
            reference=request["reference"],
            opener=request["started_by"],
            at=platform_time(request["started_at"], zone),
        )
        button = page._("Take part in opening {reference}", reference=request["reference"])
        hidden = f'<input type="hidden" name="tender" value="{html.escape(request["tender"])}">'
        form = page.form(
            "/commission/prendre-part", f"{hidden}<button type=submit>{button}</button>"
        )
        return f"<li>{said} {form}</li>"

    def _take_part(self, page: Page, form: dict[str, Any]) -> Answer:
        """Prendre part, from this window: a job for this assistant, as the dashboard gives
        it, followed in Traitements distants."""
        tender = str(form.get("tender", ""))
        try:
            uuid.UUID(tender)
            self.helper.client.give_job(
                "take_part", {"tender": tender}, workstation=self.helper.workstation
            )
        except ValueError:
            return self._home(page, {})
        except ScelleError as error:
            content = f'<p class="error" role="alert">{html.escape(page.said(error))}</p>'
            return page.render("/", page._("Home"), content, status=400)
        return Answer(303, b"", {"Location": "/traitements"})

    def _listed(self, page: Page) -> tuple[list[StoredKey], str]:
        """The key pairs, the token's included; the store's alone, and why, when the token
        does not answer (out of its reader, its module missing)."""
        try:
            return self.helper.store.key_pairs(), ""
        except ScelleError as error:
            kept = sorted(self.helper.store.stored_key_pairs(), key=lambda k: k.name.casefold())
            return kept, page.said(error)

    def _token_said(self, page: Page) -> str:
        token = self.helper.store.token
        if token is None:
            return page._("none")
        if token.unlocked:
            return page._("{token}: unlocked", token=token.label)
        return page._("{token}: locked, its PIN is needed to make or use its key pairs",
                      token=token.label)  # fmt: skip

    def _store(self, page: Page, _form: dict[str, Any], *, message: str = "", error: str = "",
               status: int = 200) -> Answer:  # fmt: skip
        """The store's page: its key pairs, and the forms to export, import and delete.

        Long because it writes the whole page in one piece of escaped HTML.
        """
        keys, unlisted = self._listed(page)
        error = error or unlisted
        rows = "".join(
            f"<tr><td>{html.escape(key.name)}</td><td>{html.escape(key.cn)}</td>"
            f"<td>{key.not_after:%Y-%m-%d}</td>"
            f'<td class="fingerprint">{key.fingerprint_sha256}</td>'
            f"<td>{page._('yes') if key.exportable else page._('no')}</td>"
            f"<td>{self._where(page, key)}</td></tr>"
            for key in keys
        )
        options = "".join(
            f'<option value="{html.escape(key.name)}">{html.escape(key.name)}</option>'
            for key in keys
        )
        exportable = "".join(
            f'<option value="{html.escape(key.name)}">{html.escape(key.name)}</option>'
            for key in keys
            if key.token is None
        )
        refused = "Key pairs on a token cannot be exported: their private key never leaves it."
        on_token = f"<p>{page._(refused)}</p>" if any(key.token for key in keys) else ""
        table = (
            f"<table><thead><tr><th scope=col>{page._('Name')}</th>"
            f"<th scope=col>{page._('Issued to (CN)')}</th><th scope=col>{page._('Expires')}</th>"
            f"<th scope=col>{page._('SHA-256 fingerprint')}</th>"
            f"<th scope=col>{page._('Exportable')}</th><th scope=col>{page._('Where')}</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            if keys
            else f"<p>{page._('No key pair in the store.')}</p>"
        )
        export = page.form(
            "/magasin/exporter",
            f"<fieldset><legend>{page._('Export a key pair to a .pfx file')}</legend>"
            f'<label for="export-name">{page._("Key pair")}</label>'
            f'<select id="export-name" name="name">{exportable}</select>'
            f'<label for="export-password">{page._("Password protecting the file")}</label>'
            f'<input type="password" id="export-password" name="password" '
            f'autocomplete="new-password" required>'
            f'<label for="export-password2">{page._("Repeat the password")}</label>'
            f'<input type="password" id="export-password2" name="password2" '
            f'autocomplete="new-password" required>'
            f'<label><input type="checkbox" name="legacy" value="yes"> '
            f"{page._('For Windows before 10 1709 and Java 8 (3DES, SHA-1)')}</label>"
            f"<button type=submit>{page._('Export')}</button></fieldset>",
        )
        import_ = page.form(
            "/magasin/importer",
            f"<fieldset><legend>{page._('Import a .pfx file')}</legend>"
            f'<label for="import-file">{page._(".pfx or .p12 file")}</label>'
            f'<input type="file" id="import-file" name="file" accept=".pfx,.p12" required>'
            f'<label for="import-password">{page._("Password of the file")}</label>'
            f'<input type="password" id="import-password" name="password" required>'
            f'<label for="import-name">{page._("Name in the store (optional)")}</label>'
            f'<input type="text" id="import-name" name="name">'
            f"<button type=submit>{page._('Import')}</button></fieldset>",
            multipart=True,
        )
        delete = page.form(
            "/magasin/supprimer",
            f"<fieldset><legend>{page._('Delete a key pair from the store')}</legend>"
            f'<label for="delete-name">{page._("Key pair")}</label>'
            f'<select id="delete-name" name="name">{options}</select>'
            f'<label><input type="checkbox" name="confirm" value="yes" required> '
            f"{page._('Envelopes sealed only to it could never be opened again.')}</label>"
            f'<button type=submit class="danger">{page._("Delete")}</button></fieldset>',
        )
        said = f'<p class="message" role="status">{html.escape(message)}</p>' if message else ""
        said += f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        forms = (export if exportable else "") + on_token + import_ + (delete if keys else "")
        content = said + self._token_state(page) + table + forms
        return page.render("/magasin", page._("Certificate store"), content, status=status)

    def _where(self, page: Page, key: StoredKey) -> str:
        token = self.helper.store.token
        if key.token is None or token is None:
            return page._("this store")
        return page._("token {token}", token=token.label)

    def _token_state(self, page: Page) -> str:
        """The token's state, and the form that unlocks it while it is locked."""
        token = self.helper.store.token
        if token is None:
            return ""
        if token.unlocked:
            return f"<p>{page._('Token')} {page._('{token}: unlocked', token=token.label)}</p>"
        return page.form(
            "/magasin/jeton",
            f"<fieldset><legend>{page._('Unlock the token {token}', token=token.label)}</legend>"
            f"<p>{self._token_said(page)}</p>"
            f'<label for="pin">{page._("PIN of the token")}</label>'
            f'<input type="password" id="pin" name="pin" autocomplete="off" required>'
            f"<button type=submit>{page._('Unlock')}</button></fieldset>",
        )

    def _unlock(self, page: Page, form: dict[str, Any]) -> Answer:
        """The PIN typed here logs in to the token; it is kept nowhere, not even here."""
        token = self.helper.store.token
        if token is None:
            return self._store(page, {}, error=page._("Token") + ": " + page._("none"), status=400)
        try:
            token.unlock(str(form.get("pin", "")))
        except ScelleError as error:
            return self._store(page, {}, error=page.said(error), status=400)
        self.helper.wake()
        return self._store(
            page, {}, message=page._("The token {token} is unlocked until the assistant stops.",
                                     token=token.label),
        )  # fmt: skip

    def _export(self, page: Page, form: dict[str, Any]) -> Answer:
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        try:
            if password != str(form.get("password2", "")):
                raise WrongPasswordError(page._("The two passwords differ."))
            stored, data = export_key_pair(
                self.helper.store, name, password, legacy=form.get("legacy") == "yes"
            )
        except ScelleError as error:
            return self._store(page, {}, error=page.said(error), status=400)
        filename = urllib.parse.quote(f"{stored.name}.pfx")
        return Answer(
            200,
            data,
            {
                "Content-Type": "application/x-pkcs12",
                "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
            },
        )

    def _import(self, page: Page, form: dict[str, Any]) -> Answer:
        upload = form.get("file")

        def bring_in() -> StoredKey:
            if not isinstance(upload, tuple) or not upload[1]:
                raise WrongPasswordError(page._("Choose a .pfx file."))
            return import_key_pair(
                self.helper.store, upload[1], str(form.get("password", "")),
                name=str(form.get("name", "")).strip() or None, source=upload[0],
                exportable=True, now=self.helper.clock(),
            )  # fmt: skip

        return self._change_store(
            page, bring_in, "The key pair {name} has been imported into this workstation's store."
        )

    def _delete(self, page: Page, form: dict[str, Any]) -> Answer:
        if form.get("confirm") != "yes":
            return self._store(page, {}, error=page._("Confirm the deletion."), status=400)
        return self._change_store(
            page,
            lambda: self.helper.store.delete(str(form.get("name", ""))),
            "The key pair {name} has been deleted from this workstation's store.",
        )

    def _change_store(self, page: Page, change: Callable[[], StoredKey], done: str) -> Answer:
        """Import or delete, then the store's page saying what was done, or why not."""
        try:
            stored = change()
        except ScelleError as error:
            return self._store(page, {}, error=page.said(error), status=400)
        self.helper.wake()  # the platform hears of the store's change at once
        return self._store(page, {}, message=page._(done, name=stored.name))

    def _jobs(self, page: Page, _form: dict[str, Any]) -> Answer:
        try:
            jobs = [j for j in self.helper.client.jobs() if j["workstation_name"] ==
                    self.helper.config.workstation]  # fmt: skip
        except ScelleError as error:
            content = f'<p class="error" role="alert">{html.escape(page.said(error))}</p>'
            return page.render("/traitements", page._("Remote jobs"), content)
        states = {
            "queued": page._("queued"),
            "started": page._("started"),
            "finished": page._("finished"),
            "failed": page._("failed"),
        }
        kinds = {
            "add_key_pair": page._("add a key pair"),
            "open_tender": page._("open a tender's envelopes"),
            "take_part": page._("take part in a commission's opening"),
        }
        zone = platform_zone(self.home, now=self.helper.clock())

        def when(value: str | None) -> str:
            return platform_time(value, zone) if value else "—"

        rows = "".join(
            f"<tr><td>{html.escape(kinds.get(job['kind'], job['kind']))}</td>"
            f"<td>{html.escape(when(job['started_at']))}</td>"
            f"<td>{html.escape(when(job['finished_at']))}</td>"
            f"<td>{html.escape(states.get(job['state'], job['state']))}</td>"
            f"<td>{html.escape(page.job_said(job))}</td></tr>"
            for job in jobs
        )
        content = (
            f"<table><thead><tr><th scope=col>{page._('Job')}</th>"
            f"<th scope=col>{page._('Start')}</th><th scope=col>{page._('End')}</th>"
            f"<th scope=col>{page._('State')}</th><th scope=col>{page._('Message')}</th></tr>"
            f"</thead><tbody>{rows}</tbody></table>"
            if jobs
            else f"<p>{page._('No remote job yet.')}</p>"
        )
        return page.render("/traitements", page._("Remote jobs"), content)

    def _configuration(self, page: Page, _form: dict[str, Any], *, message: str = "",
                       error: str = "", status: int = 200) -> Answer:  # fmt: skip
        config = self.helper.config
        said = f'<p class="message" role="status">{html.escape(message)}</p>' if message else ""
        said += f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
        content = said + page.form(
            "/configuration",
            f"<p>{page._('Platform')}: {html.escape(self.helper.client.url)} "
            f"({page._('change it with scelle login')})</p>"
            f'<label for="workstation">{page._("Workstation name")}</label>'
            f'<input type="text" id="workstation" name="workstation" '
            f'value="{html.escape(config.workstation)}" required>'
            f'<label for="openings">{page._("Openings folder")}</label>'
            f'<input type="text" id="openings" name="openings" '
            f'value="{html.escape(str(config.openings))}" required>'
            f'<label for="token">{page._("PKCS#11 token (a pkcs11: URI; empty: none)")}</label>'
            f'<input type="text" id="token" name="token" value="{html.escape(config.token or "")}">'
            f'<label for="module">'
            f"{page._('PKCS#11 module of the token (empty: SCELLE_PKCS11_MODULE, else OpenSC)')}"
            f'</label><input type="text" id="module" name="module" '
            f'value="{html.escape(config.module or "")}">'
            f"<button type=submit>{page._('Save')}</button>",
        )
        return page.render("/configuration", page._("Configuration"), content, status=status)

    def _save_configuration(self, page: Page, form: dict[str, Any]) -> Answer:
        try:
            saved = save_config(
                self.home,
                AssistantConfig(
                    workstation=str(form.get("workstation", "")),
                    openings=Path(str(form.get("openings", ""))),
                    token=str(form.get("token", "")),
                    module=str(form.get("module", "")),
                ),
            )
            if (saved.token, saved.module) != (self.helper.config.token, self.helper.config.module):
                try:
                    use_token(self.helper.store, saved)
                except ScelleError:
                    # A token this workstation cannot use (no module) is not kept: the next
                    # start would fail on it.
                    save_config(self.home, self.helper.config)
                    use_token(self.helper.store, self.helper.config)
                    raise
        except ScelleError as error:
            return self._configuration(page, {}, error=page.said(error), status=400)
        self.helper.config = saved
        self.helper.wake()
        return self._configuration(page, {}, message=page._("Saved."))
