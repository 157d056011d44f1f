"""What one call to the platform costs the workstation beyond the network: a new
`PlatformClient` then one request, as the assistant does for each job and the command for
each run, against the same with a fresh TLS context per client (how it was before the
context was made once per process), measured in this run against a local server.

    python bench/client_start.py [--calls 100]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import httpx

from scelle.client import api


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _per_call(url: str, calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        with api.PlatformClient(url) as client:
            client.health()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    calls = parser.parse_args().calls
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        shared = _per_call(url, calls)
        with mock.patch.object(api, "_tls", httpx.create_ssl_context):
            fresh = _per_call(url, calls)
    finally:
        server.shutdown()
    print(f"{'a TLS context per client (before)':<40} {fresh * 1000:8.1f} ms per call")
    print(f"{'one TLS context per process (now)':<40} {shared * 1000:8.1f} ms per call")
    print(f"new client + one request: {fresh / shared:.1f}x faster ({calls} calls, median)")


if __name__ == "__main__":
    main()
