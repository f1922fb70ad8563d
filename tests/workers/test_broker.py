"""The kombu race that killed a worker's main process in a Redis kill -9 (see workers.broker)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kombu.common import ignore_errors


def test_closing_a_channel_whose_transport_let_go_of_its_client_is_a_connection_error(engine_env: Any) -> None:
    from workers.app import app

    queue = f"test-broker-{uuid.uuid4().hex[:8]}"
    conn = app.connection_for_write()
    channel = conn.default_channel
    channel.queue_declare(queue)
    channel.basic_publish(channel.prepare_message("{}", content_type="application/json"), "", queue)
    assert channel.basic_get(queue, no_ack=False) is not None  # taken, not acknowledged
    # the state a lost connection can leave: the pool gone, the transport no longer holding its client
    channel._pool = None
    conn.transport.client = None
    with pytest.raises(conn.connection_errors):
        channel.close()
    ignore_errors(conn, conn.release)  # what Celery's consumer does after a lost connection: no crash


def test_a_message_riding_on_a_pipeline_is_sent_when_the_pipeline_runs_and_not_before(engine_env: Any) -> None:
    """A step's done mark and its next step's message go in one MULTI: the message must not reach the
    queue before the MULTI runs, nor at all if it never runs (see workers.broker.riding)."""
    from workers import broker
    from workers.app import app
    from workers.runtime import runtime

    rt = runtime()
    assert broker.can_ride(app, rt.settings.redis_url)
    queue = f"test-ride-{uuid.uuid4().hex[:8]}"
    marker = f"test-ride-mark-{queue}"

    def send(pipe: Any) -> str:
        with broker.riding(pipe):
            return str(app.send_task("circuit.noop-not-run", queue=queue).id)

    dropped = rt.redis.pipeline(transaction=True)
    send(dropped)
    dropped.reset()  # the MULTI never runs (say the step failed to record): nothing was sent
    assert rt.redis.llen(queue) == 0

    pipe = rt.redis.pipeline(transaction=True)
    pipe.set(marker, "done")
    task_id = send(pipe)
    assert rt.redis.llen(queue) == 0 and rt.redis.get(marker) is None  # queued, not sent
    pipe.execute()
    assert rt.redis.get(marker) == b"done"
    sent = [m for m in rt.redis.lrange(queue, 0, -1)]
    assert len(sent) == 1 and task_id.encode() in sent[0]
    app.send_task("circuit.noop-not-run", queue=queue)  # outside the block: sent at once, as Celery does
    assert rt.redis.llen(queue) == 2
    rt.redis.delete(queue, marker)
