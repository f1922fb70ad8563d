"""Messages on the wire (issue 8): signed task messages, unsigned ones refused, Redis with a password.

Each test runs a worker of its own (``celery -A workers worker``) on a Redis database the session
worker does not read, with a fresh PostgreSQL database, and points this process at the same system.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery

from tests.conftest import ROOT, wait_for
from workers.embedded import CeleryProcess, EmbeddedRedis

CIRCUIT = """
name: t-signed
trigger: {event: signed.go}
steps:
  - {id: start, action: core.set, with: {base: "{{ event.data.base }}"}}
  - id: fan
    parallel:
      - {id: a, action: core.set, with: {v: "{{ steps.start.base + 1 }}"}}
      - {id: b, action: core.set, with: {v: "{{ steps.start.base + 2 }}"}}
  - {id: total, action: core.set, with: {sum: "{{ steps.a.v + steps.b.v }}"}}
"""


@contextlib.contextmanager
def _system(postgres_url: str, redis_url: str, tmp: Path, extra: dict[str, str]) -> Iterator[dict[str, str]]:
    """A fresh database and circuit folder; this process's settings and Celery app pointed at them."""
    from workers.runtime import reset_runtime

    db = f"sign_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
    circuits = tmp / "circuits"
    circuits.mkdir()
    (circuits / "signed.yaml").write_text(CIRCUIT)
    env = {
        "CIRCUIT_REDIS_URL": redis_url,
        "CIRCUIT_DATABASE_URL": postgres_url.rsplit("/", 1)[0] + f"/{db}",
        "CIRCUIT_CIRCUITS": str(circuits),
        "CIRCUIT_ACTION_MODULES": "circuits.builtin",
        "CIRCUIT_HOME": str(tmp / "home"),
        "CIRCUIT_PUBLISH_MODE": "worker",  # publish() sends a Celery message: signed by this process
        **extra,
    }
    saved = {k: v for k, v in os.environ.items() if k.startswith("CIRCUIT_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(env)
    reset_runtime()
    try:
        yield env
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)
        reset_runtime()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def _publish(env: dict[str, str], data: dict[str, Any]) -> str:
    """Publish as a producer process does (signing set up at its start); returns the event id."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_", "OTEL_", "PROMETHEUS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "publish", "signed.go", "--data", json.dumps(data)],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def _worker(env: dict[str, str], log: Path) -> Iterator[CeleryProcess]:
    from workers.app import app

    name = f"sign-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    args = ["worker", "-c", "2", "--loglevel", "INFO", "-n", name, "--without-mingle", "--without-gossip"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_", "OTEL_", "PROMETHEUS_"))}
    with CeleryProcess(args, {**clean, **env}, log, cwd=ROOT) as proc:
        proc.wait_ready(app, timeout=40, name=name)
        yield proc


def _run_of(event_id: str, timeout: float = 30.0) -> dict[str, Any]:
    from storage.ledger import get_run, list_runs
    from workers.runtime import runtime

    engine = runtime().engine

    def ended() -> dict[str, Any] | None:
        try:
            runs = list_runs(engine, event_id=event_id, limit=5)
        except sa.exc.ProgrammingError:  # tables not made yet
            return None
        if runs and runs[0]["status"] in ("succeeded", "failed", "cancelled"):
            return get_run(engine, runs[0]["id"])
        return None

    return wait_for(ended, timeout, f"the run of {event_id}")


def _runs_of(event_id: str) -> list[dict[str, Any]]:
    from storage.ledger import list_runs
    from workers.runtime import runtime

    return list_runs(runtime().engine, event_id=event_id, limit=5)


def test_signed_runs_succeed_and_unsigned_messages_are_refused(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "workers.cli", "security", "keys", "--out", str(tmp_path / "keys")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    signing = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("CIRCUIT_SIGNING_"))
    assert set(signing) == {"CIRCUIT_SIGNING_KEY", "CIRCUIT_SIGNING_CERT", "CIRCUIT_SIGNING_CERT_STORE"}
    key = Path(signing["CIRCUIT_SIGNING_KEY"])
    assert key.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in out.stdout + out.stderr  # the key itself is never printed

    signed_db = redis_url.rsplit("/", 1)[0] + "/10"  # the session worker reads /0
    with _system(postgres_url, signed_db, tmp_path, signing) as env, _worker(env, tmp_path / "worker.log") as proc:
        from workers.app import app

        assert app.conf.task_serializer == "auth" and app.conf.accept_content == ["auth"]
        assert app.conf.result_serializer == "json"  # chord results stay plain JSON in Redis

        ids = [_publish(env, {"base": n}) for n in range(3)]
        for n, event_id in enumerate(ids):
            run = _run_of(event_id)
            assert run["status"] == "succeeded", run
            total = next(s for s in run["steps"] if s["step_id"] == "total")
            assert total["output"] == {"sum": 2 * n + 3}

        # The same task, sent unsigned (plain JSON) to the same queue: the worker refuses to read it.
        plain = Celery("unsigned", broker=signed_db, set_as_current=False)
        plain.conf.update(task_serializer="json", accept_content=["json"], broker_connection_retry_on_startup=True)
        forged = f"forged-{uuid.uuid4()}"
        envelope = {"id": forged, "type": "signed.go", "source": "attacker", "data": {"base": 1}, "tenant": "default"}
        with plain.connection_for_write() as conn:
            plain.send_task("circuit.ingest", args=[envelope], queue="events", connection=conn)
        wait_for(lambda: "ContentDisallowed" in proc.output(), 15, "the worker to refuse the unsigned message")
        assert forged in proc.output() or "untrusted content" in proc.output()

        after = _publish(env, {"base": 10})  # the worker goes on with signed messages
        assert _run_of(after)["status"] == "succeeded"
        assert _runs_of(forged) == []  # no run, no step, no effect from the unsigned message


def test_redis_with_a_password_runs_and_never_logs_it(postgres_url: str, tmp_path: Path) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    with (
        EmbeddedRedis(password=password) as url,
        _system(postgres_url, url, tmp_path, {}) as env,
        _worker(env, tmp_path / "worker.log") as proc,
    ):
        from workers.publish import publish

        event_id = publish("signed.go", {"base": 1}).id
        assert _run_of(event_id)["status"] == "succeeded"
        with pytest.raises(Exception, match="(?i)auth"):  # and without it, Redis says no
            import redis

            redis.Redis.from_url(url.replace(f":{password}@", "")).ping()
        proc.stop()
        log = proc.output()
        assert "127.0.0.1" in log  # the worker did print where it connects ...
        assert password not in log  # ... with the password masked
