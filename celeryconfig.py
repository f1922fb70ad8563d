"""Celery settings, mapped from the one Settings object (CIRCUIT_* variables). Nothing else lives here."""

from kombu import Queue

from circuits.actions import QUEUES
from circuits.settings import get_settings
from workers.backend import backend_url
from workers.broker import transport_for

_s = get_settings()

broker_url = _s.redis_url
# kombu's Redis transport, with messages that can ride on a pipeline (workers.broker): a step's done
# mark and its next step go to Redis in one round trip
broker_transport = transport_for(broker_url)
# Celery's Redis backend, with parallel blocks that join inside their last branch (workers.joins)
result_backend = backend_url(_s.redis_url)
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # a worker waits for Redis to come back, however long it takes
# Messages a dead worker had taken come back after this; workers derive it from the longest step
# time limit at start (workers.signals), so a long step is never handed out twice while it runs.
broker_transport_options = {"visibility_timeout": _s.visibility_timeout_s or int(_s.step_timeout_s) + 60}
# Sending the next step must outlast a Redis restart (about a minute), not give up after three tries.
task_publish_retry_policy = {"max_retries": 40, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
result_backend_always_retry = True
result_backend_max_retries = 40

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
if _s.signing:
    # Task and control messages go signed (JSON inside the signature) and unsigned ones are refused;
    # workers.app registers the serializer with the key. Results stay plain JSON in Redis.
    task_serializer = "auth"
    accept_content = ["auth"]
    security_key = str(_s.signing_key)
    security_certificate = str(_s.signing_cert)
    security_cert_store = str(_s.signing_cert_store)

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

# Beat: celery-redbeat keeps the schedule in Redis and lets one beat at a time send ticks (a lock it
# renews every loop); a second beat waits and takes over once the lock lapses. workers/beat.py adds
# the circuits' schedules.
beat_scheduler = {"redbeat": "workers.beat:RedBeatScheduler", "file": "workers.beat:FileScheduler"}[_s.beat_scheduler]
beat_max_loop_interval = min(_s.beat_max_interval_s, _s.beat_lock_timeout_s / 2)  # renew well before it lapses
redbeat_redis_url = _s.redis_url
redbeat_redis_options: dict[str, object] = {}  # not the broker's transport options
redbeat_key_prefix = "circuit:beat:"
redbeat_lock_timeout = _s.beat_lock_timeout_s
