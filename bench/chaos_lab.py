"""The chaos suite's laboratory: real services and worker processes to break, and the measures.

:class:`Lab` starts a Redis with an append-only file (the broker, streams and idempotency
markers), a second Redis that no fault touches (the counts of the ``chaos.count`` action),
PostgreSQL (the run ledger), two ``celery -A workers worker`` processes and one
``circuit-os ingest``. Events are published from producer processes of their own
(``python -m bench.chaos_lab produce SPEC``), so this process never configures the engine
and a test can run a lab beside the session's services. Every process it starts is stopped
when the lab closes, even after a failure.

:meth:`Lab.measure` waits, up to a deadline after the fault, until every run has ended in
the ledger, then reads the ledger and the effect counts and returns a :class:`Result`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kombu.exceptions
import redis
import sqlalchemy as sa

from bench.chaos_actions import EFFECTS_KEY, EXECUTIONS_KEY  # where chaos.count counts, and who made each
from workers.embedded import CeleryProcess, EmbeddedPostgres, EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
CIRCUITS = ROOT / "bench" / "chaos_circuits"
#: A step's effect, then its process killed within this long, before its done mark: the one case in
#: which the engine runs an action again (README, "Delivery guarantees"). Under this suite's load a
#: pool process can wait this long for a core between the two.
KILL_WINDOW_S = 1.0
FOREACH_ITEMS = 8  # the items of a chaos-foreach run (its event carries them)
#: event type -> (circuit, step ids) of the chaos circuits
CIRCUIT_OF = {
    "chaos.sequence": ("chaos-sequence", ["s1", "s2", "s3", "s4", "s5"]),
    "chaos.parallel": ("chaos-parallel", ["p1", "p2", "p3", "p4", "p5"]),
    "chaos.foreach": ("chaos-foreach", [f"each[{i}].c" for i in range(FOREACH_ITEMS)]),
}
#: the watchdog resumes stalled runs quickly here (the settings are ignored by code that lacks them)
FAST_RECOVERY = {"CIRCUIT_STALL_AFTER_S": "10", "CIRCUIT_STEP_LEASE_S": "10", "CIRCUIT_WATCHDOG_INTERVAL_S": "2"}


@dataclass
class Result:
    """One row of the chaos table."""

    fault: str
    published: int
    succeeded: int = 0
    failed: int = 0
    lost: int = 0  # no run row in the ledger
    stuck: int = 0  # run row still 'running' at the end
    duplicated: int = 0  # (run, step) effects counted more than once, not explained by a kill
    # ... counted more than once because each earlier execution's process was killed within
    # KILL_WINDOW_S of its effect, before its done mark: the known case, reported apart
    repeated_after_kill: int = 0
    missing: int = 0  # (run, step) effects never counted
    ledger_gaps: int = 0  # (run, step) with no succeeded step row in the ledger
    recover_s: float | None = None  # fault's end -> every run ended; None = not by the deadline
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the scenario itself broke (no figures)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.lost == 0
            and self.stuck == 0
            and self.duplicated == 0
            and self.recover_s is not None
            and self.recover_s <= 60
        )


@dataclass
class Batch:
    """What a scenario published: each logical run has its candidate run ids (one, except for a key
    published many times) and its circuit's step ids."""

    groups: list[list[str]] = field(default_factory=list)
    steps: list[list[str]] = field(default_factory=list)

    def add(self, event_ids: list[str], event_type: str) -> None:
        circuit, steps = CIRCUIT_OF[event_type]
        self.groups.append([run_id(e, circuit) for e in event_ids])
        self.steps.append(steps)

    @property
    def run_ids(self) -> list[str]:
        return [r for g in self.groups for r in g]


def run_id(event_id: str, circuit: str, tenant: str = "default") -> str:
    from workers.ingest import run_id_for

    return run_id_for(SimpleNamespace(tenant=tenant, id=event_id), circuit)  # type: ignore[arg-type]


