"""Circuits against plain Celery, side by side, on one Redis and the same worker pools.

    python -m bench.bench_engine                     # everything, full sizes (many minutes)
    python -m bench.bench_engine --quick             # everything, small sizes (a couple of minutes)
    python -m bench.bench_engine --only burst,hot    # sections: throughput,latency,cpu,burst,hot,scale,pools,memory

Starts its own Redis (append-only file, fsync every second) and PostgreSQL (fsync and
synchronous_commit on), the SQL ledger in PostgreSQL as in production, and Celery workers
that run both the circuits and the plain tasks (bench/plain_tasks.py):

* throughput: a 5-step circuit against a plain chain of 5, a 10-way parallel against a chord of
  10 + 1, over rounds in which both sides alternate; ratios per round (best, median, spread);
* latency: publish (apply_async) to the first step starting;
* cpu: CPU seconds per 1,000 runs in each process (worker main, pool, stream reader, ledger
  writer, Redis, PostgreSQL, the benchmark), both workloads, both sides;
* burst: many five-step runs at once, publish to run end per run (p50, p95, p99);
* hot: one higher-priority run published right behind an import of many;
* scale: one worker against two, plus a foreach over 1,000 items and a 50-way parallel;
* pools: I/O-bound steps on a prefork worker against a thread pool;
* memory: RSS of a fresh worker while it runs 10,000 runs, against 10,000 plain chains.

Progress goes to stderr, the report to stdout at the end. Every wait is bounded (``--timeout``):
a section that gives up stops the benchmark with a message, and the figures measured so far are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from bench.engine_common import (
    ROOT,
    GaveUp,
    Limits,
    Workers,
    durability,
    machine,
    note,
    release_pending,
    subscriptions,
)

SECTIONS = ("throughput", "latency", "cpu", "burst", "hot", "scale", "pools", "memory")


@dataclass
class Sizes:
    rounds: int = 5
    chains: int = 500
    chords: int = 200
    latency: int = 200
    burst: int = 300
    imported: int = 1000
    scale_rounds: int = 2
    foreach_items: int = 1000
    wide: int = 40
    memory_runs: int = 10_000
    memory_batch: int = 1000
    io_runs: int = 200


QUICK = Sizes(
    rounds=1,
    chains=50,
    chords=20,
    latency=20,
    burst=50,
    imported=100,
    scale_rounds=1,
    foreach_items=200,
    wide=5,
    memory_runs=1000,
    memory_batch=100,
    io_runs=30,
)
HELP = {
    "rounds": "throughput rounds",
    "chains": "runs per measurement of the 5-step sequence (and plain chains)",
    "chords": "runs per measurement of the 10-way parallel (and plain chords)",
    "latency": "single-step runs timed for latency",
    "burst": "runs published at once in the burst",
    "imported": "runs of the import the hot run is published behind",
    "scale_rounds": "rounds of each scale measurement (best kept)",
    "foreach_items": "items of the foreach run and of the plain group (the engine caps foreach at 1000)",
    "wide": "runs of the 50-way parallel (and plain chords of 50 + 1)",
    "memory_runs": "runs (and plain chains) in the memory section",
    "memory_batch": "runs published per memory batch",
    "io_runs": "runs of three 50 ms steps per pool in the pools section",
}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Sizes, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere, one round (a check, not figures)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of sections: {','.join(SECTIONS)}")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes of the single worker")
    parser.add_argument(
        "--scale-concurrency", type=int, default=1, help="pool processes of EACH of the two workers in 'scale'"
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="the longest any one wait may take, seconds")
    for f in fields(Sizes):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=int, default=None, dest=f.name, help=HELP[f.name])
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    sizes = Sizes(**{f.name: getattr(args, f.name) or getattr(sizes, f.name) for f in fields(Sizes)})
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown or not only:
        parser.error(f"--only takes a comma list of {', '.join(SECTIONS)}; unknown: {', '.join(unknown) or 'none'}")
    if sizes.memory_runs < 2 * sizes.memory_batch or sizes.memory_runs % sizes.memory_batch:
        parser.error("--memory-runs must be a multiple of --memory-batch, at least two batches")
    return args, sizes, only


class Report:
    def __init__(self) -> None:
        self.header: list[str] = []
        self.sections: list[list[str]] = []
        self.problem: str | None = None

    def add(self, lines: list[str]) -> None:
        self.sections.append(lines)

    def print(self) -> None:
        out = [*self.header]
        for lines in self.sections:
            out += ["", *lines]
        if self.problem:
            out += ["", f"STOPPED: {self.problem}"]
        print("\n".join(out), flush=True)


def _warm_up(r: Any, engine: Any) -> None:
    from bench.engine_throughput import SEQUENCE, circuit_runs, plain_chains

    plain_chains(r, 20)
    circuit_runs(r, engine, *SEQUENCE, 20)


class Bench:
    """The sections, in order, on the workers each needs; figures go into ``report``."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, only: list[str], r: Any, engine: Any, app: Any) -> None:
        from bench.engine_scale import Scale
        from bench.engine_scale import Sizes as ScaleSizes

        self.args, self.sizes, self.only, self.r, self.engine = args, sizes, only, r, engine
        self.workers = Workers(app, os.environ.copy())
        self.report = Report()
        self.scale = Scale(
            ScaleSizes(sizes.chains, sizes.chords, sizes.foreach_items, sizes.wide),
            sizes.scale_rounds,
            one=f"1 worker, prefork -c {args.concurrency}",
            two=f"2 workers (-n w1@%h, -n w2@%h), prefork -c {args.scale_concurrency} each",
        )
        self.scale_reported = False

    def run(self) -> None:
        if any(s in self.only for s in SECTIONS[:6]):
            note(f"starting one worker (-c {self.args.concurrency})")
            self.workers.start("main", self.args.concurrency)
            self.workers.ready()
            _warm_up(self.r, self.engine)
            self.single_worker()
            if "scale" in self.only:
                self.run_scale()
            self.workers.stop()
        if "pools" in self.only:
            from bench.engine_pools import run_pools

            self.section("pools", lambda: run_pools(self.r, self.engine, self.workers, self.sizes.io_runs))
        if "memory" in self.only:
            from bench.engine_memory import run_memory

            s = self.sizes
            self.section(
                "memory",
                lambda: run_memory(
                    self.r, self.engine, self.workers, s.memory_runs, s.memory_batch, self.args.concurrency
                ),
            )

    def section(self, what: str, fn: Callable[[], Any]) -> None:
        started = time.monotonic()
        lines = fn().report()
        lines[0] = f"[{what}, {time.monotonic() - started:.0f} s] {lines[0]}"
        self.report.add(lines)

    def single_worker(self) -> None:
        from bench import engine_burst, engine_throughput

        r, engine, s = self.r, self.engine, self.sizes
        if "throughput" in self.only:
            self.section(
                "throughput", lambda: engine_throughput.run_throughput(r, engine, s.rounds, s.chains, s.chords)
            )
        if "latency" in self.only:
            self.section("latency", lambda: engine_throughput.run_latency(r, engine, s.latency))
        if "cpu" in self.only:
            from bench.engine_cpu import run_cpu

            pid = self.workers.pids()["main"]
            self.section("cpu", lambda: run_cpu(r, engine, pid, s.chains, s.chords))
        if "burst" in self.only:
            self.section("burst", lambda: engine_burst.run_burst(r, engine, s.burst))
        if "hot" in self.only:
            self.section("hot", lambda: engine_burst.run_hot(r, engine, s.imported))

    def run_scale(self) -> None:
        """One worker (already running) first, then two fresh ones."""
        from bench.engine_scale import measure

        started = time.monotonic()
        scale, rounds = self.scale, self.sizes.scale_rounds
        scale.figures["one"] = measure(self.r, self.engine, scale.sizes, rounds, "1 worker")
        scale.subscriptions["1"] = subscriptions(self.r)
        self.workers.stop()
        note(f"starting two workers (-c {self.args.scale_concurrency} each)")
        self.workers.start("w1", self.args.scale_concurrency)
        self.workers.start("w2", self.args.scale_concurrency)
        self.workers.ready()
        _warm_up(self.r, self.engine)
        scale.figures["two"] = measure(self.r, self.engine, scale.sizes, rounds, "2 workers")
        scale.subscriptions["2"] = subscriptions(self.r)
        lines = scale.report()
        lines[0] = f"[scale, {time.monotonic() - started:.0f} s] {lines[0]}"
        self.report.add(lines)
        self.scale_reported = True

    def header(self, quick: bool) -> None:
        servers = durability(self.r, self.engine)
        self.report.header = [
            "Circuit OS vs plain Celery: one Redis, the ledger to PostgreSQL; both sides on the same workers "
            "(celery -A workers worker, prefork, every queue).",
            f"Machine: {machine()}.",
            *(f"Durability, as the server reports it: {line}." for line in servers),
            f"Sizes: {'--quick, ' if quick else ''}"
            + ", ".join(f"{f.name} {getattr(self.sizes, f.name)}" for f in fields(Sizes))
            + f"; sections: {', '.join(self.only)}; every wait gives up after {self.args.timeout:g} s.",
        ]


