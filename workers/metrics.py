"""Prometheus metrics of the engine, correct under Celery's prefork pool.

Counters and histograms are counted where things happen (ingest, steps, run ends) by the
one-line functions below; they cost one ``if`` while metrics are off. On a worker host they
are on when ``CIRCUIT_METRICS_PORT`` is set: the worker's main process then, before its pool
forks, makes a fresh folder and points ``PROMETHEUS_MULTIPROC_DIR`` at it, so every child
writes its values to memory-mapped files there (prometheus-client's multiprocess mode). A
child that exits is marked dead (its live gauges dropped, its counts kept). The main process
serves ``/metrics`` from a small thread HTTP server: the children's files summed, plus gauges
read from Redis at scrape time (queue depth and age, ingest and ledger lag; see
:mod:`workers.backlog`). The folder is removed when the worker stops.

Another process (the HTTP API) calls :func:`enable`, then mounts :func:`make_asgi_app` or
:func:`make_wsgi_app`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, float("inf"))
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))
_EVENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class _Metrics:
    """The metric objects, built once metrics are enabled (after the multiprocess folder is set)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.events = Counter(
            "circuit_events",
            "Events by type and outcome (accepted, duplicate, rejected).",
            ["type", "outcome"],
            registry=registry,
        )
        self.runs = Counter(
            "circuit_runs", "Runs ended, by circuit and status.", ["circuit", "status"], registry=registry
        )
        self.run_seconds = Histogram(
            "circuit_run_duration_seconds",
            "From the run's start (its event accepted) to its end.",
            ["circuit"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.step_seconds = Histogram(
            "circuit_step_duration_seconds",
            "One execution of a step, by action.",
            ["action"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "circuit_step_retries", "Step attempts that failed and were retried.", ["action"], registry=registry
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: labels() takes a lock and checks its arguments every call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found


_m: _Metrics | None = None
_registry: Any = None  # the process's own registry when not in multiprocess mode
_dir: Path | None = None
_server: Any = None
_skip = threading.local()


# --- the counting, one line at each call site ------------------------------------------------


def event(event_type: str, outcome: str) -> None:
    """An event was accepted, or was a duplicate."""
    if _m is not None:
        _m.child(_m.events, event_type, outcome).inc()


def event_rejected(raw: Any) -> None:
    """An event was dead-lettered; its type when it has a plausible one (labels must stay few)."""
    if _m is not None:
        kind = raw.get("type") if isinstance(raw, dict) else None
        ok = isinstance(kind, str) and _EVENT_TYPE.match(kind)
        _m.child(_m.events, str(kind) if ok else "invalid", "rejected").inc()


def step_ended(action: str | None, started: float) -> None:
    """A step's execution ended (succeeded or failed for good)."""
    if _m is not None:
        _m.child(_m.step_seconds, action or "unknown").observe(max(0.0, time.time() - started))


def step_retried(action: str, started: float) -> None:
    """A step's attempt failed and will be retried (the attempt's time counts as an execution)."""
    if _m is not None:
        _m.child(_m.retries, action).inc()
        _m.child(_m.step_seconds, action).observe(max(0.0, time.time() - started))


def step_failed(action: str | None, started: float, first: bool) -> None:
    """A step failed for good; ``first``: the run's first failure. A second failing branch of the same
    run must not count the run's end again: the next :func:`run_ended` on this thread is skipped."""
    if _m is not None:
        _m.child(_m.step_seconds, action or "unknown").observe(max(0.0, time.time() - started))
        _skip.next = not first


def run_ended(ctx: dict[str, Any], status: str) -> None:
    """A run ended (succeeded, failed or cancelled)."""
    if _m is None:
        return
    if getattr(_skip, "next", False):
        _skip.next = False
        return
    run = ctx["run"]
    circuit = str(run.get("circuit"))
    _m.child(_m.runs, circuit, status).inc()
    started = run.get("started_at")
    if started is not None:
        _m.child(_m.run_seconds, circuit).observe(max(0.0, time.time() - float(started)))


# --- turning it on, serving it ---------------------------------------------------------------


def enabled() -> bool:
    return _m is not None


def enable(directory: Path | None = None) -> None:
    """Count from now on in this process (and in processes it forks later). With ``directory``, in
    multiprocess mode: values go to files there, which :func:`registry` sums."""
    global _m, _registry, _dir
    if directory is not None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        from prometheus_client import values

        # prometheus-client picks its value class when first imported: if that was before the
        # folder was set, pick again, or each child would count in its own memory only
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        _dir = directory
        _m = _Metrics(registry=None)
        return
    from prometheus_client import CollectorRegistry

    _registry = CollectorRegistry()
    _m = _Metrics(registry=_registry)


def start_worker(parent: Path | None) -> Path:
    """In the worker's main process, before the pool forks: a fresh multiprocess folder, then :func:`enable`."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"circuit-metrics-{os.getpid()}-", dir=parent))
    enable(directory)
    log.info("metrics: multiprocess folder %s", directory)
    return directory


def join_worker() -> None:
    """In a helper process the worker spawned (the event stream reader): count into the worker's folder,
    whose path it inherited, so a scrape of the worker includes it."""
    from circuits.settings import get_settings

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if _m is None and get_settings().metrics_port is not None and folder and Path(folder).is_dir():
        enable(Path(folder))


def child_exited() -> None:
    """``worker_process_shutdown``: drop this child's live gauges (its counts stay in the sums)."""
    if _dir is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), str(_dir))  # type: ignore[no-untyped-call]


class BacklogCollector:
    """Gauges read from Redis when scraped: queue depth and oldest age, ingest lag, ledger lag."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self.read = read

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("circuit_redis_up", "1 if the backlog gauges could be read from Redis.")
        try:
            backlog = self.read()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even while Redis is away
            log.warning("metrics: cannot read the backlog from Redis: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("circuit_queue_depth", "Messages waiting in a queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "circuit_queue_oldest_age_seconds", "How long the oldest waiting message has waited.", labels=["queue"]
        )
        for q in backlog.queues:
            depth.add_metric([q.name], q.depth)
            age.add_metric([q.name], q.oldest_age_s or 0.0)
        yield depth
        yield age
        yield GaugeMetricFamily(
            "circuit_ingest_lag_seconds", "Age of the oldest event not yet ingested.", value=backlog.ingest_lag_s
        )
        yield GaugeMetricFamily(
            "circuit_ledger_lag_seconds", "Age of the oldest ledger record not yet in SQL.", value=backlog.ledger_lag_s
        )


def _read_backlog() -> Any:
    from workers import backlog
    from workers.runtime import runtime

    rt = runtime()
    return backlog.read(rt.redis, rt.settings.event_stream)


def registry(read_backlog: Callable[[], Any] | None = _read_backlog) -> Any:
    """What a scrape returns: this process's metrics (or every process's, in multiprocess mode) and the
    Redis gauges."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if _dir is not None:
        reg = CollectorRegistry()
        MultiProcessCollector(reg, path=str(_dir))  # type: ignore[no-untyped-call]
    else:
        reg = _registry or CollectorRegistry()
    if read_backlog is not None:
        reg.register(BacklogCollector(read_backlog))
    return reg


def make_wsgi_app() -> Any:
    from prometheus_client import make_wsgi_app as _make

    return _make(registry())


def make_asgi_app() -> Any:
    """For the HTTP API: ``app.mount("/metrics", metrics.make_asgi_app())`` after :func:`enable`."""
    from prometheus_client import make_asgi_app as _make

    return _make(registry())


def serve(host: str, port: int) -> None:
    """Serve ``/metrics`` from a daemon thread of this process; a port in use is logged, not fatal."""
    global _server
    from prometheus_client import start_wsgi_server

    try:
        _server, _ = start_wsgi_server(port, addr=host, registry=registry())
    except OSError as exc:
        log.error("metrics: cannot serve on %s:%d (%s); this worker runs without /metrics", host, port, exc)
        return
    log.info("metrics: serving /metrics on %s:%d", host, port)


def stop() -> None:
    """Stop serving and remove the multiprocess folder (the worker is stopping)."""
    global _server, _dir, _m
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
    if _dir is not None:
        shutil.rmtree(_dir, ignore_errors=True)
        _dir = None
        _m = None
