"""Our kombu Redis transport: messages that ride on a pipeline, and a guard around a kombu race.

**Riding** (:func:`riding`): inside ``with riding(pipe):``, whatever this thread publishes to the
broker (a task message, its task-sent event) is queued on ``pipe`` instead of sent at once, through
kombu's own publish-batch hook (``_publish_batch``, the one ``Producer.batch()`` uses). The caller
executes ``pipe``: a step's next step and its task-sent event then go in one round trip, the last
branch of a parallel block records the join and sends what follows in one MULTI, and ingest sends
a slice of a batch's runs in one round trip. :func:`commands_of` gives the commands instead, for a
script to run only if a condition holds. It needs the broker
on the same Redis as the engine's state (:func:`can_ride`); otherwise callers send as Celery does.

**The guard** is around a kombu race that could kill a worker's main process when Redis goes away.

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

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import redis.exceptions
from kombu.transport import redis as kombu_redis

#: ``broker_transport`` for a ``redis://`` broker (celeryconfig): kombu's Redis transport with riding.
TRANSPORT = "workers.broker:Transport"
_riding = threading.local()

_original = kombu_redis.Channel._connparams


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    if self.connection.client is None:
        raise redis.exceptions.ConnectionError("the broker connection is closed")
    return _original(self, asynchronous=asynchronous)


def install() -> None:
    """Idempotent."""
    kombu_redis.Channel._connparams = _connparams


class _Onto:
    """kombu's ``_publish_batch`` protocol: each final Redis command of a publish goes onto ``pipe``."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe

    def add(self, name: str, *args: Any) -> None:
        getattr(self.pipe, name)(*args)


class Channel(kombu_redis.Channel):
    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """kombu builds a new Redis client object for every publish and ack (a fifth of a busy worker's
        main process, publishing task events); one client per connection pool is enough: redis-py clients
        are thread-safe and take a connection from the pool per command."""
        if client is not None:
            yield client
            return
        pool = self.pool
        cached = self.__dict__.get("_shared_client")
        if cached is None or cached.connection_pool is not pool:
            cached = self.__dict__["_shared_client"] = self._create_client()
        yield cached

    def basic_publish(self, message: Any, exchange: str, routing_key: str, **kwargs: Any) -> Any:
        pipe = getattr(_riding, "pipe", None)
        if pipe is not None and kwargs.get("_publish_batch") is None:
            kwargs["_publish_batch"] = _Onto(pipe)
        return super().basic_publish(message, exchange, routing_key, **kwargs)


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(url: str) -> str | None:
    """Our transport for a plain ``redis://`` URL; None (kombu's choice) for TLS, sentinel and others."""
    return TRANSPORT if urlsplit(url).scheme == "redis" else None


def can_ride(app: Any, state_url: str) -> bool:
    """Messages can ride on a pipeline of the engine's state Redis: our transport, the same server."""
    conf = app.conf
    return bool(conf.broker_transport == TRANSPORT and conf.broker_url == state_url)


@contextmanager
def riding(pipe: Any) -> Iterator[None]:
    """Queue this thread's broker publishes on ``pipe`` (a pipeline on the broker's Redis) until the block
    ends; the caller executes ``pipe``. Nothing is sent if it is never executed."""
    before = getattr(_riding, "pipe", None)
    _riding.pipe = pipe
    try:
        yield
    finally:
        _riding.pipe = before


class _Recorder:
    """Stands in for a pipeline under :func:`riding`: notes each command instead of queueing it."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: self.commands.append((name, *args))


def commands_of(publish: Callable[[], Any]) -> list[tuple[Any, ...]]:
    """The Redis commands (``('lpush', key, body)``, ...) that ``publish`` would send, unsent: to run in a
    script, only if a condition holds (ingest sends a run only if it is new, in one round trip)."""
    recorder = _Recorder()
    with riding(recorder):
        publish()
    return recorder.commands
