"""Authorisation of every page, from one table as for the API: each page, each kind of
caller, one status. Anonymous callers are sent to Connexion; a company on an agent's
page (or the reverse) is refused; another organisation's objects are "not found"."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.test import Client

from scelle.platform.tenders.models import Tender
from tests.platform.test_permissions import (  # noqa: F401
    CALLERS,
    World,
    with_test_tender,
    world,
)

pytestmark = [pytest.mark.django_db, pytest.mark.platform]


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    expected: tuple[int, int, int, int, int]
    data: dict[str, str] | None = None


PAGES = [
    Page("get", "/tableau-de-bord/", (302, 403, 200, 200, 200)),
    Page("get", "/administration/cles-de-chiffrement/service/{service}/",
         (302, 403, 404, 403, 200)),
    Page("get", "/administration/cles-de-chiffrement/service/{service}/ajouter/",
         (302, 403, 404, 403, 200)),
    Page("get", "/administration/cles-de-chiffrement/{LIBRE}/modifier/", (302, 403, 404, 403, 200)),
    Page("get", "/administration/cles-de-chiffrement/{LIBRE}/supprimer/",
         (302, 403, 404, 403, 200)),
    Page("post", "/administration/cles-de-chiffrement/{LIBRE}/supprimer/",
         (302, 403, 404, 403, 302)),
    Page("get", "/consultations/", (302, 403, 200, 200, 200)),
    Page("get", "/consultations/nouvelle/", (302, 403, 200, 403, 200)),
    Page("get", "/consultations/{PUB-1}/", (302, 403, 404, 403, 200)),
    Page("get", "/consultations/{DRAFT-1}/lancer/", (302, 403, 404, 403, 200)),
    Page("get", "/consultations/{PUB-1}/cloturer/", (302, 403, 404, 403, 200)),
    Page("post", "/consultations/{PUB-1}/cloturer/", (302, 403, 404, 403, 302)),
    Page("post", "/consultations/{PUB-1}/ouvrir/", (302, 403, 404, 403, 302)),
    Page("get", "/traitements-distants/", (302, 403, 200, 200, 200)),
    Page("get", "/traitements-distants/{EN-COURS}/", (302, 403, 404, 404, 200)),
    Page("get", "/traitements-distants/assistant/", (302, 403, 200, 200, 200)),
    Page("get", "/habilitations/", (302, 403, 200, 403, 200)),
    Page("post", "/habilitations/{colleague}/", (302, 403, 404, 403, 302),
         {"action": "deactivate"}),
    Page("get", "/consultations/ouvertes/", (302, 200, 403, 403, 403)),
    Page("get", "/consultations/ouvertes/{PUB-1}/", (302, 200, 403, 403, 403)),
    Page("get", "/consultations/ouvertes/{PUB-1}/deposer/", (302, 200, 403, 403, 403)),
    Page("post", "/mes-depots/jeton/", (302, 200, 403, 403, 403), {}),
    Page("get", "/mes-depots/", (302, 200, 403, 403, 403)),
    Page("get", "/mes-depots/{deposit}/accuse-de-reception.json", (302, 200, 403, 403, 403)),
    Page("get", "/mes-depots/{deposit}/retrait/", (302, 200, 403, 403, 403)),
    Page("post", "/mes-depots/{deposit}/retrait/", (302, 302, 403, 403, 403)),
    Page("get", "/mes-depots/{deposit}/accuse-de-retrait.json", (302, 404, 403, 403, 403)),
    # The test tender: its key for anyone; a test deposit opens in its company's browser.
    Page("get", "/consultations/ouvertes/{TEST}/cle-de-test.pem", (200, 200, 200, 200, 200)),
    Page("get", "/consultations/ouvertes/{TEST}/cle-de-test.pfx", (200, 200, 200, 200, 200)),
    Page("get", "/consultations/ouvertes/{TEST}/", (302, 200, 403, 403, 403)),
    Page("get", "/mes-depots/{test_deposit}/ouvrir/", (302, 200, 403, 403, 403)),
    Page("get", "/mes-depots/{test_deposit}/enveloppes/offre.p7m", (302, 200, 403, 403, 403)),
    Page("get", "/mes-depots/{deposit}/ouvrir/", (302, 409, 403, 403, 403)),
    Page("get", "/mes-depots/{deposit}/enveloppes/offre.p7m", (302, 403, 403, 403, 403)),
]  # fmt: skip


def _sessions(world: World) -> dict[str, Client]:  # noqa: F811
    """The same callers as the API's matrix, logged in to the pages."""
    clients = {}
    for caller in CALLERS:
        client = Client()
        if caller != "anonymous":
            token_client = world.clients[caller]
            user = token_client.get("/api/me").json()["email"]
            from scelle.platform.accounts.models import User

            client.force_login(User.objects.get(email=user))
        clients[caller] = client
    return clients


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p.method} {p.path}")
def test_every_page_answers_each_caller_as_the_table_says(world: World, page: Page) -> None:  # noqa: F811
    with_test_tender(world, page.path)
    ids = dict(world.ids)
    for tender in Tender.objects.all():
        ids[tender.reference] = str(tender.id)
    path = page.path.format(**ids)
    for caller, client in _sessions(world).items():
        if page.data is not None:
            response = client.post(path, page.data, secure=True)
        else:
            response = getattr(client, page.method)(path, secure=True)
        if response.streaming:  # a file: read through, which closes it
            response.getvalue()
        expected = page.expected[CALLERS.index(caller)]
        assert response.status_code == expected, (caller, path)
        if caller == "anonymous" and expected == 302:
            assert response["Location"].startswith("/connexion/?next=")
        if expected in (403, 404):
            assert "PERSO" not in response.content.decode()


