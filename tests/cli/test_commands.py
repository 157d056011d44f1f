"""The `scelle` command as a buyer uses it: keys, export/import, encrypt/decrypt, errors."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scelle.cli.main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, run
from scelle.cli.session import Session
from tests.conftest import NOW, PFX_PASSWORD, STORE_PASSPHRASE, Identity


def scelle(
    capsys: pytest.CaptureFixture[str], *args: str, clock: dt.datetime = NOW
) -> tuple[int, str, str]:
    status = run(list(args), Session(clock=lambda: clock))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(PFX_PASSWORD + "\r\n", encoding="utf-8")
    return path


def test_generate_list_show_cert(scelle_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = scelle(capsys, "keys", "generate", "BICLEVIDEOTUTO")
    assert status == EXIT_OK
    assert (
        "The key pair BICLEVIDEOTUTO has been created and saved in this workstation's store" in err
    )
    assert "SHA-256 fingerprint" in err and "2028-11-21" in err
    status, _, err = scelle(
        capsys, "keys", "generate", "Service des marchés", "--cn", "SDM", "--bits", "4096",
        "--days", "365",
    )  # fmt: skip
    assert status == EXIT_OK, err
    status, out, _ = scelle(capsys, "keys", "list", "--json")
    listed = json.loads(out)
    assert [key["name"] for key in listed] == ["BICLEVIDEOTUTO", "Service des marchés"]
    assert set(listed[0]) >= {
        "name",
        "cn",
        "issuer",
        "not_after",
        "fingerprint_sha256",
        "exportable",
    }
    assert listed[1]["cn"] == "SDM" and listed[1]["key_size"] == 4096
    assert listed[1]["not_after"].startswith("2027-11-22")
    assert listed[0]["key_size"] == 3072
    status, out, _ = scelle(capsys, "keys", "list")
    assert "Issued to (CN)" in out and "SDM" in out and "2027-11-22" in out
    status, out, _ = scelle(capsys, "keys", "show", "SERVICE DES MARCHÉS", "--json")
    assert json.loads(out)["cn"] == "SDM"
    status, out, _ = scelle(capsys, "keys", "cert", "BICLEVIDEOTUTO")
    assert out.startswith("-----BEGIN CERTIFICATE-----")
    assert (scelle_env / "store.json").stat().st_mode & 0o777 == 0o600


def test_errors_are_one_line_exit_1(scelle_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = scelle(capsys, "keys", "show", "absent")
    assert status == EXIT_FAILURE
    assert err.splitlines()[0] == "scelle: no key pair named 'absent' in this workstation's store"
    assert "Traceback" not in err
    status, _, err = scelle(capsys, "keys", "generate", "k", "--bits", "1024")
    assert status == EXIT_USAGE
    status, _, err = scelle(capsys, "keys", "frobnicate")
    assert status == EXIT_USAGE
    scelle(capsys, "keys", "generate", "k")
    status, _, err = scelle(capsys, "keys", "generate", "K")
    assert status == EXIT_FAILURE and "already in the store" in err


def test_debug_shows_the_traceback(scelle_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = scelle(capsys, "--debug", "keys", "show", "absent")
    assert status == EXIT_FAILURE and "Traceback" in err


def test_export_import_journey(
    scelle_env: Path, tmp_path: Path, password_file: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    scelle(capsys, "keys", "generate", "CLETEST")
    pfx = tmp_path / "CLETEST.pfx"
    weak = tmp_path / "weak.txt"
    weak.write_text("court\n")
    status, _, err = scelle(
        capsys, "keys", "export", "CLETEST", "-o", str(pfx), "--password-file", str(weak)
    )
    assert status == EXIT_FAILURE and "too short" in err and not pfx.exists()
    status, _, err = scelle(
        capsys, "keys", "export", "CLETEST", "-o", str(pfx), "--password-file", str(password_file)
    )
    assert status == EXIT_OK, err
    assert "no way to recover it" in err
    assert pfx.stat().st_mode & 0o777 == 0o600
    status, _, err = scelle(
        capsys, "keys", "export", "CLETEST", "-o", str(pfx), "--password-file", str(password_file)
    )
    assert status == EXIT_FAILURE and "already exists" in err

    # Another workstation.
    monkeypatch.setenv("SCELLE_HOME", str(tmp_path / "other-home"))
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("Mauvais-mot-de-passe-1\n")
    status, _, err = scelle(capsys, "keys", "import", str(pfx), "--password-file", str(wrong))
    assert (status, err.strip()) == (EXIT_FAILURE, f"scelle: wrong password for {pfx}")
    assert not (tmp_path / "other-home" / "keys").exists() or not any(
        (tmp_path / "other-home" / "keys").iterdir()
    )
    damaged = tmp_path / "damaged.pfx"
    damaged.write_bytes(pfx.read_bytes()[:100])
    status, _, err = scelle(
        capsys, "keys", "import", str(damaged), "--password-file", str(password_file)
    )
    assert status == EXIT_FAILURE and "not a PKCS#12" in err
    status, _, err = scelle(
        capsys,
        "keys",
        "import",
        str(pfx),
        "--password-file",
        str(password_file),
        "--not-exportable",
    )
    assert status == EXIT_OK, err
    status, out, _ = scelle(capsys, "keys", "list", "--json")
    assert json.loads(out)[0]["name"] == "CLETEST" and json.loads(out)[0]["exportable"] is False
    status, _, err = scelle(
        capsys, "keys", "import", str(pfx), "--password-file", str(password_file), "--name", "autre"
    )
    assert status == EXIT_FAILURE and "already in the store as 'CLETEST'" in err
    status, _, err = scelle(
        capsys,
        "keys",
        "export",
        "CLETEST",
        "-o",
        str(tmp_path / "x.pfx"),
        "--password-file",
        str(password_file),
    )
    assert status == EXIT_FAILURE and "not exportable" in err and not (tmp_path / "x.pfx").exists()


def test_delete(scelle_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scelle(capsys, "keys", "generate", "k")
    status, _, err = scelle(capsys, "keys", "delete", "k")  # no terminal: --yes needed
    assert status == EXIT_FAILURE and "--yes" in err
    status, _, err = scelle(capsys, "keys", "delete", "k", "--yes")
    assert status == EXIT_OK and "deleted" in err
    assert json.loads(scelle(capsys, "keys", "list", "--json")[1]) == []


def test_encrypt_decrypt_with_store_and_files(
    scelle_env: Path, tmp_path: Path, bob: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    scelle(capsys, "keys", "generate", "acheteur")
    plain = tmp_path / "offre.pdf"
    plain.write_bytes(os.urandom(300_000))
    status, _, err = scelle(
        capsys, "encrypt", "-r", "acheteur", "-r", str(bob.cert_pem), str(plain)
    )
    assert status == EXIT_OK, err
    sealed = tmp_path / "offre.pdf.p7m"
    assert "2 recipient(s)" in err and sealed.exists()
    original = plain.read_bytes()
    plain.unlink()
    status, _, err = scelle(capsys, "decrypt", str(sealed))
    assert status == EXIT_OK, err
    assert plain.read_bytes() == original
    status, _, err = scelle(capsys, "decrypt", str(sealed))
    assert status == EXIT_FAILURE and "already exists" in err
    status, _, err = scelle(capsys, "decrypt", "-k", "acheteur", "--force", str(sealed))
    assert status == EXIT_OK


def test_decrypt_failure_leaves_nothing(
    scelle_env: Path, tmp_path: Path, bob: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    scelle(capsys, "keys", "generate", "acheteur")
    plain = tmp_path / "offre.bin"
    plain.write_bytes(b"x" * 5000)
    scelle(
        capsys, "encrypt", "-r", str(bob.cert_pem), "-o", str(tmp_path / "pour-bob.p7m"), str(plain)
    )
    before = sorted(tmp_path.iterdir())
    status, _, err = scelle(
        capsys, "decrypt", "-o", str(tmp_path / "out"), str(tmp_path / "pour-bob.p7m")
    )
    assert status == EXIT_FAILURE
    assert "not addressed to the key used, or it is damaged" in err
    assert sorted(tmp_path.iterdir()) == before


def test_expired_recipient_is_refused(
    scelle_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scelle(capsys, "keys", "generate", "court", "--days", "1")
    plain = tmp_path / "a.txt"
    plain.write_text("a")
    later = NOW + dt.timedelta(days=3)
    status, _, err = scelle(capsys, "encrypt", "-r", "court", str(plain), clock=later)
    assert status == EXIT_FAILURE and "expired on 2026-11-23" in err
    assert not (tmp_path / "a.txt.p7m").exists()
    status, _, err = scelle(capsys, "encrypt", "-r", "nobody", str(plain))
    assert status == EXIT_FAILURE and "neither a certificate file nor a key pair" in err


def test_decrypt_with_pfx(
    scelle_env: Path, tmp_path: Path, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scelle(capsys, "keys", "generate", "k")
    pfx = tmp_path / "k.pfx"
    scelle(capsys, "keys", "export", "k", "-o", str(pfx), "--password-file", str(password_file))
    plain = tmp_path / "doc.txt"
    plain.write_text("candidature")
    scelle(capsys, "encrypt", "-r", "k", "-o", str(tmp_path / "doc.cms"), str(plain))
    status, _, err = scelle(
        capsys, "decrypt", "--pfx", str(pfx), "--password-file", str(password_file),
        "-o", str(tmp_path / "back.txt"), str(tmp_path / "doc.cms"),
    )  # fmt: skip
    assert status == EXIT_OK, err
    assert (tmp_path / "back.txt").read_text() == "candidature"
    status, _, err = scelle(
        capsys, "decrypt", "-k", "k", "--pfx", str(pfx), str(tmp_path / "doc.cms")
    )
    assert status == EXIT_USAGE


def test_french(
    scelle_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCELLE_LANG", "fr_FR.UTF-8")
    _status, _, err = scelle(capsys, "keys", "generate", "BICLE")
    assert (
        "Le bi-clé BICLE a été créé et enregistré dans le magasin de certificats de ce poste."
        in err
    )
    assert "Empreinte SHA-256" in err
    _, out, _ = scelle(capsys, "keys", "list")
    assert "Délivré à (CN)" in out
    # The core's refusals too, from the same catalogue.
    status, _, err = scelle(capsys, "keys", "show", "INCONNU")
    assert status == EXIT_FAILURE
    assert "aucun bi-clé nommé 'INCONNU' dans le magasin de ce poste" in err
    status, _, err = scelle(capsys, "keys", "generate", "X", "--days", "0")
    assert status == EXIT_USAGE
    # English again as soon as the setting says so, in the same process.
    monkeypatch.setenv("SCELLE_LANG", "en")
    _, out, _ = scelle(capsys, "keys", "list")
    assert "Issued to (CN)" in out


# --- the installed command, as a process -------------------------------------------


def scelle_process(
    *args: str, env: dict[str, str], input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "scelle.cli", *args]
    return subprocess.run(
        command, env=env, input=input, capture_output=True, check=False, timeout=120
    )


def test_pipes_and_exit_codes(tmp_path: Path, alice: Identity) -> None:
    env = dict(
        os.environ,
        SCELLE_HOME=str(tmp_path / "home"),
        SCELLE_STORE_PASSPHRASE=STORE_PASSPHRASE,
        SCELLE_LANG="en",
    )
    data = os.urandom(2_500_000)
    sealed = scelle_process("encrypt", "-r", str(alice.cert_pem), "-", env=env, input=data)
    assert sealed.returncode == 0, sealed.stderr
    assert sealed.stderr == b"", "quiet when not on a terminal"
    pfx = tmp_path / "alice.pfx"
    from scelle.core.pkcs12 import KeyBundle, export_pkcs12

    pfx.write_bytes(export_pkcs12(KeyBundle(alice.key, alice.certificate), PFX_PASSWORD))
    password = tmp_path / "pw"
    password.write_text(PFX_PASSWORD)
    decrypt_with_pfx = ("decrypt", "--pfx", str(pfx), "--password-file", str(password), "-")
    opened = scelle_process(*decrypt_with_pfx, env=env, input=sealed.stdout)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == data
    tampered = bytearray(sealed.stdout)
    tampered[len(tampered) // 2] ^= 0x10
    failed = scelle_process(*decrypt_with_pfx, env=env, input=bytes(tampered))
    assert failed.returncode == 1
    assert failed.stdout == b"", "nothing reaches stdout before the tag verifies"
    assert failed.stderr.decode().count("\n") == 1
    usage = scelle_process("decrypt", env=env)
    assert usage.returncode == 2
    assert scelle_process("--version", env=env).stdout.startswith(b"scelle, version")


def test_progress_bar_on_a_terminal(tmp_path: Path, alice: Identity) -> None:
    """On a terminal (a pseudo-terminal here) long work shows a progress bar on stderr."""
    import pty

    env = dict(os.environ, SCELLE_HOME=str(tmp_path / "home"), SCELLE_LANG="en", COLUMNS="100")
    plain = tmp_path / "big.bin"
    plain.write_bytes(os.urandom(8 << 20))
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "scelle.cli", "encrypt", "-r", str(alice.cert_pem), str(plain)],
            env=env, stdin=terminal, stdout=terminal, stderr=terminal, timeout=120, check=False,
        )  # fmt: skip
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO once the terminal side is closed and drained
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0, shown
    assert b"Encrypting" in shown and b"8.4/8.4 MB" in shown
    assert (tmp_path / "big.bin.p7m").exists()


def test_tables_print_names_and_fingerprints_as_they_are(capsys) -> None:
    from scelle.cli.remote import print_table

    fingerprint = "0E:CD:1D:C3"  # ":CD:" is an emoji code to rich
    print_table(["Name", "Fingerprint"], [["[red]Société[/red] :smile:", fingerprint]])
    out = capsys.readouterr().out
    assert fingerprint in out and "[red]Société[/red] :smile:" in out


def test_sizes_read_as_people_read_them(monkeypatch) -> None:
    from scelle.cli.console import human_size

    monkeypatch.setenv("SCELLE_LANG", "en")
    assert [human_size(n) for n in (0, 999, 1000, 314_575_977, 10**13)] == [
        "0 B", "999 B", "1.0 kB", "314.6 MB", "10.0 TB",
    ]  # fmt: skip
    monkeypatch.setenv("SCELLE_LANG", "fr")
    assert human_size(314_575_977) == "314,6 Mo"


def test_receipts_verify_takes_several_files(
    scelle_env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from scelle.core import authority
    from scelle.core.receipt import Receipt, ReceivedEnvelope, sign_receipt

    ca = authority.create_authority("Scellé — autorité", now=NOW)
    signer = authority.create_signing_identity(ca, "Scellé — accusés", now=NOW)
    receipt = Receipt(
        platform="Scellé", tender="AO-1", bidder="BTP",
        deposit="0d4f6c1e-5a1b-4f7e-9d38-3c1e2b7a9f10", received_at=NOW, late=False,
        envelopes=(ReceivedEnvelope("offre", 314_575_977, "a" * 64),),
    )  # fmt: skip
    good = tmp_path / "receipt-good.json"
    good.write_bytes(sign_receipt(receipt, signer, [ca.certificate]))
    forged = tmp_path / "receipt-forged.json"
    forged.write_bytes(good.read_bytes().replace(b"BTP", b"BTQ"))
    status, out, err = scelle(capsys, "receipts", "verify", str(good), str(good))
    assert status == EXIT_OK and out.count("314.6 MB (314575977)") == 2
    status, out, err = scelle(capsys, "receipts", "verify", str(good), str(forged))
    assert status == EXIT_FAILURE
    assert f"== {forged}" in err and "1 of 2 receipts did not check out" in err


def test_a_pfx_windows_wrote_imports_under_its_name(
    scelle_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows ends the friendlyName with a NUL (tests/vectors/README.md): the key pair takes
    the name without it; a file whose key cannot serve says why, the `--name` advice aside."""
    corpus = Path(__file__).resolve().parents[1] / "vectors" / "pkcs12"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    status, _, err = scelle(
        capsys, "keys", "import", str(corpus / "go-windows-azure-tools.pfx"),
        "--password-file", str(empty),
    )  # fmt: skip
    assert status == EXIT_OK, err
    status, out, _ = scelle(capsys, "keys", "list", "--json")
    assert [k["name"] for k in json.loads(out)] == ["Paul's Playground-10-2-2014-credentials"]
    status, _, err = scelle(
        capsys, "keys", "import", str(corpus / "go-windows-ias-peap.pfx"),
        "--password-file", str(empty),
    )  # fmt: skip
    assert status == EXIT_FAILURE and "1024 bits" in err and "Traceback" not in err
