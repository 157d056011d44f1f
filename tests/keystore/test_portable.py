"""The workstation side starts and keeps its store where `fcntl` does not exist (Windows)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import scelle

WORKSTATION_PACKAGES = ("core", "keystore", "client", "assistant", "cli")
POSIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "tty", "pty", "posix"}


def test_no_posix_only_import_on_the_workstation_side() -> None:
    root = Path(scelle.__file__).parent
    found = []
    for package in WORKSTATION_PACKAGES:
        for source in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text("utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                found += [
                    f"{source.name}: {name}" for name in names if name.split(".")[0] in POSIX_ONLY
                ]
    assert found == []


# Runs in a fresh interpreter where importing fcntl fails, as on Windows: the store
# is created, a key pair added (under the lock), listed, unsealed and deleted.
_WITHOUT_FCNTL = """
import sys, datetime as dt
sys.modules["fcntl"] = None  # "import fcntl" now raises ImportError
from cryptography.hazmat.primitives.asymmetric import rsa
from scelle.core import certs
from scelle.keystore import KeyStore
now = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
store = KeyStore(__import__("pathlib").Path(sys.argv[1]), lambda _new: "Magasin-de-test-2026!")
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
cert = certs.self_signed_certificate(key, "PORTABLE", days=30, now=now)
store.add("PORTABLE", key, cert, exportable=True, origin="generated", now=now)
assert [k.name for k in store.key_pairs()] == ["PORTABLE"]
assert store.private_key("PORTABLE").private_numbers() == key.private_numbers()
store.save_pending("abc", b"secret")
assert store.load_pending("abc") == b"secret"
store.delete("PORTABLE")
assert "fcntl" not in {m for m in sys.modules if sys.modules[m] is not None}
print("ok")
"""


def test_the_store_works_without_fcntl(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_FCNTL, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
