"""A guard around a kombu race that could kill a worker's main process when Redis goes away.

When the broker connection drops, Celery closes the connection; closing its channel restores the
unacknowledged messages, which needs the channel's Redis pool. If the transport has already let go
of its client by then, kombu's ``Channel._connparams`` reads ``None.hostname`` and raises
``AttributeError`` (the same path as celery/kombu#582), which Celery does not expect there: the
worker logs "Unrecoverable error" and its main process exits, stranding its runs. The chaos suite
hit it once in a Redis ``kill -9``.

Here that state raises a connection error instead, which Celery already ignores while closing; it
then reconnects, and the messages that were not restored come back after the visibility timeout
(their runs are resumed sooner by the watchdog).
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from kombu.transport import redis as kombu_redis

_original = kombu_redis.Channel._connparams


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    if self.connection.client is None:
        raise redis.exceptions.ConnectionError("the broker connection is closed")
    return _original(self, asynchronous=asynchronous)


def install() -> None:
    """Idempotent."""
    kombu_redis.Channel._connparams = _connparams
