"""Pages of companies' deposits: the list, each receipt to download."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scelle.platform.deposits import services
from scelle.platform.web.pages import actor, company_page


@company_page
def my_deposits(request: HttpRequest) -> HttpResponse:
    """The company's deposits, newest first, each with its receipt."""
    found = services.deposits_of_my_company(actor(request)).order_by("-received_at")
    return render(
        request, "deposits/mine.html", {"section": "deposits", "deposits": list(found[:500])}
    )


@company_page
def receipt(request: HttpRequest, deposit_id: uuid.UUID) -> HttpResponse:
    """The signed receipt, as the command saves it: `scelle receipts verify` checks it."""
    deposit = services.deposit_of_my_company(actor(request), deposit_id)
    response = HttpResponse(deposit.receipt, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="receipt-{deposit.id}.json"'
    return response
