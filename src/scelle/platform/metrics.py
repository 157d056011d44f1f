"""What the platform counts for its operators, in Prometheus' text format, on an address
of its own (SCELLE_METRICS_ADDRESS, e.g. 10.0.0.21:9464), never on the public port:

- scelle_requests_total{class, status}: answers given, by request class (admission's:
  health, deposit, login, member, anonymous) and status family (2xx, 4xx, 5xx);
- scelle_queue_wait_seconds{class}: how long admitted requests waited for a thread;
- scelle_shed_requests_total{class}: requests answered 503 without being served;
- scelle_uploads_in_progress: tus chunks being received right now;
- scelle_ingested_bytes_total: bytes of tus chunks received.

With several serving processes (`scelle serve --processes N`), each writes its values
to files in a private folder (prometheus_client's multiprocess mode, chosen by
PROMETHEUS_MULTIPROC_DIR, which `server.serve` sets before this module is first
imported) and the supervising process serves their sum.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "scelle_requests", "Answers given, by request class and status family", ["class", "status"]
)
QUEUE_WAIT = Histogram(
    "scelle_queue_wait_seconds",
    "Seconds an admitted request waited for one of Django's threads, by class",
    ["class"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SHED = Counter(
    "scelle_shed_requests", "Requests answered 503 without being served (shed), by class", ["class"]
)
UPLOADS = Gauge(
    "scelle_uploads_in_progress", "tus chunks being received now", multiprocess_mode="livesum"
)
INGESTED = Counter("scelle_ingested_bytes", "Bytes of tus chunks received")


def serve_metrics(address: str, *, shared: str | None) -> None:
    """Serve /metrics on `address` (host:port) from a thread of this process: this
    process's values, or the sum of the serving processes' when `shared` is their
    folder."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    host, _, port = address.rpartition(":")
    registry = REGISTRY
    if shared is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
    start_http_server(int(port), addr=host.strip("[]"), registry=registry)


def process_ended(pid: int, shared: str | None) -> None:
    """A serving process ended: its gauges no longer count (its counters stay)."""
    if shared is not None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, shared)  # type: ignore[no-untyped-call]
