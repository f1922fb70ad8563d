"""schemathesis against the OpenAPI spec: no 5xx, every answer's status, content type and body as documented.

A bounded number of examples per operation keeps it well under a minute. The examples are
derandomized, so CI is repeatable; ``SCHEMATHESIS_EXPLORE=1`` draws fresh ones to hunt for new faults
(a fault found that way becomes a named test, as ``test_a_nul_character_anywhere_...`` did). The caller is a
platform admin, so every operation gets past authorization and its input handling is what
is exercised (the authorization matrix covers the roles).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.interfaces.conftest import auth

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def app(api_env: dict[str, str], worker: Any) -> Any:
    from interfaces.api import create_app
    from storage.migrate import upgrade
    from workers.runtime import runtime

    upgrade(runtime().engine)
    return create_app(migrate=False)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not os.environ.get("SCHEMATHESIS_EXPLORE"),
    database=None,
)
def test_every_operation_answers_as_documented(case: Any) -> None:
    if case.path == "/v1/webhooks/{source}":
        case.path_parameters = {**(case.path_parameters or {}), "source": "forms"}  # unsigned: 401 as documented
    case.call_and_validate(headers=auth("admin", "*"), checks=CHECKS)
