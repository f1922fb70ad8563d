"""The Celery tasks: one thin task per action, plus join, branch, foreach, ingest and schedule.

Each wrapper only hands over to :mod:`workers.steps` or :mod:`workers.ingest`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task

from circuits.actions import ActionSpec
from circuits.compiler import (
    BRANCH_TASK,
    CALL_TASK,
    FOREACH_JOIN_TASK,
    FOREACH_TASK,
    JOIN_TASK,
    WAIT_FOR_TASK,
    WAIT_TASK,
    task_name,
)
from circuits.errors import ActionError, CircuitError
from circuits.events import Event
from workers import durable, frames, steps
from workers.ingest import accept, accept_isolated
from workers.patience import patient
from workers.runtime import runtime

INGEST_TASK = "circuit.ingest"
SCHEDULED_TASK = "circuit.scheduled"


class CircuitTask(Task):  # type: ignore[misc]
    """Our failures are expected outcomes: Celery logs them without a traceback."""

    throws = (ActionError, CircuitError)
    ignore_result = True
    max_retries = None  # steps count their own attempts against their retry policy (workers.steps)
    # Celery reprs every return value (the run context) for its log line and the task-succeeded event
    # Flower shows: cut it after the run's ids, before the event's data (which may be personal), and
    # before walking the whole context cost a tenth of a step's CPU
    resultrepr_maxsize = 80


def _action_task(app: Celery, spec: ActionSpec) -> None:
    def run(self: Task, ctx: dict[str, Any], step: dict[str, Any], waits: int = 0) -> dict[str, Any] | None:
        return frames.slim(steps.run_action(self, spec, steps.whole(ctx), step, waits))

    run.__doc__ = spec.description
    app.task(name=task_name(spec.name), bind=True, base=CircuitTask)(run)


def router(queues: dict[str, str]) -> Any:
    """Celery task router: each action's queue, ``events`` for ingest, ``core`` for control tasks."""

    def route(name: str, *_: Any, **__: Any) -> dict[str, str] | None:
        if name in queues:
            return {"queue": queues[name]}
        return {"queue": "core"} if name.startswith("circuit.") else None

    return route


def install(app: Celery) -> None:
    """Register every task on ``app``: one per action in the registry, plus the control tasks."""
    queues = {INGEST_TASK: "events", SCHEDULED_TASK: "events"}
    for spec in runtime().registry:
        _action_task(app, spec)
        queues[task_name(spec.name)] = spec.queue
    app.conf.task_routes = (router(queues),)

    @app.task(name=JOIN_TASK, base=CircuitTask)
    def join(results: list[dict[str, Any]], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(steps.join(results, step))

    @app.task(name=BRANCH_TASK, bind=True, base=CircuitTask)
    def branch(self: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(steps.branch(self, steps.whole(ctx), step))

    @app.task(name=FOREACH_TASK, bind=True, base=CircuitTask)
    def foreach(self: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(steps.foreach(self, steps.whole(ctx), step))

    @app.task(name=FOREACH_JOIN_TASK, bind=True, base=CircuitTask)
    def foreach_join(
        self: Task,
        results: list[dict[str, Any]],
        step: dict[str, Any],
        offset: int,
        gathered: list[Any] | None = None,
    ) -> dict[str, Any]:
        return frames.slim(steps.foreach_join(self, results, step, offset, gathered))

    @app.task(name=WAIT_TASK, bind=True, base=CircuitTask)
    def wait(self: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(durable.wait(self, steps.whole(ctx), step))

    @app.task(name=WAIT_FOR_TASK, bind=True, base=CircuitTask)
    def wait_for(self: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(durable.wait_for(self, steps.whole(ctx), step))

    @app.task(name=CALL_TASK, bind=True, base=CircuitTask)
    def call(self: Task, ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        return frames.slim(durable.call(self, steps.whole(ctx), step))

    @app.task(name=INGEST_TASK, bind=True, base=CircuitTask)
    def ingest(self: Task, envelope: Any) -> dict[str, Any]:
        """Accept one published event: dedupe, match circuits, start their runs."""
        rt = runtime()
        tries = [bool((self.request.delivery_info or {}).get("redelivered"))]

        def go() -> Any:  # after a lost connection the event may be half accepted: go on from there
            reclaimed = any(tries)
            tries.append(True)
            return accept_isolated(rt, envelope, origin="publish", reclaimed=reclaimed)

        accepted = patient(go, rt.settings.redis_wait_s, "ingest")
        return {"accepted": accepted is not None, "runs": accepted.run_ids if accepted else []}

    @app.task(name=SCHEDULED_TASK, bind=True, base=CircuitTask)
    def scheduled(self: Task, circuit: str) -> dict[str, Any]:
        """Start a scheduled circuit (sent by Celery beat); one run per circuit per tick."""
        import beat_schedule
        from workers.beat import TICK_HEADER

        rt = runtime()
        entry = rt.catalog.get(circuit)
        sent = getattr(self.request, TICK_HEADER, None)  # when beat sent it; else now
        when = datetime.fromtimestamp(float(sent), UTC) if sent else datetime.now(UTC)
        tick = beat_schedule.tick_of(entry.circuit.trigger.schedule or "* * * * *", when)
        event = Event(
            id=f"schedule:{circuit}:{tick.isoformat()}",
            source="circuit-os/beat",
            type="circuit.scheduled",
            subject=circuit,
            time=tick,
            data={"circuit": circuit},
        )
        return {"runs": accept(rt, event, only=entry).run_ids}
