"""The published JSON Schema matches the model and accepts the shipped circuits."""

from __future__ import annotations

import json

import jsonschema
import yaml

from circuits.schema import circuit_schema
from tests.conftest import CIRCUITS, ROOT


def test_published_schema_is_current() -> None:
    published = json.loads((ROOT / "schema" / "circuit.schema.json").read_text())
    assert published == circuit_schema(), "run: circuit-os circuits schema > schema/circuit.schema.json"


def test_schema_accepts_good_circuits_and_rejects_a_typo() -> None:
    schema = circuit_schema()
    for path in list(CIRCUITS.glob("*.yaml")) + list((ROOT / "examples" / "circuits").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = {"name": "x", "trigger": {"event": "a.b"}, "steps": [{"acton": "core.log"}]}
    try:
        jsonschema.validate(bad, schema)
    except jsonschema.ValidationError:
        return
    raise AssertionError("a step without action/parallel/if/foreach was accepted")
