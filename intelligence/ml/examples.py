"""The two shipped example models: lead scoring (X Education) and churn (IBM Telco).

Both data sets live under ``data/`` with a SOURCE.md each. The lead columns the sales
team fills in after contacting a lead (``Tags``, ``Lead Quality``, ``Asymmetrique*``)
are dropped because they leak the label.
"""

from __future__ import annotations

from pathlib import Path

from circuits.errors import ConfigError
from circuits.settings import PACKAGE_ROOT
from intelligence.ml.spec import TrainSpec

DATA_DIR = PACKAGE_ROOT / "data"

LEAK_COLUMNS_LEADS = ["Tags", "Lead Quality", "Asymmetrique*"]

EXAMPLE_FILES: dict[str, Path] = {
    "leads": DATA_DIR / "x_education_leads" / "Leads.csv",
    "churn": DATA_DIR / "telco_customer_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv",
}

EXAMPLES: dict[str, TrainSpec] = {
    "leads": TrainSpec(source="example:leads", label="Converted", drop=list(LEAK_COLUMNS_LEADS), positive="1"),
    "churn": TrainSpec(source="example:churn", label="Churn", positive="Yes"),
}

#: Model name -> example it is trained on when nothing else is said.
DEFAULT_MODELS: dict[str, str] = {"lead_score": "leads", "churn": "churn"}


def example_path(name: str) -> Path:
    """The CSV file of the shipped example ``name``."""
    try:
        path = EXAMPLE_FILES[name]
    except KeyError:
        raise ConfigError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLE_FILES)}") from None
    if not path.is_file():
        raise ConfigError(f"example data {path} is missing; it ships in the source tree under data/")
    return path


def default_spec(model: str) -> TrainSpec | None:
    """The training spec of a shipped model name (``lead_score``, ``churn``), else None."""
    example = DEFAULT_MODELS.get(model)
    return EXAMPLES[example].model_copy(deep=True) if example else None
