"""Real services for the tests: a Redis server, a PostgreSQL cluster and a Celery worker
(prefork, started as ``celery -A workers worker``), all on 127.0.0.1 and free ports.

Tests share one worker per session and stay apart by their own event ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stubs.http_receiver import HttpReceiver
from workers.embedded import CeleryProcess

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CIRCUITS = FIXTURES / "circuits"
#: The actions the test circuits use (the worker under test registers exactly these).
ACTION_MODULES = [
    "circuits.builtin",
    "intelligence.ml.actions",
    "tests.actions",
    "integrations.notify",
    "integrations.records.actions",
    "tests.records_actions",
]
#: The HMAC secret of the ``e2e`` notify.webhook target the worker posts to.
WEBHOOK_SECRET = f"whsec-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from workers.embedded import EmbeddedRedis

    with EmbeddedRedis() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from workers.embedded import EmbeddedPostgres

    with EmbeddedPostgres() as url:
        yield url


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[HttpReceiver]:
    """An HTTP receiver on 127.0.0.1: the ``e2e`` target of notify.webhook in the session worker."""
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def engine_env(
    redis_url: str, postgres_url: str, webhook_receiver: HttpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """CIRCUIT_* variables for the engine tests, applied to this process too."""
    home = tmp_path_factory.mktemp("home")
    targets = {"e2e": {"url": f"{webhook_receiver.url}/hooks/e2e", "secret": WEBHOOK_SECRET}}
    env = {
        "CIRCUIT_REDIS_URL": redis_url,
        "CIRCUIT_DATABASE_URL": postgres_url,
        "CIRCUIT_CIRCUITS": str(CIRCUITS),
        "CIRCUIT_ACTION_MODULES": ",".join(ACTION_MODULES),
        "CIRCUIT_HOME": str(home),
        "CIRCUIT_WEBHOOK_TARGETS": json.dumps(targets),
    }
    with applied_env(env):
        yield env


@contextlib.contextmanager
def applied_env(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` as this process's settings (a fresh runtime, Celery app and kombu pools), then the previous ones."""
    import kombu.pools

    from workers.runtime import reset_runtime

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reset_runtime()
    kombu.pools.reset()
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_runtime()
        kombu.pools.reset()


@pytest.fixture(scope="module", autouse=True)
def _fresh_runtime() -> Iterator[None]:
    """Each module starts with this process's runtime and Celery app built from the current settings:
    some modules point them at services of their own, and a connection pool left behind would make
    the next module publish to a server that is gone."""
    import sys

    if "workers.runtime" in sys.modules:
        from workers.runtime import reset_runtime

        reset_runtime()
    yield


@pytest.fixture(scope="session")
def worker(engine_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryProcess]:
    """``celery -A workers worker`` with two prefork processes, as ops would run it."""
    from workers.app import app

    log = tmp_path_factory.mktemp("worker") / "worker.log"
    args = [
        "worker",
        "-c",
        "2",
        "--loglevel",
        "INFO",
        "-n",
        f"test-{uuid.uuid4().hex[:6]}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    with CeleryProcess(args, {**os.environ, **engine_env}, log, cwd=ROOT) as proc:
        proc.wait_ready(app)
        yield proc


@pytest.fixture()
def ledger(engine_env: dict[str, str]) -> Any:
    """The run ledger's engine (PostgreSQL)."""
    from storage.migrate import upgrade
    from workers.runtime import runtime

    upgrade(runtime().engine)
    return runtime().engine


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ended_run(engine: Any, event_id: str, circuit: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """The run of ``circuit`` for ``event_id`` once it has ended in the ledger, with its steps."""
    from storage.ledger import get_run, list_runs

    def ended() -> dict[str, Any] | None:
        runs = list_runs(engine, event_id=event_id, circuit=circuit, limit=5)
        if runs and runs[0]["status"] in ("succeeded", "failed"):
            return get_run(engine, runs[0]["id"])
        return None

    return wait_for(ended, timeout, f"the run for event {event_id}")  # type: ignore[no-any-return]


@pytest.fixture()
def run_of(ledger: Any, worker: Any) -> Callable[..., dict[str, Any]]:
    """Wait until the run of ``circuit`` for ``event_id`` has ended in the ledger, and return it."""

    def get(event_id: str, circuit: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        return ended_run(ledger, event_id, circuit, timeout)

    return get


def new_id(prefix: str = "ev") -> str:
    return f"{prefix}-{uuid.uuid4()}"
