"""`circuits backtest`: stored events replayed through a circuit's trigger, on real PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from circuits.actions import ActionContext, ActionRegistry, action
from circuits.errors import DefinitionError
from circuits.events import Event
from circuits.loader import CircuitFileErrors
from storage.ledger import EventRow, RunRow, StepRow, apply_batch, list_runs
from tests.conftest import CIRCUITS, FIXTURES
from tests.workers.test_cli import cli
from workers import backtest as bt
from workers.ingest import run_id_for
from workers.runtime import runtime

DAY = 86400.0
CALLS: list[str] = []


class RecordInput(BaseModel):
    note: str


class RecordOutput(BaseModel):
    done: bool


@action("test.record", queue="notify")
def record(ctx: ActionContext, inp: RecordInput) -> RecordOutput:
    """A side effect the dry run must never cause."""
    CALLS.append(inp.note)
    return RecordOutput(done=True)


@pytest.fixture()
def registry() -> ActionRegistry:
    return ActionRegistry.from_modules(["circuits.builtin", sys.modules[__name__]])


@pytest.fixture()
def kind() -> str:
    """An event type prefix of this test's own, so other tests' events stay out of the window."""
    return f"bt{uuid.uuid4().hex[:10]}"


def store(engine: Any, kind: str, *events: tuple[str, str, Any, float]) -> list[str]:
    """Write events as ingest records them: (id suffix, type suffix, data, seconds ago)."""
    now = time.time()
    records = [
        {
            "k": "event",
            "id": f"{kind}-{name}",
            "tenant": "default",
            "type": f"{kind}.{type_}",
            "source": "test",
            "subject": f"lead-{name}",
            "idempotencykey": None,
            "time_ts": now - ago,
            "at": now - ago,
            "data": data,
            "runs": 0,
        }
        for name, type_, data, ago in events
    ]
    apply_batch(engine, records)
    return [r["id"] for r in records]


LOG_STEP = '  - {id: say, action: core.log, with: {message: "lead {{ event.subject }}"}}'


def circuit_file(tmp_path: Path, kind: str, steps: str = LOG_STEP) -> Path:
    path = tmp_path / "lead.yaml"
    path.write_text(
        f"""name: backtested
trigger:
  event: "{kind}.*"
  when: "event.data.size >= 10"
vars: {{team: sales}}
steps:
{steps}
""",
        encoding="utf-8",
    )
    return path


def since(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def test_counts_matches_errors_and_the_window(ledger: Any, registry: ActionRegistry, kind: str, tmp_path: Path) -> None:
    store(
        ledger,
        kind,
        ("big", "created", {"size": 30}, 300),
        ("small", "created", {"size": 5}, 290),
        ("text", "created", {"size": "many"}, 280),
        ("updated", "updated", {"size": 12}, 270),
        ("old", "created", {"size": 50}, 10 * DAY),
    )
    store(ledger, f"{kind}x", ("elsewhere", "created", {"size": 99}, 200))  # a type the pattern never fits
    path = circuit_file(tmp_path, kind)

    report = bt.backtest(ledger, path, since(7), registry=registry, foreach_cap=100)

    assert (report.scanned, report.matched, report.not_matched, report.errors) == (4, 2, 1, 1)
    assert report.sample == [f"{kind}-big", f"{kind}-updated"]
    assert {t: (c.events, c.matched, c.not_matched, c.errors) for t, c in report.by_type.items()} == {
        f"{kind}.created": (3, 1, 1, 1),
        f"{kind}.updated": (1, 1, 0, 0),
    }
    [error] = report.condition_errors
    assert error.event_id == f"{kind}-text" and "event.data.size >= 10" in error.error
    assert not report.limit_reached and report.dry_runs == []

    older = bt.backtest(ledger, path, since(30), until=since(1), registry=registry, foreach_cap=100)
    assert (older.scanned, older.sample) == (1, [f"{kind}-old"])


def test_pages_and_limit(ledger: Any, registry: ActionRegistry, kind: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(bt, "PAGE_SIZE", 2)  # several pages, with ties on received_at across page ends
    ids = store(ledger, kind, *((f"e{i}", "created", {"size": 10 + i}, 100 - (i // 2)) for i in range(7)))
    path = circuit_file(tmp_path, kind)

    every = bt.backtest(ledger, path, since(1), registry=registry, foreach_cap=100)
    assert (every.scanned, every.matched, every.sample, every.limit_reached) == (7, 7, ids, False)

    first = bt.backtest(ledger, path, since(1), limit=3, registry=registry, foreach_cap=100)
    assert (first.scanned, first.sample, first.limit_reached) == (3, ids[:3], True)


STEPS = """  - id: score
    action: core.set
    with: {score: "{{ event.data.size * 2 }}", team: "{{ vars.team }}"}
  - id: notify
    action: test.record
    with: {note: "lead {{ event.subject }} scored {{ steps.score.score }}"}
  - id: route
    if: "steps.score.score >= 40"
    then:
      - {id: hot, action: test.record, with: {note: "hot for {{ steps.score.team }}"}}
    else:
      - {id: cold, action: core.set, with: {status: cold}}
  - id: check
    if: "steps.notify.done"
    then:
      - {id: confirmed, action: test.record, with: {note: confirmed}}
  - id: again
    action: test.record
    with: {note: "after {{ steps.notify.done }}"}
  - id: contacts
    foreach: event.data.contacts
    do:
      - {id: greet, action: test.record, with: {note: "hi {{ item }}"}}
