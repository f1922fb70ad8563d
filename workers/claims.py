"""Step claims: one execution of a step at a time, however many messages ask for it.

A step can be asked for twice: Redis restores an unacknowledged message, the watchdog
resumes a run that looked stalled, a pool child dies and its message is requeued.
Before running, a step asks :func:`begin` (one Lua call, one round trip):

* ``done``: the step already succeeded; its stored output is reused, the action is not run;
* ``cancelled``: the run was cancelled; the step stops the run here;
* ``held``: another live execution holds the step's lease; this message waits and asks again;
* ``go``: this execution holds the lease (renewed by :class:`Heartbeat` while it runs), and the
  step's "running" ledger record is appended in the same call. The run's count of step
  executions is raised and returned with its LLM tokens so far, for the governors
  (:mod:`workers.governors`) to check without another round trip.

A lease names its holder ``task-id|host|pid``. A holder on this host whose process is gone
(a pool child killed) is taken over at once; a holder elsewhere loses the lease when it
stops renewing it, after ``CIRCUIT_STEP_LEASE_S``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from workers import progress
from workers.recorder import LEDGER_STREAM, STEPS_FIELD, TOKENS_FIELD, claim_key, done_key

HOST = socket.gethostname()
CANCEL_FIELD = "__cancel__"

_BEGIN = """
local out = redis.call('HGET', KEYS[1], ARGV[1])
if out then return {'done', out} end
if redis.call('HEXISTS', KEYS[1], ARGV[7]) == 1 then return {'cancelled', ''} end
local cur = redis.call('GET', KEYS[2])
if cur and cur ~= ARGV[2] and ARGV[6] ~= '1' then
  return {'held', cur, redis.call('PTTL', KEYS[2])}
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[5])
if ARGV[8] ~= '' then redis.call('XADD', KEYS[4], '*', 'r', ARGV[8]) end
local n = redis.call('HINCRBY', KEYS[1], ARGV[9], 1)
return {'go', '', n, redis.call('HGET', KEYS[1], ARGV[10]) or '0'}
"""


def owner(task_id: str) -> str:
    return f"{task_id}|{HOST}|{os.getpid()}"


def _holder_is_dead(holder: str) -> bool:
    """True when the lease holder is a process on this host that no longer exists."""
    try:
        _, host, pid = holder.rsplit("|", 2)
    except ValueError:
        return False
    if host != HOST or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Verdict:
    state: str  # done | cancelled | held | go
    output: str | None = None
    wait_s: float = 0.0
    steps: int = 0  # go: the run's step executions, this one included
    tokens: int = 0  # go: the LLM tokens the run has used so far


class Claims:
    """The step-start protocol on one Redis connection."""

    def __init__(self, r: redis.Redis, lease_s: float) -> None:
        self.r = r
        self.lease_ms = int(lease_s * 1000)
        self._begin = r.register_script(_BEGIN)

    def begin(self, run_id: str, step_key: str, task_id: str, record: str = "") -> Verdict:
        """``record``: a ledger record (JSON) appended to the ledger stream when the verdict is ``go``."""
        me = owner(task_id)
        keys = [done_key(run_id), claim_key(run_id, step_key), progress.ACTIVE, LEDGER_STREAM]
        for force in ("0", "1"):
            lease = time.time() + self.lease_ms / 1000
            args = [step_key, me, self.lease_ms, lease, run_id, force, CANCEL_FIELD, record, STEPS_FIELD, TOKENS_FIELD]
            reply: list[Any] = self._begin(keys=keys, args=args)
            state = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if state == "go":
                return Verdict(state, steps=int(reply[2]), tokens=int(reply[3]))
            if state != "held":
                out = reply[1]
                return Verdict(state, out.decode() if isinstance(out, bytes) else out or None)
            holder = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            if force == "0" and _holder_is_dead(holder):
                continue  # a pool child on this host died holding it: take over now
            ttl_ms = max(int(reply[2]), 100)
            return Verdict("held", wait_s=min(ttl_ms / 1000 + 0.05, self.lease_ms / 1000))
        raise AssertionError("unreachable")


class Heartbeat:
    """Renews the leases of the steps this process is running, from a daemon thread."""

    def __init__(self, r: redis.Redis, lease_s: float) -> None:
        self.r = r
        self.lease_s = lease_s
        self._held: dict[str, str] = {}  # claim key -> run id
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: str, step_key: str) -> None:
        with self._lock:
            self._held[claim_key(run_id, step_key)] = run_id
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="circuit-lease", daemon=True)
                self._thread.start()

    def release(self, run_id: str, step_key: str) -> None:
        with self._lock:
            self._held.pop(claim_key(run_id, step_key), None)

    def _loop(self) -> None:
        while True:
            time.sleep(self.lease_s / 3)
            with self._lock:
                held = dict(self._held)
            if not held:
                continue
            try:
                pipe = self.r.pipeline(transaction=False)
                deadline = time.time() + self.lease_s
                for key, run_id in held.items():
                    pipe.pexpire(key, int(self.lease_s * 1000))
                    pipe.zadd(progress.ACTIVE, {run_id: deadline}, xx=True)
                pipe.execute()
            except redis.RedisError:
                pass  # the next beat tries again; a missed beat only shortens the lease
