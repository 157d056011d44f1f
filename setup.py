"""The build hook: every wheel, `pip install .` and `pip install -e .` carries the deposit
page's browser bundle (static/web/build/), built here from the pinned lockfile.

The project's metadata is in pyproject.toml; this file only adds the `build_js` step,
which `build_py` runs before it copies the package's files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SOURCES = ROOT / "src" / "scelle" / "platform" / "web" / "js"
BUNDLE = ROOT / "src" / "scelle" / "platform" / "web" / "static" / "web" / "build"


def _newest(paths: list[Path]) -> float:
    return max((path.stat().st_mtime for path in paths if path.exists()), default=0.0)


class BuildJs(Command):
    """npm ci (exactly as package-lock.json pins it), then esbuild into static/web/build/."""

    description = "bundle the platform's browser code with esbuild"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012 (setuptools' API)

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        sources = [*SOURCES.glob("*.js"), *SOURCES.glob("*.mjs"), ROOT / "package-lock.json"]
        built = list(BUNDLE.glob("*.js"))
        if built and min(p.stat().st_mtime for p in built) >= _newest(sources):
            return  # built since its sources last changed (an sdist carries its bundle)
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise SystemExit(
                "Node.js and npm are needed to bundle the deposit page's code "
                "(Debian: apt-get install nodejs npm; or run scripts/build-js)"
            )
        env = {**os.environ, "npm_config_update_notifier": "false"}
        installed = ROOT / "node_modules" / ".package-lock.json"
        if _newest([installed]) < _newest([ROOT / "package-lock.json"]):
            subprocess.run(
                [npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=ROOT, env=env, check=True
            )
        subprocess.run([npm, "run", "--silent", "build"], cwd=ROOT, env=env, check=True)


class BuildPy(build_py):
    """build_py, with the browser bundle built first so that its files are package data."""

    def run(self) -> None:
        self.run_command("build_js")
        super().run()


setup(cmdclass={"build_js": BuildJs, "build_py": BuildPy})
