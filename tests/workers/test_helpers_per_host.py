"""Two workers on one host: one stream reader and one ledger writer work, the other worker's stand by
and take over when the first worker stops. Its own Redis database (the session worker keeps database 0)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, applied_env, ended_run, new_id, wait_for
from workers.embedded import CeleryProcess
from workers.publish import publish

STANDING_BY = {
    "reader": "another event stream reader works on this host; standing by",
    "writer": "another ledger writer works on this host; standing by",
}
TAKING_OVER = {
    "reader": "taking over as this host's event stream reader",
    "writer": "taking over as this host's ledger writer",
}


@pytest.fixture()
def own_redis_db(engine_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The settings of this test's workers, made this process's too (publish goes to the same stream)."""
    with applied_env(
        {**engine_env, "CIRCUIT_REDIS_URL": engine_env["CIRCUIT_REDIS_URL"].rsplit("/", 1)[0] + "/12"}
    ) as env:
        yield env


def _worker(env: dict[str, str], log: Path) -> CeleryProcess:
    from workers.app import app

    args = ["worker", "-c", "1", "--loglevel", "INFO", "-n", f"host-{uuid.uuid4().hex[:6]}@%h"]
    proc = CeleryProcess(args + ["--without-mingle", "--without-gossip"], {**os.environ, **env}, log, cwd=ROOT).start()
    proc.wait_ready(app)
    return proc


def test_one_reader_and_one_writer_work_per_host_and_a_standby_takes_over(
    own_redis_db: dict[str, str], ledger: Any, tmp_path: Path
) -> None:
    first = _worker(own_redis_db, tmp_path / "first.log")
    second = None
    try:
        event = publish("test.sequence", {"n": 1}, id=new_id())
        assert ended_run(ledger, event.id, timeout=30)["status"] == "succeeded"  # the first's helpers work

        second = _worker(own_redis_db, tmp_path / "second.log")
        for helper in ("reader", "writer"):
            wait_for(lambda h=helper: STANDING_BY[h] in second.output(), 20, f"a {helper} standing by")
        assert not any(line in first.output() for line in STANDING_BY.values())
        event = publish("test.sequence", {"n": 2}, id=new_id())
        assert ended_run(ledger, event.id, timeout=30)["status"] == "succeeded"

        first.stop()  # the first worker goes (scaled down, restarted): the second's helpers take over
        for helper in ("reader", "writer"):
            wait_for(lambda h=helper: TAKING_OVER[h] in second.output(), 20, f"a {helper} taking over")
        event = publish("test.sequence", {"n": 3}, id=new_id())
        run = ended_run(ledger, event.id, timeout=30)  # read from the stream and written to SQL by the second's
        assert run["status"] == "succeeded"
        assert run["steps"][0]["output"] == {"doubled": 6}
    finally:
        first.stop()
        if second is not None:
            second.stop()
