"""Agents' workstations where `scelle assistant` runs, and the jobs pages give them."""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from scelle.platform.accounts.models import Organisation, User


class Workstation(models.Model):
    """A poste de travail: where one agent's assistant runs, with its store."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT)
    agent = models.ForeignKey(User, on_delete=models.CASCADE, related_name="workstations")
    name = models.CharField(_("workstation"), max_length=64)
    version = models.CharField(max_length=40)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    running = models.BooleanField(default=True)
    """False once its assistant said it stops (Ctrl-C): the pages say so at once."""
    key_pairs = models.JSONField(default=list)
    """What its store holds, as the assistant reported it: name, CN, expiry and
    fingerprint of each certificate (nothing secret)."""

    class Meta:
        ordering = ("-last_seen_at",)
        constraints: ClassVar = [
            models.UniqueConstraint("agent", Lower("name"), name="workstation_name_per_agent")
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """A traitement distant: work a page gave to the agent's assistant."""

    class Kind(models.TextChoices):
        ADD_KEY_PAIR = "add_key_pair", _("add a key pair")
        OPEN_TENDER = "open_tender", _("open a tender's envelopes")
        TAKE_PART = "take_part", _("take part in a commission's opening")

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        STARTED = "started", _("started")
        FINISHED = "finished", _("finished")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT)
    agent = models.ForeignKey(User, on_delete=models.CASCADE, related_name="jobs")
    workstation = models.ForeignKey(Workstation, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True)
    """What the page shows: the guide's sentence on success, the reason on failure."""
    result = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        indexes: ClassVar = [models.Index("workstation", "state", name="job_queue")]

    def __str__(self) -> str:
        return f"{self.kind} {self.state}"
