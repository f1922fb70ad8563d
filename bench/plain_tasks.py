"""Plain Celery tasks for the side-by-side baseline, on the same app, Redis and worker pool."""

import time

from workers.app import app


@app.task(name="bench.noop", queue="core")
def noop(x=None):  # type: ignore[no-untyped-def]
    return x


@app.task(name="bench.started", queue="core")  # type: ignore[untyped-decorator]
def started(sent_at: float) -> float:
    """Seconds from apply_async to the task starting."""
    return time.time() - sent_at


@app.task(name="bench.stamp", queue="core")
def stamp(x=None):  # type: ignore[no-untyped-def]
    """The wall-clock time (``time.time()``) this task ran: the last link of a chain whose end is timed."""
    return time.time()


@app.task(name="bench.sleep", queue="core")
def sleep(x=None, seconds=0.05):  # type: ignore[no-untyped-def]
    """An I/O-bound step: waits, like a call to a slow API (the circuit side runs core.sleep)."""
    time.sleep(seconds)
    return x
