"""Envelope archives: deterministic packing, exact sizes, and opening that trusts nothing."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scelle.core import archive
from scelle.core.errors import ArchiveError, InvalidInputError, ScelleError
from tests.conftest import require_tool


def make_folder(root: Path) -> Path:
    folder = root / "dossier"
    (folder / "pièces" / "annexes").mkdir(parents=True)
    (folder / "offre.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 300)
    (folder / "pièces" / "DC1 — candidature.docx").write_bytes(b"PK docx" * 1000)
    (folder / "pièces" / "annexes" / "vide.txt").write_bytes(b"")
    (folder / "pièces" / "annexes" / "日本語.txt").write_text("Marché public", encoding="utf-8")
    return folder


def pack(source: Path, **context: str) -> tuple[archive.PackPlan, bytes]:
    plan = archive.plan_archive(
        source,
        tender=context.get("tender", "AO-2026-001"),
        envelope=context.get("envelope", "offre"),
        bidder=context.get("bidder", "BTP Normandie"),
    )
    sink = io.BytesIO()
    written = archive.write_archive(plan, sink)
    assert written == len(sink.getvalue()) == plan.size
    return plan, sink.getvalue()


def test_round_trip_of_a_folder(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    plan, data = pack(folder)
    assert [f.name for f in plan.manifest.files] == [
        "offre.pdf",
        "pièces/DC1 — candidature.docx",
        "pièces/annexes/vide.txt",
        "pièces/annexes/日本語.txt",
    ]
    envelope = tmp_path / "envelope.zip"
    envelope.write_bytes(data)
    opened = archive.open_archive(envelope, tmp_path / "ouvert")
    assert opened == plan.manifest
    for file in plan.manifest.files:
        assert (tmp_path / "ouvert" / file.name).read_bytes() == (folder / file.name).read_bytes()
        assert hashlib.sha256((folder / file.name).read_bytes()).hexdigest() == file.sha256
    mode = (tmp_path / "ouvert" / "offre.pdf").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_packing_is_deterministic(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    _, first = pack(folder)
    (folder / "offre.pdf").touch()  # a new mtime changes nothing
    _, second = pack(folder)
    assert first == second


def test_a_single_file_and_the_manifest(tmp_path: Path) -> None:
    source = tmp_path / "offre.pdf"
    source.write_bytes(b"offre")
    _, data = pack(source, tender="AO-9", envelope="candidature", bidder="ACME")
    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        assert reader.namelist() == ["manifest.json", "offre.pdf"]
        manifest = json.loads(reader.read("manifest.json"))
        assert reader.testzip() is None
    assert manifest == {
        "format": "scelle-envelope/1",
        "tender": "AO-9",
        "envelope": "candidature",
        "bidder": "ACME",
        "files": [{"name": "offre.pdf", "size": 5, "sha256": hashlib.sha256(b"offre").hexdigest()}],
    }


def test_unzip_reads_our_archives(tmp_path: Path) -> None:
    unzip = require_tool("unzip")
    _, data = pack(make_folder(tmp_path))
    envelope = tmp_path / "envelope.zip"
    envelope.write_bytes(data)
    result = subprocess.run([unzip, "-t", str(envelope)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_inputs_that_cannot_be_packed(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    (folder / "lien").symlink_to(folder / "offre.pdf")
    with pytest.raises(InvalidInputError, match="is a link"):
        archive.plan_archive(folder, tender="T", envelope="offre", bidder="B")
    (folder / "lien").unlink()
    (folder / "manifest.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="clash"):
        archive.plan_archive(folder, tender="T", envelope="offre", bidder="B")
    (folder / "manifest.json").unlink()
    (folder / "OFFRE.pdf").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="on Windows"):
        archive.plan_archive(folder, tender="T", envelope="offre", bidder="B")
    empty = tmp_path / "vide"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="holds no file"):
        archive.plan_archive(empty, tender="T", envelope="offre", bidder="B")
    with pytest.raises(InvalidInputError, match="cannot read"):
        archive.plan_archive(tmp_path / "absent", tender="T", envelope="offre", bidder="B")


def test_a_file_that_changes_between_the_passes_is_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    plan = archive.plan_archive(folder, tender="T", envelope="offre", bidder="B")
    (folder / "offre.pdf").write_bytes(b"autre contenu de la meme taille?" * 10)
    with pytest.raises(InvalidInputError, match="changed while it was being deposited"):
        archive.write_archive(plan, io.BytesIO())


def hostile(tmp_path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], **kw) -> Path:
    """An archive written by someone else, with a manifest describing `members`."""
    files = [
        {
            "name": info if isinstance(info, str) else info.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        for info, data in members
    ]
    manifest = {"format": "scelle-envelope/1", "tender": "T", "envelope": "offre", "bidder": "B"}
    manifest["files"] = kw.get("files", files)
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as writer:
        writer.writestr("manifest.json", json.dumps(manifest))
        for info, data in kw.get("written", members):
            writer.writestr(info, data)
    return path


def link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def deflated(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


@pytest.mark.parametrize(
    ("members", "extra", "message"),
    [
        ([("../evil.txt", b"x")], {}, "unsafe name"),
        ([("/etc/evil", b"x")], {}, "unsafe name"),
        ([("a/../../evil", b"x")], {}, "unsafe name"),
        ([("a\\..\\evil", b"x")], {}, "unsafe name"),
        ([("C:/evil", b"x")], {}, "unsafe name"),
        ([(link("lien"), b"/etc/passwd")], {}, "a folder or a link"),
        ([("a.txt", b"x"), ("A.TXT", b"y")], {}, "twice"),
        ([(deflated("gros.txt"), b"0" * 100_000)], {}, "never writes"),
        ([("a.txt", b"x")], {"written": [("a.txt", b"x"), ("b.txt", b"y")]}, "differ"),
        (
            [("a.txt", b"x")],
            {"files": [{"name": "a.txt", "size": 1, "sha256": "0" * 64}]},
            "SHA-256",
        ),
        ([("a.txt", b"x")], {"files": [{"name": "a.txt", "size": 2, "sha256": "0" * 64}]}, "size"),
    ],
)
def test_hostile_archives_are_refused_and_leave_nothing(
    tmp_path: Path, members, extra, message
) -> None:
    path = hostile(tmp_path, members, **extra)
    target = tmp_path / "out" / "target"
    with pytest.raises(ArchiveError, match=message):
        archive.open_archive(path, target)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_an_archive_without_its_manifest_first(tmp_path: Path) -> None:
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as writer:
        writer.writestr("a.txt", "x")
    with pytest.raises(ArchiveError, match="does not start with"):
        archive.open_archive(path, tmp_path / "t")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_any_bytes_open_or_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.zip"
    path.write_bytes(data)
    target = tmp_path / "random-out"
    try:
        archive.open_archive(path, target)
    except ScelleError:
        assert not target.exists()
    else:  # pragma: no cover - random bytes are never a valid envelope
        raise AssertionError("random bytes opened")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255))
def test_any_damaged_byte_is_caught(tmp_path: Path, position: int, value: int) -> None:
    source = tmp_path / "offre.txt"
    source.write_bytes(b"contenu de l'offre " * 50)
    _, data = pack(source)
    damaged = bytearray(data)
    damaged[position % len(damaged)] ^= value
    path = tmp_path / "damaged.zip"
    path.write_bytes(bytes(damaged))
    target = tmp_path / f"out-{position}-{value}"
    try:
        archive.open_archive(path, target)
    except ScelleError:
        assert not target.exists()
    else:
        # Only bytes nobody reads may change without notice (e.g. the "version
        # made by" field); what was extracted is still exactly the original.
        assert (target / "offre.txt").read_bytes() == source.read_bytes()


@pytest.mark.slow
def test_zip64_for_a_file_over_4_gib(tmp_path: Path) -> None:
    big = tmp_path / "maquette.bin"
    with big.open("wb") as handle:  # sparse: 4 GiB + 1 MiB of zeros, almost no disk
        handle.truncate((4 << 30) + (1 << 20))
    (tmp_path / "src").mkdir()
    big = big.rename(tmp_path / "src" / "maquette.bin")
    (tmp_path / "src" / "z-apres.txt").write_bytes(b"after the big one")
    plan = archive.plan_archive(tmp_path / "src", tender="T", envelope="offre", bidder="B")
    envelope = tmp_path / "big.zip"
    with envelope.open("wb") as handle:
        assert archive.write_archive(plan, handle) == plan.size
    big.unlink()
    with zipfile.ZipFile(envelope) as reader:
        infos = {info.filename: info for info in reader.infolist()}
        assert infos["maquette.bin"].file_size == (4 << 30) + (1 << 20)
        assert reader.read("z-apres.txt") == b"after the big one"
    # Our reader, in one pass, through the ZIP64 sizes.
    manifest = archive.open_archive(envelope, tmp_path / "ouvert")
    assert manifest == plan.manifest
    assert (tmp_path / "ouvert" / "maquette.bin").stat().st_size == (4 << 30) + (1 << 20)
    assert (tmp_path / "ouvert" / "z-apres.txt").read_bytes() == b"after the big one"


def test_before_publish_runs_before_any_file_appears(tmp_path: Path) -> None:
    _, data = pack(make_folder(tmp_path))
    seen = []

    def report(manifest: archive.Manifest) -> None:
        seen.append((tmp_path / "ouvert").exists())
        raise InvalidInputError("the platform did not record the opening")

    with pytest.raises(InvalidInputError, match="did not record"):
        archive.open_archive(io.BytesIO(data), tmp_path / "ouvert", before_publish=report)
    assert seen == [False]
    assert not (tmp_path / "ouvert").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["dossier"]  # no staging left either


def test_too_many_files_are_refused_on_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path)
    _, data = pack(folder)
    monkeypatch.setattr(archive, "MAX_FILES", 3)
    with pytest.raises(InvalidInputError, match="at most 3"):
        pack(folder)
    with pytest.raises(ArchiveError, match="at most 3"):
        archive.open_archive(io.BytesIO(data), tmp_path / "ouvert")
