"""JSON Schema of circuit files, published so editors can check and complete them.

The schema is generated from the model (one source of truth) and written to
``schema/circuit.schema.json``; a test keeps the file in step with the model.
"""

from __future__ import annotations

from typing import Any

from circuits.model import Circuit

SCHEMA_ID = "https://circuit-os.dev/schema/circuit.schema.json"


def circuit_schema() -> dict[str, Any]:
    schema = Circuit.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
