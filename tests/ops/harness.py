"""A system of its own for each observability test module: a Redis, a fresh database in the session's
PostgreSQL, the circuits of ``tests/ops/circuits`` and real workers started as ``celery -A workers worker``.

Its own Redis keeps the session worker (which reads the session Redis) from taking these tasks, so
what a test counts in the metrics, the spans or a log is exactly what its own workers did.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from celery import Celery
from celery.signals import before_task_publish

from tests.conftest import ROOT, wait_for
from workers import tagging
from workers.embedded import CeleryProcess, EmbeddedRedis

OPS = Path(__file__).resolve().parent


class Stack:
    def __init__(self, postgres_url: str, tmp: Path) -> None:
        self.postgres_url, self.tmp = postgres_url, tmp
        self.redis = EmbeddedRedis()
        self.db = f"ops_{uuid.uuid4().hex[:10]}"
        self.workers: list[CeleryProcess] = []
        self.engine: sa.Engine | None = None

    def __enter__(self) -> Stack:
        url = self.redis.start()
        admin = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db}"'))
        admin.dispose()
        self.db_url = self.postgres_url.rsplit("/", 1)[0] + f"/{self.db}"
        self.env = {
            "CIRCUIT_REDIS_URL": url,
            "CIRCUIT_DATABASE_URL": self.db_url,
            "CIRCUIT_CIRCUITS": str(OPS / "circuits"),
            "CIRCUIT_ACTION_MODULES": "circuits.builtin,tests.ops.actions",
            "CIRCUIT_HOME": str(self.tmp / "home"),
            "CIRCUIT_INGEST_IN_WORKER": "false",  # a module that reads the event stream turns it on
        }
        self.app = Celery("ops-test", broker=url, set_as_current=False)
        self.app.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
        before_task_publish.connect(tagging.on_publish, dispatch_uid="circuit-tag", weak=False)
        self.engine = sa.create_engine(self.db_url)
        return self

    def worker(self, *args: str, env: dict[str, str] | None = None, name: str | None = None) -> CeleryProcess:
        """A worker (prefork, 2 processes unless ``-c`` is given), waited for until it answers a ping."""
        name = name or f"ops-{uuid.uuid4().hex[:6]}@%h"
        argv = ["worker", "--loglevel", "INFO", "-n", name, "--without-mingle", "--without-gossip", *args]
        if "-c" not in args:
            argv += ["-c", "2"]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_", "OTEL_", "PROMETHEUS_"))}
        log = self.tmp / f"worker-{len(self.workers)}.log"
        proc = CeleryProcess(argv, {**full_env, **self.env, **(env or {})}, log, cwd=ROOT).start()
        self.workers.append(proc)
        proc.wait_ready(self.app, timeout=60, name=name.replace("%h", socket.gethostname()))
        return proc

    def publish(
        self,
        type: str,
        data: Any = None,
        *,
        event_id: str | None = None,
        subject: str | None = None,
        stream: bool = False,
    ) -> str:
        """Send an event to the ingest task, or (``stream``) add it to the event stream, as ``publish()`` does."""
        event_id = event_id or f"ops-{uuid.uuid4()}"
        envelope = {"id": event_id, "type": type, "source": "tests/ops", "data": data, "tenant": "default"}
        if subject:
            envelope["subject"] = subject
        if stream:
            with redis.Redis.from_url(self.env["CIRCUIT_REDIS_URL"]) as r:
                r.xadd("circuit:events", {"event": json.dumps(envelope)})
        else:
            self.app.send_task("circuit.ingest", args=[envelope], queue="events")
        return event_id

    def run_of(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The ended run of ``event_id``, with its steps, once the ledger has it."""
        from storage.ledger import get_run, list_runs

        def ended() -> dict[str, Any] | None:
            try:
                runs = list_runs(self.engine, event_id=event_id, limit=5)
            except sa.exc.ProgrammingError:  # tables not made yet
                return None
            if runs and runs[0]["status"] in ("succeeded", "failed", "cancelled"):
                return get_run(self.engine, runs[0]["id"])
            return None

        return wait_for(ended, timeout, f"the run of {event_id}")

    def __exit__(self, *exc: object) -> None:
        for proc in self.workers:
            proc.stop()
        if self.engine is not None:
            self.engine.dispose()
        admin = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        admin.dispose()
        self.redis.stop()
