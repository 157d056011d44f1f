"""The heavy pages, and the API's lists, ask the database a bounded number of questions,
whatever the rows.

Each page is asked once over a small world and once over the same world grown several
times over (more tenders, key pairs, deposits with their envelopes, withdrawals and
commitments, remote jobs): a page whose query count grows with the rows (an N+1, a
query per row in a template) fails here, and so does one that asks more than its bound.
The counts are Django's own (`CaptureQueriesContext`), session and user included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from scelle.platform.accounts import services as accounts
from scelle.platform.accounts.models import Organisation, User
from scelle.platform.assistants.models import Job, Workstation
from scelle.platform.deposits.models import Commitment, Deposit, Envelope, Withdrawal
from scelle.platform.keypairs import services as keypairs
from scelle.platform.tenders import services as tenders
from scelle.platform.tenders.models import Tender
from tests.conftest import NOW
from tests.platform.conftest import PASSWORD, Buyer, MovableClock, csr_for, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

MOST_QUERIES = 15
"""No heavy page asks more, whatever the data."""


@dataclass
class World:
    buyer: Buyer
    company: User
    busy: Tender
    keys: list[rsa.RSAPrivateKey]
    key_pairs: int = 0
    tenders: int = 0
    deposits: int = 0
    jobs: int = 0
    workstation: Workstation | None = None
    companies: list[Organisation] = field(default_factory=list)


def _key_pairs(world: World, count: int) -> None:
    owner, service = world.buyer.owner, world.buyer.service
    for index in range(world.key_pairs, world.key_pairs + count):
        key = world.keys[index]
        keypairs.publish_key_pair(
            owner, service_id=service.id, designation=f"BI-CLE-{index:03d}",
            role="personal", csr_pem=csr_for(key, f"Bi-clé {index:03d}").encode(),
            certificate_pem=None, now=NOW,
        )  # fmt: skip
    world.key_pairs += count


def _tenders(world: World, count: int) -> None:
    owner, service = world.buyer.owner, world.buyer.service
    for index in range(world.tenders, world.tenders + count):
        reference = f"AO-{index:04d}"
        tenders.create_tender(
            owner, service_id=service.id, reference=reference, title=f"Marché {index}",
            deadline=NOW + dt.timedelta(days=30, hours=index),
            envelopes=["candidature", "offre"], now=NOW,
        )  # fmt: skip
        if index % 2 == 0:
            tenders.launch_tender(owner, reference, ["BI-CLE-001"], now=NOW)
    world.tenders += count


def _deposit(world: World, tender: Tender, company: Organisation, user: User, index: int) -> None:
    commitment = None
    if index % 3 == 0:
        commitment = Commitment.objects.create(
            tender=tender, bidder=company, user=user, at=NOW, receipt="{}",
            envelopes=[["offre", hashlib.sha256(f"{index}".encode()).hexdigest()]],
        )  # fmt: skip
    deposit = Deposit.objects.create(
        tender=tender, bidder=company, user=user, received_at=NOW, late=index % 5 == 0,
        receipt="{}", commitment=commitment,
    )  # fmt: skip
    for kind in ("candidature", "offre"):
        Envelope.objects.create(
            deposit=deposit, kind=kind, size=1_000 + index,
            sha256=hashlib.sha256(f"{index}{kind}".encode()).hexdigest(),
            storage_name=f"{uuid.uuid4()}.p7m",
        )  # fmt: skip
    if index % 4 == 1:
        Withdrawal.objects.create(deposit=deposit, user=user, at=NOW, receipt="{}")


def _deposits(world: World, count: int) -> None:
    """`count` companies' deposits on the busy tender, and as many of the company's own
    deposits on the launched tenders (its Mes dépôts)."""
    launched = list(Tender.objects.filter(launched_at__isnull=False).exclude(id=world.busy.id))
    for index in range(world.deposits, world.deposits + count):
        company = accounts.create_organisation(f"Entreprise {index:03d}", "bidder", now=NOW)
        user = make_user(f"offres@e{index:03d}.fr", company)
        _deposit(world, world.busy, company, user, index)
        tender = launched[index % len(launched)]
        _deposit(world, tender, world.company.organisation, world.company, index)
    world.deposits += count


def _jobs(world: World, count: int) -> None:
    owner = world.buyer.owner
    if world.workstation is None:
        world.workstation = Workstation.objects.create(
            organisation=owner.organisation, agent=owner, name="Poste 1", version="1",
            first_seen_at=NOW, last_seen_at=NOW,
        )  # fmt: skip
    for index in range(world.jobs, world.jobs + count):
        Job.objects.create(
            organisation=owner.organisation, agent=owner, workstation=world.workstation,
            kind="generate_key_pair", created_at=NOW + dt.timedelta(seconds=index),
            params={"designation": f"BI-CLE-J{index:03d}", "service": str(world.buyer.service.id)},
            state=("queued", "done", "failed")[index % 3],
        )  # fmt: skip
    world.jobs += count


def _grow(world: World, times: int) -> None:
    _key_pairs(world, len(world.keys) - world.key_pairs)  # each key pair its own key
    _tenders(world, 4 * times)
    _deposits(world, 3 * times)
    _jobs(world, 3 * times)


@pytest.fixture
def world(db: None, clock: MovableClock, rsa_keys: list[rsa.RSAPrivateKey]) -> World:
    organisation = accounts.create_organisation("Ville de Rouen", "buyer", now=NOW)
    service = accounts.create_service(organisation, "Service des marchés", now=NOW)
    other = accounts.create_service(organisation, "Direction technique", now=NOW)
    owner = make_user(
        "acheteur@rouen.fr", organisation, service=service,
        permissions=("manage_keys", "manage_tenders", "open", "administer"),
    )  # fmt: skip
    colleague = make_user("collegue@rouen.fr", organisation, service=service)
    company = accounts.create_organisation("BTP Normandie SARL", "bidder", now=NOW)
    bidder = make_user("offres@btp-normandie.fr", company)
    buyer = Buyer(organisation, service, other, owner, colleague)
    keypairs.publish_key_pair(
        owner, service_id=service.id, designation="SECOURS", role="backup",
        csr_pem=csr_for(rsa_keys[-1], "Secours").encode(), certificate_pem=None, now=NOW,
    )  # fmt: skip
    start = World(buyer, bidder, Tender(), list(rsa_keys[:-1]))  # its busy tender below
    _key_pairs(start, 2)
    _tenders(start, 4)
    start.busy = tenders.tender_for(owner, "AO-0000")
    _deposits(start, 1)
    _jobs(start, 1)
    return start


def _pages(world: World) -> dict[str, tuple[User, str]]:
    agent, company = world.buyer.owner, world.company
    return {
        "tableau de bord": (agent, "/tableau-de-bord/"),
        "clés de chiffrement": (
            agent,
            f"/administration/cles-de-chiffrement/service/{world.buyer.service.id}/",
        ),
        "consultations": (agent, "/consultations/"),
        "une consultation et ses dépôts": (agent, f"/consultations/{world.busy.id}/"),
        "traitements distants": (agent, "/traitements-distants/"),
        "consultations ouvertes": (company, "/consultations/ouvertes/"),
        "mes dépôts": (company, "/mes-depots/"),
    }


def _api_lists(world: World) -> dict[str, tuple[User, str]]:
    """The API's lists, which the command and the assistant read: bounded as the pages."""
    agent, company = world.buyer.owner, world.company
    return {
        "GET /api/key-pairs": (agent, f"/api/key-pairs?service={world.buyer.service.id}"),
        "GET /api/tenders (agent)": (agent, "/api/tenders"),
        "GET /api/tenders (company)": (company, "/api/tenders"),
        "GET /api/tenders/{id}/deposits": (agent, f"/api/tenders/{world.busy.id}/deposits"),
        "GET /api/deposits (company)": (company, "/api/deposits"),
        "GET /api/assistant/jobs": (agent, "/api/assistant/jobs"),
    }


