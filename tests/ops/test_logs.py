"""Worker logs as JSON lines: every line a step writes names its run, circuit, step, action, attempt
and tenant; no event data, no secret. Read from a real worker's log file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.ops.harness import Stack
from workers import logs
from workers.embedded import CeleryProcess

MARKER = "do-not-log-this-7f3a"


@pytest.fixture(scope="module")
def logged(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, CeleryProcess]]:
    with Stack(postgres_url, tmp_path_factory.mktemp("ops-logs")) as stack:
        yield stack, stack.worker(env={"CIRCUIT_LOG_FORMAT": "json"})


def _lines(proc: CeleryProcess) -> list[dict[str, Any]]:
    out = []
    for line in proc.output().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_every_line_is_json_and_a_steps_lines_carry_its_fields(logged: tuple[Stack, CeleryProcess]) -> None:
    stack, proc = logged
    seq = stack.run_of(stack.publish("ops.sequence", {"n": 4, "secret_data": MARKER}))
    retry = stack.run_of(stack.publish("ops.retry", {"secret_data": MARKER}))
    failed = stack.run_of(stack.publish("ops.failure", {"reason": "password=hunter2 at redis://u:pw@db:6379/0"}))
    wait_for(lambda: any(x.get("step") == "alert" for x in _lines(proc)), 10, "the on_failure step's lines")

    text = proc.output()
    body = [line for line in text.splitlines() if line.strip()]
    # Celery's banner is printed before logging is set up; from the first log line on, all is JSON
    first = next(i for i, line in enumerate(body) if line.startswith("{"))
    assert all(line.startswith("{") for line in body[first:]), [x for x in body[first:] if not x.startswith("{")][:3]
    lines = _lines(proc)

    said = next(x for x in lines if x["msg"].startswith("n=4 doubled=8"))
    assert {k: said.get(k) for k in logs.FIELDS} == {
        "run": seq["id"], "circuit": "ops-sequence", "step": "say", "action": "core.log", "attempt": 1,
        "tenant": "default",
    }  # fmt: skip
    assert said["level"] == "INFO" and said["task"] == "circuit.action.core.log"

    warnings = [x for x in lines if x.get("run") == retry["id"] and x["level"] == "WARNING"]
    assert [(x["step"], x["action"], x["attempt"]) for x in warnings] == [
        ("flaky", "core.fail", 1),
        ("flaky", "core.fail", 2),
    ]
    # every line logged while a step's task ran names the step, whoever logged it
    for run in (seq, retry, failed):
        for x in (x for x in lines if x.get("run") == run["id"]):
            assert all(x.get(k) is not None for k in logs.FIELDS), x

    assert MARKER not in text, "event data reached the log"
    assert "hunter2" not in text and ":pw@" not in text
    assert any(
        "password=***" in x["msg"] and "redis://u:***@db" in x["msg"] for x in lines if x.get("run") == failed["id"]
    )


def test_text_format_puts_the_fields_before_the_message() -> None:
    record = logging.LogRecord("circuits.run", logging.INFO, __file__, 1, "took %d ms", (5,), None)
    record.circuit_fields = {"run": "r1", "circuit": "c", "step": "s", "tenant": "t"}
    out = logs.TextFormatter(logging.Formatter("%(levelname)s %(message)s")).format(record)
    assert out == "INFO [run=r1 circuit=c step=s tenant=t] took 5 ms"
    record.msg, record.args = "token=abc and https://me:pw@host/x", None
    assert (
        logs.TextFormatter(logging.Formatter("%(message)s"))
        .format(record)
        .endswith("token=*** and https://me:***@host/x")
    )
