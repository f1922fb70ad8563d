"""``circuit-os rag ...``: evaluate retrieval on a labelled collection, ingest documents.

``rag`` is a click group; workers/cli.py attaches it to the main command.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

log = logging.getLogger(__name__)


@click.group(name="rag")
def rag() -> None:
    """Retrieval: evaluate, ingest, query."""


@rag.command("eval")
@click.option(
    "--collection",
    "collection_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv); default: the shipped Cranfield.",
)
@click.option("--k", default=10, show_default=True, help="Cut-off of every metric.")
@click.option(
    "--alpha", type=float, default=None, help="Dense weight of the hybrid; default: tune on half the queries."
)
def eval_cmd(collection_dir: Path | None, k: int, alpha: float | None) -> None:
    """Print nDCG, MRR, P and R at k for BM25, dense and hybrid retrieval side by side."""
    from circuits.settings import get_settings
    from intelligence.rag import store
    from intelligence.rag.benchmark import run_eval
    from intelligence.rag.collections import load_collection

    coll = load_collection(collection_dir)
    settings = get_settings()
    click.echo(f"collection {coll.name}: {len(coll.corpus)} documents, {len(coll.queries)} judged queries")
    report = run_eval(coll, store.chroma_client(settings.home, settings.chroma_url), k=k, alpha=alpha)
    if report.tuned_on:
        click.echo(
            f"hybrid = weighted fusion, dense weight alpha={report.alpha:.2f} tuned on {report.tuned_on} queries"
        )
        click.echo("held-out queries (never used for tuning):")
    else:
        click.echo(f"hybrid = weighted fusion, dense weight alpha={report.alpha:.2f} (given)")
    for name in ("bm25", "dense", "hybrid"):
        click.echo("  " + report.test[name].row(name))
    click.echo("all queries:")
    for name in ("bm25", "dense", "hybrid", "rrf"):
        click.echo("  " + report.all[name].row(name))
    best_single = max(report.test["bm25"].ndcg, report.test["dense"].ndcg)
    gain = report.test["hybrid"].ndcg - best_single
    click.echo(f"hybrid gain over the best single retriever (held-out nDCG@{k}): {gain:+.3f}")


@rag.command("ingest")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--collection", default="default", show_default=True)
@click.option("--ttl", "ttl_s", type=float, default=None, help="Seconds each document stays fresh.")
@click.option("--authority", type=float, default=None, help="Trust in this source, 0..1.")
@click.option("--force", is_flag=True, help="Re-embed documents even when unchanged.")
def ingest_cmd(path: Path, collection: str, ttl_s: float | None, authority: float | None, force: bool) -> None:
    """Ingest a .jsonl file, a text file or a folder of text files."""
    from circuits.actions import ActionContext
    from circuits.settings import get_settings
    from intelligence.rag.actions import ingest
    from intelligence.rag.schemas import IngestInput

    ctx = ActionContext(run_id="cli", step_id="ingest", circuit="cli")
    ctx.resources.settings = get_settings()
    out = ingest(ctx, IngestInput(collection=collection, path=str(path), ttl_s=ttl_s, authority=authority, force=force))
    click.echo(f"{collection}: {len(out.ingested)} ingested ({out.chunks} chunks), {len(out.skipped)} unchanged")


@rag.command("query")
@click.argument("query")
@click.option("--collection", default="default", show_default=True)
@click.option("--k", default=5, show_default=True)
def query_cmd(query: str, collection: str, k: int) -> None:
    """Show the top results for QUERY as JSON lines, with their sources and score parts."""
    from circuits.actions import ActionContext
    from circuits.settings import get_settings
    from intelligence.rag.actions import retrieve
    from intelligence.rag.schemas import RetrieveInput

    ctx = ActionContext(run_id="cli", step_id="query", circuit="cli")
    ctx.resources.settings = get_settings()
    out = retrieve(ctx, RetrieveInput(collection=collection, query=query, k=k))
    click.echo(f"intent={out.intent} sources={','.join(out.sources)}")
    for hit in out.hits:
        click.echo(json.dumps({"id": hit.id, "score": round(hit.score, 4), "source": hit.source, "title": hit.title}))
