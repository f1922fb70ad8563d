"""The watchdog: finds runs that stopped moving and starts them again from where they stopped.

A run stops moving when a message is lost (Redis restarted without it, a worker host died
holding it, a chord's state vanished) or a step was killed past its time limit. Every
unfinished run has a deadline in ``circuit:active`` (see :mod:`workers.progress`); a run
past it is resumed: its canvas is sent again with the saved starting context, steps that
succeeded return their stored outputs without running, and a step still held by a live
worker is waited for (see :mod:`workers.claims`). While the work queues hold waiting
messages no run is resumed (its next step may only be waiting its turn, and resuming
would feed the backlog); each resume doubles the time the run is given before the next,
and after ``CIRCUIT_MAX_RESUMES`` the run fails. Due waits and absences are handled here too,
and runs older than ``CIRCUIT_GOVERNOR_MAX_DURATION_S`` are failed (see :mod:`workers.governors`).

One watchdog thread runs in every worker's main process; several of them never resume
the same run twice at once, because taking a stalled run moves its deadline atomically.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from circuits.actions import QUEUES
from workers import governors, lifecycle, limits, outbox_relay, progress, recorder
from workers.ingest import accept
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: kombu's Redis transport keeps one list per priority step of a queue (``name\x06\x16<p>`` for p > 0).
PRIORITY_STEPS = (0, 3, 6, 9)

_TAKE = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, run in ipairs(stale) do redis.call('ZADD', KEYS[1], ARGV[3], run) end
return stale
"""


class Watchdog:
    def __init__(self, rt: Runtime, batch: int = 200) -> None:
        self.rt = rt
        self.batch = batch
        self._take = rt.redis.register_script(_TAKE)
        self.stopping = threading.Event()
        self._round = 0
        self._backlog_at = -1
        self._queued = 0

    def scan(self) -> list[str]:
        """Resume every run past its deadline; returns the ids of the runs resumed."""
        s = self.rt.settings
        now = time.time()
        self._round += 1
        taken = self._take(keys=[progress.ACTIVE], args=[now, self.batch, now + s.stall_after_s])
        resumed = []
        for raw in taken:
            run_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if self._handle(run_id):
                resumed.append(run_id)
        self.govern()
        for entry, event in self.rt.triggers.due_absences():
            accept(self.rt, event, only=entry)
        limits.sweep(self.rt)  # runs waiting for a per-key slot that no run end handed on
        outbox_relay.sweep(self.rt)  # record events a crash left unpublished in the outbox
        return resumed

    def _handle(self, run_id: str) -> bool:
        r = self.rt.redis
        s = self.rt.settings
        end, cancel, ctx_json, resumes, waiting = r.hmget(
            recorder.done_key(run_id),
            recorder.END_FIELD,
            "__cancel__",
            progress.CTX_FIELD,
            progress.RESUMES_FIELD,
            lifecycle.WAITING_FIELD,
        )
        if end is not None:
            r.zrem(progress.ACTIVE, run_id)
            return False
        if waiting is not None and cancel is None:  # a durable wait is due: wake the run, it is not stalled
            log.info("run %s: waking it for step %s", run_id, waiting.decode())
            return lifecycle.wake(self.rt, run_id)
        if ctx_json is None:
            return self._end(run_id, None, "failed", "its saved state is gone (was Redis data lost?); cannot resume it")
        ctx: dict[str, Any] = json.loads(ctx_json)
        if cancel is not None:
            return self._end(run_id, ctx, "cancelled", "cancelled while no step was running")
        over = governors.duration_error(s, ctx["run"].get("started_at"))
        if over:
            self._fail_over(run_id, ctx, over)
            return False
        if self._backlog():
            return False  # its next message may just be waiting its turn: look again when the queues drain
        n = int(resumes or 0)
        if n >= s.max_resumes:
            return self._end(run_id, ctx, "failed", f"stalled: no progress after {n} resumes")
        entry = self.rt.catalog.entries.get(ctx["run"]["circuit"])
        if entry is None:
            return self._end(run_id, ctx, "failed", f"circuit {ctx['run']['circuit']!r} is no longer deployed")
        pipe = r.pipeline(transaction=True)
        pipe.hincrby(recorder.done_key(run_id), progress.RESUMES_FIELD, 1)
        pipe.zadd(progress.ACTIVE, {run_id: time.time() + s.stall_after_s * 2 ** (n + 1)}, xx=True)
        pipe.execute()
        log.warning("run %s (%s) made no progress; resuming it (resume %d)", run_id, ctx["run"]["circuit"], n + 1)
        progress.launch(entry.canvas, ctx)
        return True

    def govern(self) -> list[str]:
        """Fail the runs past ``CIRCUIT_GOVERNOR_MAX_DURATION_S``, whatever they are doing; their ids."""
        r = self.rt.redis
        failed = []
        for run_id in governors.overdue(r, self.rt.settings, self.batch):
            end, ctx_json = r.hmget(recorder.done_key(run_id), recorder.END_FIELD, progress.CTX_FIELD)
            if end is not None or ctx_json is None:
                r.zrem(governors.STARTED, run_id)  # ended (its record was missed), or its state is gone
                continue
            ctx = json.loads(ctx_json)
            over = governors.duration_error(self.rt.settings, ctx["run"].get("started_at"))
            if over:
                self._fail_over(run_id, ctx, over)
                failed.append(run_id)
        return failed

    def _fail_over(self, run_id: str, ctx: dict[str, Any], error: str) -> None:
        """Fail a run over a governor limit, once (its on_failure steps start once)."""
        from workers.steps import start_on_failure  # steps imports the ingest this module imports

        log.error("run %s (%s): %s", run_id, ctx["run"]["circuit"], error)
        pipe = self.rt.redis.pipeline(transaction=True)
        pipe.set(recorder.failed_key(run_id), "(governor)", nx=True, ex=recorder.DONE_TTL_S)
        recorder.add_records(pipe, [recorder.run_end(run_id, "failed", error=error)])
        pipe.zrem(governors.STARTED, run_id)
        if pipe.execute()[0]:
            lifecycle.run_ended(self.rt, ctx, "failed", error)
            start_on_failure(ctx, "(governor)", error)

    def _backlog(self) -> bool:
        """Whether any work queue has messages waiting (checked at most once a round)."""
        if self._backlog_at != self._round:
            pipe = self.rt.redis.pipeline(transaction=False)
            for queue in QUEUES:
                for priority in PRIORITY_STEPS:
                    pipe.llen(f"{queue}\x06\x16{priority}" if priority else queue)
            self._queued = sum(pipe.execute())
            self._backlog_at = self._round
        return self._queued > 0

    def _end(self, run_id: str, ctx: dict[str, Any] | None, status: str, error: str) -> bool:
        log.error("run %s: %s", run_id, error)
        recorder.write(self.rt.redis, [recorder.run_end(run_id, status, error=error)])
        if ctx is not None:
            lifecycle.run_ended(self.rt, ctx, status, error)
        return False

    def run(self) -> None:
        """Scan every ``CIRCUIT_WATCHDOG_INTERVAL_S`` until stopped; an error only skips a round."""
        while not self.stopping.wait(self.rt.settings.watchdog_interval_s):
            try:
                self.scan()
            except Exception:  # noqa: BLE001 - the watchdog must outlive Redis restarts and bad runs
                log.warning("watchdog round failed; trying again next round", exc_info=True)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="circuit-watchdog", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
