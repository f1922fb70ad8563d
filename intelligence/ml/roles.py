"""Infer what each column of a table is (numeric, categorical, text, date, id) from its values.

Inference looks only at the values' shape, never at the label, so it can run on the whole
table without leaking anything into evaluation. Overrides win over inference; dropped
columns and ids are kept out of the features and listed with the reason.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping

import pandas as pd

from circuits.errors import ConfigError
from intelligence.ml.spec import DEFAULT_MISSING, ColumnInfo, FeatureSchema, Role

_ID_NAME = re.compile(r"(?:^|[\s_\-.])(?:id|uuid|guid|key|number|no)$|[a-z]ID$|Id$", re.IGNORECASE)
_DATE_SHAPE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_VALID_ROLES = ("numeric", "categorical", "text", "date", "id")


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` equals or fnmatch-matches one of ``patterns`` (e.g. ``Asymmetrique*``)."""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def _numeric_share(values: pd.Series) -> float:
    return float(pd.to_numeric(values, errors="coerce").notna().mean())


def _looks_like_date(values: pd.Series) -> bool:
    sample = values.astype(str).head(200)
    if sample.str.match(_DATE_SHAPE).mean() < 0.95:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


def infer_role(name: str, series: pd.Series) -> tuple[Role | None, str]:
    """The role of one column and why; ``None`` means the column carries no information."""
    values = series.dropna()
    if values.empty:
        return None, "empty"
    distinct = values.nunique()
    if distinct <= 1:
        return None, "constant"
    unique_share = distinct / len(values)
    id_named = bool(_ID_NAME.search(name.strip()))
    if pd.api.types.is_bool_dtype(series):
        return "categorical", "true/false"
    if pd.api.types.is_numeric_dtype(series):
        if id_named and unique_share >= 0.9 and pd.api.types.is_integer_dtype(series):
            return "id", "id: named like an id, values unique"
        return "numeric", "numbers"
    if _numeric_share(values) >= 0.98:
        return "numeric", "numbers stored as text"
    if id_named and unique_share >= 0.9:
        return "id", "id: named like an id, values unique"
    if _looks_like_date(values):
        return "date", "dates"
    words = values.astype(str).str.split().str.len()
    if unique_share >= 0.98 and len(values) >= 50 and words.mean() <= 1.2:
        return "id", "id: every value different"
    if words.mean() >= 5 and unique_share >= 0.3:
        return "text", "free text"
    return "categorical", "categories"


def infer_schema(
    frame: pd.DataFrame,
    *,
    label: str,
    positive: str,
    drop: Iterable[str] = (),
    roles: Mapping[str, str] | None = None,
    missing_values: Iterable[str] = DEFAULT_MISSING,
) -> FeatureSchema:
    """A feature schema for ``frame`` (label and references are filled by training)."""
    drop = list(drop)
    roles = dict(roles or {})
    unknown = [c for c in roles if c not in frame.columns]
    if unknown:
        raise ConfigError(f"role overrides name columns that are not in the data: {', '.join(unknown)}")
    bad = {c: r for c, r in roles.items() if r not in _VALID_ROLES}
    if bad:
        raise ConfigError(f"unknown roles {bad}; use one of {', '.join(_VALID_ROLES)}")
    columns: list[ColumnInfo] = []
    ignored: dict[str, str] = {}
    id_column: str | None = None
    for name in frame.columns:
        if name == label:
            continue
        if matches_any(name, drop):
            ignored[name] = "dropped on request"
            continue
        role: Role | None
        if name in roles:
            role, why = roles[name], "override"  # type: ignore[assignment]
        else:
            role, why = infer_role(name, frame[name])
        if role is None:
            ignored[name] = why
        elif role == "id":
            ignored[name] = why
            id_column = id_column or name
        else:
            columns.append(ColumnInfo(name=name, role=role))
    if not columns:
        raise ConfigError("no feature columns left after dropping ids, constants and the drop list")
    return FeatureSchema(
        label=label,
        positive=positive,
        columns=columns,
        id_column=id_column,
        ignored=ignored,
        missing_values=list(missing_values),
    )
