"""RAG figures: BM25 / dense / hybrid on Cranfield, and rag.retrieve latency over its 1,400 docs.

Run: ``python bench/bench_rag.py [--home DIR]``. The first run embeds the corpus (a few
minutes on 2 busy cores); later runs reuse the Chroma store under DIR.
Targets: hybrid nDCG@10 >= max(BM25, dense) + 0.02; rag.retrieve p95 <= 50 ms.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from circuits.actions import ActionContext  # noqa: E402
from circuits.settings import Settings  # noqa: E402
from intelligence.rag import store  # noqa: E402
from intelligence.rag.actions import ingest, retrieve  # noqa: E402
from intelligence.rag.benchmark import run_eval  # noqa: E402
from intelligence.rag.collections import load_collection  # noqa: E402
from intelligence.rag.schemas import DocumentIn, IngestInput, RetrieveInput  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, default=Path(".circuit-os/bench"))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import bm25s  # noqa: F401 - it sets its logger to DEBUG on import; quiet it after

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    coll = load_collection()

    started = time.perf_counter()
    report = run_eval(coll, store.chroma_client(args.home), k=args.k)
    print(
        f"== retrieval quality on Cranfield ({len(coll.corpus)} docs, {len(coll.queries)} queries; "
        f"graded gain 5 - code) [{time.perf_counter() - started:.0f} s]"
    )
    print(f"hybrid: weighted fusion, alpha={report.alpha:.2f} tuned on {report.tuned_on} even-position queries")
    print("held-out (odd-position) queries:")
    for name in ("bm25", "dense", "hybrid", "rrf"):
        print("  " + report.test[name].row(name))
    print("all queries:")
    for name in ("bm25", "dense", "hybrid", "rrf"):
        print("  " + report.all[name].row(name))
    gain = report.test["hybrid"].ndcg - max(report.test["bm25"].ndcg, report.test["dense"].ndcg)
    print(f"hybrid - best single (held-out nDCG@{args.k}): {gain:+.3f}  (target >= +0.020)")

    settings = Settings(home=args.home, database_url=f"sqlite:///{args.home / 'bench.db'}")
    ctx = ActionContext.for_test(settings=settings, run_id="bench")
    docs = [DocumentIn(id=d, title=t, text=x, ttl_s=30 * 86400) for d, (t, x) in coll.corpus.items()]
    started = time.perf_counter()
    out = ingest(ctx, IngestInput(collection="cranfield", documents=docs))
    print(
        f"== rag.ingest: {len(out.ingested)} new, {len(out.skipped)} unchanged, {time.perf_counter() - started:.1f} s"
    )
    queries = list(coll.queries.values())
    for q in queries[:5]:  # warm the embedder, Chroma and the BM25 mirror
        retrieve(ctx, RetrieveInput(collection="cranfield", query=q, k=args.k))
    times = []
    for q in queries:
        t0 = time.perf_counter()
        retrieve(ctx, RetrieveInput(collection="cranfield", query=q, k=args.k))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(
        f"== rag.retrieve over {len(coll.corpus)} docs, {len(times)} queries, k={args.k}: "
        f"p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms  (target p95 <= 50 ms)"
    )
    ctx.resources.close()


if __name__ == "__main__":
    main()
