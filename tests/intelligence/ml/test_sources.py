"""Training data from the database (the records store) and the schema the migration creates."""

from __future__ import annotations

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from circuits.errors import ConfigError, NotFoundError
from intelligence.ml import tables  # noqa: F401 - registers the ml tables on Base.metadata
from intelligence.ml.data import load_labelled
from intelligence.ml.examples import EXAMPLE_FILES
from intelligence.ml.spec import TrainSpec
from intelligence.ml.training import train
from storage.base import Base


def test_train_on_a_database_table(engine) -> None:  # type: ignore[no-untyped-def]
    churn = pd.read_csv(EXAMPLE_FILES["churn"]).head(2500)
    churn.to_sql("crm_customers", engine, index=False)
    table = load_labelled(TrainSpec(source="sql:crm_customers", label="Churn"), engine=engine)
    assert table.schema.positive == "Yes" and table.schema.id_column == "customerID"
    model = train(table, engine="baseline")
    assert model.metrics.roc_auc > 0.75
    with pytest.raises(NotFoundError, match="not found"):
        load_labelled(TrainSpec(source="sql:nope", label="Churn"), engine=engine)
    with pytest.raises(ConfigError, match="needs a database engine"):
        load_labelled(TrainSpec(source="sql:crm_customers", label="Churn"))


def test_migration_creates_exactly_the_registry_tables(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "ml_" in str(d)] == []
