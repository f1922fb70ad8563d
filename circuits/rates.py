"""Rate limits as written in circuit files and ``@action``: ``"1/s"``, ``"10/m"``, ``"5/10s"``, ``"100/h per tenant"``.

Pure parsing, no I/O; the shared limiter that enforces a :class:`Rate` across
workers lives in :mod:`workers.limits`. A rate means calls spaced evenly, one every
``period / count`` seconds, with no burst: ``"60/m"`` is one per second, never 60 at once,
because the services we protect (Slack, CRMs) count per second as well as per minute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["RATE_PATTERN", "Rate", "parse_rate"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The written form, also published in the JSON schema.
RATE_PATTERN = r"^\s*[0-9]+\s*/\s*([0-9]+(\.[0-9]+)?)?\s*[smhd]\s*(per\s+tenant\s*)?$"
_RATE = re.compile(
    r"^\s*(?P<count>[0-9]+)\s*/\s*(?P<every>[0-9]+(\.[0-9]+)?)?\s*(?P<unit>[smhd])\s*(?P<tenant>per\s+tenant\s*)?$"
)


@dataclass(frozen=True)
class Rate:
    """``count`` calls per ``period_s`` seconds, optionally counted per tenant."""

    count: int
    period_s: float
    per_tenant: bool = False

    @property
    def interval_s(self) -> float:
        """Seconds between two calls."""
        return self.period_s / self.count


def parse_rate(text: str) -> Rate:
    """Parse ``"<count>/<unit>"`` where unit is s, m, h or d, optionally with a number (``"5/10s"``).

    Raises:
        ValueError: with a message that shows the accepted forms (pydantic reports it with the line).
    """
    found = _RATE.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not a rate like '1/s', '10/m', '5/10s' or '100/h per tenant'")
    count = int(found["count"])
    period = float(found["every"] or 1) * _UNITS[found["unit"]]
    if count < 1 or period <= 0:
        raise ValueError(f"{text!r}: a rate needs at least one call in a period longer than zero")
    if period / count > 86400:
        raise ValueError(f"{text!r}: fewer than one call a day is not a rate limit")
    return Rate(count, period, per_tenant=bool(found["tenant"]))
