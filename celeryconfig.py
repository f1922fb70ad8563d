"""Celery settings, mapped from the one Settings object (CIRCUIT_* variables). Nothing else lives here."""

from kombu import Queue

from circuits.actions import QUEUES
from circuits.settings import get_settings

_s = get_settings()

broker_url = _s.redis_url
result_backend = _s.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": 3600}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_send_task_events = True
task_send_sent_event = True

task_queues = [Queue(name) for name in QUEUES]
task_default_queue = "core"
result_expires = _s.result_expires_s
result_extended = False
worker_hijack_root_logger = True
timezone = "UTC"
