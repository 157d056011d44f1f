"""The audit log: an append-only table whose events are chained by SHA-256."""

from __future__ import annotations

from django.db import models

from scelle.platform.insert_only import InsertOnlyModel

APPEND_ONLY = "the audit log is append-only: its events are never changed or deleted"


class Event(InsertOnlyModel):
    """One thing that happened: who did what to which object, when.

    `hash` is the SHA-256 of the event's canonical form, which includes the
    previous event's hash: removing, reordering or editing any event breaks
    the chain from there on (see `services.verify_chain`).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=254)
    """The user's e-mail address, or "platform" for `scelle admin` commands."""
    organisation_id = models.UUIDField(null=True, blank=True, db_index=True)
    """Kept as a plain value: the event outlives whatever it names."""
    action = models.CharField(max_length=100)
    """Dotted name, such as `keypairs.key_pair.added`."""
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    REFUSAL = APPEND_ONLY

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"#{self.id} {self.action} by {self.actor}"


class Checkpoint(InsertOnlyModel):
    """The audit log's head (sequence number and hash) signed by the platform.

    Each checkpoint also names the previous one, and its signing is itself an
    event of the log (`audit.checkpoint.signed`): cutting the log short or
    rewriting it, even with every later hash recomputed, disagrees with a
    checkpoint or a receipt made after the change point (`anchors.verify_anchors`).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    sequence = models.BigIntegerField()
    """The id of the event that was the log's head."""
    hash = models.CharField(max_length=64)
    """That event's hash."""
    document = models.TextField()
    """The signed checkpoint (core.receipt.sign_document), verifiable offline."""

    REFUSAL = APPEND_ONLY

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"checkpoint #{self.id} at event #{self.sequence}"
