"""The transparency log's tables: its entries, the hashes of its tree, its checkpoints
and the witnesses' cosignatures. Rows are only ever added (DESIGN.md, "Formats")."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from scelle.platform.insert_only import InsertOnlyModel

APPEND_ONLY = "the transparency log is append-only: its records are never changed or deleted"


class LogEntry(InsertOnlyModel):
    """Entry `index` of the log, as the log hashes it (core.tlog.entry)."""

    index = models.BigIntegerField(primary_key=True)
    data = models.BinaryField()
    at = models.DateTimeField()

    REFUSAL = APPEND_ONLY

    class Meta:
        ordering = ("index",)

    def __str__(self) -> str:
        return f"log entry #{self.index}"


class LogHash(InsertOnlyModel):
    """The hash of a complete subtree: 2**level entries from index * 2**level. Level 0
    holds the entries' leaf hashes; levels 8, 16… are what the tiles serve."""

    id = models.BigAutoField(primary_key=True)
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    REFUSAL = APPEND_ONLY

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=("level", "index"), name="log_hash_once")
        ]

    def __str__(self) -> str:
        return f"log hash {self.level}/{self.index}"


class LogCheckpoint(InsertOnlyModel):
    """The log's signed tree head after each append: `size` entries."""

    size = models.BigIntegerField(primary_key=True)
    note = models.TextField()
    """The checkpoint signed by the log's key (core.tlog)."""
    at = models.DateTimeField()

    REFUSAL = APPEND_ONLY

    class Meta:
        ordering = ("size",)

    def __str__(self) -> str:
        return f"log checkpoint at {self.size}"


class Cosignature(InsertOnlyModel):
    """A witness's cosignature of the checkpoint of `size` entries, as it sent it."""

    id = models.BigAutoField(primary_key=True)
    size = models.BigIntegerField(db_index=True)
    witness = models.CharField(max_length=200)
    """The witness's key name."""
    line = models.TextField()
    """The note signature line (c2sp.org/tlog-cosignature)."""
    received_at = models.DateTimeField()

    REFUSAL = APPEND_ONLY

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"cosignature of {self.witness} at {self.size}"
