"""Publish to recorded run, on a real Redis, a real prefork worker and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import new_id, wait_for
from workers.publish import publish


def steps_by_id(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for s in run["steps"]}


def test_sequence_passes_outputs_along(run_of: Any) -> None:
    event = publish("test.sequence", {"n": 20}, id=new_id())
    run = run_of(event.id, "t-sequence")
    assert run["status"] == "succeeded"
    steps = steps_by_id(run)
    assert [s["step_id"] for s in run["steps"]] == ["first", "second", "third"]
    assert steps["second"]["output"] == {"plus_one": 41}
    assert steps["third"]["output"] == {"logged": "n=20 -> 41"}
    assert all(s["status"] == "succeeded" and s["attempts"] == 1 for s in run["steps"])
    assert run["circuit_version"].startswith("1+")
    assert run["ended_at"] >= run["started_at"]


def test_nested_parallel_blocks_join_their_outputs(run_of: Any) -> None:
    event = publish("test.parallel", {"base": 10}, id=new_id())
    run = run_of(event.id, "t-parallel")
    assert run["status"] == "succeeded", run["error"]
    steps = steps_by_id(run)
    assert steps["total"]["output"] == {"sum": 11 + 12 + 120 + 4}
    assert steps["fan"]["output"] == {"branches": 3}
    assert steps["inner"]["output"] == {"branches": 2}


def test_a_parallel_block_is_joined_by_its_last_branch_not_by_a_task_of_its_own(run_of: Any, worker: Any) -> None:
    """The join is made where the last branch ends (workers.joins): the worker's own task counts
    (``celery inspect stats``) show branch tasks run and no ``circuit.join`` task."""
    from workers.app import app

    def counts() -> dict[str, int]:
        stats = app.control.inspect(timeout=5).stats() or {}
        total: dict[str, int] = {}
        for worker_stats in stats.values():
            for name, n in worker_stats.get("total", {}).items():
                total[name] = total.get(name, 0) + n
        return total

    before = counts()
    events = [publish("test.parallel", {"base": i}, id=new_id()) for i in range(3)]
    assert all(run_of(e.id, "t-parallel")["status"] == "succeeded" for e in events)
    after = counts()
    assert after.get("circuit.action.core.set", 0) - before.get("circuit.action.core.set", 0) == 3 * 6
    assert after.get("circuit.join", 0) == before.get("circuit.join", 0)


def test_parallel_runs_leave_no_result_subscriptions_behind(run_of: Any) -> None:
    """Each chord registered its header results with the result backend (a Redis subscription each)
    in the worker, for ever: 30 runs of this circuit left 150 behind. Nobody waits on them now."""
    from workers.runtime import runtime

    def subscriptions() -> int:
        return sum(int(c.get("sub", 0)) + int(c.get("psub", 0)) for c in runtime().redis.client_list())

    events = [publish("test.parallel", {"base": i}, id=new_id()) for i in range(30)]
    assert all(run_of(e.id, "t-parallel")["status"] == "succeeded" for e in events)
    assert subscriptions() < 10


def test_branch_takes_then_or_else(run_of: Any) -> None:
    hot = publish("test.branch", {"score": 91}, id=new_id())
    cold = publish("test.branch", {"score": 12}, id=new_id())
    hot_run, cold_run = run_of(hot.id, "t-branch"), run_of(cold.id, "t-branch")
    hot_steps, cold_steps = steps_by_id(hot_run), steps_by_id(cold_run)
    assert hot_steps["route"]["output"] == {"condition": True, "taken": "then"}
    assert {"hot", "n1", "n2", "notify"} <= set(hot_steps) and "cold" not in hot_steps
    assert hot_steps["after"]["output"] == {"taken": "then"}
    assert cold_steps["cold"]["output"] == {"status": "nurture"} and "hot" not in cold_steps
    assert cold_steps["after"]["output"] == {"taken": "else"}
    assert hot_run["status"] == cold_run["status"] == "succeeded"


def test_trigger_condition_filters_events(ledger: Any, run_of: Any) -> None:
    from sqlalchemy import select

    from storage.ledger import EventRow, list_runs

    skipped = publish("test.branch", {"no_score": True}, id=new_id())
    control = publish("test.branch", {"score": 1}, id=new_id())
    run_of(control.id)

    def recorded() -> Any:
        with ledger.connect() as conn:
            return conn.execute(select(EventRow.runs_started).where(EventRow.id == skipped.id)).first()

    assert wait_for(recorded, 15, "the skipped event in the ledger").runs_started == 0
    assert list_runs(ledger, event_id=skipped.id) == []


def test_foreach_fans_out_in_batches_and_gathers_in_order(run_of: Any) -> None:
    contacts = [{"name": n} for n in ["ann", "bob", "cy", "dee", "eve"]]
    event = publish("test.foreach", {"contacts": contacts}, id=new_id())
    run = run_of(event.id, "t-foreach")
    assert run["status"] == "succeeded", run["error"]
    steps = steps_by_id(run)
    assert steps["count"]["output"] == {"n": 5, "names": ["ANN", "BOB", "CY", "DEE", "EVE"]}
    assert steps["each[3].greet"]["output"] == {"hello": "dee", "at": 3}
    assert steps["each"]["output"] == {"items": 5}


def test_foreach_over_many_batches_gathers_every_output_in_item_order(run_of: Any) -> None:
    names = [f"n{i:02d}" for i in range(25)]  # 13 batches of 2: offsets past 9 sort as numbers, not text
    event = publish("test.foreach", {"contacts": [{"name": n} for n in names]}, id=new_id())
    run = run_of(event.id, "t-foreach")
    assert run["status"] == "succeeded", run["error"]
    assert steps_by_id(run)["count"]["output"] == {"n": 25, "names": [n.upper() for n in names]}


def test_foreach_over_an_empty_list_still_continues(run_of: Any) -> None:
    event = publish("test.foreach", {"contacts": []}, id=new_id())
    run = run_of(event.id, "t-foreach")
    assert steps_by_id(run)["count"]["output"] == {"n": 0, "names": []}


def test_retry_then_success_is_recorded_with_attempts(run_of: Any) -> None:
    event = publish("test.retry", {}, id=new_id())
    run = run_of(event.id, "t-retry")
    assert run["status"] == "succeeded", run["error"]
    steps = steps_by_id(run)
    assert steps["flaky"]["attempts"] == 3
    assert steps["after"]["output"] == {"attempt": 3}


def test_failure_stops_the_run_and_runs_on_failure(run_of: Any, ledger: Any) -> None:
    from storage.ledger import get_run

    event = publish("test.failure", {"reason": "card declined"}, id=new_id())
    run = run_of(event.id, "t-failure")
    assert run["status"] == "failed"
    assert "boom" in run["error"] and "card declined" in run["error"]
    run = wait_for(
        lambda: (r := get_run(ledger, run["id"])) and "alert" in steps_by_id(r) and r, 15, "the on_failure step"
    )
    steps = steps_by_id(run)
    assert steps["boom"]["status"] == "failed" and steps["boom"]["attempts"] == 1
    assert "never" not in steps
    assert steps["alert"]["output"] == {"failed_step": "boom", "why": "card declined"}
    assert run["status"] == "failed"


def test_a_task_failing_inside_a_chord_fails_the_run_without_hanging(run_of: Any, ledger: Any) -> None:
    from storage.ledger import get_run

    event = publish("test.chord_failure", {}, id=new_id())
    started = time.monotonic()
    run = run_of(event.id, "t-chord-failure", timeout=20)
    assert run["status"] == "failed"
    assert "bad" in run["error"]
    run = wait_for(
        lambda: (r := get_run(ledger, run["id"])) and {"alert", "slow"} <= set(steps_by_id(r)) and r,
        15,
        "on_failure and the other branches",
    )
    steps = steps_by_id(run)
    assert steps["bad"]["status"] == "failed" and steps["bad"]["attempts"] == 2
    assert steps["good"]["status"] == "succeeded"
    assert steps["alert"]["output"] == {"failed_step": "bad"}
    assert "never" not in steps and "fan" not in steps
    assert time.monotonic() - started < 20


def test_a_step_over_its_time_limit_fails(run_of: Any) -> None:
    event = publish("test.timeout", {}, id=new_id())
    run = run_of(event.id, "t-timeout", timeout=20)
    assert run["status"] == "failed"
    assert "timed out" in steps_by_id(run)["slow"]["error"]


def test_wildcard_trigger_and_tenant(run_of: Any) -> None:
    event = publish("test.wild.anything", {}, id=new_id(), tenant="acme")
    run = run_of(event.id, "t-wildcard")
    assert steps_by_id(run)["seen"]["output"] == {"type": "test.wild.anything", "tenant": "acme"}


def test_nested_foreach_items_see_the_event_and_every_enclosing_step(run_of: Any) -> None:
    """Items carry a frame's name, not the context (workers.frames): an inner item still reads the
    event, a step before both loops and a step of its outer item, through an ``if`` and a ``parallel``."""
    teams = [{"name": "red", "members": ["ann", "bob", "cy"]}, {"name": "blue", "members": ["dee", "eve"]}]
    data = {"greeting": "hi", "org": "acme", "teams": teams}
    event = publish("test.foreach-nested", data, id=new_id())
    run = run_of(event.id, "t-foreach-nested")
    assert run["status"] == "succeeded", run["error"]
    steps = steps_by_id(run)
    assert steps["summary"]["output"] == {"teams": 2, "last": "hi eve of acme"}
    assert steps["teams[0].people[2].hello"]["output"] == {"text": "hi cy of acme"}
    assert steps["teams[0].people[1].where"]["output"] == {"at": 1, "lead": "then"}
    assert steps["teams[1].people[0].where"]["output"] == {"at": 0, "lead": "none"}
    assert steps["teams[0].first"]["output"] == {"team": "red"}
    assert steps["teams"]["output"] == {"items": 2}


def test_foreach_items_do_not_carry_the_event_through_redis(run_of: Any, engine_env: Any) -> None:
    """The same 100-item foreach with and without 20 KB more event data: the run's traffic into Redis
    grows by a few copies of the event (stream, ledger, frame, the steps outside the loop), not by one
    per item and per item's result (20 MB more before frames, workers.frames)."""
    import redis

    r = redis.Redis.from_url(engine_env["CIRCUIT_REDIS_URL"])
    contacts = [{"name": f"c{i}"} for i in range(100)]

    def traffic(data: dict[str, Any]) -> int:
        before = r.info("stats")["total_net_input_bytes"]
        event = publish("test.foreach", {"contacts": contacts, **data}, id=new_id())
        run = run_of(event.id, "t-foreach")
        assert run["status"] == "succeeded", run["error"]
        assert steps_by_id(run)["count"]["output"]["n"] == 100
        return int(r.info("stats")["total_net_input_bytes"] - before)

    lean, padded = traffic({}), traffic({"notes": "x" * 20_000})
    assert padded - lean < 25 * 20_000, f"{lean:,} bytes into Redis, {padded:,} with 20 KB more event data"
