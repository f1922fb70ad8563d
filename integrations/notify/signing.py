"""What a receiver needs to trust a delivery and to drop a repeat.

A webhook body is signed with HMAC-SHA256 over ``"<timestamp>.<body>"`` (the Stripe scheme), so a
receiver can check both who sent it and that it is fresh; the idempotency key depends only on
the run and the step, so every attempt of one step carries the same key and a receiver that
has seen it can answer 2xx without acting again.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "idempotency_key",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Circuit-Signature"
TIMESTAMP_HEADER = "X-Circuit-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def sign(secret: str | bytes, timestamp: str | int, body: str | bytes) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    mac = hmac.new(_bytes(secret), f"{timestamp}.".encode("ascii") + _bytes(body), hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: str | bytes,
    header: str,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if ``header`` signs ``body`` at ``timestamp`` with ``secret``, and the timestamp is fresh.

    Args:
        secret: the target's shared secret.
        timestamp: the ``X-Circuit-Timestamp`` header (Unix seconds).
        body: the raw request body, exactly as received (do not re-serialize the JSON).
        header: the ``X-Circuit-Signature`` header, ``sha256=<hex>``.
        tolerance_s: how far the timestamp may be from now, either way, so a captured request
            cannot be replayed later.
        now: the current Unix time (for tests); default the clock.
    """
    stamp = str(timestamp).strip()
    try:
        sent = int(stamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    if not isinstance(header, str) or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, stamp, body).encode("ascii"), header.strip().encode("ascii", "replace"))


def idempotency_key(run_id: str, step_id: str) -> str:
    """The same for every attempt of one step of one run; different for any other step or run."""
    return hashlib.sha256(f"circuit-os\x00{run_id}\x00{step_id}".encode()).hexdigest()[:32]
