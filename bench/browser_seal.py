"""Sealing in the browser (issue 12): headless Chromium seals and uploads 1 GiB and
4 GiB of random data, chosen in a file input, to a local `scelle serve`.

For each size, in the same run:
  - reference: `scelle deposit`'s whole path (scelle.assistant.deposit: hash, pack,
    encrypt to the two key pairs, tus upload, finalise, verify the receipt);
  - sealing alone: the page's worker hashes the file (pass 1) and seals it to a
    sink (pass 2), nothing sent;
  - seal + upload: the deposit page as a company uses it, from choosing the file
    to the receipt checked in the page ("Déposé.").
Each prints MB/s and its ratio to the reference, and the browser's peak memory: the
page's renderer process (the page and its workers, the target's measure), every
renderer (with Chrome's own: its omnibox popup, a spare one), the whole Chromium tree.
Targets: sealing >= 200 MB/s, seal + upload >= 50 % of `scelle deposit`,
renderer <= 300 MB at 4 GiB, flat with size. Memory is the proportional set size
(a page Chromium's processes share counted once); the loaded page, idle, is the floor.

    python bench/browser_seal.py [--sizes-mib 1024 4096]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deposit import PASSWORD, STORE, launch_tender, seed, start
from scelle.client.api import PlatformClient
from scelle.core import certs
from scelle.keystore import KeyStore

MB = 1_000_000
MIB = 1 << 20
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COMPANY = "offres@e000.fr"

SINK = """async ({ workerUrl }) => {
  const input = document.getElementById("bench-input");
  const file = input.files[0];
  const worker = new Worker(workerUrl, { type: "module" });
  let id = 0;
  const ask = (message) => new Promise((resolve, reject) => {
    const me = ++id;
    worker.addEventListener("message", function listen({ data }) {
      if (data.id !== me || data.op === "progress") return;
      worker.removeEventListener("message", listen);
      data.op === "failed" ? reject(new Error(data.message)) : resolve(data);
    });
    worker.postMessage({ ...message, id: me });
  });
  const began = performance.now();
  const { files } = await ask({ op: "hash", entries: [{ name: file.name, file }] });
  const hashed = performance.now();
  const keys = {
    contentKey: crypto.getRandomValues(new Uint8Array(32)),
    nonce: crypto.getRandomValues(new Uint8Array(12)),
    recipientInfos: crypto.getRandomValues(new Uint8Array(1100)),
  };
  const meta = { tender: "AO-BENCH", envelope: "offre", bidder: "Entreprise 000" };
  const sealed = await ask({ op: "seal", keys, meta, files, upload: null });
  const done = performance.now();
  worker.terminate();
  return { hash: (hashed - began) / 1000, seal: (done - hashed) / 1000, size: sealed.size };
}"""


class Memory:
    """Peak memory of Chromium (Linux /proc), as the proportional set size, which counts
    a page its processes share once, not in each:
      - page: the renderer running the page's workers (the page and its workers share it);
      - renderers: every renderer, with Chrome's own (the omnibox popup, a spare one);
      - tree: every Chromium process."""

    def __init__(self) -> None:
        self.page = 0
        self.renderers = 0
        self.tree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Memory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.25):  # reading smaps costs: not too often
            page = renderers = tree = 0
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    command = (entry / "cmdline").read_bytes()
                    if b"chromium" not in command.split(b"\0", 1)[0]:
                        continue
                    pss = next(
                        int(line.split()[1]) * 1024
                        for line in (entry / "smaps_rollup").read_text().splitlines()
                        if line.startswith("Pss:")
                    )
                    if b"--type=renderer" in command:
                        renderers += pss
                        tasks = (entry / "task").iterdir()
                        if "DedicatedWorker\n" in {(task / "comm").read_text() for task in tasks}:
                            page += pss
                except (OSError, StopIteration):
                    continue
                tree += pss
            self.page = max(self.page, page)
            self.renderers = max(self.renderers, renderers)
            self.tree = max(self.tree, tree)


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for _ in range(size // (16 * MIB)):
            out.write(os.urandom(16 * MIB))


def reference(url: str, token: str, home: Path, source: Path) -> float:
    """Seconds `scelle deposit`'s whole path takes for `source`."""
    from scelle.assistant.deposit import deposit

    with PlatformClient(url, token) as client:
        authority = certs.load_certificate(client.platform_ca()["certificate_pem"].encode())
        store = KeyStore(home, lambda _new: STORE)
        began = time.perf_counter()
        deposit(
            client, store, "AO-BENCH", [("offre", source)],
            authority=authority, now=dt.datetime.now(dt.UTC),
        )  # fmt: skip
        return time.perf_counter() - began


