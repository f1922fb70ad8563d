"""Bearer tokens (HS256, RS256 from a JWKS file), API keys, anonymous access, rate limits, no secrets out."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from circuits.errors import RateLimitedError, UnauthenticatedError
from circuits.settings import Settings
from interfaces.api import tokens
from service import ratelimit
from tests.interfaces.conftest import JWT_SECRET, OWN, auth, token


def _rsa(tmp_path: Path) -> tuple[Any, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    return key, path


def test_rs256_tokens_from_a_jwks_file(tmp_path: Path) -> None:
    key, path = _rsa(tmp_path)
    settings = Settings(api_jwt_jwks_file=path, api_jwt_audience="circuit-os")
    claims = {"sub": "ci", "tenant": OWN, "role": "author", "exp": int(time.time()) + 60, "aud": "circuit-os"}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    who = tokens.principal(settings, good)
    assert (who.subject, who.tenant, who.role) == ("jwt:ci", OWN, "author")
    other_key, _ = _rsa(tmp_path / "..")
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": "k1"})
    bad = [
        forged,
        jwt.encode({**claims, "aud": "else"}, key, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode({**claims, "exp": int(time.time()) - 10}, key, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode({**claims, "role": "root"}, key, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode(claims, "x" * 32, algorithm="HS256"),  # HS256 is not configured here
        jwt.encode(claims, None, algorithm="none"),
    ]
    for t in bad:
        with pytest.raises(UnauthenticatedError):
            tokens.principal(settings, t)


def test_hs256_token_errors_never_show_the_secret(api: Any) -> None:
    expired = token("viewer", exp=int(time.time()) - 5)
    r = api.get("/v1/runs", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    assert r.headers["www-authenticate"] == "Bearer"
    forged = jwt.encode({"sub": "x", "tenant": OWN, "role": "admin", "exp": int(time.time()) + 60}, "guess" * 8)
    r = api.get("/v1/runs", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and JWT_SECRET not in r.text


def test_api_keys_through_the_api(api: Any) -> None:
    r = api.post("/v1/keys", json={"role": "producer", "name": "shop"}, headers=auth("admin"))
    assert r.status_code == 201
    key, key_id = r.json()["key"], r.json()["id"]
    listed = api.get("/v1/keys", headers=auth("admin")).json()["keys"]
    assert key_id in [k["id"] for k in listed] and key.split("_", 2)[2] not in json.dumps(listed)
    ok = api.post("/v1/events", json={"type": "test.nothing", "source": "shop"}, headers={"X-API-Key": key})
    assert ok.status_code == 202
    assert api.get("/v1/runs", headers={"X-API-Key": key}).status_code == 403  # a producer does not read
    assert api.delete(f"/v1/keys/{key_id}", headers=auth("admin")).status_code == 204
    r = api.post("/v1/events", json={"type": "test.nothing", "source": "shop"}, headers={"X-API-Key": key})
    assert r.status_code == 401
    wrong = key[:-4] + "AAAA"
    assert api.get("/v1/runs", headers={"X-API-Key": wrong}).status_code == 401
    entries = api.get("/v1/audit", headers=auth("admin")).json()["entries"]
    assert {("key.create", key_id), ("key.revoke", key_id)} <= {(e["action"], e["target"]) for e in entries}


def test_rate_limit_answers_429_with_retry_after(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.runtime import runtime

    monkeypatch.setattr(runtime().settings, "api_rate_per_key", 5.0)
    headers = {"Authorization": f"Bearer {token('viewer', sub=f'burst-{time.time()}')}"}
    answers = [api.get("/v1/circuits", headers=headers) for _ in range(8)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert "requests per key" in limited[0].json()["error"]["message"]


def test_token_bucket_is_shared_and_refills(engine_env: dict[str, str]) -> None:
    from workers.runtime import runtime

    bucket = ratelimit.Bucket(f"test:{time.time()}", rate=20.0, burst_s=0.5, label="test")
    r = runtime().redis
    for _ in range(10):
        ratelimit.take(r, [bucket])
    with pytest.raises(RateLimitedError) as caught:
        ratelimit.take(r, [bucket])
    assert 0 < (caught.value.retry_after_s or 0) <= 1
    time.sleep(0.12)
    ratelimit.take(r, [bucket])  # refilled by 2 tokens


def test_anonymous_only_when_switched_on_and_said_at_start(
    api: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from interfaces.api.app import starting_up
    from workers.runtime import runtime

    assert api.get("/v1/circuits").status_code == 401
    monkeypatch.setattr(runtime().settings, "api_allow_anonymous", True)
    monkeypatch.setattr(runtime().settings, "api_anonymous_role", "viewer")
    assert api.get("/v1/circuits").status_code == 200
    assert api.post("/v1/circuits/t-sequence/disable").status_code == 403
    with caplog.at_level(logging.WARNING, logger="interfaces.api.app"):
        starting_up(api.app)
    assert "ANONYMOUS ACCESS IS ON" in caplog.text
