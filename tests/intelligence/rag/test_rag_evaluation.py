"""Part 4, evaluation: metrics are right, BEIR collections load, the CLI prints three rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from circuits.settings import get_settings
from intelligence.rag.cli import rag
from intelligence.rag.collections import Collection, load_collection, write_beir
from intelligence.rag.evaluation import evaluate, ndcg_at_k, precision_at_k, recall_at_k, reciprocal_rank


def test_metrics_on_a_hand_checked_ranking() -> None:
    gains = {"a": 3.0, "b": 1.0, "z": 0.0}
    ranked = ["x", "a", "z", "b"]
    dcg = 3 / math.log2(3) + 1 / math.log2(5)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, gains, 10) == pytest.approx(dcg / idcg)
    assert reciprocal_rank(ranked, gains, 10) == 0.5
    assert reciprocal_rank(ranked, gains, 1) == 0.0
    assert precision_at_k(ranked, gains, 4) == 0.5
    assert recall_at_k(ranked, gains, 2) == 0.5
    m = evaluate({"q": ranked}, {"q": gains, "unjudged": {}}, k=10)
    assert m.queries == 1 and m.mrr == 0.5


def test_cranfield_is_converted_with_positional_query_numbers(cranfield: Collection) -> None:
    assert len(cranfield.corpus) == 1400 and len(cranfield.queries) == 225
    assert sum(len(j) for j in cranfield.qrels.values()) == 1837
    # qrels query 3 is the third query in cran.qry (.I 004), about heat conduction in composite slabs
    assert "heat conduction in composite slabs" in cranfield.queries["3"]
    assert cranfield.qrels["3"]["5"] == 2.0  # code 3 -> gain 5 - 3
    assert cranfield.qrels["3"]["485"] == 0.0  # code -1 -> not relevant


def test_beir_round_trip(cranfield: Collection, tmp_path: Path) -> None:
    small = Collection(
        corpus=dict(list(cranfield.corpus.items())[:20]),
        queries={"1": cranfield.queries["1"]},
        qrels={"1": cranfield.qrels["1"]},
        name="small",
    )
    write_beir(small, tmp_path)
    assert (tmp_path / "qrels" / "test.tsv").read_text().startswith("query-id\tcorpus-id\tscore\n")
    loaded = load_collection(tmp_path)
    assert loaded.corpus == small.corpus and loaded.queries == small.queries and loaded.qrels == small.qrels


def _write_tiny_beir(folder: Path) -> None:
    docs = {
        "d1": "Refunds are paid back to the original card within five business days.",
        "d2": "Shipping abroad takes two weeks; express courier takes three days.",
        "d3": "Reset a forgotten password from the login page with the emailed link.",
        "d4": "Invoices are emailed monthly and billing questions go to finance.",
        "d5": "Our office dog is called Biscuit and likes long walks.",
    }
    queries = {"q1": "how do I get my money back", "q2": "password reset link", "q3": "when do invoices arrive"}
    qrels = [("q1", "d1", 2), ("q2", "d3", 2), ("q3", "d4", 1)]
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items())
    )
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )


def test_cli_eval_prints_bm25_dense_and_hybrid_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_tiny_beir(tmp_path / "mine")
    monkeypatch.setenv("CIRCUIT_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(rag, ["eval", "--collection", str(tmp_path / "mine"), "--k", "3", "--alpha", "0.5"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ")}
    assert {"bm25", "dense", "hybrid"} <= set(rows)
    assert (
        "nDCG@3=" in rows["hybrid"]
        and "MRR@3=" in rows["hybrid"]
        and "P@3=" in rows["hybrid"]
        and "R@3=" in rows["hybrid"]
    )
    assert "mine: 5 documents, 3 judged queries" in result.output


def test_cli_rejects_a_folder_that_is_not_a_collection(tmp_path: Path) -> None:
    result = CliRunner().invoke(rag, ["eval", "--collection", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a BEIR collection" in str(result.exception) + result.output
