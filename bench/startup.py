"""How long the command takes to start: `scelle --help`, `scelle --version` and a command's
own help, against a bare Python and against the eager start (every command's module
loaded, as `scelle` did before its commands loaded lazily), measured in this run.

Each case is a fresh process, timed from spawn to exit (median of N); the ratio is
against the bare interpreter's start, the floor no command can go under.

    python bench/startup.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = (
    ("python -c pass (the floor)", "pass"),
    ("scelle --version", "from scelle.cli.main import run; run(['--version'])"),
    ("scelle --help", "from scelle.cli.main import run; run(['--help'])"),
    ("scelle keys --help", "from scelle.cli.main import run; run(['keys', '--help'])"),
    ("scelle tenders --help", "from scelle.cli.main import run; run(['tenders', '--help'])"),
    (
        "eager: every command loaded, then --help (before)",
        "from scelle.cli.main import all_commands, run; all_commands(); run(['--help'])",
    ),
)


def _seconds(code: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            stdout=subprocess.DEVNULL,
            env={"SCELLE_LANG": "en", "PATH": ""},
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    results = [(label, _seconds(code, options.repeat)) for label, code in CASES]
    floor = results[0][1]
    print(f"{'case':<52} {'median':>9} {'x python':>9}")
    for label, seconds in results:
        print(f"{label:<52} {seconds * 1000:>7.1f}ms {seconds / floor:>8.1f}x")
    help_seconds = dict(results)["scelle --help"]
    eager = results[-1][1]
    print(f"\nscelle --help: {help_seconds * 1000:.0f} ms, {eager / help_seconds:.1f}x faster "
          f"than the eager start ({eager * 1000:.0f} ms); target < 100 ms")  # fmt: skip


if __name__ == "__main__":
    main()
