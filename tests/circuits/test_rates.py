"""Rate strings, the concurrency setting and their checks, with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from circuits.actions import ActionContext, ActionRegistry, action
from circuits.catalog import check_path
from circuits.compiler import Compiler
from circuits.errors import DefinitionError
from circuits.loader import load_text
from circuits.rates import Rate, parse_rate
from tests.conftest import ACTION_MODULES

REGISTRY = ActionRegistry.from_modules(ACTION_MODULES)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1/s", Rate(1, 1.0)),
        ("10/m", Rate(10, 60.0)),
        (" 5 / 10s ", Rate(5, 10.0)),
        ("100/h per tenant", Rate(100, 3600.0, per_tenant=True)),
        ("2/1.5d", Rate(2, 1.5 * 86400)),
    ],
)
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "1", "1/x", "0/s", "-1/s", "1/0s", "1 per second", "1/s per account", "1/2d"])
def test_bad_rates_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_interval_is_the_even_spacing() -> None:
    assert parse_rate("5/s").interval_s == pytest.approx(0.2)
    assert parse_rate("10/m").interval_s == pytest.approx(6.0)


def problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    _, found = check_path(f, REGISTRY)
    return [p.replace(str(f), "c.yaml") for p in map(str, found)]


def test_a_bad_rate_limit_is_reported_with_its_line(tmp_path: Path) -> None:
    text = "name: c\ntrigger: {event: a.b}\nsteps:\n  - id: one\n    action: core.log\n    rate_limit: 3 per s\n"
    [problem] = problems(tmp_path, text + "    with: {message: hi}\n")
    assert problem.startswith("c.yaml:6: steps.0.rate_limit: '3 per s' is not a rate like '1/s'")


def test_a_bad_concurrency_key_is_reported_with_its_line(tmp_path: Path) -> None:
    head = "name: c\ntrigger:\n  event: a.b\n  concurrency:\n    limit: 2\n"
    steps = "steps:\n  - {action: core.log, with: {message: hi}}\n"
    [unknown] = problems(tmp_path, head + "    key: steps.one.id\n" + steps)
    assert unknown.startswith("c.yaml:6: trigger.concurrency.key: name 'steps' in 'steps.one.id' is only defined")
    [syntax] = problems(tmp_path, head + "    key: 'event.subject +'\n" + steps)
    assert syntax.startswith("c.yaml:6: trigger.concurrency.key: bad expression")
    [limit] = problems(
        tmp_path, "name: c\ntrigger:\n  event: a.b\n  concurrency: {key: event.subject, limit: 0}\n" + steps
    )
    assert limit.startswith("c.yaml:4: trigger.concurrency.limit: Input should be greater than or equal to 1")


def test_concurrency_and_rate_limit_load_and_compile() -> None:
    circuit, _ = load_text(
        "name: c\ntrigger: {event: a.b, concurrency: {key: event.subject}}\nsteps:\n"
        "  - {id: one, action: core.log, with: {message: hi}, rate_limit: 10/m}\n"
        "  - {id: two, action: core.log, with: {message: hi}}\n"
    )
    assert circuit.trigger.concurrency is not None and circuit.trigger.concurrency.limit == 1
    canvas = Compiler(REGISTRY).circuit(circuit)
    one, two = (t.kwargs["step"] for t in canvas.tasks)
    assert one["rate_limit"] == "10/m" and "rate_limit" not in two


class _In(BaseModel):
    text: str


class _Out(BaseModel):
    sent: bool


def test_an_action_rate_limit_is_the_default_and_a_step_overrides_it() -> None:
    @action("test.slack", queue="notify", rate_limit="1/s")
    def slack(ctx: ActionContext, inp: _In) -> _Out:
        return _Out(sent=True)

    registry = ActionRegistry.from_modules(ACTION_MODULES)
    registry.add(slack.__circuit_action__)  # type: ignore[attr-defined]
    circuit, _ = load_text(
        "name: c\ntrigger: {event: a.b}\nsteps:\n  - {id: a, action: test.slack, with: {text: x}}\n"
        "  - {id: b, action: test.slack, with: {text: y}, rate_limit: 5/s}\n"
    )
    first, second = (t.kwargs["step"] for t in Compiler(registry).circuit(circuit).tasks)
    assert first["rate_limit"] == "1/s" and second["rate_limit"] == "5/s"


def test_an_action_with_a_bad_rate_limit_is_refused() -> None:
    with pytest.raises(DefinitionError, match="action 'test.bad': rate_limit '1/fortnight' is not a rate"):
        action("test.bad", rate_limit="1/fortnight")