def _count(user: User, path: str) -> int:
    client = Client()
    if path.startswith("/api/"):
        token = accounts.log_in(user.email, PASSWORD, client="192.0.2.1", now=NOW).value
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    else:
        client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    return len(captured)


def _counts(world: World) -> dict[str, int]:
    listed = {**_pages(world), **_api_lists(world)}
    return {name: _count(user, path) for name, (user, path) in listed.items()}


def test_no_heavy_page_asks_more_as_the_rows_grow(world: World) -> None:
    small = _counts(world)
    _grow(world, 4)
    grown = _counts(world)
    growing = {name: (small[name], count) for name, count in grown.items() if count != small[name]}
    assert not growing, f"queries (before, after growing the data) of: {growing}"
    assert max(grown.values()) <= MOST_QUERIES, grown


def test_mes_depots_shows_fifty_deposits_a_page_with_working_links(world: World) -> None:
    _tenders(world, 60)  # a deposit of the company on each launched tender
    _deposits(world, 59)
    client = Client()
    client.force_login(world.company)
    first = client.get("/mes-depots/").content.decode()
    second = client.get("/mes-depots/?page=2").content.decode()
    assert first.count("<tr><td>") == 50 and second.count("<tr><td>") == 10
    assert "Page 1 sur 2" in first and 'href="?page=2"' in first  # the page speaks French
    mine = Deposit.objects.filter(bidder=world.company.organisation)
    newest = mine.order_by("-received_at", "id").first()
    assert newest is not None
    receipt = f'href="/mes-depots/{newest.id}/accuse-de-reception.json"'
    assert receipt in first
    assert client.get(f"/mes-depots/{newest.id}/accuse-de-reception.json").status_code == 200


