"""Benchmark graph.related on the loaded CRM data (target: p95 <= 20 ms). Prints figures; not a test.

Starts the embedded ArcadeDB Bolt server in a temporary folder on free ports,
loads the CRM data set, warms up, then calls the graph.related action for every
account in turn, the way a worker would. The warm-up matters: a freshly started
JVM interprets the query engine until its JIT has compiled the hot paths (about
600 calls here); a long-running server is always warm.

    python bench/bench_graph.py [--rounds 5] [--warmup 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from circuits.actions import ActionContext
from circuits.settings import Settings
from intelligence.graph.actions import graph_client, query, related
from intelligence.graph.embedded import EmbeddedGraphServer
from intelligence.graph.loader import load_crm
from intelligence.graph.models import QueryInput, RelatedInput

PASSWORD = "bench-graph-password"


def _percentiles(ms: list[float]) -> str:
    ms = sorted(ms)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return (
        f"n={len(ms)} p50={statistics.median(ms):.1f} ms p95={pick(0.95):.1f} ms "
        f"p99={pick(0.99):.1f} ms max={ms[-1]:.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="Passes over all 85 accounts.")
    parser.add_argument("--warmup", type=int, default=600, help="Calls before measuring (JIT warm-up).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedGraphServer(tmp, password=PASSWORD) as server:
        settings = Settings(neo4j_url=server.bolt_url, neo4j_user=server.user, neo4j_password=PASSWORD, home=tmp)
        ctx = ActionContext.for_test(settings=settings)
        client = graph_client(ctx)
        t = time.perf_counter()
        loaded = load_crm(client)
        print(f"load: {loaded.nodes} nodes, {loaded.relationships} relationships in {time.perf_counter() - t:.1f} s")
        names = [r["name"] for r in client.read("MATCH (a:Account) RETURN a.name AS name ORDER BY name")]
        inputs = [RelatedInput(company=n) for n in names] + [
            RelatedInput(company="New Lead Ltd", subsidiary_of="Sonron")
        ]
        i = iter(range(10**9))
        call = lambda: related(ctx, inputs[next(i) % len(inputs)])  # noqa: E731
        _timed(call, args.warmup)
        ms = _timed(call, args.rounds * len(inputs))
        print(f"graph.related (limit 10, {len(inputs)} companies x {args.rounds}): {_percentiles(ms)}")
        print(f"load average during the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores shared)")
        print(f"target p95 <= 20 ms: {'MET' if sorted(ms)[int(0.95 * len(ms))] <= 20 else 'MISSED'}")
        q = QueryInput(name="account_deals", params={"name": "Kan-code", "limit": 20})
        _timed(lambda: query(ctx, q), 50)
        print(f"graph.query account_deals (limit 20): {_percentiles(_timed(lambda: query(ctx, q), 200))}")
        ctx.resources.close()


if __name__ == "__main__":
    main()
