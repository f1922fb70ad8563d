"""Every unfinished run is tracked, so none can stop moving unnoticed.

``circuit:active`` is a sorted set of run ids scored by a deadline: the time by which
the run must show progress again. Starting a run, starting a step (and the lease
heartbeat while it runs) and finishing a step push the deadline on; ending the run
removes it. The run's starting context is saved in its done hash (``__ctx__``), so a
run can be started again from the beginning: steps that succeeded return their
stored outputs (see :mod:`workers.claims`), and the run goes on from where it stopped.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from celery.canvas import Signature

from circuits.compiler import bind
from workers import results
from workers.recorder import ACTIVE, STARTED, done_key

__all__ = ["ACTIVE", "launch", "moved", "saved_context", "track"]
CTX_FIELD = "__ctx__"
RESUMES_FIELD = "__resumes__"


def track(pipe: redis.client.Pipeline, run_id: str, ctx: dict[str, Any], stall_s: float) -> None:
    """Save the starting context and put the run under watch (queued on ``pipe``); its start is kept
    for the duration governor (see :mod:`workers.governors`)."""
    pipe.hset(done_key(run_id), CTX_FIELD, json.dumps(ctx, separators=(",", ":"), default=str))
    pipe.zadd(ACTIVE, {run_id: time.time() + stall_s})
    pipe.zadd(STARTED, {run_id: ctx["run"]["started_at"]}, nx=True)


def moved(pipe: redis.client.Pipeline, run_id: str, stall_s: float) -> None:
    """The run made progress: it has ``stall_s`` until it must move again."""
    pipe.zadd(ACTIVE, {run_id: time.time() + stall_s}, xx=True)


def saved_context(r: redis.Redis, run_id: str) -> dict[str, Any] | None:
    raw = r.hget(done_key(run_id), CTX_FIELD)
    return json.loads(raw) if raw is not None else None


def new_run_priority(trigger_priority: int) -> int:
    """The broker priority of a new run's first messages: behind the steps of runs under way.

    kombu's Redis transport serves lower numbers first and keeps a list per step 0, 3, 6, 9.
    Steps that continue a run are sent at 0 (Celery's default), so in a burst the runs already
    started finish first instead of waiting behind every new run's first step; among new runs,
    a circuit's trigger priority orders them (6-9: 3, 1-5: 6, 0: 9).
    """
    if trigger_priority >= 6:
        return 3
    return 6 if trigger_priority >= 1 else 9


def launch(canvas: Signature | dict[str, Any], ctx: dict[str, Any], **options: Any) -> None:
    """Send a run's canvas with its context: the one way a run is started or resumed.

    Bound to our app explicitly: a signature without one goes through Celery's *current* app,
    which is whichever app a library or test created last.
    """
    app = app_of_launch()
    with results.dropping_new(app.backend):  # nobody waits on a run's results (see workers.results)
        bind(canvas if isinstance(canvas, dict) else dict(canvas), ctx, app=app).apply_async(**options)


def app_of_launch() -> Any:
    """Our Celery app (imported at call time: the app installs the tasks, which reach this module)."""
    from workers.app import app

    return app