"""


def ledger_rows(engine: Any, kind: str) -> list[int]:
    """Events, runs and steps of this test's events (other tests' workers may still be writing theirs)."""
    runs = sa.select(RunRow.id).where(RunRow.event_id.startswith(kind))
    queries = [
        sa.select(sa.func.count()).where(EventRow.id.startswith(kind)),
        sa.select(sa.func.count()).where(RunRow.event_id.startswith(kind)),
        sa.select(sa.func.count()).where(StepRow.run_id.in_(runs)),
    ]
    with engine.connect() as conn:
        return [int(conn.execute(q).scalar_one()) for q in queries]


def test_dry_run_renders_inputs_and_calls_no_side_effect(
    ledger: Any, registry: ActionRegistry, kind: str, tmp_path: Path
) -> None:
    store(
        ledger,
        kind,
        ("hot", "created", {"size": 30, "contacts": ["ann", "bob", "cy"]}, 60),
        ("cool", "created", {"size": 12, "contacts": []}, 50),
        ("broken", "created", {"size": 15, "contacts": "ann"}, 40),
    )
    path = circuit_file(tmp_path, kind, STEPS)
    assert ledger_rows(ledger, kind) == [3, 0, 0]
    CALLS.clear()

    report = bt.backtest(ledger, path, since(1), dry_run=True, registry=registry, foreach_cap=100)

    assert CALLS == []  # no action with side effects ran
    assert ledger_rows(ledger, kind) == [3, 0, 0]  # no run, no step, no event added
    for name in ("hot", "cool", "broken"):
        event = Event(id=f"{kind}-{name}", source="test", type=f"{kind}.created")
        assert list_runs(ledger, event_id=event.id) == []
        assert not runtime().redis.exists(f"circuit:started:{run_id_for(event, 'backtested')}")
    assert report.matched == 3 and report.would_fail == 1
    assert report.would_call == {"test.record": 7}  # 3 + 2 + 2 before "broken" fails
    hot, cool, broken = report.dry_runs
    steps = {s.step: s for s in hot.steps}
    assert steps["score"].status == "called (side-effect-free)"
    assert steps["score"].output == {"score": 60, "team": "sales"}
    assert steps["notify"].status == "would call"
    assert steps["notify"].inputs == {"note": "lead lead-hot scored 60"}
    assert steps["route"].status == "condition true: then"
    assert steps["hot"].inputs == {"note": "hot for sales"} and steps["hot"].depth == 1
    assert steps["check"].status == "condition unknown (depends on step notify); neither branch walked"
    assert "confirmed" not in steps
    assert steps["again"].inputs == {"note": "unknown (depends on step notify)"}
    assert steps["contacts"].items == 3 and hot.failed_at is None
    assert {s.step: s.status for s in cool.steps}["cold"] == "called (side-effect-free)"
    assert {s.step: s.items for s in cool.steps}["contacts"] == 0
    assert broken.failed_at == "contacts" and "needs a list" in str(broken.error)


def test_cron_circuit_and_invalid_file(registry: ActionRegistry, ledger: Any) -> None:
    with pytest.raises(DefinitionError, match="event triggers only") as exc:
        bt.backtest(ledger, CIRCUITS / "scheduled.yaml", since(7), registry=registry, foreach_cap=100)
    assert exc.value.line == 2 and str(exc.value).startswith(str(CIRCUITS / "scheduled.yaml") + ":2:")
    with pytest.raises(CircuitFileErrors) as bad:
        bt.load_entry(FIXTURES / "invalid" / "many_problems.yaml", registry)
    assert len(bad.value.errors) > 3 and all(e.line for e in bad.value.errors)


def test_parse_time() -> None:
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert bt.parse_time("30m", now) == datetime(2024, 5, 8, 11, 30, tzinfo=UTC)
    assert bt.parse_time("12h", now) == datetime(2024, 5, 8, 0, 0, tzinfo=UTC)
    assert bt.parse_time("7d", now) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert bt.parse_time("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert bt.parse_time("2024-05-01T08:00:00+02:00", now) == datetime(2024, 5, 1, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        bt.parse_time("7 days", now)


def test_cli_report_json_and_errors(engine_env: dict[str, str], ledger: Any, kind: str, tmp_path: Path) -> None:
    store(ledger, kind, ("yes", "created", {"size": 20}, 60), ("no", "created", {"size": 1}, 60))
    store(ledger, kind, ("bad", "created", {"size": None}, 60))
    path = circuit_file(tmp_path, kind)

    text = cli(engine_env, "circuits", "backtest", str(path), "--since", "1h", "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "scanned 3 event(s): 1 would fire, 1 would not, 1 condition error(s)" in text.stdout
    assert f"{kind}-yes" in text.stdout and f"{kind}-bad ({kind}.created):" in text.stdout
    assert "would call core.log x1" in text.stdout and '{"message": "lead lead-yes"}' in text.stdout

    as_json = cli(engine_env, "circuits", "backtest", str(path), "--since", "1h", "--json")
    report = json.loads(as_json.stdout)
    assert (report["matched"], report["sample"], report["errors"]) == (1, [f"{kind}-yes"], 1)
    assert report["condition_errors"][0]["event_id"] == f"{kind}-bad"
    assert report["by_type"][f"{kind}.created"] == {"events": 3, "matched": 1, "not_matched": 1, "errors": 1}

    cron = cli(engine_env, "circuits", "backtest", str(CIRCUITS / "scheduled.yaml"))
    assert cron.returncode == 1 and "event triggers only" in cron.stderr and "Traceback" not in cron.stderr
    invalid = cli(engine_env, "circuits", "backtest", str(FIXTURES / "invalid" / "many_problems.yaml"))
    assert invalid.returncode == 1 and "many_problems.yaml:10: steps.1.action: unknown action" in invalid.stderr
    bad_since = cli(engine_env, "circuits", "backtest", str(path), "--since", "soon")
    assert bad_since.returncode == 2 and "neither a duration" in bad_since.stderr
