"""Who is acting, and what each role may do, within which tenant.

Roles are scoped to a tenant: producers publish, viewers read, operators retry and
cancel, authors deploy circuits, admins manage keys and read the audit log (and may do
everything else in their tenant). The tenant ``*`` is the platform: a principal of it
acts across tenants (the local CLI, a platform admin's token).
"""

from __future__ import annotations

from dataclasses import dataclass

from circuits.errors import ForbiddenError

ROLES = ("admin", "author", "operator", "producer", "viewer")
ALL_TENANTS = "*"

_READERS = frozenset({"admin", "author", "operator", "viewer"})
#: permission -> the roles that have it
PERMISSIONS: dict[str, frozenset[str]] = {
    "events.publish": frozenset({"admin", "producer"}),
    "events.rejected": _READERS,
    "runs.read": _READERS,
    "runs.control": frozenset({"admin", "operator"}),
    "circuits.read": _READERS,
    "circuits.write": frozenset({"admin", "author"}),
    "keys.manage": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``subject`` names it in the audit log (never a secret)."""

    subject: str
    tenant: str
    role: str

    @property
    def platform(self) -> bool:
        """Acts across tenants."""
        return self.tenant == ALL_TENANTS

    @property
    def scope(self) -> str | None:
        """The tenant its queries are limited to; None for the platform."""
        return None if self.platform else self.tenant

    def owns(self, tenant: str | None) -> bool:
        """Whether it may see and change things of ``tenant`` (None: shared by every tenant)."""
        return self.platform or (tenant is not None and tenant == self.tenant)

    def sees(self, tenant: str | None) -> bool:
        """Whether it may read things of ``tenant``; shared things (None) are visible to all."""
        return tenant is None or self.owns(tenant)


def local_admin(user: str = "cli") -> Principal:
    """The person at the CLI on a machine with the settings: a platform admin."""
    return Principal(subject=f"cli:{user}", tenant=ALL_TENANTS, role="admin")


def can(who: Principal, permission: str) -> bool:
    return who.role in PERMISSIONS[permission]


def require(who: Principal, permission: str) -> None:
    """Raise ForbiddenError unless ``who``'s role has ``permission``."""
    if not can(who, permission):
        allowed = ", ".join(sorted(PERMISSIONS[permission]))
        raise ForbiddenError(f"role {who.role!r} may not do {permission} (allowed: {allowed})")
