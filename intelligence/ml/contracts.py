"""Typed inputs and outputs of the ``ml.*`` actions (pydantic only: cheap to import)."""

from __future__ import annotations

from typing import Any, Literal

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
    key: str | None = Field(
        default=None, description="What the record is (e.g. the lead id): its last score is kept to see crossings."
    )
    levels: list[float] | None = Field(
        default=None,
        description="Score levels on the 0-100 scale (e.g. [80]); each one crossed emits ml.score_crossed.",
    )

    @model_validator(mode="after")
    def _levels_need_a_key(self) -> PredictInput:
        if (self.key is None) != (self.levels is None):
            raise ValueError("give 'key' and 'levels' together (the key's last score is what a level is crossed from)")
        if self.levels is not None:
            if self.record is None:
                raise ValueError("'key' and 'levels' watch one record: use 'record', not 'records'")
            if not self.key:
                raise ValueError("'key' is empty: name the record whose score is watched (e.g. the lead id)")
            if not all(0 <= lv <= 100 for lv in self.levels):
                raise ValueError(f"levels are scores on the 0-100 scale, got {self.levels}")
        return self


class Crossing(BaseModel):
    level: float
    direction: Literal["up", "down"]


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
    previous_score: float | None = Field(default=None, description="The key's score before this one (with 'key').")
    crossed: list[Crossing] = Field(default_factory=list, description="Levels this score crossed (with 'levels').")


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


class DriftInput(BaseModel):
    model: str
    version: int | None = Field(default=None, description="Default: the champion.")
    limit: float = Field(default=0.2, gt=0, description="PSI at or above which an input counts as drifted.")
    min_rows: int = Field(default=200, ge=1, description="Fewer live rows than this: too few to judge, no check.")
    missing: Literal["error", "skip"] = Field(
        default="error",
        description="No champion, or a model trained before training profiles were kept: fail, or skip the check.",
    )


class DriftOutput(BaseModel):
    model: str
    version: int | None
    checked: bool = Field(description="False when the check was skipped; 'reason' says why.")
    reason: str = ""
    rows: int = 0
    limit: float
    scores: dict[str, float] = Field(default_factory=dict, description="PSI of each input, live vs training rows.")
    drifted: list[str] = Field(default_factory=list, description="Inputs at or over the limit, worst first.")
