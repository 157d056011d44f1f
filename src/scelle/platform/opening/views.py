"""Pages of the opening that a company sees: its own test deposit, opened in its browser
with the published test key (tenders.testing), and the test key's files."""

from __future__ import annotations

import uuid

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from scelle.core.errors import NotFoundError, PermissionDeniedError, ScelleError
from scelle.platform.clock import now
from scelle.platform.opening import services
from scelle.platform.tenders import testing
from scelle.platform.web.pages import actor, company_page

IN_PAGE_MAX_BYTES = 256 << 20
"""The largest envelope the page opens: it holds it in memory (test deposits are capped
far lower by default, SCELLE_TEST_DEPOSIT_MAX_BYTES)."""


def _messages() -> dict[str, str]:
    return {
        "too-large": _(
            "The envelope {kind} is too large to open in the page: open it with "
            "`scelle open --test-key`."
        ),
        "opening": _("Opening the envelope {kind} in this page…"),
        "opened": _(
            "Envelope {kind} opened in this page with the test key: {count} file(s), each one "
            "as the manifest sealed in it says (SHA-256 checked)."
        ),
        "failed": _(
            "The envelope {kind} cannot be opened with the test key: a buyer could not open it "
            "either. Deposit again, and if it happens again, tell the platform's operator."
        ),
        "no-key": _("The platform does not give the test key any more: this page cannot open."),
        "save": _("Save"),
    }


def _refused(request: HttpRequest, message: str) -> HttpResponse:
    message = message[:1].upper() + message[1:]
    return render(request, "web/refused.html", {"message": message}, status=409)


@company_page
def test_opening(request: HttpRequest, deposit_id: uuid.UUID) -> HttpResponse:
    """Ouvrir mon dépôt de test: the page opens each envelope of the company's test deposit,
    as the buyer's workstation would, and lists the files."""
    try:
        deposit = services.test_deposit_of_my_company(actor(request), deposit_id)
    except (NotFoundError, PermissionDeniedError):
        raise
    except ScelleError as error:
        return _refused(request, error.localized(_)[0])
    envelopes = [
        {
            "kind": envelope.kind,
            "size": envelope.size,
            "sha256": envelope.sha256,
            "url": reverse("deposits:test_envelope", args=[deposit.id, envelope.kind]),
        }
        for envelope in deposit.envelopes.all()
    ]
    config = {
        "reference": deposit.tender.reference,
        "keyUrl": f"/api/tenders/{deposit.tender_id}/test-key",
        "maxBytes": IN_PAGE_MAX_BYTES,
        "scriptUrl": static("web/build/open-test-page.js"),
    }
    return render(
        request,
        "opening/test_opening.html",
        {
            "section": "deposits",
            "deposit": deposit,
            "envelopes": envelopes,
            "config": config,
            "messages_for_script": _messages(),
            **testing.page_facts(),
        },
    )


@company_page
def test_envelope(request: HttpRequest, deposit_id: uuid.UUID, kind: str) -> HttpResponseBase:
    """A sealed envelope of the company's own test deposit, as the platform stores it."""
    try:
        found, handle = services.envelope_for_download(
            actor(request), deposit_id, kind, start=0, now=now()
        )
    except (NotFoundError, PermissionDeniedError):
        raise
    except ScelleError as error:
        return _refused(request, error.localized(_)[0])
    response = FileResponse(handle, content_type="application/pkcs7-mime")
    response["Content-Disposition"] = f'attachment; filename="{found.kind}.p7m"'
    response["X-Envelope-SHA256"] = found.sha256
    return response


@require_GET
def test_key_file(request: HttpRequest, tender_id: uuid.UUID, extension: str) -> HttpResponse:
    """The test key pair of a test tender, private key included, for anyone: as PEM (key
    and certificate) or as a .pfx whose password the pages give."""
    try:
        published = testing.test_key_of(str(tender_id))
    except NotFoundError:
        raise Http404 from None
    reference = published.tender.reference
    if extension == "pfx":
        response = HttpResponse(
            testing.test_key_pfx(published), content_type="application/x-pkcs12"
        )
    else:
        certificate = published.tender.assigned_key_pairs.get().certificate_pem
        response = HttpResponse(
            published.private_key_pem + certificate, content_type="application/x-pem-file"
        )
    response["Content-Disposition"] = f'attachment; filename="cle-de-test-{reference}.{extension}"'
    return response
