"""Load a CSV file as records: upserts by external id, in batches, each batch one transaction.

Columns map to fields by ``mapping`` (``{"Prospect ID": "external_id"}``; an empty target
drops the column); an unmapped column whose snake_case name is a field (or
``external_id``) goes there, and every other column becomes the custom field of its
snake_case name (``Lead Origin`` -> ``custom.lead_origin``). Values listed in
``null_values`` are missing: by default the empty string and ``Select``, the form default
of the X Education leads data that means "not chosen". Custom values that look like
numbers become numbers. A row that does not fit (a bad value, no external id) is
skipped and reported with its line number; it does not stop the import.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from circuits.errors import PermanentError
from integrations.records.outbox import Origin
from integrations.records.schema import ObjectSpec, object_spec
from integrations.records.store import Store, writing
from integrations.records.values import CUSTOM_PREFIX, custom_name, unknown_field

__all__ = ["DEFAULT_NULLS", "ImportReport", "count_rows", "import_csv", "parse_mapping", "snake"]

DEFAULT_NULLS = ("", "Select")
SOURCE = "circuit-os/records-import"
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]{0,17})(\.[0-9]+)?$")
MAX_ERRORS = 20


@dataclass
class ImportReport:
    """What an import did, row by row: counts, and the first errors with their lines."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def snake(column: str) -> str:
    """``What is your current occupation`` -> ``what_is_your_current_occupation``."""
    name = re.sub(r"[^0-9a-z]+", "_", column.strip().lower()).strip("_")[:63]
    return f"_{name}"[:63] if not name or name[0].isdigit() else name


def _target(spec: ObjectSpec, column: str, mapping: dict[str, str]) -> str | None:
    target = mapping[column] if column in mapping else None
    if target is None:
        name = snake(column)
        return name if name == "external_id" or spec.field(name) else f"{CUSTOM_PREFIX}{name}"
    if not target:
        return None
    if target.startswith(CUSTOM_PREFIX):
        return CUSTOM_PREFIX + custom_name(spec, target[len(CUSTOM_PREFIX) :])
    if target != "external_id" and spec.field(target) is None:
        raise unknown_field(spec, target)
    return target


def _columns(spec: ObjectSpec, header: Sequence[str], mapping: dict[str, str]) -> list[str | None]:
    missing = [c for c in mapping if c not in header]
    if missing:
        raise PermanentError(f"--map names columns the file does not have: {', '.join(missing)}")
    targets = [_target(spec, c, mapping) for c in header]
    if "external_id" not in targets:
        raise PermanentError("no column maps to external_id; pass --map COLUMN=external_id")
    return targets


def _value(raw: str, target: str, nulls: frozenset[str]) -> Any:
    text = raw.strip()
    if text in nulls:
        return None
    if target.startswith(CUSTOM_PREFIX) and _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # CRLF and a BOM are both fine
        reader = csv.reader(f)
        for row in reader:
            yield reader.line_num, row


def count_rows(path: Path) -> int:
    """Data rows in ``path`` (for a progress bar), header excluded."""
    return max(sum(1 for _ in _rows(path)) - 1, 0)


def _batch(store: Store, obj: str, batch: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
    for line, values in batch:
        ext = values.pop("external_id", None)
        if not ext:
            report.skipped += 1
            _error(report, f"line {line}: no external id")
            continue
        try:
            write = store.upsert(obj, ext, values)
        except PermanentError as exc:
            report.skipped += 1
            _error(report, f"line {line}: {exc}")
            continue
        setattr(report, write.op, getattr(report, write.op) + 1)


def _error(report: ImportReport, message: str) -> None:
    if len(report.errors) < MAX_ERRORS:
        report.errors.append(message)


def import_csv(
    engine: Engine,
    path: str | Path,
    obj: str,
    *,
    mapping: dict[str, str] | None = None,
    tenant: str = "default",
    batch_size: int = 500,
    emit_events: bool = True,
    null_values: Sequence[str] = DEFAULT_NULLS,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    custom_max_bytes: int = 16384,
) -> ImportReport:
    """Upsert every row of the CSV at ``path`` as an ``obj`` record; see the module docstring.

    Each batch commits with its events in the outbox (unless ``emit_events`` is false), and
    the events are relayed to the installed publisher after the commit.
    """
    spec = object_spec(obj)
    rows = _rows(Path(path))
    try:
        _, header = next(rows)
    except StopIteration:
        raise PermanentError(f"{path}: the file is empty") from None
    targets = _columns(spec, header, mapping or {})
    nulls = frozenset(null_values)
    origin = Origin(source=SOURCE, emit=emit_events)
    report = ImportReport()
    batch: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        with writing(engine, tenant, origin, custom_max_bytes) as store:
            _batch(store, obj, batch, report)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for line, row in rows:
        if limit is not None and report.rows >= limit:
            break
        report.rows += 1
        if len(row) != len(header):
            report.skipped += 1
            _error(report, f"line {line}: {len(row)} fields, the header has {len(header)}")
            if progress is not None:
                progress(1)
            continue
        values = {t: _value(raw, t, nulls) for t, raw in zip(targets, row, strict=True) if t is not None}
        batch.append((line, values))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["Prospect ID=external_id", "Tags="]`` as ``{column: field}`` (an empty field drops the column)."""
    mapping = {}
    for item in items:
        column, sep, target = item.partition("=")
        if not sep or not column.strip():
            raise PermanentError(f"--map {item!r}: write COLUMN=FIELD")
        mapping[column.strip()] = target.strip()
    return mapping
