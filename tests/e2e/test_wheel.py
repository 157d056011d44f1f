"""A wheel that works (issue 23): `python -m build` makes the sdist and, from it, the wheel,
as a packager would; the wheel carries the deposit page's browser bundle, and once
installed in a fresh venv its `scelle serve` gives a deposit page whose key-pair check
completes in Chromium.

The fresh venv gets only the wheel; the dependencies come from this venv's
site-packages through a .pth file (no download, and this project's editable install
there is not seen: a .pth's folder is not a site folder).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.browser import chromium
from tests.e2e.conftest import Platform, _server_env, _start, _stop
from tests.e2e.test_browser_deposit import DEADLINE_AHEAD, launch_tender, open_deposit_page
from tests.e2e.test_platform_journey import Workstation, set_up

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ("deposit.js", "seal-worker.js", "hash-worker.js")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist, then the wheel built from the unpacked sdist (so MANIFEST.in is tested too)."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return next(out.glob("scelle-*.whl"))


def test_the_wheel_carries_the_browser_bundle_and_its_sources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in BUNDLE:
        assert f"scelle/platform/web/static/web/build/{name}" in names
    assert "scelle/platform/web/js/deposit.js" in names  # AGPL: the source of what we serve
    assert "scelle/locale/fr/LC_MESSAGES/django.mo" in names
    assert not any(name.startswith(("tests/", "node_modules/")) for name in names)


@pytest.fixture
def installed(wheel: Path, tmp_path: Path) -> str:
    """The Python of a fresh venv holding the wheel (and this venv's dependencies)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run(
        [str(python), "-c", "import scelle; print(scelle.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(site), where  # the wheel's copy, not this checkout's
    return str(python)


@pytest.fixture
def wheel_platform(installed: str, tmp_path: Path) -> Iterator[Platform]:
    env = _server_env(None)
    data = tmp_path / "scelle-data"
    process, url = _start(data, env, python=installed)
    running = Platform(url, data, env, process, python=installed)
    try:
        yield running
    finally:
        _stop(running.process)


def test_the_installed_wheel_serves_a_deposit_page_that_checks_its_key_pairs(
    wheel_platform: Platform, password_file: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("SCELLE_STORE_PASSPHRASE", "Magasin-de-test-2026!")
    monkeypatch.setenv("SCELLE_LANG", "en")
    set_up(wheel_platform, password_file)
    agent = Workstation(tmp_path / "home-agent", capsys)
    launch_tender(wheel_platform, agent, password_file, "AO-ROUE-1", DEADLINE_AHEAD)
    with chromium() as browser:
        page = browser.new_page()
        # Waits for "Les bi-clés ont été vérifiés": the bundle loaded and ran its checks.
        open_deposit_page(page, wheel_platform.url, "AO-ROUE-1")
        assert page.get_by_role("button", name="Déposer", exact=True).is_visible()
