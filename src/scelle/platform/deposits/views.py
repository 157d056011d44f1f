"""Pages of companies' deposits: depositing from the browser, the list, each receipt."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from scelle.platform.accounts.services import issue_page_token
from scelle.platform.clock import now
from scelle.platform.deposits import services
from scelle.platform.deposits.models import Deposit, Envelope
from scelle.platform.tenders import services as tenders
from scelle.platform.tenders import testing
from scelle.platform.tenders.models import Tender
from scelle.platform.web.pages import (
    PAGE_TOKENS_KEY,
    PER_PAGE,
    actor,
    attempt,
    company_page,
    shown_size,
    shown_time,
    table_rows,
)
from scelle.platform.web.templatetags.scelle_tags import breakable

MAX_PAGE_TOKENS = 20
"""Tokens a session keeps track of; older ones simply expire (12 hours)."""


def _messages() -> dict[str, str]:
    """The deposit script's sentences, in the user's language ({names} are filled in).

    Long because it is the deposit page's table of sentences, one per line.
    """
    return {
        "internal": _("The deposit stopped on an unexpected error: {detail}"),
        "session": _("Your session ended: log in again, then choose the files again."),
        "refused": _("The platform refused: {detail}"),
        "closed": _("This tender takes no deposit any more."),
        "recipients-checked": _(
            "The key pairs were checked: issued by the platform, valid through the deadline. "
            "Recipient-set fingerprint computed in this page: {rsf}."
        ),
        "pending": _(
            "An interrupted deposit can resume: choose the same files again, then press "
            "Deposit. Recipient-set fingerprint: {rsf}."
        ),
        "no-key-pair": _("This tender has no key pair: nothing can be sealed for it."),
        "certificate-unreadable": _("The certificate of {name} cannot be read: nothing was sent."),
        "certificate-not-rsa": _(
            "The certificate of {name} does not hold an RSA key: nothing was sent."
        ),
        "certificate-weak": _(
            "The certificate of {name} holds an RSA key of {bits} bits, fewer than 2048: "
            "nothing was sent."
        ),
        "certificate-usage": _(
            "The certificate of {name} does not allow key encipherment: nothing was sent."
        ),
        "certificate-not-yet": _("The certificate of {name} is not valid yet: nothing was sent."),
        "certificate-expired": _("The certificate of {name} has expired: nothing was sent."),
        "certificate-expires": _(
            "The certificate of {name} expires before the deadline: nothing was sent."
        ),
        "certificate-not-issued": _(
            "The certificate of {name} was not issued by the platform's CA: the page refuses "
            "to seal your offer to it, and nothing was sent. Tell the buyer."
        ),
        "certificate-referenced": _(
            "The buyer referenced the certificate of {name} as it is, not issued by the "
            "platform: type the recipient-set fingerprint printed in the tender notice below, "
            "the page seals to it only if it is {rsf}."
        ),
        "rsf-unreadable": _("{value} is not a recipient-set fingerprint (RSF XXXX-XXXX-…)."),
        "rsf-differs": _(
            "The tender's key pairs give {rsf}, not {expected} as you typed: nothing was sent. "
            "Do not deposit, and tell the buyer."
        ),
        "name-unusable": _("{name}: this name cannot go in an envelope."),
        "name-too-long": _("{name}: a part of this name is too long for any disk."),
        "name-unsafe": _("{name}: this name is not safe in an envelope; rename the file."),
        "name-manifest": _("{name}: this name is the envelope's own; rename the file."),
        "name-twice": _("{name} is already chosen for this envelope."),
        "too-many-files": _("An envelope holds at most {max} files: put them in a ZIP first."),
        "remove": _("Remove"),
        "remove-file": _("Remove {name}"),
        "total": _("Total to send: {total} (the platform takes at most {limit})."),
        "too-large": _("This deposit would be {total}; the platform takes at most {limit}."),
        "hashing": _("Fingerprinting the files: {done} of {total}"),
        "sending": _("Sealed and sent: {sent} of {total}, {speed}/s, {left} left"),
        "minutes": _("{minutes} min {seconds} s"),
        "seconds": _("{seconds} s"),
        "envelope-sent": _("Sealed and sent: {size} in {seconds} s."),
        "file-changed": _(
            "{name} changed while it was being sealed: nothing more was sent. Choose it again "
            "once it is final."
        ),
        "file-changed-since": _(
            "{name} is not the file of the interrupted deposit: it changed. Choose the same "
            "file, or cancel the interrupted deposit."
        ),
        "files-differ": _(
            "The files of the envelope {kind} are not those of the interrupted deposit: choose "
            "the same files."
        ),
        "upload-failed": _("The upload stopped ({status}): {detail} Press Deposit to continue."),
        "size-mismatch": _("The envelope came out at an unexpected size: nothing was deposited."),
        "paused": _("Paused: press Resume to continue where the upload stopped."),
        "resuming": _("Resuming where the upload stopped."),
        "finalising": _("Every envelope was sent: waiting for the receipt."),
        "receipt-damaged": _("The platform's receipt cannot be read: contact the buyer."),
        "receipt-signature": _(
            "The platform's receipt does not bear its valid signature: keep it, and contact the "
            "buyer."
        ),
        "receipt-mismatch": _(
            "The platform's receipt does not match what was sent: keep it, and contact the buyer."
        ),
        "receipt-recipients": _(
            "The platform's receipt names other recipients than those the envelopes were sealed "
            "to: keep it, and contact the buyer."
        ),
        "deposited": _("Deposited. The platform's signature on the receipt was checked."),
        "deposited-late": _(
            "Deposited after the deadline: the platform marked it late, and it will not be "
            "opened by default. The receipt's signature was checked."
        ),
        "receipt-tender": _("Tender"),
        "receipt-company": _("Company"),
        "receipt-time": _("Received at"),
        "receipt-envelope": _("Envelope {kind}"),
        "receipt-rsf": _("Recipient-set fingerprint"),
        "receipt-commission": _("Commission"),
        "commission-needed": _("{threshold} members must take part to open"),
        "log-checking": _("Checking the platform's transparency log…"),
        "log-checked": _(
            "Transparency log: entry {index} of the tree of {size} entries the log {origin} "
            "signed, checked in this page; the log now holds {now} entries, and extends the "
            "tree this browser saw last."
        ),
        "log-unreadable": _("The receipt's transparency log proof cannot be read."),
        "log-signature": _("The checkpoint is not signed by the log {origin}."),
        "log-proof": _("The transparency log's proof does not show this receipt in its tree."),
        "log-unreachable": _(
            "The platform's transparency log did not answer ({status}): check the receipt "
            "later with `scelle receipts verify --online`."
        ),
        "log-tile": _("The log's tile {path} is missing or damaged."),
        "log-key-changed": _(
            "The transparency log {origin} now names another key than the one this browser "
            "knows it by: ask the platform's operator why, and keep the receipt."
        ),
        "log-dropped": _(
            "The transparency log {origin} now holds {new} entries, fewer than the {old} it "
            "signed before: entries were dropped. Keep the receipt and the two signed "
            "checkpoints below: together they prove it."
        ),
        "log-forked": _(
            "The transparency log {origin} contradicts itself: its tree of {new} entries does "
            "not extend its tree of {old} (a fork, or entries rewritten or dropped). Keep the "
            "receipt and the two signed checkpoints below: together they prove it."
        ),
        "kit-password-differ": _("The two passwords differ."),
        "kit-password-short": _("The password is too short: at least {min} characters."),
        "kit-password-repeats": _("The password repeats the same few characters."),
        "kit-password-common": _("The password is made of common words or sequences."),
        "kit-password-classes": _(
            "The password needs three kinds of characters among lower case, upper case, digits "
            "and symbols, or at least {long} characters."
        ),
        "kit-making": _("Sealing the content keys under your password…"),
        "kit-ready": _(
            "The proof kit is saved on this computer. Keep it, and its password, to yourself: "
            "nobody can give them back."
        ),
        "commission-impossible": _(
            "The platform describes a commission that the tender's key pairs cannot make: "
            "nothing was sent. Do not deposit, and tell the buyer."
        ),
    }


@company_page
def deposit_page(request: HttpRequest, tender_id: uuid.UUID) -> HttpResponse:
    """Déposer une offre: choose the files of each envelope; the page seals and sends them."""
    user = actor(request)
    tender = tenders.tender_for(user, str(tender_id))
    config = {
        "tender": str(tender.id),
        "reference": tender.reference,
        "bidder": user.organisation.name,
        "user": str(user.id),
        "maxBytes": tenders.max_deposit_bytes(tender),
        "timeZone": settings.TIME_ZONE,
        # Sizes read as the pages' own (Django's filesizeformat, in its translations).
        "bytes": ngettext("%(size)d byte", "%(size)d bytes", 2),
        "units": [_("%s KB"), _("%s MB"), _("%s GB"), _("%s TB")],
        "tokenUrl": reverse("deposits:token"),
        "tenderUrl": f"/api/tenders/{tender.id}",
        "caUrl": "/api/platform/ca",
        "logUrl": "/log/",
        "uploadsUrl": "/api/uploads/",
        "finaliseUrl": f"/api/tenders/{tender.id}/deposits",
        "workerUrl": static("web/build/seal-worker.js"),
    }
    return render(
        request,
        "deposits/deposit.html",
        {
            "section": "tenders",
            "tender": tender,
            **tenders.keys_facts(tender, agent=False),
            "open": tenders.takes_deposits(tender, now=now()),
            "config": config,
            "messages_for_script": _messages(),
            **testing.page_facts(),
        },
    )


@require_POST
@company_page
def deposit_token(request: HttpRequest) -> JsonResponse:
    """A short-lived API token for the deposit page's script (CSRF-checked: a POST)."""
    issued = issue_page_token(actor(request), now=now())
    kept = [*request.session.get(PAGE_TOKENS_KEY, []), issued.token.prefix][-MAX_PAGE_TOKENS:]
    request.session[PAGE_TOKENS_KEY] = kept
    return JsonResponse({"token": issued.value, "expires_at": issued.token.expires_at.isoformat()})


