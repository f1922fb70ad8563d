"""Conditions and templates: sandboxed, typed, and strict about names."""

from __future__ import annotations

import pytest

from circuits.errors import ExpressionError, PermanentError
from circuits.expressions import check, evaluate, render

SCOPE = {"event": {"data": {"items": [1, 2], "n": 12, "email": "a@b.c"}}, "steps": {"score": {"score": 91}}}


def test_a_single_expression_keeps_its_type_and_text_templates_render() -> None:
    out = render(
        {"record": "{{ event.data }}", "n": "{{ steps.score.score }}", "text": "Hi {{ event.data.email }}"}, SCOPE
    )
    assert out == {"record": SCOPE["event"]["data"], "n": 91, "text": "Hi a@b.c"}


def test_dict_keys_win_over_dict_methods() -> None:
    assert evaluate("event.data.items", SCOPE) == [1, 2]


@pytest.mark.parametrize("source", ["().__class__.__bases__", "event.__class__", "steps.score.__init__.__globals__"])
def test_the_sandbox_refuses_internals(source: str) -> None:
    with pytest.raises(PermanentError, match="unsafe|failed"):
        evaluate(source, SCOPE)


def test_a_missing_field_is_an_error_not_a_silent_none() -> None:
    with pytest.raises(PermanentError, match="nope"):
        evaluate("event.data.nope > 1", SCOPE)


def test_check_reports_syntax_unknown_names_and_step_references() -> None:
    assert check("steps.score.score >= 80 and steps['other'].x") == {"score", "other"}
    with pytest.raises(ExpressionError, match="name 'evnt' in 'evnt.data' is unknown"):
        check("evnt.data")
    with pytest.raises(ExpressionError, match="bad expression"):
        check("event.data.n >=")
