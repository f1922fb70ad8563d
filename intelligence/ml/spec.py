"""Plain data that describes a model: how to get its training data and what its inputs are.

Kept free of pandas and scikit-learn so that ``intelligence.ml.actions`` can import it
cheaply; the registry stores both models as JSON next to every model version.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["numeric", "categorical", "text", "date", "id"]

#: Values that mean "not answered". ``Select`` is a web-form default (X Education leads):
#: keeping it as a category would teach the model the form, not the lead.
DEFAULT_MISSING: tuple[str, ...] = ("", "Select", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL")


class TrainSpec(BaseModel):
    """Where a model's training table comes from and how to read it.

    ``source`` is a CSV path, ``example:NAME`` (a shipped data set) or ``sql:TABLE``
    (a table in the Circuit OS database, e.g. the records store).
    """

    source: str
    label: str
    drop: list[str] = Field(default_factory=list, description="Columns (or fnmatch patterns) to leave out.")
    roles: dict[str, Role] = Field(default_factory=dict, description="Role overrides, column -> role.")
    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING))
    positive: str | None = Field(default=None, description="Label value counted as positive; inferred for 0/1, yes/no.")
    include_outcomes: bool = Field(default=True, description="Add labelled outcomes recorded for this model.")
    test_size: float = Field(default=0.25, gt=0.0, lt=1.0)
    sample: int | None = Field(default=None, description="Train on at most this many rows (tests, quick looks).")


class ColumnInfo(BaseModel):
    """One input column of a model and the value explanations compare it against."""

    name: str
    role: Role
    reference: float | str | None = None


class FeatureProfile(BaseModel):
    """How one input was spread over the training rows: the baseline that drift is measured against.

    Numeric and date inputs keep training-quantile bin edges; ``expected`` then holds the share
    of rows in each of the ``len(edges) + 1`` bins, then the share missing. Categorical inputs
    keep their most frequent values; ``expected`` holds each one's share, then the share of all
    other values, then the share missing.
    """

    kind: Literal["numeric", "categorical"]
    edges: list[float] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    expected: list[float]
    rows: int


class FeatureSchema(BaseModel):
    """What a model reads: its columns and roles, label, positive class and missing tokens."""

    label: str
    positive: str
    columns: list[ColumnInfo]
    id_column: str | None = None
    ignored: dict[str, str] = Field(default_factory=dict, description="Column -> why it is not a feature.")
    missing_values: list[str] = Field(default_factory=lambda: list(DEFAULT_MISSING))
    profile: dict[str, FeatureProfile] | None = Field(
        default=None, description="Training distribution per input (None: trained before profiles were kept)."
    )

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def of_role(self, role: Role) -> list[str]:
        return [c.name for c in self.columns if c.role == role]


class Metrics(BaseModel):
    """Held-out metrics: ranking (ROC AUC, PR AUC) and calibration (Brier, ECE)."""

    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    ece: float = Field(description="Expected calibration error over 10 probability bins.")
    accuracy: float
    base_rate: float
    n_test: int
    n_train: int = 0

    def summary(self) -> str:
        return (
            f"ROC AUC {self.roc_auc:.3f}  PR AUC {self.pr_auc:.3f}  Brier {self.brier:.3f}  "
            f"ECE {self.ece:.3f}  accuracy {self.accuracy:.3f}  "
            f"(held out: {self.n_test:,} rows never seen in training; trained on {self.n_train:,})"
        )


def jsonable(value: Any) -> Any:
    """numpy scalars and NaN to plain JSON values."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
