"""The audit log: who deployed, enabled, disabled, retried, cancelled, created or revoked what, and when."""

from __future__ import annotations

from typing import Any

from service.access import Principal, require
from storage import access as store
from workers.runtime import Runtime


def record(
    rt: Runtime, who: Principal, action: str, target: str, tenant: str | None, detail: dict[str, Any] | None = None
) -> None:
    """Append one entry; ``tenant`` is the tenant the change belongs to (None: shared)."""
    store.add_audit(
        rt.engine,
        {
            "tenant": tenant,
            "actor": who.subject,
            "role": who.role,
            "action": action,
            "target": target[:300],
            "detail": detail or {},
        },
    )


def entries(rt: Runtime, who: Principal, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first, only the caller's tenant unless it is the platform."""
    require(who, "audit.read")
    return store.list_audit(rt.engine, tenant=who.scope, limit=limit, before_id=before_id)
