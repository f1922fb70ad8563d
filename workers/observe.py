"""Hooks metrics, tracing, logs and message labels into Celery's signals (called by :mod:`workers.signals`).

* every process that sends tasks: each message is labelled with its circuit, run and step
  (:mod:`workers.tagging`);
* a worker's main process, before its pool forks: the multiprocess metrics folder (with
  ``CIRCUIT_METRICS_PORT``) and tracing (with ``OTEL_*``); once ready, the ``/metrics`` server;
* each pool child that exits: its metrics marked dead, its spans flushed;
* Celery's logging set-up: our JSON or text formatter (:mod:`workers.logs`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    beat_init,
    before_task_publish,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from workers import logs, metrics, tagging, tracing

log = logging.getLogger(__name__)


def connect(app: Celery) -> None:
    if "amqp" not in app.__dict__:  # built on first use: from then on, step messages carry their labels
        app.amqp_cls = "workers.tagging:LabelledAMQP"
    before_task_publish.connect(tagging.on_publish, dispatch_uid="circuit-tag", weak=False)
    after_setup_logger.connect(logs.on_setup_logger, dispatch_uid="circuit-logs", weak=False)
    after_setup_task_logger.connect(logs.on_setup_logger, dispatch_uid="circuit-task-logs", weak=False)
    worker_init.connect(_on_init, dispatch_uid="circuit-observe-init", weak=False)
    worker_ready.connect(_on_ready, dispatch_uid="circuit-observe-ready", weak=False)
    worker_shutdown.connect(_on_shutdown, dispatch_uid="circuit-observe-shutdown", weak=False)
    worker_process_shutdown.connect(_on_child_exit, dispatch_uid="circuit-observe-child-exit", weak=False)
    beat_init.connect(_on_beat, dispatch_uid="circuit-observe-beat", weak=False)


def _on_init(**_: Any) -> None:
    from circuits.settings import get_settings

    s = get_settings()
    if s.metrics_port is not None and not metrics.enabled():
        metrics.start_worker(s.metrics_dir)
    tracing.setup("circuit-os-worker")


def _on_ready(**_: Any) -> None:
    from circuits.settings import get_settings

    s = get_settings()
    if s.metrics_port is not None and metrics.enabled():
        metrics.serve(s.metrics_host, s.metrics_port)


def _on_child_exit(**_: Any) -> None:
    metrics.child_exited()
    tracing.flush()


def _on_shutdown(**_: Any) -> None:
    tracing.flush()
    metrics.stop()


def _on_beat(**_: Any) -> None:
    tracing.setup("circuit-os-beat")
