"""Results nobody waits for, let go.

Applying a chord (a ``parallel`` block, a ``foreach`` batch) makes Celery build a ``GroupResult``,
which registers every header result with the Redis result backend: one Redis subscription and one
result object each, kept until someone waits on them. A worker never waits on a result (Celery
forbids it inside a task) and a producer that starts a run does not either, so without this they
pile up for ever: 2,500 subscriptions after 250 ten-way runs in a pool child, with Redis pushing
every header result to connections that never read them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_local = threading.local()


def _pending(backend: Any) -> list[Any]:
    return [
        res
        for mapping in getattr(backend, "_pending_results", ())
        for waiters in list(mapping.values())
        for res in list(waiters.values())
    ]


def drop_all(backend: Any) -> int:
    """Stop listening for every result this process holds (for a worker's pool child, after each task)."""
    found = _pending(backend)
    for res in found:
        backend.remove_pending_result(res)
    return len(found)


def unwatched() -> bool:
    """True inside :func:`dropping_new` in this thread: our backend (:mod:`workers.backend`) then does
    not subscribe for a chord's header results at all."""
    return bool(getattr(_local, "depth", 0))


@contextmanager
def dropping_new(backend: Any) -> Iterator[None]:
    """Stop listening for the results registered inside the block, keeping those a caller waits on."""
    before = {id(res) for res in _pending(backend)}
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        for res in _pending(backend):  # Celery's own backend (TLS, sentinel) subscribed them: let go
            if id(res) not in before:
                backend.remove_pending_result(res)