@company_page
def my_deposits(request: HttpRequest) -> HttpResponse:
    """The company's deposits, newest first, each with its receipt."""
    found = services.deposits_of_my_company(actor(request)).order_by("-received_at", "id")
    page = Paginator(found.select_related(None).prefetch_related(None), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "deposits/mine.html",
        {"section": "deposits", "page": page, "rows": _mine_rows(page, now())},
    )


def _mine_rows(page: Page[Deposit], moment: dt.datetime) -> SafeString:
    """The rows of a page of Mes dépôts, as HTML (each value escaped): read as columns in
    two queries and written here, several times cheaper than the template language's loop
    over model instances (and one reverse for every row's links)."""
    deposits = list(
        page.object_list.values_list(  # type: ignore[attr-defined]
            "id", "tender__reference", "tender__is_test", "tender__status", "tender__deadline",
            "received_at", "late", "withdrawal__at",
        )
    )  # fmt: skip
    envelopes: dict[uuid.UUID, list[str]] = defaultdict(list)
    found = Envelope.objects.filter(deposit_id__in=[row[0] for row in deposits]).order_by("id")
    for deposit_id, kind, size, sha256 in found.values_list("deposit_id", "kind", "size", "sha256"):
        envelopes[deposit_id].append(
            f"{escape(kind)} ({shown_size(size)}, SHA-256 "
            f'<span class="fingerprint">{breakable(sha256)}</span>)'
        )
    mine = escape(reverse("deposits:mine"))
    test, yes, no = escape(_("test")), escape(_("yes")), escape(_("no"))
    receipt, opening = escape(_("Download the receipt")), escape(_("Open my test deposit"))
    withdraw, receipt_of_withdrawal = (
        escape(_("Withdraw")), escape(_("Download the withdrawal receipt"))
    )  # fmt: skip
    rows = []
    for deposit_id, reference, is_test, status, deadline, received, late, withdrawn in deposits:
        ref, when, url = escape(reference), escape(shown_time(received)), f"{mine}{deposit_id}/"
        tag = f' <span class="tag">{test}</span>' if is_test else ""
        links = f'<a href="{url}accuse-de-reception.json" download>{receipt}<span class="visually-hidden"> {ref}</span></a>'  # noqa: E501
        if is_test:
            links += f'<br><a href="{url}ouvrir/">{opening}<span class="visually-hidden"> {when}</span></a>'  # noqa: E501
        if withdrawn is not None:
            at = escape(_("Withdrawn on %(at)s") % {"at": shown_time(withdrawn)})
            withdrawal = f'{at}<br><a href="{url}accuse-de-retrait.json" download>{receipt_of_withdrawal}</a>'  # noqa: E501
        elif not is_test and status == Tender.Status.PUBLISHED and deadline > moment:
            withdrawal = f'<a href="{url}retrait/">{withdraw}<span class="visually-hidden"> {ref} {when}</span></a>'  # noqa: E501
        else:
            withdrawal = ""
        written = (f"{ref}{tag}", when, "<br>".join(envelopes[deposit_id]), yes if late else no,
                   links, withdrawal)  # fmt: skip
        rows.append([mark_safe(cell) for cell in written])  # noqa: S308 - each escaped above
    return table_rows(rows)


