"""Our result backend: Celery's Redis backend with two changes.

* Chord parts of our parallel blocks are counted by :mod:`workers.joins` (the last branch makes
  the join); every other chord part goes to Celery as before.
* Results registered inside :func:`workers.results.dropping_new` (the header results of a chord
  we launch, which nobody waits on) are not subscribed to at all, instead of being subscribed to
  and dropped: two Redis round trips and a promise fewer per branch.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend as CeleryRedisBackend

from workers import broker, joins, results

#: ``result_backend`` class for a ``redis://`` backend (celeryconfig).
BACKEND = "workers.backend:RedisBackend"


def backend_url(url: str) -> str:
    """The ``result_backend`` setting for ``url``: ours for plain ``redis://``, Celery's otherwise."""
    return f"{BACKEND}+{url}" if broker.transport_for(url) else url


class RedisBackend(CeleryRedisBackend):  # type: ignore[misc]
    def on_chord_part_return(self, request: Any, state: str, result: Any, **kwargs: Any) -> Any:
        body = joins.handles(self, request, state)
        if body is None:
            return super().on_chord_part_return(request, state, result, **kwargs)
        joins.arrive(self, request, body, result)
        return None

    def add_pending_result(self, result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
        if results.unwatched():  # a chord's header results, in a launch nobody waits on (dropped anyway)
            return result
        return super().add_pending_result(result, weak=weak, start_drainer=start_drainer)