def test_traitements_distants_shows_fifty_jobs_a_page_newest_first(world: World) -> None:
    _jobs(world, 59)
    client = Client()
    client.force_login(world.buyer.owner)
    first = client.get("/traitements-distants/").content.decode()
    second = client.get("/traitements-distants/?page=2").content.decode()
    assert first.count("<tr><td>") == 50 and second.count("<tr><td>") == 10
    assert "Page 1 sur 2" in first
    newest = Job.objects.filter(agent=world.buyer.owner).order_by("-created_at").first()
    assert newest is not None and newest.params["designation"] == "BI-CLE-J059"
    assert first.index("BI-CLE-J059") < first.index("BI-CLE-J058")
    assert f'href="/traitements-distants/{newest.id}/"' in first
    assert client.get(f"/traitements-distants/{newest.id}/").status_code == 200


def test_traitements_distants_escapes_what_a_workstation_sent(world: World) -> None:
    """A job's rows are written in Python: what its workstation and its assistant sent
    (names, parameters of any JSON type, messages) is shown as text, never as markup."""
    owner = world.buyer.owner
    station = Workstation.objects.create(
        organisation=owner.organisation, agent=owner, name="<img src=x onerror=alert(1)>",
        version="1", first_seen_at=NOW, last_seen_at=NOW,
    )  # fmt: skip
    Job.objects.create(
        organisation=owner.organisation, agent=owner, workstation=station,
        kind="generate_key_pair", created_at=NOW, state="failed",
        params={"designation": "<b>BI-CLÉ</b>", "reference": 42, "service": None},
        message='<script>alert("m")</script>',
    )  # fmt: skip
    client = Client()
    client.force_login(owner)
    page = client.get("/traitements-distants/").content.decode()
    assert "<b>BI-CLÉ</b>" not in page and "&lt;b&gt;BI-CLÉ&lt;/b&gt; — 42" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;m&quot;)" in page
    assert '<td class="state-failed">' in page
