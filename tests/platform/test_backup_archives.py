"""A backup archive is hostile input too: a path out of its folder, a link, a member out of
order, a damaged envelope or an archive cut short is refused with a clear sentence, and
nothing is written outside the platform's folders. (The whole backup and restore, on both
engines, is tests/e2e/test_backup.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from scelle.core.errors import InvalidInputError
from scelle.platform import backup

pytestmark = [pytest.mark.django_db, pytest.mark.platform]

NAME = "0b6f1a36-7d2a-4c41-9a3e-3c1f2b7c9d10.p7m"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> None:
    """The test database holds the suite's platform: taken as fresh, so that the archive's
    members are reached; envelopes go to this test's own folder."""
    monkeypatch.setattr(backup, "_require_fresh", lambda: None)
    settings.SCELLE_ENVELOPES_DIR = tmp_path / "envelopes"


def _archive(path: Path, members: list[tuple[str, bytes | None]]) -> Path:
    """A tar of (name, data) members; data None: a symbolic link to /etc/passwd. A
    manifest's engine is this test run's."""
    from django.db import connection

    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
            else:
                data = data.replace(b'"ENGINE"', f'"{connection.vendor}"'.encode())
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def _manifest(data: bytes = b"x" * 10, **entry: object) -> tuple[str, bytes]:
    envelope = {"name": NAME, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "test": True, "deadline": None, "closed_at": None, **entry}  # fmt: skip
    manifest = {"format": backup.FORMAT, "engine": "ENGINE", "envelopes": [envelope]}
    return "manifest.json", json.dumps(manifest).encode()


@pytest.mark.parametrize(
    ("members", "said"),
    [
        ([("manifest.json", b"{}")], "is not a Scellé backup"),
        ([("notes.txt", b"hello")], "manifest.json is missing"),
        ([_manifest(), ("../../evil", b"x")], "other than files"),
        ([_manifest(), ("envelopes/evil.p7m", b"x")], "unknown envelope"),
        ([_manifest(), ("envelopes/../../evil.p7m", b"x")], "other than files"),
        ([_manifest(), (f"envelopes/{NAME}", None)], "other than files"),
        ([_manifest(), (f"envelopes/{NAME}", b"y" * 10)], "damaged"),
        ([_manifest(), (f"envelopes/{NAME}", b"x" * 10)], "its database is missing"),
        ([_manifest(data=b"")], "its database is missing"),
    ],
)
def test_a_hostile_or_damaged_archive_is_refused(
    members: list[tuple[str, bytes | None]], said: str, tmp_path: Path, settings: Any
) -> None:
    source = _archive(tmp_path / "hostile.tar", members)
    with pytest.raises(InvalidInputError, match=said):
        backup.restore(source)
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path / "evil.p7m").exists()
    envelopes = Path(settings.SCELLE_ENVELOPES_DIR)
    assert not list(envelopes.glob("*.p7m")) if envelopes.exists() else True  # nothing kept


def test_an_archive_of_another_engine_is_refused(tmp_path: Path) -> None:
    name, data = _manifest()
    other = json.loads(data)
    other["engine"] = "oracle"
    source = _archive(tmp_path / "other.tar", [(name, json.dumps(other).encode())])
    with pytest.raises(Exception, match="same database engine"):
        backup.restore(source)