def main(argv: list[str] | None = None) -> int:
    args, sizes, only = parse_args(argv)
    Limits.wait_s = args.timeout

    from circuits.errors import CircuitError
    from workers.embedded import EmbeddedPostgres, EmbeddedRedis

    started = time.monotonic()
    with EmbeddedRedis(appendonly=True) as redis_url, EmbeddedPostgres(durable=True) as pg_url:
        os.environ.update(
            {
                "CIRCUIT_REDIS_URL": redis_url,
                "CIRCUIT_DATABASE_URL": pg_url,
                "CIRCUIT_CIRCUITS": str(ROOT / "bench" / "circuits"),
                "CIRCUIT_ACTION_MODULES": "circuits.builtin",
            }
        )
        from storage.migrate import upgrade
        from workers.app import app
        from workers.runtime import runtime

        rt = runtime()
        upgrade(rt.engine)
        bench = Bench(args, sizes, only, rt.redis, rt.engine, app)
        bench.header(args.quick)
        try:
            bench.run()
        except (GaveUp, CircuitError) as exc:
            bench.report.problem = str(exc)
            if bench.scale.figures and not bench.scale_reported:
                bench.report.add(bench.scale.report())
        except KeyboardInterrupt:
            bench.report.problem = "interrupted"
        finally:
            release_pending()  # after a wait gave up: no result object may unsubscribe at exit, Redis gone
            bench.workers.stop()
            rt.close()
    report = bench.report
    report.header[0] += f" Took {time.monotonic() - started:.0f} s."
    report.print()
    return 1 if report.problem else 0


if __name__ == "__main__":
    sys.exit(main())