@company_page
def withdraw(request: HttpRequest, deposit_id: uuid.UUID) -> HttpResponse:
    """Retirer un dépôt: says what withdrawing means and asks to confirm; withdraws on the
    confirmation, before the deadline only."""
    user = actor(request)
    deposit = services.deposit_of_my_company(user, deposit_id)
    if request.method == "POST":
        done = attempt(request, lambda: services.withdraw_deposit(user, deposit.id, now=now()))
        if done is not None:
            messages.success(
                request,
                _("Your deposit to %(reference)s is withdrawn: it will not be opened. Keep "
                  "the withdrawal receipt.") % {"reference": deposit.tender.reference},
            )  # fmt: skip
        return redirect("deposits:mine")
    return render(
        request,
        "deposits/withdraw.html",
        {"section": "deposits", "deposit": deposit, "open": deposit.tender.deadline > now()},
    )


@company_page
def withdrawal_receipt(request: HttpRequest, deposit_id: uuid.UUID) -> HttpResponse:
    """The signed withdrawal receipt: `scelle receipts verify` checks it."""
    withdrawal = services.withdrawal_of_my_company(actor(request), deposit_id)
    response = HttpResponse(withdrawal.receipt, content_type="application/json")
    name = f"withdrawal-{withdrawal.deposit_id}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@company_page
def receipt(request: HttpRequest, deposit_id: uuid.UUID) -> HttpResponse:
    """The signed receipt, as the command saves it: `scelle receipts verify` checks it."""
    deposit = services.deposit_of_my_company(actor(request), deposit_id)
    response = HttpResponse(deposit.receipt, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="receipt-{deposit.id}.json"'
    return response
