"""The SQLite backend's in-process writer queue (scelle.platform.sqlite)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from scelle.platform.accounts.models import Organisation
from scelle.platform.audit.services import record, verify_chain
from scelle.platform.sqlite import base
from tests.conftest import NOW

pytestmark = [
    pytest.mark.platform,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the writer queue is SQLite's alone"),
]


def test_the_writer_turn_ends_with_the_transaction():
    with transaction.atomic():
        Organisation.objects.create(name="Ville de Lyon", kind="buyer", created_at=NOW)
        assert base._writer.locked()
    assert not base._writer.locked()  # after a commit
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Organisation.objects.create(name="Ville de Nice", kind="buyer", created_at=NOW)
        _ = 1 / 0
    assert not base._writer.locked()  # after a rollback
    assert not Organisation.objects.filter(name="Ville de Nice").exists()
    transaction.set_autocommit(False)
    try:
        connection.cursor().execute("SELECT 1")
    finally:
        transaction.set_autocommit(True)
    connection.close()
    assert not base._writer.locked()  # after a close


def test_concurrent_writers_all_land_and_the_chain_holds():
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for step in range(10):
                with transaction.atomic():
                    organisation = Organisation.objects.create(
                        name=f"Entreprise {index}-{step}", kind="bidder", created_at=NOW
                    )
                    record(
                        "accounts.organisation.created",
                        actor="test",
                        target=organisation,
                        now=NOW,
                    )
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    assert Organisation.objects.filter(name__startswith="Entreprise ").count() == 80
    report = verify_chain()
    assert report.broken_at is None and report.events >= 80
