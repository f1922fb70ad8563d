"""Notifications: ``notify.slack``, ``notify.email`` and ``notify.webhook``, one module per channel.

List ``integrations.notify`` in ``CIRCUIT_ACTION_MODULES`` to register all three. Receivers of
``notify.webhook`` check requests with :func:`verify_signature`.
"""

from integrations.notify.email import send_email
from integrations.notify.signing import idempotency_key, sign, verify_signature
from integrations.notify.slack import send_slack
from integrations.notify.webhook import send_webhook

__all__ = ["idempotency_key", "send_email", "send_slack", "send_webhook", "sign", "verify_signature"]
