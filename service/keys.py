"""API keys for producers and tools: created once (the secret is shown once), stored hashed.

A key reads ``cok_<id>_<secret>``. The database keeps the id, tenant, role, a random
salt and SHA-256(salt + secret); the secret itself is never stored or logged. A checked
key is trusted for ``CIRCUIT_API_KEY_CACHE_S`` by the process that checked it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

from circuits.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from service import audit
from service.access import ALL_TENANTS, ROLES, Principal, require
from storage import access as store
from workers.runtime import Runtime

PREFIX = "cok"
_cache: dict[str, tuple[Principal, float]] = {}
_lock = threading.Lock()


def _hash(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}{secret}".encode()).hexdigest()


def create(rt: Runtime, who: Principal, tenant: str, role: str, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """A new key for ``tenant`` with ``role``: the key (shown once) and its stored description."""
    require(who, "keys.manage")
    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")
    if not who.owns(tenant) or (tenant == ALL_TENANTS and not who.platform):
        raise ForbiddenError(f"may not create keys of tenant {tenant!r}")
    key_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_hex(16)
    row = {
        "id": key_id,
        "tenant": tenant,
        "role": role,
        "name": name,
        "salt": salt,
        "hash": _hash(salt, secret),
        "created_by": who.subject,
    }
    store.add_key(rt.engine, row)
    audit.record(rt, who, "key.create", key_id, tenant, {"role": role, "name": name})
    return f"{PREFIX}_{key_id}_{secret}", {k: row[k] for k in ("id", "tenant", "role", "name")}


def looks_like_key(value: str) -> bool:
    return value.startswith(f"{PREFIX}_")


def authenticate(rt: Runtime, presented: str) -> Principal:
    """The principal of an API key; UnauthenticatedError for anything that is not a live key."""
    digest = hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise UnauthenticatedError("not an API key")
    row = store.get_key(rt.engine, parts[1][:40])
    if row is None or not hmac.compare_digest(row["hash"], _hash(row["salt"], parts[2])):
        raise UnauthenticatedError("unknown API key")
    if row["revoked_at"] is not None:
        raise UnauthenticatedError("this API key was revoked")
    who = Principal(subject=f"key:{row['id']}", tenant=row["tenant"], role=row["role"])
    with _lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (who, now + rt.settings.api_key_cache_s)
    return who


def list_keys(rt: Runtime, who: Principal) -> list[dict[str, Any]]:
    require(who, "keys.manage")
    return store.list_keys(rt.engine, tenant=who.scope)


def revoke(rt: Runtime, who: Principal, key_id: str) -> None:
    """Revoke a key of the caller's tenant; this process forgets it at once."""
    require(who, "keys.manage")
    row = store.get_key(rt.engine, key_id)
    if row is None or not who.owns(row["tenant"]):
        raise NotFoundError(f"no API key {key_id!r}")
    store.revoke_key(rt.engine, key_id)
    with _lock:
        for digest, (p, _) in list(_cache.items()):
            if p.subject == f"key:{key_id}":
                _cache.pop(digest, None)
    audit.record(rt, who, "key.revoke", key_id, row["tenant"])
