"""Prometheus metrics scraped from a real prefork worker, checked against the run ledger.

The worker replaces its pool processes every few tasks (``--max-tasks-per-child``), so the sums
must hold across children that exited (multiprocess mode, files in a folder made per start).
"""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.ops.harness import Stack
from workers.embedded import CeleryProcess, free_port


@pytest.fixture(scope="module")
def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(postgres_url, tmp_path_factory.mktemp("ops-metrics")) as s:
        yield s


@pytest.fixture(scope="module")
def metered(stack: Stack) -> tuple[CeleryProcess, int]:
    port = free_port()
    # no -Q: the worker reads every queue but `notify`, where a test parks a message to see depth and age
    queues = "events,core,data,ml,rag,graph,llm"
    env = {"CIRCUIT_METRICS_PORT": str(port), "CIRCUIT_INGEST_IN_WORKER": "true"}  # and its event stream reader
    # every 25 tasks: each child is replaced about once in the first test (the sums must survive that), and
    # rarely after: a message handed to a child as it exits can stay stuck there (celery#1310, billiard#389),
    # which under a full test run left a later test's run unstarted for its 30 s
    proc = stack.worker("-Q", queues, "--max-tasks-per-child", "25", env=env)
    return proc, port


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counts_match_the_ledger(stack: Stack, metered: tuple[CeleryProcess, int]) -> None:
    proc, port = metered
    sequences = [stack.publish("ops.sequence", {"n": i}) for i in range(6)]
    stack.publish("ops.sequence", {"n": 0}, event_id=sequences[0])  # a duplicate, twice
    stack.publish("ops.sequence", {"n": 1}, event_id=sequences[1])
    sequences += [stack.publish("ops.sequence", {"n": 9}, stream=True) for _ in range(2)]  # the stream reader's
    retries = [stack.publish("ops.retry") for _ in range(2)]
    failures = [stack.publish("ops.failure", {"reason": "no"}) for _ in range(2)]
    stack.app.send_task("circuit.ingest", args=[{"type": "no dots", "source": "x"}], queue="events")
    runs = [stack.run_of(e) for e in sequences + retries + failures]
    # a failed run's on_failure step (alert) is recorded under the run after it ended: wait for it
    runs = [wait_for(lambda e=e: _with_alert(stack, e), 20, "the on_failure step") for e in sequences + retries]
    runs += [wait_for(lambda e=e: _with_alert(stack, e, "alert"), 20, "the on_failure step") for e in failures]

    by_status = Counter((r["circuit"], r["status"]) for r in runs)
    assert by_status == {("ops-sequence", "succeeded"): 8, ("ops-retry", "succeeded"): 2, ("ops-failure", "failed"): 2}
    attempts: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    for run in runs:
        for step in run["steps"]:
            attempts[step["action"]] += step["attempts"]
            retried[step["action"]] += step["attempts"] - 1 if step["status"] == "succeeded" else 0

    def settled() -> dict[Any, float] | None:
        s = scrape(port)
        done = all(value(s, "circuit_step_duration_seconds_count", action=a) >= n for a, n in attempts.items())
        return s if done else None

    s = wait_for(settled, 20, "every step execution in the metrics")
    for (circuit, status), n in by_status.items():
        assert value(s, "circuit_runs_total", circuit=circuit, status=status) == n
        assert value(s, "circuit_run_duration_seconds_count", circuit=circuit) == n
    longest = max((r["ended_at"] - r["started_at"]).total_seconds() for r in runs)
    assert 0 < value(s, "circuit_run_duration_seconds_sum", circuit="ops-sequence") <= 8 * (longest + 1)
    for action, n in attempts.items():
        assert value(s, "circuit_step_duration_seconds_count", action=action) == n, action
    assert value(s, "circuit_step_retries_total", action="core.fail") == retried["core.fail"] == 4
    assert value(s, "circuit_events_total", type="ops.sequence", outcome="accepted") == 8
    assert value(s, "circuit_events_total", type="ops.sequence", outcome="duplicate") == 2
    assert value(s, "circuit_events_total", type="ops.retry", outcome="accepted") == 2
    assert value(s, "circuit_events_total", type="no dots", outcome="rejected") == 0
    assert value(s, "circuit_events_total", type="invalid", outcome="rejected") == 1


def _with_alert(stack: Stack, event_id: str, step: str | None = None) -> dict[str, Any] | None:
    run = stack.run_of(event_id)
    return (
        run if step is None or any(x["step_id"] == step and x["status"] == "succeeded" for x in run["steps"]) else None
    )


def test_gauges_read_from_redis_at_scrape_time(stack: Stack, metered: tuple[CeleryProcess, int]) -> None:
    _, port = metered
    s = scrape(port)
    assert value(s, "circuit_redis_up") == 1
    for queue in ("events", "core", "notify", "ml"):
        assert ("circuit_queue_depth", (("queue", queue),)) in s, queue
    assert value(s, "circuit_queue_depth", queue="notify") == 0
    # a message on a queue nobody reads: depth 1, and its age grows
    stack.app.send_task("circuit.action.notify.slack", args=[{}], queue="notify")
    s = wait_for(lambda: (x := scrape(port)) and value(x, "circuit_queue_depth", queue="notify") == 1 and x, 5, "depth")
    first_age = value(s, "circuit_queue_oldest_age_seconds", queue="notify")
    later = wait_for(
        lambda: value(scrape(port), "circuit_queue_oldest_age_seconds", queue="notify") > first_age + 0.2, 5, "age"
    )
    assert later
    assert ("circuit_ingest_lag_seconds", ()) in s and ("circuit_ledger_lag_seconds", ()) in s
    assert value(s, "circuit_ledger_lag_seconds") < 30


def test_text_log_lines_carry_the_step(stack: Stack, metered: tuple[CeleryProcess, int]) -> None:
    proc, _ = metered
    run = stack.run_of(stack.publish("ops.sequence", {"n": 21}))
    line = wait_for(
        lambda: next((x for x in proc.output().splitlines() if "n=21 doubled=42" in x), None), 10, "the log line"
    )
    assert f"[run={run['id']} circuit=ops-sequence step=say action=core.log attempt=1 tenant=default]" in line
    # Celery's "succeeded" lines do not carry the run context (event data) of our tasks
    assert not re.search(r"succeeded in [0-9.]+s: \{'run'", proc.output())


def test_tracing_off_costs_nothing_and_the_folder_is_fresh(stack: Stack, metered: tuple[CeleryProcess, int]) -> None:
    proc, _ = metered
    out = stack.run_of(stack.publish("ops.probe"))["steps"][0]["output"]
    assert not out["instrumented"] and out["tracer_provider"] in (None, "ProxyTracerProvider")
    assert out["prerun_receivers"] == 0 and out["publish_receivers"] == 1  # our message labels only
    folder = out["multiproc_dir"]
    assert folder and Path(folder).name.startswith("circuit-metrics-") and Path(folder).is_dir()
    assert any(Path(folder).glob("counter_*.db"))
    proc.stop()
    assert not Path(folder).exists(), "the multiprocess folder outlived its worker"
