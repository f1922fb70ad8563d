"""Where the CPU goes: seconds per 1,000 runs in each process, plain Celery beside circuits.

On a machine the benchmark keeps busy, throughput follows CPU: this table says which process
a difference comes from (the worker's main process, its pool, the stream reader and the
ledger writer it starts, Redis, PostgreSQL, and the benchmark itself, which publishes and
waits). Read from ``/proc/<pid>/stat`` (user + system time) before and after each measurement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.engine_common import _children, _cmdline, note, table

TICK = os.sysconf("SC_CLK_TCK")
ROWS = ("benchmark (publishes, waits)", "worker main process", "worker pool", "stream reader", "ledger writer")
SERVERS = ("Redis", "PostgreSQL")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


class Processes:
    """The processes one measurement involves, found once: the worker's tree, Redis, PostgreSQL."""

    def __init__(self, r: Any, engine: sa.Engine, worker_pid: int) -> None:
        self.worker = worker_pid
        self.redis = int(r.info("server")["process_id"])
        with engine.connect() as conn:
            backend = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)
        self.postmaster = _parent(backend)

    def snapshot(self) -> dict[str, float]:
        out = dict.fromkeys(ROWS + SERVERS, 0.0)
        out[ROWS[0]] = cpu_s(os.getpid())
        out[ROWS[1]] = cpu_s(self.worker)
        main_cmd = _cmdline(self.worker)
        for child in _children(self.worker):
            cmd = _cmdline(child)
            if cmd == main_cmd:
                out[ROWS[2]] += cpu_s(child)
            elif b"stream_ingest" in cmd:
                out[ROWS[3]] += cpu_s(child)
            elif b"ledger_writer" in cmd:
                out[ROWS[4]] += cpu_s(child)
        out["Redis"] = cpu_s(self.redis)
        out["PostgreSQL"] = cpu_s(self.postmaster) + sum(cpu_s(p) for p in _children(self.postmaster))
        return out


@dataclass
class Cpu:
    runs: dict[str, int]
    #: workload -> side -> process -> CPU seconds per 1,000 runs
    figures: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def report(self) -> list[str]:
        lines = [
            "CPU seconds per 1,000 runs, by process (user + system, from /proc), one measurement each: "
            + ", ".join(f"{n} {w} runs" for w, n in self.runs.items())
            + ". The worker is the one above (prefork); the stream reader and the ledger writer are the"
            " processes it starts beside its pool.",
        ]
        headers = ["process"]
        for workload in self.figures:
            headers += [f"{workload}: plain", "circuit"]
        rows = []
        for name in ROWS + SERVERS + ("total",):
            row = [name]
            for sides in self.figures.values():
                for side in ("plain", "circuit"):
                    got = sides[side]
                    value = sum(got.values()) if name == "total" else got.get(name, 0.0)
                    row.append(f"{value:.2f}")
            rows.append(row)
        return lines + table(headers, rows)


def measure_one(procs: Processes, n: int, fn: Any) -> dict[str, float]:
    before = procs.snapshot()
    fn()
    after = procs.snapshot()
    return {k: (after[k] - before[k]) * 1000 / n for k in after}


def run_cpu(r: Any, engine: sa.Engine, worker_pid: int, chains: int, chords: int) -> Cpu:
    from bench import engine_throughput as et

    procs = Processes(r, engine, worker_pid)
    out = Cpu({"sequence": chains, "parallel": chords})
    plain_seq, plain_par = (lambda: et.plain_chains(r, chains)), (lambda: et.plain_chords(r, chords))
    ours_seq = lambda: et.circuit_runs(r, engine, *et.SEQUENCE, chains)  # noqa: E731
    ours_par = lambda: et.circuit_runs(r, engine, *et.PARALLEL, chords)  # noqa: E731
    for workload, n, plain, ours in (
        ("sequence", chains, plain_seq, ours_seq),
        ("parallel", chords, plain_par, ours_par),
    ):
        note(f"cpu: {workload}")
        out.figures[workload] = {"plain": measure_one(procs, n, plain), "circuit": measure_one(procs, n, ours)}
    return out
