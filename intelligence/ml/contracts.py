"""Typed inputs and outputs of the ``ml.*`` actions (pydantic only: cheap to import)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

from intelligence.ml.spec import Role


class RecordsInput(BaseModel):
    """One record (``record``) or a batch (``records``), scored in one step."""

    record: dict[str, Any] | None = None
    records: list[dict[str, Any]] | None = None
    explain: bool = Field(default=True, description="Add the top reasons (costs one extra row per input column).")
    top_k: int = Field(default=3, ge=0, le=20)

    @model_validator(mode="after")
    def _one_of(self) -> RecordsInput:
        if (self.record is None) == (self.records is None):
            raise ValueError("give either 'record' (one) or 'records' (a list), not both or neither")
        return self

    @property
    def batch(self) -> list[dict[str, Any]]:
        return [self.record] if self.record is not None else list(self.records or [])


class PredictInput(RecordsInput):
    model: str = "lead_score"


class Prediction(BaseModel):
    score: float = Field(description="0-100: the model's probability of a positive outcome, times 100.")
    probability: float
    reasons: list[str] = Field(default_factory=list)
    id: str | None = None


class PredictOutput(BaseModel):
    model: str
    model_version: int
    score: float | None = Field(default=None, description="The score of a single record (None for a batch).")
    reasons: list[str] = Field(default_factory=list)
    predictions: list[Prediction] = Field(default_factory=list, description="One per record, for a batch.")
    count: int


class ChurnInput(RecordsInput):
    model: str = "churn"


class ChurnRisk(BaseModel):
    risk: float = Field(description="0-100 churn risk.")
    band: str = Field(description="low (< 30), medium (< 60) or high.")
    reasons: list[str] = Field(default_factory=list)
    id: str | None = None


class ChurnOutput(BaseModel):
    model: str
    model_version: int
    risk: float | None = None
    band: str | None = None
    reasons: list[str] = Field(default_factory=list)
    customers: list[ChurnRisk] = Field(default_factory=list)
    count: int


class TrainInput(BaseModel):
    name: str
    data: str | None = Field(
        default=None, description="CSV path, example:leads|churn or sql:TABLE; default: the champion's."
    )
    label: str | None = None
    drop: list[str] | None = None
    roles: dict[str, Role] | None = None
    positive: str | None = None
    engine: str = "flaml"
    budget_s: float | None = Field(
        default=None, gt=0, description="AutoML time budget; default settings.ml_train_budget_s."
    )
    sample: int | None = Field(default=None, gt=10)


class TrainOutput(BaseModel):
    name: str
    version: int
    status: str
    estimator: str
    metrics: dict[str, float]
    seconds: float
    features: list[str]
    ignored: dict[str, str]


class EvaluateInput(BaseModel):
    name: str
    version: int | None = Field(default=None, description="Default: the champion.")
    data: str | None = Field(default=None, description="Default: the version's own training source plus outcomes.")
    holdout_only: bool = Field(default=True, description="Score only rows the split holds out from training.")


class EvaluateOutput(BaseModel):
    name: str
    version: int
    metrics: dict[str, float]


class RetrainInput(TrainInput):
    margin: float | None = Field(
        default=None, ge=0, description="ROC AUC gain needed; default settings.ml_promotion_margin."
    )


class RetrainOutput(BaseModel):
    name: str
    promoted: bool
    reason: str
    champion_version: int
    challenger_version: int
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None


class OutcomeInput(BaseModel):
    model: str = "lead_score"
    record: dict[str, Any]
    outcome: str | int | bool = Field(description="converted/won/churned/yes/1 or lost/retained/no/0.")
    record_id: str | None = Field(default=None, description="Default: the record's id column, else run and step ids.")


class OutcomeOutput(BaseModel):
    model: str
    record_id: str
    label: int
    new: bool


class PromoteInput(BaseModel):
    name: str
    version: int
    reason: str = "promoted by hand"


class RollbackInput(BaseModel):
    name: str
    reason: str = "rollback"


class ChampionOutput(BaseModel):
    name: str
    champion_version: int
    previous_version: int | None = None