def make_events(n: int, prefix: str, ms: float = 0.0, key: str | None = None) -> list[dict[str, Any]]:
    """``n`` events taking the sequence, parallel and foreach circuits in turn (all one type with ``key``)."""
    tag = uuid.uuid4().hex[:8]
    types = list(CIRCUIT_OF)
    return [
        {
            "id": f"{prefix}-{tag}-{i}",
            "type": types[0] if key else types[i % len(types)],
            "data": {"ms": ms, "i": i, "items": list(range(FOREACH_ITEMS))},
            **({"key": key} if key else {}),
        }
        for i in range(n)
    ]


def batch_of(events: list[dict[str, Any]], published: list[str]) -> Batch:
    types = {e["id"]: e["type"] for e in events}
    batch = Batch()
    for event_id in published:
        batch.add([event_id], types[event_id])
    return batch


# --- processes ----------------------------------------------------------------------------


def _ppid_and_cmdline(pid: int) -> tuple[int, str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ppid, cmdline


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process below ``pid``, read from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                table[int(entry.name)] = _ppid_and_cmdline(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cmd) in table.items():
            if ppid == parent:
                found.append((child, cmd))
                frontier.append(child)
    return found


def kill9(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Worker:
    """One ``celery -A workers worker`` process (prefork) and what it started."""

    def __init__(self, label: str, env: dict[str, str], logs: Path, concurrency: int, loglevel: str) -> None:
        self.name = f"chaos-{label}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        args = ["worker", "-c", str(concurrency), "--loglevel", loglevel, "-n", self.name]
        args += ["--without-mingle", "--without-gossip"]
        self.proc = CeleryProcess(args, env, logs / f"worker-{label}.log", cwd=ROOT)
        self.seen: set[int] = set()  # every descendant ever seen, killed at the end if still there

    def start(self) -> Worker:
        self.proc.start()
        return self

    def wait_ready(self, broker_url: str, timeout_s: float = 90.0) -> Worker:
        """Wait until it answers a ping; a broker that is still coming back (after a restart) is waited for."""
        from celery import Celery

        deadline = time.monotonic() + timeout_s
        while True:
            app = Celery("circuit-chaos", broker=broker_url, set_as_current=False)
            try:
                self.proc.wait_ready(app, timeout=max(1.0, deadline - time.monotonic()), name=self.name)
                return self
            except (OSError, redis.RedisError, kombu.exceptions.OperationalError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                app.close()

    @property
    def pid(self) -> int:
        assert self.proc.proc is not None
        return self.proc.proc.pid

    def alive(self) -> bool:
        return self.proc.proc is not None and self.proc.proc.poll() is None

    def children(self) -> list[tuple[int, str]]:
        kids = descendants(self.pid) if self.alive() else []
        self.seen.update(pid for pid, _ in kids)
        return kids

    def pool(self) -> list[int]:
        """The prefork pool processes (not the ledger writer the worker also starts)."""
        return [pid for pid, cmd in self.children() if "ledger_writer" not in cmd and "celery" in cmd]

    def kill(self) -> None:
        """kill -9 the main process and everything below it."""
        kids = [pid for pid, _ in self.children()]
        kill9([self.pid, *kids])
        assert self.proc.proc is not None
        self.proc.proc.wait(10)

    def stop(self) -> None:
        self.children()
        self.proc.stop()
        kill9(sorted(self.seen))


class Producer:
    """A process that publishes events (``mode``: worker, direct or stream), spread over ``spread_s``."""

    def __init__(
        self, env: dict[str, str], log: Path, events: list[dict[str, Any]], mode: str, spread_s: float, **kw: Any
    ) -> None:
        spec = {"events": events, "mode": mode, "spread_s": spread_s, "give_up_s": 60.0, **kw}
        self.spec_file = Path(tempfile.mkstemp(prefix="chaos-spec-", suffix=".json")[1])
        self.spec_file.write_text(json.dumps(spec))
        self.log = log
        with log.open("ab") as err:  # a file, not a pipe: a chatty producer must never block on it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.chaos_lab", "produce", str(self.spec_file)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    def result(self, timeout: float = 120.0) -> list[str]:
        """The ids of the events it published (each retried until Redis took it, or it gave up)."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        finally:
            self.spec_file.unlink(missing_ok=True)
        lines = out.strip().splitlines()
        if self.proc.returncode != 0 or not lines:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"a producer exited with {self.proc.returncode}: {tail[0]} (see {self.log})")
        return list(json.loads(lines[-1]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.spec_file.unlink(missing_ok=True)


def produce(spec: dict[str, Any]) -> list[str]:
    """In a producer process: publish each event, retrying one that fails (same id) until it gives up."""
    from workers.publish import publish
    from workers.runtime import runtime

    rt = runtime()
    mode = spec["mode"]
    if mode == "direct":
        rt.settings.publish_mode = "direct"
    start_at = float(spec.get("start_at", 0))
    while time.time() < start_at:
        time.sleep(0.001)
    events = spec["events"]
    t0, done = time.monotonic(), []
    for i, ev in enumerate(events):
        pause = t0 + spec["spread_s"] * i / max(1, len(events)) - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        give_up = time.monotonic() + spec["give_up_s"]
        while True:
            try:
                if mode == "stream":
                    envelope = {"type": ev["type"], "source": "chaos", "id": ev["id"], "data": ev["data"]}
                    if ev.get("key"):
                        envelope["idempotencykey"] = ev["key"]
                    rt.redis.xadd(rt.settings.event_stream, {"event": json.dumps(envelope)})
                else:
                    publish(ev["type"], ev["data"], source="chaos", id=ev["id"], idempotency_key=ev.get("key"))
                done.append(ev["id"])
                break
            except Exception as exc:  # noqa: BLE001 - Redis away: retry the same event, as a careful producer would
                if time.monotonic() > give_up:
                    print(f"gave up on {ev['id']}: {exc}", file=sys.stderr)
                    break
                time.sleep(0.2)
    return done


# --- the lab --------------------------------------------------------------------------------


class Lab:
    """Services and processes for the chaos scenarios: ``with Lab() as lab: ...``."""

    def __init__(
        self,
        *,
        workers: int = 2,
        concurrency: int = 2,
        loglevel: str = "WARNING",
        logs: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.n_workers, self.concurrency, self.loglevel = workers, concurrency, loglevel
        self.settings = {**FAST_RECOVERY, **(settings or {})}  # CIRCUIT_* for every process the lab starts
        self.logs = logs or ROOT / ".circuit-os" / "chaos"
        self.redis = EmbeddedRedis(appendonly=True)
        self.effects_redis = EmbeddedRedis()
        self.pg = EmbeddedPostgres()
        self.workers: list[Worker] = []
        self.retired: list[Worker] = []
        self.producers: list[Producer] = []
        self.ingest: subprocess.Popen[bytes] | None = None
        self.ingest_seen: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        self._labels = iter("abcdefghijklmnopqrstuvwxyz")
        self.kills: dict[int, float] = {}  # pid -> when the lab killed it (pool and worker processes)

    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        from storage.base import make_engine
        from storage.migrate import upgrade

        self.logs.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="circuit-chaos-home-"))
        self.redis.start()
        self.effects_redis.start()
        self.pg.start()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCUIT_", "CHAOS_"))}
        self.env.update(
            {
                "CIRCUIT_REDIS_URL": self.redis.url,
                "CIRCUIT_DATABASE_URL": self.pg.url,
                "CIRCUIT_CIRCUITS": str(CIRCUITS),
                "CIRCUIT_ACTION_MODULES": "circuits.builtin,bench.chaos_actions",
                "CIRCUIT_HOME": str(home),
                # the stream is read by the lab's own `circuit-os ingest` only, so that killing it leaves
                # a backlog behind (readers beside the workers kept up and the kill found nothing to cut)
                "CIRCUIT_INGEST_IN_WORKER": "false",
                "CHAOS_EFFECTS_URL": self.effects_redis.url,
                "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
                **self.settings,
            }
        )
        self.engine = make_engine(self.pg.url, pool_size=2)
        upgrade(self.engine)
        self.r = redis.Redis.from_url(self.redis.url, socket_timeout=5)
        self.effects = redis.Redis.from_url(self.effects_redis.url, socket_timeout=5)
        for w in [self.add_worker(wait=False) for _ in range(self.n_workers)]:  # they start side by side
            w.wait_ready(self.redis.url)
        self.start_ingest()

    def close(self) -> None:
        for p in self.producers:
            p.stop()
        for proc in self.ingest_seen:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for w in self.workers:  # SIGTERM them all first, so their warm shutdowns overlap
            if w.alive():
                w.children()
                assert w.proc.proc is not None
                w.proc.proc.terminate()
        for w in self.workers + self.retired:
            w.stop()
        if "engine" in self.__dict__:
            self.engine.dispose()
        for client in ("r", "effects"):
            if client in self.__dict__:
                self.__dict__[client].close()
        self.redis.stop()
        self.effects_redis.stop()
        self.pg.stop()

    # --- processes ---

    def add_worker(self, wait: bool = True) -> Worker:
        w = Worker(next(self._labels), self.env, self.logs, self.concurrency, self.loglevel)
        self.workers.append(w)
        w.start()
        return w.wait_ready(self.redis.url) if wait else w

    def kill_worker(self, w: Worker) -> None:
        now = time.time()
        self.kills.update((pid, now) for pid in [w.pid, *(pid for pid, _ in w.children())])
        w.kill()
        self.workers.remove(w)
        self.retired.append(w)

    def kill_pool_child(self) -> int | None:
        """kill -9 one pool process of a random worker; returns its pid."""
        pool = [pid for w in self.workers for pid in w.pool()]
        if not pool:
            return None
        pid = random.choice(pool)
        self.kills[pid] = time.time()
        kill9([pid])
        return pid

    def start_ingest(self) -> None:
        with (self.logs / "ingest.log").open("ab") as out:
            self.ingest = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "ingest"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        self.ingest_seen.append(self.ingest)

    def kill_ingest(self) -> None:
        assert self.ingest is not None
        self.ingest.kill()
        self.ingest.wait(10)

    def publish(self, events: list[dict[str, Any]], mode: str = "worker", spread_s: float = 0.0, **kw: Any) -> Producer:
        producer = Producer(self.env, self.logs / "producers.log", events, mode, spread_s, **kw)
        self.producers.append(producer)
        return producer

    def reset(self) -> None:
        """Between scenarios, so that one's leftovers (a backlog, stranded messages) do not weigh on the
        next: stop the workers and ingest, empty the engine's Redis, start them again."""
        if self.ingest is not None and self.ingest.poll() is None:
            self.kill_ingest()
        for w in self.workers:
            if w.alive():
                w.children()
                assert w.proc.proc is not None
                w.proc.proc.terminate()
        for w in self.workers:
            w.stop()
        self.retired += self.workers
        self.workers = []
        self.r.flushall()
        self.heal()

    def heal(self) -> None:
        """Between scenarios: as many live workers as asked for, and an ingest process."""
        for w in [w for w in self.workers if not w.alive()]:
            tail = "\n  ".join(w.proc.output().strip().splitlines()[-5:])
            code = w.proc.proc.returncode if w.proc.proc else None
            print(f"chaos: worker {w.name} had exited ({code}); its log ends:\n  {tail}", file=sys.stderr)
            self.workers.remove(w)
            self.retired.append(w)
        for w in [self.add_worker(wait=False) for _ in range(self.n_workers - len(self.workers))]:
            w.wait_ready(self.redis.url)
        if self.ingest is None or self.ingest.poll() is not None:
            self.start_ingest()

    # --- measures ---

    def _statuses(self, run_ids: list[str]) -> dict[str, str] | None:
        from storage.ledger import RunRow

        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(RunRow.id, RunRow.status).where(RunRow.id.in_(run_ids))).all()
        except sa.exc.SQLAlchemyError:
            return None  # the database is away: nothing can be said yet
        return {r.id: r.status for r in rows}

    @staticmethod
    def _all_ended(batch: Batch, statuses: dict[str, str]) -> bool:
        for group in batch.groups:
            found = [statuses[r] for r in group if r in statuses]
            if not found or "running" in found:
                return False
        return True

    def measure(self, fault: str, batch: Batch, fault_end: float, deadline_s: float) -> Result:
        """Wait until every run has ended in the ledger (at most ``deadline_s`` after ``fault_end``, a
        ``time.monotonic()``), then count what stands."""
        res = Result(fault, len(batch.groups))
        run_ids = batch.run_ids
        while True:
            statuses = self._statuses(run_ids)
            now = time.monotonic()
            if statuses is not None and self._all_ended(batch, statuses):
                res.recover_s = round(max(0.0, now - fault_end), 1)
                break
            if now > fault_end + deadline_s:
                break
            time.sleep(0.5)
        time.sleep(1.0)  # let the ledger writers flush the last step records
        self._count(res, batch)
        return res

    def _count(self, res: Result, batch: Batch) -> None:
        from storage.ledger import StepRow

        run_ids = batch.run_ids
        statuses = self._statuses(run_ids) or {}
        with self.engine.connect() as conn:
            done_steps = set(
                conn.execute(
                    sa.select(StepRow.run_id, StepRow.step_id).where(
                        StepRow.run_id.in_(run_ids), StepRow.status == "succeeded"
                    )
                ).all()
            )
        pairs = zip(batch.groups, batch.steps, strict=True)
        fields = [f"{r}:{s}" for group, steps in pairs for r in group for s in steps]
        counts = dict(zip(fields, self.effects.hmget(EFFECTS_KEY, fields), strict=True)) if fields else {}
        executions = self._executions() if any(int(c or 0) > 1 for c in counts.values()) else {}
        extra_runs = 0
        for group, steps in zip(batch.groups, batch.steps, strict=True):
            found = [statuses[r] for r in group if r in statuses]
            extra_runs += max(0, len(found) - 1)
            if not found:
                res.lost += 1
            elif "running" in found:
                res.stuck += 1
            elif "succeeded" in found:
                res.succeeded += 1
            else:
                res.failed += 1
            for s in steps:
                total = sum(int(counts[f"{r}:{s}"] or 0) for r in group)
                if total > 1 and self._killed_in_window(
                    total, [e for r in group for e in executions.get(f"{r}:{s}", [])]
                ):
                    res.repeated_after_kill += 1
                else:
                    res.duplicated += total > 1
                res.missing += total == 0
                res.ledger_gaps += not any((r, s) in done_steps for r in group)
        if extra_runs:
            res.notes.append(f"{extra_runs} extra run(s) started for one idempotency key")

    def _executions(self) -> dict[str, list[tuple[int, float]]]:
        """(run, step) -> the processes that made its effect, and when."""
        out: dict[str, list[tuple[int, float]]] = {}
        for key, at in self.effects.hgetall(EXECUTIONS_KEY).items():
            field, _, pid = key.decode().rpartition("|")
            out.setdefault(field, []).append((int(pid), float(at)))
        return out

    def _killed_in_window(self, total: int, executions: list[tuple[int, float]]) -> bool:
        """True when every execution of a (run, step) counted ``total`` times but the last one ran in a
        process the lab killed within KILL_WINDOW_S after that execution's effect."""
        if len(executions) != total:  # one process made two of the effects: no kill explains that
            return False
        *earlier, _ = sorted(executions, key=lambda e: e[1])
        return all(0 <= self.kills.get(pid, -1e18) - at <= KILL_WINDOW_S for pid, at in earlier)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "produce":
        print(json.dumps(produce(json.loads(Path(sys.argv[2]).read_text()))))
    else:
        raise SystemExit("usage: python -m bench.chaos_lab produce SPEC.json (the chaos suite starts it)")


if __name__ == "__main__":
    main()
