"""Secret files: 0600 from the first byte, atomic, nothing left on failure."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scelle.core.errors import OutputExistsError
from scelle.core.files import atomic_output, ensure_private_dir, write_private_file


def test_private_file_is_0600_and_atomic(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    write_private_file(target, b"cle")
    assert target.read_bytes() == b"cle"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(OutputExistsError):
        write_private_file(target, b"autre")
    assert target.read_bytes() == b"cle"
    write_private_file(target, b"autre", overwrite=True)
    assert target.read_bytes() == b"autre"
    assert [path.name for path in tmp_path.iterdir()] == ["secret"]


def test_temporary_file_is_private_while_written(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_output(target) as handle:
        handle.write(b"partial")
        (temporary,) = list(tmp_path.iterdir())
        assert temporary.name.startswith(".out.") and temporary.name.endswith(".part")
        assert stat.S_IMODE(temporary.stat().st_mode) == 0o600
        assert not target.exists()
    assert target.read_bytes() == b"partial"


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_public_mode_on_request(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "cert.pem", mode=0o644) as handle:
        handle.write(b"-----BEGIN CERTIFICATE-----")
    assert stat.S_IMODE((tmp_path / "cert.pem").stat().st_mode) == 0o644


def test_private_dir_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "home"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    nested = ensure_private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(nested.stat().st_mode) == 0o700
