"""The chaos suite: faults during batches of runs, on real Redis, PostgreSQL and worker processes.

    python -m bench.chaos [--quick] [--only pool-kill,redis-kill9,...] [--deadline 120]

Each scenario publishes a batch of runs of 5-step sequences, 5-way parallel blocks and 8-item
foreach loops (3 items at a time) whose steps count their own executions (``chaos.count``, in
a Redis no fault touches), breaks something while they run, waits until every run has ended in the ledger (at most
``--deadline`` seconds after the fault ended), and prints one row: runs published,
succeeded, failed, lost (no run in the ledger), stuck (still running), (run, step) effects
duplicated or missing, step records missing from the ledger, and the time from the fault's
end until every run had ended. A duplicate whose earlier executions each died in a kill just
after its effect (before the step's done mark, the one case the engine repeats) is counted
apart. Targets: 0 lost, 0 stuck, 0 other duplicates, recovery within 60 s. The figures also
go to ``bench/CHAOS.md``. Every wait is bounded; the default run takes under about 15
minutes, ``--quick`` a few.

The scenarios are plain functions of a :class:`~bench.chaos_lab.Lab`, shared with the
fast subset in ``tests/workers/test_chaos.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.chaos_lab import KILL_WINDOW_S, Batch, Lab, Result, batch_of, make_events

ROOT = Path(__file__).resolve().parent.parent
EVENT_STREAM = "circuit:events"  # the default CIRCUIT_EVENT_STREAM, which the lab keeps


def _until(check: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step_s)
    return False


def pool_kill(lab: Lab, runs: int = 1000, kills: int = 8, every_s: float = 1.0, deadline_s: float = 120) -> Result:
    """kill -9 a random prefork pool process, every ``every_s``, while ``runs`` runs go through."""
    events = make_events(runs, "pool", ms=20)
    producer = lab.publish(events)
    time.sleep(1.0)
    fault_end, done = time.monotonic(), 0
    for _ in range(kills):
        if lab.kill_pool_child() is not None:
            fault_end, done = time.monotonic(), done + 1
        time.sleep(every_s)
    batch = batch_of(events, producer.result())
    res = lab.measure(f"kill -9 pool child x{done}", batch, fault_end, deadline_s)
    return res


def worker_kill(lab: Lab, runs: int = 1000, after_s: float = 3.0, deadline_s: float = 120) -> Result:
    """kill -9 one whole worker (main process, pool, ledger writer) mid-batch; start a replacement."""
    events = make_events(runs, "worker", ms=20)
    producer = lab.publish(events)
    time.sleep(after_s)
    lab.kill_worker(lab.workers[0])
    fault_end = time.monotonic()
    lab.add_worker()  # as a supervisor would
    batch = batch_of(events, producer.result())
    return lab.measure("kill -9 whole worker", batch, fault_end, deadline_s)


def redis_restart(
    lab: Lab, runs: int = 400, hard: bool = False, spread_s: float = 6.0, deadline_s: float = 120
) -> Result:
    """Restart Redis (AOF everysec; SIGTERM, or kill -9 when ``hard``) while events come in through
    publish() and the stream, and runs go on."""
    events = make_events(runs, "redis-kill" if hard else "redis-term", ms=10)
    half = len(events) // 2
    producers = [lab.publish(events[:half], "worker", spread_s), lab.publish(events[half:], "stream", spread_s)]
    time.sleep(spread_s / 3 + 1.0)  # a producer takes about a second to start
    lab.redis.restart(hard=hard)
    fault_end = time.monotonic()
    batch = batch_of(events, [e for p in producers for e in p.result()])
    res = lab.measure(f"Redis restart ({'kill -9' if hard else 'SIGTERM'}), AOF", batch, fault_end, deadline_s)
    if len(batch.groups) < len(events):
        res.notes.append(f"{len(events) - len(batch.groups)} event(s) never accepted by Redis")
    return res


def pg_outage(lab: Lab, runs: int = 1000, down_s: float = 30.0, deadline_s: float = 120) -> Result:
    """Stop PostgreSQL for ``down_s`` while ``runs`` fast runs go through; the ledger must end complete."""
    events = make_events(runs, "pg", ms=0)
    producer = lab.publish(events)
    time.sleep(1.5)
    lab.pg.stop(keep_data=True)
    time.sleep(down_s)
    lab.pg.start()
    fault_end = time.monotonic()
    batch = batch_of(events, producer.result())
    return lab.measure(f"PostgreSQL down {down_s:.0f} s", batch, fault_end, deadline_s)


def _pending(lab: Lab) -> int:
    try:
        return int(lab.r.xpending(EVENT_STREAM, "ingest")["pending"])
    except Exception:  # noqa: BLE001 - no group yet, or Redis reconnecting
        return 0


def ingest_kill(lab: Lab, runs: int = 600, kills: int = 3, deadline_s: float = 120) -> Result:
    """kill -9 ``circuit-os ingest`` in the middle of a batch of stream entries, ``kills`` times,
    restarting it each time."""
    if lab.ingest is not None and lab.ingest.poll() is None:
        lab.kill_ingest()  # idle now: a backlog must build up first
    events = make_events(runs, "ingest", ms=10)
    batch = batch_of(events, lab.publish(events, "stream").result())
    fault_end, done = time.monotonic(), 0
    for _ in range(kills):
        before = _pending(lab)  # entries a killed ingest left pending stay so until they are reclaimed
        lab.start_ingest()

        def grew(b: int = before) -> bool:
            return _pending(lab) > b

        if not _until(grew, 30, 0.005):
            break  # it never took a batch (the backlog is gone, or it does not start)
        time.sleep(random.uniform(0.0, 0.1))
        lab.kill_ingest()
        fault_end, done = time.monotonic(), done + 1
    lab.start_ingest()
    return lab.measure(f"kill -9 ingest mid-batch x{done}", batch, fault_end, deadline_s)


def idempotency(lab: Lab, publishes: int = 200, processes: int = 4, deadline_s: float = 120) -> Result:
    """``publishes`` events with one idempotency key, from ``processes`` processes at once (half of
    them through the ingest task, half matching circuits themselves): exactly one run."""
    key = f"chaos-key-{random.getrandbits(48):x}"
    events = make_events(publishes, "idem", ms=10, key=key)
    start_at = time.time() + 3.0  # every producer imported and ready by then
    slices = [events[i::processes] for i in range(processes)]
    producers = [
        lab.publish(part, "worker" if i % 2 == 0 else "direct", start_at=start_at) for i, part in enumerate(slices)
    ]
    published = [e for p in producers for e in p.result()]
    fault_end = time.monotonic()
    batch = Batch()
    batch.add(published, events[0]["type"])
    res = lab.measure(f"{publishes} publishes, one key, {processes} procs", batch, fault_end, deadline_s)
    res.notes.append(f"{len(published)} of {publishes} publishes accepted by Redis")
    return res


@dataclass(frozen=True)
class Scenario:
    key: str
    run: Callable[..., Result]
    full: dict[str, Any]
    quick: dict[str, Any]


SCENARIOS = [
    Scenario("pool-kill", pool_kill, {"runs": 1000, "kills": 8}, {"runs": 200, "kills": 4}),
    Scenario("worker-kill", worker_kill, {"runs": 1000}, {"runs": 200, "after_s": 2.0}),
    Scenario("redis-term", redis_restart, {"runs": 400}, {"runs": 150, "spread_s": 4.0}),
    Scenario("redis-kill9", redis_restart, {"runs": 400, "hard": True}, {"runs": 150, "hard": True, "spread_s": 4.0}),
    Scenario("pg-outage", pg_outage, {"runs": 1000, "down_s": 30}, {"runs": 300, "down_s": 10}),
    Scenario("ingest-kill", ingest_kill, {"runs": 600, "kills": 3}, {"runs": 300, "kills": 2}),
    Scenario("idempotency", idempotency, {"publishes": 200}, {"publishes": 200}),
]

COLUMNS = [
    ("fault", 40),
    ("published", 10),
    ("succeeded", 10),
    ("failed", 7),
    ("lost", 5),
    ("stuck", 6),
    ("dup fx", 7),
    ("again after kill", 17),
    ("miss fx", 8),
    ("ledger gaps", 12),
    ("recovery", 10),
]


def _cells(r: Result, deadline_s: float) -> list[str]:
    if r.error:
        return [r.fault, *["-"] * (len(COLUMNS) - 2), "error"]
    recovery = f"{r.recover_s:.1f} s" if r.recover_s is not None else f"> {deadline_s:.0f} s"
    return [
        r.fault,
        str(r.published),
        str(r.succeeded),
        str(r.failed),
        str(r.lost),
        str(r.stuck),
        str(r.duplicated),
        str(r.repeated_after_kill),
        str(r.missing),
        str(r.ledger_gaps),
        recovery,
    ]


def _line(cells: list[str]) -> str:
    widths = [w for _, w in COLUMNS]
    return f"{cells[0]:<{widths[0]}}" + "".join(f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:], strict=True))


def table(results: list[Result], deadline_s: float) -> str:
    return "\n".join([_line([name for name, _ in COLUMNS]), *(_line(_cells(r, deadline_s)) for r in results)])


def markdown(
    results: list[Result],
    scenarios: list[Scenario],
    settings: dict[str, str],
    deadline_s: float,
    quick: bool,
    elapsed_s: float,
) -> str:
    head = "| " + " | ".join(name for name, _ in COLUMNS) + " | target |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in results:
        rows.append("| " + " | ".join(_cells(r, deadline_s)) + f" | {'met' if r.ok else '**missed**'} |")
    notes = [f"- {r.fault}: {n}" for r in results for n in r.notes]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# Chaos suite figures",
            "",
            f"`python -m bench.chaos{' --quick' if quick else ''}`, {when}, {elapsed_s / 60:.1f} min; deadline "
            f"{deadline_s:.0f} s after each fault. Real Redis (AOF, appendfsync everysec), PostgreSQL and two "
            "`celery -A workers worker` processes (prefork -c 2), plus `circuit-os ingest`; "
            + f"{os.cpu_count()} CPUs. Settings: "
            + ", ".join(f"`{k}={v}`" for k, v in settings.items())
            + ".",
            "",
            *rows,
            "",
            "Targets: 0 lost, 0 stuck, 0 duplicated effects (dup fx), recovery within 60 s.",
            "",
            "Scenarios, in order (each on a fresh batch, fresh workers and an emptied Redis; PostgreSQL carries on):",
            "",
            *(f"- `{sc.key}` {sc.quick if quick else sc.full}: {_doc(sc.run)}" for sc in scenarios),
            "",
            "- **published**: runs whose event Redis accepted (for the idempotency key: the one run expected).",
            "- **lost**: no run row in the ledger by the deadline; **stuck**: a run row still `running`.",
            "- **dup fx / miss fx**: (run, step) executions counted more than once / never, by `chaos.count`",
            "  in a Redis no fault touches. The count comes at the end of the step's work, so a duplicate is",
            "  a step that had finished running again.",
            "- **again after kill**: effects counted more than once where every earlier execution's process",
            f"  was killed by the fault within {KILL_WINDOW_S:.0f} s of its effect: after the effect, before the",
            "  step's done mark, the one moment in which the engine runs an action again (README, \"Delivery",
            '  guarantees"). Reported apart from **dup fx**, which counts every other repeat.',
            "- **ledger gaps**: (run, step) with no succeeded step row in the ledger.",
            "- **recovery**: from the end of the (last) fault until every run had ended in the ledger.",
            *(["", "Notes:", *notes] if notes else []),
            "",
        ]
    )


def _doc(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").split("\n\n")[0].split())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches and a 10 s database outage")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(s.key for s in SCENARIOS))
    parser.add_argument("--deadline", type=float, help="seconds to wait after each fault (default 120, quick 75)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "CHAOS.md")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CIRCUIT_NAME=VALUE",
        help="a setting for the workers and ingest (default: CIRCUIT_STALL_AFTER_S=10, CIRCUIT_STEP_LEASE_S=10, "
        "CIRCUIT_WATCHDOG_INTERVAL_S=2)",
    )
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set)
    deadline_s = args.deadline or (75.0 if args.quick else 120.0)
    chosen = [s for s in SCENARIOS if not args.only or s.key in args.only.split(",")]
    t0 = time.monotonic()
    results: list[Result] = []
    with Lab(settings=settings) as lab:
        print(
            f"chaos: services up, logs in {lab.logs}; {' '.join(f'{k}={v}' for k, v in lab.settings.items())}",
            flush=True,
        )
        for sc in chosen:
            lab.reset()
            started = time.monotonic()
            try:
                res = sc.run(lab, **(sc.quick if args.quick else sc.full), deadline_s=deadline_s)
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others' figures
                res = Result(sc.key, 0, error=f"{type(exc).__name__}: {exc}", notes=[f"scenario error: {exc}"])
            results.append(res)
            print(f"  {sc.key}: done in {time.monotonic() - started:.0f} s", flush=True)
    elapsed = time.monotonic() - t0
    print("\n" + table(results, deadline_s))
    for r in results:
        for note in r.notes:
            print(f"  {r.fault}: {note}")
    print(f"\n{sum(r.ok for r in results)} of {len(results)} faults met the targets; {elapsed / 60:.1f} min")
    args.out.write_text(markdown(results, chosen, lab.settings, deadline_s, args.quick, elapsed))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
