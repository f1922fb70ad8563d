"""Bearer tokens: JWTs signed HS256 with a shared secret or RS256 with a key from a JWKS file.

Claims: ``sub`` (who), ``tenant`` (or ``*`` for the platform), ``role``, and ``exp``
(required); ``aud`` and ``iss`` are checked when the settings name them.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import jwt

from circuits.errors import ConfigError, UnauthenticatedError
from circuits.settings import Settings
from service.access import ALL_TENANTS, ROLES, Principal

_TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_jwks: dict[tuple[str, float], jwt.PyJWKSet] = {}
_lock = threading.Lock()


def _jwk_set(path: Path) -> jwt.PyJWKSet:
    try:
        stamp = (str(path), path.stat().st_mtime)
    except OSError as exc:
        raise ConfigError(f"CIRCUIT_API_JWT_JWKS_FILE: cannot read {path}: {exc.strerror}") from None
    with _lock:
        found = _jwks.get(stamp)
        if found is None:
            try:
                found = jwt.PyJWKSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, jwt.PyJWTError) as exc:
                raise ConfigError(f"CIRCUIT_API_JWT_JWKS_FILE: not a JWKS file: {exc}") from None
            _jwks.clear()
            _jwks[stamp] = found
        return found


def _key(settings: Settings, header: dict[str, Any]) -> Any:
    alg = header.get("alg")
    if alg == "HS256" and settings.api_jwt_secret is not None:
        return settings.api_jwt_secret.get_secret_value()
    if alg == "RS256" and settings.api_jwt_jwks_file is not None:
        keys = _jwk_set(settings.api_jwt_jwks_file)
        kid = header.get("kid")
        for k in keys.keys:
            if kid is None or k.key_id == kid:
                return k.key
        raise UnauthenticatedError("bearer token: its key id is not in the JWKS file")
    raise UnauthenticatedError(f"bearer token: algorithm {str(alg)[:20]!r} is not accepted here")


def principal(settings: Settings, token: str) -> Principal:
    """The principal a valid token names; UnauthenticatedError (with a reason, never the token) otherwise."""
    try:
        header = jwt.get_unverified_header(token)
        key = _key(settings, header)
        claims = jwt.decode(
            token,
            key,
            algorithms=[header["alg"]],
            audience=settings.api_jwt_audience,
            issuer=settings.api_jwt_issuer,
            options={"require": ["exp", "sub"], "verify_aud": settings.api_jwt_audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise UnauthenticatedError("bearer token: expired") from None
    except jwt.PyJWTError as exc:
        raise UnauthenticatedError(f"bearer token: {exc}") from None
    tenant, role = claims.get("tenant"), claims.get("role")
    if not isinstance(tenant, str) or not (tenant == ALL_TENANTS or _TENANT.match(tenant)):
        raise UnauthenticatedError("bearer token: no valid tenant claim")
    if role not in ROLES:
        raise UnauthenticatedError(f"bearer token: role claim must be one of {', '.join(ROLES)}")
    return Principal(subject=f"jwt:{str(claims['sub'])[:150]}", tenant=tenant, role=str(role))
