"""Fixtures for the ML tests: a temp SQLite registry, settings under tmp_path, and models
trained once per session on subsamples with a few seconds of AutoML each."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuits.actions import ActionContext
from circuits.settings import Settings
from intelligence.ml.data import LabelledTable, load_labelled
from intelligence.ml.examples import EXAMPLES
from intelligence.ml.registry import ModelRegistry
from intelligence.ml.training import TrainedModel, train
from storage.base import make_engine
from storage.migrate import upgrade

BUDGET_S = 2.0


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    """scikit-learn and FLAML warn about unknown categories and defaults; not what these tests check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/x.db"


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine, tmp_path: Path) -> ModelRegistry:  # type: ignore[no-untyped-def]
    return ModelRegistry(engine, tmp_path / "models")


@pytest.fixture
def settings(db_url: str, tmp_path: Path, engine, redis_url: str) -> Settings:  # type: ignore[no-untyped-def]
    """Real Redis too: ml.predict keeps last scores and a sample of live inputs there."""
    return Settings(
        database_url=db_url, home=tmp_path, redis_url=redis_url, ml_train_budget_s=2, ml_promotion_margin=0.005
    )


@pytest.fixture
def ctx(settings: Settings):  # type: ignore[no-untyped-def]
    context = ActionContext.for_test(settings=settings)
    yield context
    context.resources.close()


@pytest.fixture(scope="session")
def leads_spec():  # type: ignore[no-untyped-def]
    return EXAMPLES["leads"].model_copy(update={"sample": 4000})


@pytest.fixture(scope="session")
def leads_table(leads_spec) -> LabelledTable:  # type: ignore[no-untyped-def]
    return load_labelled(leads_spec)


@pytest.fixture(scope="session")
def leads_model(leads_table: LabelledTable) -> TrainedModel:
    return train(leads_table, engine="flaml", budget_s=BUDGET_S)


@pytest.fixture(scope="session")
def churn_spec():  # type: ignore[no-untyped-def]
    return EXAMPLES["churn"].model_copy(update={"sample": 4000})


@pytest.fixture(scope="session")
def churn_model(churn_spec) -> TrainedModel:  # type: ignore[no-untyped-def]
    return train(load_labelled(churn_spec), engine="flaml", budget_s=BUDGET_S)
