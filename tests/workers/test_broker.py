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
