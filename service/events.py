"""Events: publish them (the one path of ``workers.publish``) and read the dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from circuits.errors import EventError, ForbiddenError
from service import ratelimit
from service.access import Principal, require
from storage import ledger
from workers.publish import publish_envelope
from workers.runtime import Runtime


@dataclass
class Rejected:
    index: int
    field: str | None
    message: str


@dataclass
class Published:
    ids: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def _for_tenant(who: Principal, envelope: Any) -> Any:
    """The envelope with the caller's tenant; naming another tenant is refused."""
    if who.platform or not isinstance(envelope, dict):
        return envelope
    tenant = envelope.get("tenant")
    if tenant is None:
        return {**envelope, "tenant": who.tenant}
    if tenant != who.tenant:
        raise ForbiddenError(f"tenant: may not publish events of tenant {str(tenant)[:100]!r}")
    return envelope


def publish(rt: Runtime, who: Principal, envelopes: list[Any], origin: str = "api") -> Published:
    """Validate and hand each event to ingest, exactly as ``publish_envelope`` does for every producer.

    A malformed event is kept as a dead letter and listed in ``rejected`` (with the field);
    the others are published. Raises ForbiddenError, or RateLimitedError when the tenant's
    events per second (``CIRCUIT_GOVERNOR_TENANT_EVENTS_PER_S``) are used up.
    """
    require(who, "events.publish")
    cap = rt.settings.governor_tenant_events_per_s
    if cap:
        bucket = ratelimit.Bucket(f"events:{who.tenant}", cap, 1.0, f"events per second of tenant {who.tenant}")
        ratelimit.take(rt.redis, [bucket], len(envelopes))
    out = Published()
    for i, raw in enumerate(envelopes):
        try:
            event = publish_envelope(_for_tenant(who, raw), origin=origin)
        except EventError as exc:
            out.rejected.append(Rejected(i, exc.field, exc.message))
        except ForbiddenError as exc:
            if len(envelopes) == 1:
                raise
            out.rejected.append(Rejected(i, "tenant", str(exc)))
        else:
            out.ids.append(event.id)
    return out


def rejected(rt: Runtime, who: Principal, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    """Dead letters, newest first; a tenant sees those that name it."""
    require(who, "events.rejected")
    return ledger.rejected_events(rt.engine, limit, tenant=who.scope, before_id=before_id)
