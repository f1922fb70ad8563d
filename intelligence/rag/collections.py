"""Labelled collections in the BEIR layout, and the Cranfield converter.

BEIR layout (what ``circuit-os rag eval`` reads, so users can evaluate on their own
documents)::

    DIR/corpus.jsonl      {"_id": ..., "title": ..., "text": ...} per line
    DIR/queries.jsonl     {"_id": ..., "text": ...} per line
    DIR/qrels/test.tsv    query-id <TAB> corpus-id <TAB> score   (header line; graded)

A folder holding the SMART-format Cranfield files (``cran.all.1400``, ``cran.qry``,
``cranqrel``) is converted on load. Cranfield's qrels number queries by their position
in ``cran.qry`` (not by ``.I``), and grade 1 (best) .. 4, with -1 = not relevant; we use
gain ``5 - code`` and 0 for -1, as data/cranfield/SOURCE.md describes.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from circuits.errors import ConfigError

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CRANFIELD_DIR = PACKAGE_ROOT / "data" / "cranfield"


@dataclass(frozen=True)
class Collection:
    """A corpus, its queries and graded judgments."""

    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]
    name: str = ""


def load_collection(path: str | Path | None = None) -> Collection:
    """Load a BEIR-layout folder, or a folder of raw Cranfield files (converted on the fly)."""
    folder = Path(path) if path is not None else CRANFIELD_DIR
    if (folder / "corpus.jsonl").exists():
        return load_beir(folder)
    if (folder / "cran.all.1400").exists():
        return load_cranfield(folder)
    raise ConfigError(f"{folder}: not a BEIR collection (corpus.jsonl, queries.jsonl, qrels/test.tsv) nor Cranfield")


def load_beir(folder: Path, split: str = "test") -> Collection:
    """Read corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
    qrels_file = folder / "qrels" / f"{split}.tsv"
    for need in (folder / "queries.jsonl", qrels_file):
        if not need.exists():
            raise ConfigError(f"{folder}: missing {need.relative_to(folder)} (BEIR layout)")
    corpus = {
        str(row["_id"]): (str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _jsonl(folder / "corpus.jsonl")
    }
    queries = {str(row["_id"]): str(row["text"]) for row in _jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, float]] = {}
    with qrels_file.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].lstrip("-").replace(".", "", 1).isdigit():
                continue  # header or blank line
            qrels.setdefault(row[0], {})[row[1]] = float(row[2])
    queries = {q: t for q, t in queries.items() if q in qrels}
    log.info("loaded %s: %d docs, %d judged queries", folder, len(corpus), len(queries))
    return Collection(corpus, queries, qrels, folder.name)


def _jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


_FIELD = re.compile(r"^\.([ITABW])\b ?(.*)$")


def _smart_records(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Parse a SMART tagged file into (id, {field: text}) in file order."""
    records: list[tuple[str, dict[str, list[str]]]] = []
    current: dict[str, list[str]] = {}
    marker = ""
    for line in path.read_text(encoding="ascii").splitlines():
        m = _FIELD.match(line)
        if m and m.group(1) == "I":
            current = {}
            records.append((m.group(2).strip(), current))
            marker = ""
        elif m and not m.group(2):
            marker = m.group(1)
            current.setdefault(marker, [])
        elif marker:
            current[marker].append(line)
    return [(rid, {k: " ".join(" ".join(v).split()) for k, v in fields.items()}) for rid, fields in records]


def load_cranfield(folder: Path) -> Collection:
    """Convert the raw Cranfield files into a :class:`Collection` (graded gain 5 - code)."""
    corpus = {rid: (f.get("T", ""), f.get("W", "")) for rid, f in _smart_records(folder / "cran.all.1400")}
    ordered = _smart_records(folder / "cran.qry")
    queries = {str(pos): f.get("W", "") for pos, (_rid, f) in enumerate(ordered, start=1)}
    qrels: dict[str, dict[str, float]] = {}
    for line in (folder / "cranqrel").read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        code = int(parts[2])
        qrels.setdefault(parts[0], {})[parts[1]] = float(5 - code) if 1 <= code <= 4 else 0.0
    return Collection(corpus, queries, qrels, "cranfield")


def write_beir(collection: Collection, folder: Path) -> None:
    """Write ``collection`` in the BEIR layout (the converter for Cranfield or any source)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc_id, (title, text) in collection.corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in collection.queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        for qid, judged in collection.qrels.items():
            for doc_id, gain in judged.items():
                writer.writerow([qid, doc_id, int(gain) if float(gain).is_integer() else gain])