def log_in(page: object, url: str) -> None:
    page.goto(url)  # type: ignore[attr-defined]
    page.fill("#id_email", COMPANY)  # type: ignore[attr-defined]
    page.fill("#id_password", PASSWORD)  # type: ignore[attr-defined]
    page.press("#id_password", "Enter")  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]


def in_browser(url: str, tender: str, source: Path) -> tuple[dict[str, float], dict[str, Memory]]:
    """Seconds per step, and the memory of each phase: idle, sink, upload."""
    from playwright.sync_api import sync_playwright

    result: dict[str, float] = {}
    memories: dict[str, Memory] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(int(os.environ.get("BENCH_TIMEOUT_MS", "3600000")))
            log_in(page, url)
            page.goto(f"{url}/consultations/ouvertes/{tender}/deposer/")
            page.get_by_text("RSF ").first.wait_for()
            worker_url = page.evaluate(
                "() => JSON.parse(document.getElementById('deposit-config').textContent).workerUrl"
            )
            page.evaluate(
                "() => { const i = document.createElement('input'); i.type = 'file';"
                " i.id = 'bench-input'; i.hidden = true; document.body.append(i); }"
            )
            page.set_input_files("#bench-input", source)
            with Memory() as memories["idle"]:  # the page loaded, nothing started: the floor
                time.sleep(2)
            with Memory() as memories["sink"]:
                timings = page.evaluate(SINK, {"workerUrl": worker_url})
            result |= {"hash": timings["hash"], "seal": timings["seal"]}
            page.reload()
            page.wait_for_selector("#deposit-state.ok")
            page.set_input_files("fieldset[data-kind='offre'] input[data-role='files']", source)
            with Memory() as memories["upload"]:
                began = time.perf_counter()
                page.click("#deposit-start")
                page.wait_for_selector("#deposit-receipt:not([hidden])")
                result["upload"] = time.perf_counter() - began
            state = page.text_content("#deposit-state") or ""
            if "signature" not in state:
                raise SystemExit(f"the page did not deposit: {state}")
        finally:
            browser.close()
    return result, memories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[1024, 4096])
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scelle-bench-browser-") as folder:
        root = Path(folder)
        data = root / "data"
        seed(data, 1)
        server, url = start(data)
        try:
            launch_tender(url, "AO-BENCH")
            with PlatformClient(url) as anonymous:
                token = anonymous.login(COMPANY, PASSWORD)["token"]
            with PlatformClient(url, token) as client:
                tender = client.tender("AO-BENCH")["id"]
            print(f"Chromium {CHROMIUM}, scelle serve on {url} (SQLite), {os.cpu_count()} cores")
            print(
                f"{'size':>6} {'path':<28} {'seconds':>8} {'MB/s':>7} {'vs deposit':>10}"
                f" {'page MiB':>9} {'renderers MiB':>14} {'all Chromium MiB':>17}"
            )
            for mib in options.sizes_mib:
                source = root / f"offre-{mib}.bin"
                write_random(source, mib * MIB)
                size = mib * MIB
                seconds = reference(url, token, root / f"home-{mib}", source)
                base = size / MB / seconds
                got, memory = in_browser(url, tender, source)
                rows: list[tuple[str, float, Memory | None]] = [
                    ("scelle deposit (reference)", seconds, None),
                    ("page loaded, idle", 0.0, memory["idle"]),
                    ("page: hashing (pass 1)", got["hash"], None),
                    ("page: sealing, pass 2", got["seal"], None),
                    ("page: sealing alone (1+2)", got["hash"] + got["seal"], memory["sink"]),
                    ("page: seal + upload", got["upload"], memory["upload"]),
                ]
                for label, spent, peak in rows:
                    speed = size / MB / spent if spent else 0.0
                    timing = (
                        f"{spent:>8.1f} {speed:>7.0f} {speed / base:>10.2f}"
                        if spent
                        else f"{'':>8} {'':>7} {'':>10}"
                    )
                    memory_columns = (
                        f" {peak.page / MIB:>9.0f} {peak.renderers / MIB:>14.0f}"
                        f" {peak.tree / MIB:>17.0f}"
                        if peak is not None
                        else ""
                    )
                    print(f"{mib:>5}M {label:<28} {timing}{memory_columns}")
                source.unlink()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
