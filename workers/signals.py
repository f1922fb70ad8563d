"""Worker lifecycle: check circuits before consuming, migrate, start the ledger writer, close resources."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

from celery import Celery
from celery.signals import (
    beat_init,
    before_task_publish,
    task_postrun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from circuits.compiler import walk
from circuits.errors import CircuitError
from circuits.model import ActionStep
from storage.migrate import upgrade
from workers import children, ledger_writer, observe, outbox_relay, results, stream_ingest
from workers.runtime import runtime
from workers.watchdog import Watchdog

log = logging.getLogger(__name__)
_writer: subprocess.Popen[Any] | None = None
_ingest: subprocess.Popen[Any] | None = None
_watchdog: Watchdog | None = None


def connect(app: Celery) -> None:
    """Hook our lifecycle into the worker's signals (idempotent: Celery dedupes by dispatch_uid)."""
    worker_init.connect(_on_init, dispatch_uid="circuit-init", weak=False)
    worker_ready.connect(_on_ready, dispatch_uid="circuit-ready", weak=False)
    worker_shutdown.connect(_on_shutdown, dispatch_uid="circuit-shutdown", weak=False)
    worker_process_shutdown.connect(_on_process_shutdown, dispatch_uid="circuit-proc-shutdown", weak=False)
    beat_init.connect(_on_beat_init, dispatch_uid="circuit-beat", weak=False)
    task_postrun.connect(_drop_results, dispatch_uid="circuit-drop-results", weak=False)
    observe.connect(app)  # metrics, tracing, log format, message labels (issue 9)


def _drop_results(sender: Any = None, **_: Any) -> None:
    """A task that applied a chord leaves its header results registered; no worker waits on them."""
    if sender is not None:
        results.drop_all(sender.app.backend)


def _on_beat_init(sender: Any = None, **_: Any) -> None:
    """Beat is starting: stamp the ticks it sends, and make sure its scheduler has the circuits' schedules.

    Our schedulers (``workers.beat``) install them while they set up, before this signal; any other
    scheduler class gets them here. Runs before redbeat's own handler, which then waits for the lock.
    """
    from workers import beat

    before_task_publish.connect(beat.stamp_tick, dispatch_uid="circuit-beat-tick", weak=False)
    scheduler = sender.scheduler
    if getattr(scheduler, "installed", None) is None:
        scheduler.update_from_dict(beat.install(sender.app))


def _on_init(sender: Any = None, **_: Any) -> None:
    """Refuse to start with a broken catalogue or database: better than failing every run."""
    rt = runtime()
    outbox_relay.install()  # data.* actions publish their record events right after their commit
    try:
        catalog = rt.catalog
        if rt.settings.auto_migrate:
            upgrade(rt.engine)
    except CircuitError as exc:
        log.critical("cannot start: %s", exc)
        sys.exit(1)
    log.info("circuit-os: %d actions, %d circuits", len(rt.registry), len(catalog))
    _derive_visibility_timeout(sender)


def _derive_visibility_timeout(worker: Any) -> None:
    """A message a worker took comes back after the visibility timeout: make it outlast the longest
    step time limit, so a long step is never handed to a second worker while it runs."""
    rt = runtime()
    if rt.settings.visibility_timeout_s or worker is None:
        return
    limits = [spec.timeout_s or rt.settings.step_timeout_s for spec in rt.registry]
    limits += [
        s.timeout_s
        for e in rt.catalog.entries.values()
        for s in walk(e.circuit.steps + e.circuit.on_failure)
        if isinstance(s, ActionStep) and s.timeout_s
    ]
    timeout = int(max(limits, default=rt.settings.step_timeout_s)) + 60
    worker.app.conf.broker_transport_options = {
        **worker.app.conf.broker_transport_options,
        "visibility_timeout": timeout,
    }
    log.info("visibility timeout %ds (longest step time limit + 60s)", timeout)


def _on_ready(**_: Any) -> None:
    global _writer, _watchdog, _ingest
    rt = runtime()
    if rt.settings.ledger_in_worker:
        _writer = ledger_writer.spawn()
    if rt.settings.ingest_in_worker:
        _ingest = stream_ingest.spawn()
    _watchdog = Watchdog(rt)
    _watchdog.start()


def _on_shutdown(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.stop()
    children.terminate(_ingest)  # stop reading events first, then let the writer drain the ledger
    children.terminate(_writer)


def _on_process_shutdown(**_: Any) -> None:
    runtime().close()