def test_a_form_without_its_csrf_token_is_refused(world: World) -> None:  # noqa: F811
    from scelle.platform.accounts.models import User

    client = Client(enforce_csrf_checks=True)
    client.force_login(
        User.objects.get(email=world.clients["permitted"].get("/api/me").json()["email"])
    )
    path = f"/administration/cles-de-chiffrement/{world.ids['LIBRE']}/supprimer/"
    response = client.post(path, secure=True)
    assert response.status_code == 403
    assert "envoyez-le à nouveau" in response.content.decode()
    assert client.get(path, secure=True).status_code == 200  # still there


def test_pages_carry_a_strict_content_security_policy(world: World) -> None:  # noqa: F811
    response = Client().get("/connexion/", secure=True)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode()  # no inline script


def _owner_session(world: World) -> Client:  # noqa: F811
    return _sessions(world)["permitted"]


def test_closing_is_a_page_that_says_what_it_means_before_anything_happens(
    world: World,  # noqa: F811
) -> None:
    client = _owner_session(world)
    draft, published = (Tender.objects.get(reference=r) for r in ("DRAFT-1", "PUB-1"))
    detail = client.get(f"/consultations/{draft.id}/", secure=True).content.decode()
    # Clôturer on the tender's page is a link to the confirmation, no form that acts.
    assert f'href="/consultations/{draft.id}/cloturer/"' in detail
    assert f'action="/consultations/{draft.id}/cloturer/"' not in detail
    page = client.get(f"/consultations/{draft.id}/cloturer/", secure=True).content.decode()
    assert "jamais été lancé" in page and 'class="danger">' in page
    draft.refresh_from_db()
    assert draft.status == Tender.Status.DRAFT  # looking changes nothing
    # Before its deadline a launched tender cannot be closed: the button is off, and why.
    page = client.get(f"/consultations/{published.id}/cloturer/", secure=True).content.decode()
    assert 'class="danger" disabled>' in page and "déclarez-la sans suite" in page
    assert (
        f'href="/consultations/{published.id}/cloturer/"'
        not in client.get(f"/consultations/{published.id}/", secure=True).content.decode()
    )
    assert client.post(f"/consultations/{draft.id}/cloturer/", secure=True).status_code == 302
    draft.refresh_from_db()
    assert draft.status == Tender.Status.CLOSED


def test_a_key_pair_in_use_offers_no_live_delete_button(world: World) -> None:  # noqa: F811
    client = _owner_session(world)
    page = client.get(
        f"/administration/cles-de-chiffrement/{world.ids['PERSO']}/supprimer/", secure=True
    ).content.decode()
    assert "PUB-1" in page and 'class="danger" disabled aria-describedby="in-use"' in page
    free = client.get(
        f"/administration/cles-de-chiffrement/{world.ids['LIBRE']}/supprimer/", secure=True
    ).content.decode()
    assert 'class="danger">' in free


