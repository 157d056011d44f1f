"""The pages' URLs, in French as the users read them; each app's views beside its API."""

from __future__ import annotations

from django.urls import include, path

from scelle.platform.accounts import views as accounts
from scelle.platform.assistants import views as assistants
from scelle.platform.deposits import views as deposits
from scelle.platform.keypairs import views as keypairs
from scelle.platform.opening import views as opening
from scelle.platform.tenders import views as tenders
from scelle.platform.web import views as web

web_urls = (
    [
        path("", web.home, name="home"),
        path("connexion/", accounts.login_page, name="login"),
        path("deconnexion/", accounts.logout_page, name="logout"),
        path("tableau-de-bord/", web.dashboard, name="dashboard"),
        path("habilitations/", accounts.habilitations, name="habilitations"),
        path("habilitations/<uuid:user_id>/", accounts.change_habilitation, name="habilitation"),
    ],
    "web",
)
keypair_urls = (
    [
        path("", keypairs.key_page, name="page"),
        path("service/<uuid:service_id>/", keypairs.key_page, name="service"),
        path("service/<uuid:service_id>/ajouter/", keypairs.add_key_pair, name="add"),
        path("<uuid:key_pair_id>/modifier/", keypairs.rename_key_pair, name="rename"),
        path("<uuid:key_pair_id>/supprimer/", keypairs.delete_key_pair, name="delete"),
    ],
    "keypairs",
)
tender_urls = (
    [
        path("", tenders.tender_list, name="list"),
        path("nouvelle/", tenders.create_tender, name="create"),
        path("<uuid:tender_id>/", tenders.tender_detail, name="detail"),
        path("<uuid:tender_id>/lancer/", tenders.launch_tender, name="launch"),
        path("<uuid:tender_id>/cloturer/", tenders.close_tender, name="close"),
        path("<uuid:tender_id>/ouvrir/", tenders.open_tender, name="open"),
        path("<uuid:tender_id>/prendre-part/", tenders.take_part, name="take_part"),
        path("ouvertes/", tenders.open_to_me, name="open_to_me"),
        path("ouvertes/<uuid:tender_id>/", tenders.company_tender, name="company_detail"),
        path("ouvertes/<uuid:tender_id>/deposer/", deposits.deposit_page, name="deposit"),
        path(
            "ouvertes/<uuid:tender_id>/cle-de-test.pem",
            opening.test_key_file,
            {"extension": "pem"},
            name="test_key_pem",
        ),
        path(
            "ouvertes/<uuid:tender_id>/cle-de-test.pfx",
            opening.test_key_file,
            {"extension": "pfx"},
            name="test_key_pfx",
        ),
    ],
    "tenders",
)
assistant_urls = (
    [
        path("", assistants.jobs, name="jobs"),
        path("<uuid:job_id>/", assistants.job, name="job"),
        path("assistant/", assistants.state, name="state"),
    ],
    "assistants",
)
deposit_urls = (
    [
        path("", deposits.my_deposits, name="mine"),
        path("jeton/", deposits.deposit_token, name="token"),
        path("<uuid:deposit_id>/accuse-de-reception.json", deposits.receipt, name="receipt"),
        path("<uuid:deposit_id>/retrait/", deposits.withdraw, name="withdraw"),
        path(
            "<uuid:deposit_id>/accuse-de-retrait.json",
            deposits.withdrawal_receipt,
            name="withdrawal_receipt",
        ),
        path("<uuid:deposit_id>/ouvrir/", opening.test_opening, name="test_opening"),
        path(
            "<uuid:deposit_id>/enveloppes/<slug:kind>.p7m",
            opening.test_envelope,
            name="test_envelope",
        ),
    ],
    "deposits",
)

urlpatterns = [
    path("", include(web_urls)),
    path("administration/cles-de-chiffrement/", include(keypair_urls)),
    path("consultations/", include(tender_urls)),
    path("traitements-distants/", include(assistant_urls)),
    path("mes-depots/", include(deposit_urls)),
    path("i18n/", include("django.conf.urls.i18n")),
]
