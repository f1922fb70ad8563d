"""``/v1/circuits``: list, validate YAML, deploy a version, enable and disable."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from circuits.model import NAME_PATTERN
from interfaces.api import schemas
from interfaces.api.auth import caller
from interfaces.api.cloudevents import media_type
from interfaces.api.errors import ERROR_RESPONSES, Problem, error
from service import circuits, graph, runtime
from service.access import Principal

router = APIRouter(responses=ERROR_RESPONSES)
Who = Annotated[Principal, Depends(caller)]
Name = Annotated[str, Path(pattern=NAME_PATTERN, max_length=100)]
_TEXT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'The YAML, as text (application/yaml, text/plain) or as JSON {"text": ...}.',
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
            },
        },
    }
}


class _BadBody(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _text(request: Request) -> str:
    body = await request.body()
    if media_type(request.headers.get("content-type")) == "application/json":
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise _BadBody("the body is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise _BadBody('a JSON body must be {"text": "<the YAML>"}')
        return str(data["text"])
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadBody("the body is not UTF-8 text") from None


def _problems(errors: list[Any]) -> list[Problem]:
    return [Problem(message=e.message, file=e.file, line=e.line) for e in errors]


@router.get("/v1/circuits", response_model=schemas.CircuitList, summary="The circuits your tenant runs")
def list_circuits(who: Who) -> schemas.CircuitList:
    rows = circuits.list_circuits(runtime(), who)
    return schemas.CircuitList(circuits=[schemas.CircuitInfo.model_validate(r) for r in rows])


@router.post(
    "/v1/circuits/validate",
    response_model=schemas.Validation,
    openapi_extra=_TEXT_BODY,
    summary="Check a circuit's YAML: every problem with its line",
)
async def validate_circuit(request: Request, who: Who) -> Any:
    try:
        text = await _text(request)
    except _BadBody as exc:
        return error(400, "malformed", exc.message)
    problems = await run_in_threadpool(circuits.validate_text, runtime(), who, text)
    return schemas.Validation(valid=not problems, problems=_problems(problems))


@router.get("/v1/circuits/{name}", response_model=schemas.CircuitDetail, summary="One circuit and its versions")
def get_circuit(name: Name, who: Who) -> schemas.CircuitDetail:
    return schemas.CircuitDetail.model_validate(circuits.get_circuit(runtime(), who, name))


@router.get("/v1/circuits/{name}/graph", response_model=schemas.CircuitGraph, summary="A circuit's steps as a graph")
def get_graph(name: Name, who: Who) -> schemas.CircuitGraph:
    return schemas.CircuitGraph.model_validate(graph.get_graph(runtime(), who, name))


@router.put(
    "/v1/circuits/{name}",
    status_code=201,
    response_model=schemas.Deployed,
    openapi_extra=_TEXT_BODY,
    summary="Deploy a new version (workers pick it up within a second)",
)
async def deploy_circuit(name: Name, request: Request, who: Who) -> Any:
    try:
        text = await _text(request)
    except _BadBody as exc:
        return error(400, "malformed", exc.message)
    done = await run_in_threadpool(circuits.deploy, runtime(), who, name, text)
    return JSONResponse(schemas.Deployed.model_validate(done).model_dump(), status_code=201)


@router.post("/v1/circuits/{name}/enable", response_model=schemas.Enabled, summary="Let a circuit start runs")
def enable_circuit(name: Name, who: Who) -> schemas.Enabled:
    return schemas.Enabled.model_validate(circuits.set_enabled(runtime(), who, name, True))


@router.post("/v1/circuits/{name}/disable", response_model=schemas.Enabled, summary="Stop a circuit starting runs")
def disable_circuit(name: Name, who: Who) -> schemas.Enabled:
    return schemas.Enabled.model_validate(circuits.set_enabled(runtime(), who, name, False))
