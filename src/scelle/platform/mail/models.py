"""The outbox: every e-mail the platform owes someone, written in the transaction of
what it tells, sent afterwards (and again until the SMTP server takes it)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models


class OutgoingMail(models.Model):
    key = models.CharField(max_length=200, unique=True)
    """What the mail is about (`deposit:<id>`, `deadline:<tender>:<user>`…): one mail
    per event and person, however many times the event is looked at."""
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    body = models.TextField()
    attachment_name = models.CharField(max_length=100, blank=True)
    attachment = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["sent_at", "id"], name="mail_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.to}"