def test_fingerprints_wrap_between_bytes_only_and_pages_carry_an_icon(
    world: World,  # noqa: F811
) -> None:
    from django.contrib.staticfiles import finders

    from scelle.platform.web.templatetags.scelle_tags import breakable

    assert breakable("AB:CD:EF") == "AB:<wbr>CD:<wbr>EF"
    assert breakable("0123456789abcdef01") == "01234567<wbr>89abcdef<wbr>01"
    assert breakable("<b>:x") == "&lt;b&gt;:<wbr>x"
    client = _owner_session(world)
    page = client.get(
        f"/administration/cles-de-chiffrement/service/{world.ids['service']}/", secure=True
    ).content.decode()
    assert page.count(":<wbr>") >= 31  # a SHA-256 fingerprint: 32 bytes, 31 places to wrap
    assert 'rel="icon"' in page and finders.find("web/favicon.svg")


def test_a_jobs_message_is_said_in_the_pages_language() -> None:
    from django.utils import translation

    from scelle.platform.assistants.models import Job
    from scelle.platform.web.templatetags.scelle_tags import said

    job = Job(
        message="AO-1: 2 envelope(s) opened, 0 failed",
        result={"said": {"template": "{reference}: {opened} envelope(s) opened, {failed} failed",
                         "values": {"reference": "AO-1", "opened": 2, "failed": 0}}},
    )  # fmt: skip
    with translation.override("fr"):
        assert said(job) == "AO-1 : 2 enveloppe(s) ouverte(s), 0 en échec"
    with translation.override("en"):
        assert said(job) == "AO-1: 2 envelope(s) opened, 0 failed"
    # A template that reaches into its values, or formats a text as a number (what a
    # hostile workstation could report), is not filled: the message as sent instead.
    for template in ("{x.__class__}", "{x:.2f}"):
        job.result = {"said": {"template": template, "values": {"x": "a"}}}
        with translation.override("fr"):
            assert said(job) == job.message


def test_a_refusal_on_a_page_reads_as_a_sentence_with_its_date_in_words(
    world: World,  # noqa: F811
) -> None:
    client = _owner_session(world)
    published = Tender.objects.get(reference="PUB-1")
    page = client.post(
        f"/consultations/{published.id}/cloturer/", secure=True, follow=True
    ).content.decode()
    # Capitalised, and the deadline (NOW + 1 day, in Paris) as French writes it.
    assert "La consultation PUB-1 ne peut pas être clôturée avant sa date limite" in page
    assert "(23 novembre 2026 10:30 (Europe/Paris))" in page


def test_a_company_withdraws_a_deposit_from_its_page_after_confirming(
    world: World,  # noqa: F811
) -> None:
    from scelle.core.receipt import verify_withdrawal
    from scelle.platform.deposits.models import Withdrawal
    from scelle.platform.keypairs.authority import platform_authority

    client = _sessions(world)["bidder"]
    deposit = world.ids["deposit"]
    mine = client.get("/mes-depots/", secure=True).content.decode()
    assert f'href="/mes-depots/{deposit}/retrait/"' in mine
    assert f'action="/mes-depots/{deposit}/retrait/"' not in mine  # a link to confirm, first
    page = client.get(f"/mes-depots/{deposit}/retrait/", secure=True).content.decode()
    assert "définitif" in page and 'class="danger">' in page
    assert not Withdrawal.objects.exists()  # looking changes nothing
    answer = client.post(f"/mes-depots/{deposit}/retrait/", secure=True, follow=True)
    said = answer.content.decode()
    assert "ne sera pas ouvert" in said and f"/mes-depots/{deposit}/accuse-de-retrait.json" in said
    assert f'href="/mes-depots/{deposit}/retrait/"' not in said
    document = client.get(f"/mes-depots/{deposit}/accuse-de-retrait.json", secure=True)
    verified = verify_withdrawal(
        document.content, trusted_authority=platform_authority().certificate
    )
    assert verified.withdrawal.deposit == deposit and verified.logged is not None
    # Twice is refused on the page, in a sentence.
    again = client.post(f"/mes-depots/{deposit}/retrait/", secure=True, follow=True)
    assert "déjà été retiré" in again.content.decode()
