"""Column roles, missing values, leak columns and the reproducible split, on the real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from circuits.errors import ConfigError
from intelligence.ml.data import load_labelled, row_keys, split_mask
from intelligence.ml.examples import EXAMPLES
from intelligence.ml.features import prepare_frame
from intelligence.ml.roles import infer_schema
from intelligence.ml.spec import TrainSpec

LEAKS = [
    "Tags",
    "Lead Quality",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
]


def test_leads_schema_leaves_out_leaking_columns_and_ids(leads_table) -> None:  # type: ignore[no-untyped-def]
    schema = leads_table.schema
    for column in LEAKS:
        assert column not in schema.feature_names
        assert schema.ignored[column] == "dropped on request"
    assert schema.id_column == "Prospect ID"
    assert "Lead Number" in schema.ignored and "Lead Number" not in schema.feature_names
    roles = {c.name: c.role for c in schema.columns}
    assert roles["Total Time Spent on Website"] == "numeric"
    assert roles["Lead Origin"] == "categorical"
    assert schema.label == "Converted" and schema.positive == "1"


def test_select_is_missing_not_a_category(leads_table) -> None:  # type: ignore[no-untyped-def]
    prepared = prepare_frame(leads_table.frame, leads_table.schema)
    for column in ("Specialization", "City", "Lead Profile", "How did you hear about X Education"):
        assert "Select" not in set(prepared[column].dropna())
    assert prepared["Specialization"].isna().mean() > 0.3


def test_churn_total_charges_blanks_become_missing_numbers() -> None:
    table = load_labelled(EXAMPLES["churn"])
    roles = {c.name: c.role for c in table.schema.columns}
    assert roles["TotalCharges"] == "numeric" and roles["tenure"] == "numeric"
    assert table.schema.id_column == "customerID"
    prepared = prepare_frame(table.frame, table.schema)
    assert prepared["TotalCharges"].dtype == float
    assert int(prepared["TotalCharges"].isna().sum()) == 11
    assert len(table.y) == 7043 and table.y.sum() == 1869  # Churn == "Yes"


def test_roles_of_a_generic_table_with_overrides() -> None:
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame(
        {
            "order_ref": [f"A{i:05d}" for i in range(n)],
            "signed_up": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
            "note": [f"customer asked about plan {i % 7} and pricing for team of {i % 13}" for i in range(n)],
            "plan": rng.choice(["free", "pro", "team"], n),
            "seats": rng.integers(1, 50, n),
            "zip": rng.integers(10000, 99999, n),
            "won": rng.choice(["yes", "no"], n),
        }
    )
    schema = infer_schema(frame, label="won", positive="yes", roles={"zip": "categorical"}, drop=["no*"])
    roles = {c.name: c.role for c in schema.columns}
    assert roles == {"signed_up": "date", "plan": "categorical", "seats": "numeric", "zip": "categorical"}
    assert schema.id_column == "order_ref"
    assert schema.ignored["note"] == "dropped on request"
    text = infer_schema(frame, label="won", positive="yes")
    assert {c.name: c.role for c in text.columns}["note"] == "text"
    with pytest.raises(ConfigError, match="not in the data"):
        infer_schema(frame, label="won", positive="yes", roles={"nope": "numeric"})


def test_label_problems_are_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": range(40), "y": ["x", "y", "z", "w"] * 10}).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="two values"):
        load_labelled(TrainSpec(source=str(path), label="y"))
    with pytest.raises(ConfigError, match="not in the data"):
        load_labelled(TrainSpec(source=str(path), label="missing"))


def test_split_is_stable_and_about_a_quarter(leads_table) -> None:  # type: ignore[no-untyped-def]
    keys = row_keys(leads_table.frame, "Prospect ID")
    mask = split_mask(keys, 0.25)
    assert np.array_equal(mask, leads_table.test_mask)
    assert 0.22 < mask.mean() < 0.28
    # a row keeps its side when the table around it changes
    again = split_mask(keys.iloc[::-1].reset_index(drop=True), 0.25)
    assert np.array_equal(again[::-1], mask)
