"""Inputs and outputs of the ``llm.*`` actions.

Every input takes the per-step model knobs (``model``, ``max_tokens``, ``temperature``);
unset ones fall back to the settings. Every output carries ``usage`` so the token cost of a
step lands on the step in the run ledger, and ``offline`` so a reader can tell a
deterministic fallback answer from a model's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ClassifyInput",
    "ClassifyOutput",
    "ExtractInput",
    "ExtractOutput",
    "GenerateInput",
    "GenerateOutput",
    "LlmOutput",
    "ModelKnobs",
    "SummarizeInput",
    "SummarizeOutput",
    "Usage",
]


class Usage(BaseModel):
    """Tokens one step spent, summed over its turns (a repair turn included)."""

    input_tokens: int = 0
    output_tokens: int = 0


class ModelKnobs(BaseModel):
    """Per-step model choice; ``None`` means the setting's default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = Field(None, description="Claude model id; default CIRCUIT_ANTHROPIC_MODEL.")
    max_tokens: int | None = Field(None, ge=1, le=64_000, description="Default CIRCUIT_LLM_MAX_TOKENS.")
    temperature: float | None = Field(None, ge=0.0, le=1.0, description="Default CIRCUIT_LLM_TEMPERATURE.")


class LlmOutput(BaseModel):
    """What every ``llm.*`` output says besides its answer."""

    model: str
    usage: Usage
    offline: bool = False


class GenerateInput(ModelKnobs):
    prompt: str = Field(min_length=1)
    system: str | None = None


class GenerateOutput(LlmOutput):
    text: str


class SummarizeInput(ModelKnobs):
    text: str = Field(min_length=1)
    focus: str | None = Field(None, description="What the summary should be about, e.g. 'pricing changes'.")
    length: Literal["short", "medium", "long"] = "short"


class SummarizeOutput(LlmOutput):
    summary: str


class ClassifyInput(ModelKnobs):
    text: str = Field(min_length=1)
    labels: list[str] = Field(min_length=2, description="The answer is exactly one of these.")
    instructions: str | None = Field(None, description="What the labels mean, or how to choose.")

    @field_validator("labels")
    @classmethod
    def _distinct(cls, labels: list[str]) -> list[str]:
        cleaned = [label.strip() for label in labels]
        if any(not label for label in cleaned):
            raise ValueError("labels must not be empty")
        if len({label.lower() for label in cleaned}) != len(cleaned):
            raise ValueError("labels must differ (case-insensitively)")
        return cleaned


class ClassifyOutput(LlmOutput):
    label: str
    attempts: int = 1


class ExtractInput(ModelKnobs):
    text: str = Field(min_length=1)
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema the extracted data must fit.")
    instructions: str | None = None

    @field_validator("json_schema")
    @classmethod
    def _is_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import exceptions, validators

        try:
            validators.validator_for(schema).check_schema(schema)
        except exceptions.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


class ExtractOutput(LlmOutput):
    data: Any
    attempts: int = 1
