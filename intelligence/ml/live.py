"""What the models see in production, kept in Redis: each key's last score and a sample of inputs.

* The last score of each (tenant, model, key) lets ``ml.predict`` tell when a score crosses a
  level. Reading the old score and writing the new one is one Lua script, so two workers
  scoring the same lead at once still see each score exactly once. The writer's (run, step)
  token is stored with the score: a retried step gets the same previous score back, so it
  finds the same crossings and emits the same events (their ids dedupe them).
* The sample of scored inputs per model version (the newest :data:`SAMPLE_MAX` rows, a
  capped list) is what ``ml.drift`` compares with the training rows. A retried step adds its
  rows once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import redis
from redis.exceptions import RedisError

from circuits.errors import RetryableError

log = logging.getLogger(__name__)

#: How long a key's last score is remembered after it was last scored.
SCORE_TTL_S = 90 * 24 * 3600
#: Rows of live inputs kept per model version (the newest ones).
SAMPLE_MAX = 2000
#: How long a model version's sample lives after its last prediction.
SAMPLE_TTL_S = 30 * 24 * 3600
#: How long a step's "rows already added" mark is kept (longer than any retry runs).
MARK_TTL_S = 7 * 24 * 3600
#: Text values are cut to this many characters in the sample (drift does not score text).
MAX_TEXT = 200

Direction = Literal["up", "down"]

# KEYS[1] score key; ARGV: score, token, ttl. Returns the previous score (nil: none).
_SWAP = """
local cur = redis.call('GET', KEYS[1])
local prev = false
if cur then
  local ok, last = pcall(cjson.decode, cur)
  if ok and type(last) == 'table' then
    if last['by'] == ARGV[2] then return last['prev'] end
    prev = last['score']
  end
end
redis.call('SET', KEYS[1], cjson.encode({score = ARGV[1], prev = prev, by = ARGV[2]}), 'EX', ARGV[3])
return prev
"""

# KEYS[1] sample list, KEYS[2] the step's mark; ARGV: mark ttl, max rows, sample ttl, rows...
_SAMPLE = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 4, #ARGV do redis.call('LPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


def connect(url: str) -> redis.Redis:
    """A client that gives up in seconds, so a dead Redis fails a step rather than hanging it."""
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def score_key(tenant: str, model: str, key: str) -> str:
    return f"circuit:ml:score:{tenant}:{model}:{key}"


def sample_key(model: str, version: int) -> str:
    return f"circuit:ml:live:{model}:v{version}"


def swap_score(client: redis.Redis, tenant: str, model: str, key: str, score: float, token: str) -> float | None:
    """Store ``score`` as the last score of ``key`` and return the one before it (None: first)."""
    try:
        swap = client.register_script(_SWAP)
        prev = swap(keys=[score_key(tenant, model, key)], args=[repr(score), token, SCORE_TTL_S])
    except RedisError as exc:
        raise RetryableError(f"Redis unavailable for the last score of {model} {key!r}: {exc}") from None
    return None if prev is None else float(prev.decode() if isinstance(prev, bytes) else prev)


def crossings(previous: float | None, score: float, levels: Iterable[float]) -> list[tuple[float, Direction]]:
    """The levels a score passed on its way from ``previous`` to ``score``, in the order it passed them.

    A score at a level counts as above it. With no previous score, every level at or below
    ``score`` counts as crossed upwards.
    """
    if previous is None:
        return [(lv, "up") for lv in sorted(set(levels)) if score >= lv]
    if score >= previous:
        return [(lv, "up") for lv in sorted(set(levels)) if previous < lv <= score]
    return [(lv, "down") for lv in sorted(set(levels), reverse=True) if score < lv <= previous]


def _row(record: dict[str, Any], columns: Sequence[str]) -> str:
    row = {c: record.get(c) for c in columns}
    row = {c: v[:MAX_TEXT] if isinstance(v, str) else v for c, v in row.items()}
    return json.dumps(row, default=str, separators=(",", ":"))


def add_sample(
    client: redis.Redis, model: str, version: int, records: Sequence[dict[str, Any]], columns: Sequence[str], token: str
) -> bool:
    """Add the scored ``records`` (their ``columns`` only) to the version's live sample, once per step.

    Best effort: drift monitoring being down must not stop scoring, so a Redis error is logged
    and False returned.
    """
    if not records:
        return False
    step = max(1, len(records) // SAMPLE_MAX)  # a huge batch adds an evenly spaced subset
    rows = [_row(r, columns) for r in list(records)[::step][:SAMPLE_MAX]]
    mark = f"circuit:ml:sampled:{model}:{token}"
    try:
        script = client.register_script(_SAMPLE)
        return bool(script(keys=[sample_key(model, version), mark], args=[MARK_TTL_S, SAMPLE_MAX, SAMPLE_TTL_S, *rows]))
    except RedisError as exc:
        log.warning("live sample of %s v%d not kept (Redis: %s); drift checks will see fewer rows", model, version, exc)
        return False


def read_sample(client: redis.Redis, model: str, version: int, limit: int = SAMPLE_MAX) -> list[dict[str, Any]]:
    """The newest ``limit`` live input rows of a model version."""
    try:
        raw = client.lrange(sample_key(model, version), 0, limit - 1)
    except RedisError as exc:
        raise RetryableError(f"Redis unavailable for the live sample of {model} v{version}: {exc}") from None
    return [json.loads(r) for r in raw]
