"""Token buckets in Redis, shared by every API process: one Lua call checks and takes from several.

A bucket refills at ``rate`` tokens a second up to ``rate * burst_s``. A call asking for
more tokens than a full bucket holds is let through when the bucket is full and leaves it
in debt, so a big batch is possible but pays for itself before the next one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis

from circuits.errors import RateLimitedError

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local state, wait = {}, 0
for i, key in ipairs(KEYS) do
  local rate, size = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(v[1]) or size
  local ts = tonumber(v[2]) or now
  tokens = math.min(size, tokens + math.max(0, now - ts) * rate)
  local need = math.min(n, size)
  if tokens < need then wait = math.max(wait, (need - tokens) / rate) end
  state[i] = tokens
end
for i, key in ipairs(KEYS) do
  local rate, size = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local tokens = state[i]
  if wait == 0 then tokens = tokens - n end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('EXPIRE', key, math.ceil(size / rate + n / rate) + 1)
end
return tostring(wait)
"""


@dataclass(frozen=True)
class Bucket:
    """One limit: a Redis key, a rate per second, and what the limit is called in errors."""

    key: str
    rate: float
    burst_s: float
    label: str

    @property
    def size(self) -> float:
        return max(1.0, self.rate * self.burst_s)


def take(r: redis.Redis, buckets: list[Bucket], n: int = 1) -> None:
    """Take ``n`` tokens from every bucket, or none.

    Raises:
        RateLimitedError: naming the limit that was hit, with ``retry_after_s``.
    """
    if not buckets:
        return
    args: list[float] = [n]
    for b in buckets:
        args += [b.rate, b.size]
    wait = float(r.eval(_TAKE, len(buckets), *(f"circuit:rate:{b.key}" for b in buckets), *args))
    if wait > 0:
        over = ", ".join(f"{b.label} ({b.rate:g}/s)" for b in buckets)
        raise RateLimitedError(f"rate limit reached: {over}; retry in {wait:.2f}s", retry_after_s=math.ceil(wait))
