"""What the engine benchmark's sections share: bounded waits, workers, percentiles, tables, RSS, durability."""

from __future__ import annotations

import json
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from circuits.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
#: What ``publish()`` does unless told otherwise (CIRCUIT_PUBLISH_MODE): the figures' main column.
DEFAULT_MODE: str = Settings.model_fields["publish_mode"].default
LOGS = ROOT / ".circuit-os"


class GaveUp(RuntimeError):
    """A bounded wait ran out, or what it waited for went wrong (a run failed)."""


class Limits:
    """The longest any single wait may take (``--timeout``)."""

    wait_s = 240.0


def note(message: str) -> None:
    """Progress to stderr, so stdout holds only the report."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def wait(check: Callable[[], bool], what: str, interval: float = 0.02, timeout: float | None = None) -> float:
    """Poll ``check`` until it holds; return ``time.perf_counter()`` then. Gives up after ``Limits.wait_s``."""
    limit = Limits.wait_s if timeout is None else timeout
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(interval)
    describe = getattr(check, "describe", None)
    detail = f" ({describe()})" if describe else ""
    raise GaveUp(f"gave up waiting for {what} after {limit:g} s{detail}")


class Progress:
    """True once every key exists (or has ``field``). Checks keys in order from the first one not yet
    there, so waiting costs the worker little CPU."""

    def __init__(self, r: Any, keys: list[str], field: str | None = None) -> None:
        self.r, self.keys, self.field, self.pos = r, keys, field, 0

    def __call__(self) -> bool:
        while self.pos < len(self.keys):
            batch = self.keys[self.pos : self.pos + 50]
            pipe = self.r.pipeline(transaction=False)
            for k in batch:
                pipe.hexists(k, self.field) if self.field else pipe.exists(k)
            found = pipe.execute()
            done = next((i for i, ok in enumerate(found) if not ok), len(batch))
            self.pos += done
            if done < len(batch):
                return False
        return True

    def describe(self) -> str:
        pipe = self.r.pipeline(transaction=False)
        for k in self.keys:
            pipe.hexists(k, self.field) if self.field else pipe.exists(k)
        return f"{sum(1 for ok in pipe.execute() if ok)} of {len(self.keys)} done"


def run_ends(r: Any, run_ids: list[str]) -> Progress:
    """Every run has ended: the engine sets ``__end__`` in ``circuit:done:<run id>`` when a run ends."""
    return Progress(r, [f"circuit:done:{rid}" for rid in run_ids], "__end__")


def results_exist(r: Any, task_ids: list[str]) -> Progress:
    """Every plain task has stored its result."""
    return Progress(r, [f"celery-task-meta-{tid}" for tid in task_ids])


def results(r: Any, task_ids: list[str]) -> dict[str, Any]:
    """The stored return values of plain tasks (result backend JSON), by task id."""
    out: dict[str, Any] = {}
    for start in range(0, len(task_ids), 500):
        chunk = task_ids[start : start + 500]
        for tid, raw in zip(chunk, r.mget([f"celery-task-meta-{t}" for t in chunk]), strict=True):
            meta = json.loads(raw)
            if meta.get("status") != "SUCCESS":
                raise GaveUp(f"plain task {tid} ended {meta.get('status')}: {meta.get('result')}")
            out[tid] = meta["result"]
    return out


def release_pending() -> int:
    """Drop every result this process still listens for; returns how many there were.

    The bench's plain chords register their header results with the result backend (a Redis
    subscription each) and nobody waits on them here. Called after each measurement (not timed),
    so they do not pile up from one measurement to the next, nor outlive Redis at exit."""
    from workers import results
    from workers.app import app

    return results.drop_all(app.backend)


def subscriptions(r: Any) -> int:
    """Redis pub/sub channels subscribed to, summed over every client connection."""
    return sum(int(c.get("sub", 0)) + int(c.get("psub", 0)) for c in r.client_list())


class LedgerEnded:
    """True once the SQL ledger shows every run ended; raises GaveUp if any ended other than succeeded."""

    def __init__(self, engine: sa.Engine, run_ids: list[str]) -> None:
        self.engine, self.run_ids, self.ended = engine, run_ids, 0

    def __call__(self) -> bool:
        from storage.ledger import RunRow

        with self.engine.connect() as conn:
            q = sa.select(RunRow.status, sa.func.count()).where(
                RunRow.id.in_(self.run_ids), RunRow.ended_at.is_not(None)
            )
            counts = dict(conn.execute(q.group_by(RunRow.status)).tuples().all())
        self.ended = sum(counts.values())
        if self.ended < len(self.run_ids):
            return False
        if counts.get("succeeded", 0) != len(self.run_ids):
            raise GaveUp(f"runs did not all succeed: {counts}")
        return True

    def describe(self) -> str:
        return f"{self.ended} of {len(self.run_ids)} ended in the ledger"


def ended_at(engine: sa.Engine, run_ids: list[str]) -> dict[str, float]:
    """Run id -> wall-clock end (epoch seconds) from the SQL ledger (RunRow.ended_at)."""
    from storage.ledger import RunRow

    out: dict[str, float] = {}
    with engine.connect() as conn:
        for start in range(0, len(run_ids), 1000):
            chunk = run_ids[start : start + 1000]
            q = sa.select(RunRow.id, RunRow.ended_at).where(RunRow.id.in_(chunk), RunRow.ended_at.is_not(None))
            out.update({rid: end.timestamp() for rid, end in conn.execute(q).tuples() if end is not None})
    return out


def wait_ledger(engine: sa.Engine, run_ids: list[str], what: str) -> float:
    return wait(LedgerEnded(engine, run_ids), f"the ledger of {what}", interval=0.2)


# ----------------------------------------------------------------------------------------------- workers


class Workers:
    """Celery worker processes started by the benchmark, each under its own name (``-n name@%h``)."""

    def __init__(self, app: Any, env: dict[str, str]) -> None:
        self.app, self.env = app, env
        self.procs: dict[str, Any] = {}

    def start(self, name: str, concurrency: int, pool: str = "prefork") -> Any:
        from workers.embedded import CeleryProcess

        proc = CeleryProcess(
            [
                "worker",
                "-n",
                f"{name}@%h",
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-I",
                "bench.plain_tasks",
                "--loglevel",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            self.env,
            LOGS / f"bench-{name}.log",
            cwd=ROOT,
        ).start()
        self.procs[name] = proc
        return proc

    def ready(self) -> None:
        host = socket.gethostname()
        for name, proc in self.procs.items():
            proc.wait_ready(self.app, name=f"{name}@{host}")

    def pids(self) -> dict[str, int]:
        return {name: proc.proc.pid for name, proc in self.procs.items() if proc.proc is not None}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        self.procs.clear()


# ----------------------------------------------------------------------------------------------- memory


def _status_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def tree_rss_kib(pid: int) -> dict[str, int]:
    """VmRSS of a worker: its main process, its pool children (forked: same command line) and the helper
    processes it spawned (the ledger writer, ...), with theirs; in KiB."""
    main_cmd = _cmdline(pid)
    out = {"main": _status_kib(pid), "pool": 0, "helpers": 0, "pool_n": 0, "helpers_n": 0}
    for child in _children(pid):
        if _cmdline(child) == main_cmd:
            out["pool"] += _status_kib(child)
            out["pool_n"] += 1
        else:
            todo = [child]
            while todo:
                p = todo.pop()
                out["helpers"] += _status_kib(p)
                out["helpers_n"] += 1
                todo += _children(p)
    out["total"] = out["main"] + out["pool"] + out["helpers"]
    return out


# ----------------------------------------------------------------------------------------------- figures


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[min(len(values) - 1, int(p * len(values)))]


def spread(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(best, median, min, max)."""
    return max(values), statistics.median(values), min(values), max(values)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> list[str]:
    """Lines of a plain-text table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    rows = [list(r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


# ----------------------------------------------------------------------------------------------- durability


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def durability(r: Any, engine: sa.Engine) -> list[str]:
    """The durability settings the servers report (queried, not what we asked for), one line per server."""
    with engine.connect() as conn:
        pg = {
            name: _text(conn.exec_driver_sql(f"SHOW {name}").scalar())
            for name in ("server_version", "fsync", "synchronous_commit", "wal_sync_method", "full_page_writes")
        }
    redis_conf: dict[str, str] = {}
    for name in ("appendonly", "appendfsync", "save"):
        redis_conf.update({_text(k): _text(v) or '""' for k, v in r.config_get(name).items()})
    version = pg.pop("server_version").split()[0]
    return [
        f"PostgreSQL {version}: " + ", ".join(f"{k} = {v}" for k, v in pg.items()),
        f"Redis {_text(r.info('server').get('redis_version'))}: "
        + ", ".join(f"{k} = {v}" for k, v in redis_conf.items()),
    ]


def machine() -> str:
    import celery
    import kombu

    return (
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, Celery {celery.__version__}, "
        f"kombu {kombu.__version__}, load average {os.getloadavg()[0]:.2f} at start"
    )
