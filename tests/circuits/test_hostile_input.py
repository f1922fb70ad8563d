"""Hostile input never crashes or stalls anything: each case a tester (or the fuzz suite) found.

Circuit files, events, expressions and the CLI: every failure is a named error with
the file and line or the field, quickly and in bounded memory.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from circuits.actions import ActionRegistry
from circuits.catalog import Catalog, check_path
from circuits.errors import DefinitionError, EventError, ExpressionError, LimitError, PermanentError
from circuits.events import DEFAULT_MAX_BYTES, parse_event
from circuits.expressions import check, evaluate, render
from circuits.loader import load_file, load_text

REGISTRY = ActionRegistry.from_modules(["circuits.builtin"])
GOOD = "name: ok\ntrigger: {event: lead.created}\nsteps:\n  - {id: a, action: core.log, with: {message: hi}}\n"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _file_problem(tmp_path: Path, content: str | bytes) -> DefinitionError:
    """The one problem ``circuits validate`` reports for a file holding ``content``."""
    file = tmp_path / "hostile.yaml"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8", errors="surrogatepass")
    good, problems = check_path(file, REGISTRY)
    assert not good and len(problems) == 1, problems
    assert problems[0].file == str(file)
    return problems[0]


# --- circuit files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("deep_lists", "steps: " + "[" * 5000 + "]" * 5000, 1, "nested more than 64 deep"),
        ("deep_maps", "steps: " + "{a: " * 5000 + "1" + "}" * 5000, 1, "nested more than 64 deep"),
        ("deep_block", "".join("  " * i + "a:\n" for i in range(200)), 64, "nested more than 64 deep"),
        ("recursive_alias", GOOD + "vars: &x [*x]\n", 5, "anchors and aliases"),
        ("int_tag_on_text", GOOD + "vars: {n: !!int x}\n", 5, "tag !!int is not allowed"),
        ("bool_tag_maybe", GOOD + "vars: {b: !!bool maybe}\n", 5, "tag !!bool is not allowed"),
        ("python_tag", "name: !!python/object/apply:os.system [ls]\n", 1, "is not allowed"),
        ("huge_integer", GOOD + "vars: {n: " + "1" * 4301 + "}\n", 5, "a number of 4301 characters"),
        ("control_character", GOOD + "vars: {s: a\x01b}\n", 5, "the character '\\x01' is not allowed"),
        ("lone_surrogate", GOOD + "vars: {s: a\ud800b}\n", 5, "not UTF-8 text: byte 0xed"),
        ("impossible_date", GOOD + "vars: {d: 2024-13-45}\n", 5, "month must be in 1..12"),
        ("complex_key", GOOD + "vars: {[a, b]: 1}\n", 5, "a key must be plain text"),
        ("empty", "", None, "the file is empty"),
    ],
)
def test_hostile_circuit_files_are_definition_errors_with_file_and_line(
    tmp_path: Path, name: str, content: str, line: int | None, message: str
) -> None:
    problem = _file_problem(tmp_path, content)
    assert message in problem.message
    assert problem.line == line


def test_non_utf8_circuit_file_names_the_line(tmp_path: Path) -> None:
    problem = _file_problem(tmp_path, GOOD.encode() + b"vars: {s: \xff\xfe}\n")
    assert problem.line == 5 and "not UTF-8" in problem.message


def test_billion_laughs_is_refused_at_once_in_little_memory(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    before, start = _rss_mb(), time.monotonic()
    problem = _file_problem(tmp_path, "\n".join(lines) + "\n")
    assert "anchors and aliases" in problem.message and problem.line == 1
    assert time.monotonic() - start < 1 and _rss_mb() - before < 50


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    problem = _file_problem(tmp_path, GOOD + "# " + "x" * 300_000 + "\n")
    assert "over the limit" in problem.message


def test_a_lone_surrogate_in_text_is_a_definition_error_with_its_line() -> None:
    with pytest.raises(DefinitionError, match="is not allowed") as err:
        load_text(GOOD + "vars: {s: a\ud800b}\n", file="c.yaml")
    assert err.value.line == 5


def test_a_plain_str_tag_is_still_allowed() -> None:
    circuit, _ = load_text(GOOD + "vars: {zip: !!str 01234}\n")
    assert circuit.vars == {"zip": "01234"}


def test_load_file_raises_only_definition_errors(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_bytes(b"\x00\x01[[[")
    with pytest.raises(DefinitionError):
        load_file(file)


# --- expressions ---------------------------------------------------------------------------------

SCOPE: dict[str, Any] = {"event": {"data": {"s": "x" * 100_000, "n": 5, "items": [1, 2, 3]}}, "steps": {}}


@pytest.mark.parametrize(
    "source",
    [
        "2 ** 99999999",
        "10 ** 4301",
        "(10 ** 3000) * (10 ** 3000)",
        "'a' * 1000000000",
        "[event.data.s] * 1000",
        " ~ ".join(["event.data.s"] * 11),
        " + ".join(["event.data.s"] * 11),
        "'x'|center(999999999)",
        "'%999999999d' % 1",
        "'{:>999999999}'.format(1)",
        "event.data.s|list|join('y' * 1000)",
        "range(100000)|map('center', 999999)|list",
        "[1]|slice(100000000)",
        "event.data.s|replace('', 'abcdefghijklmnop')",
        "event.data.items|sum(start=[])",
        "event.data.s|tojson(indent=100)",
    ],
)
def test_expressions_that_would_eat_memory_or_time_hit_a_limit(source: str) -> None:
    before, start = _rss_mb(), time.monotonic()
    with pytest.raises(LimitError):
        evaluate(source, SCOPE)
    assert time.monotonic() - start < 1.5 and _rss_mb() - before < 100


@pytest.mark.parametrize(
    "template",
    [
        "{% for a in event.data.s %}{% for b in event.data.s %}{{ a }}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}" + "y" * 1000 + "{% endfor %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "{% for i in range(99999) %}{{ event.data.s|upper|length }}{% endfor %}",
        "{{ event.data.items|map('center', 999999)|join }}",
    ],
)
def test_templates_with_runaway_loops_stop_within_the_budget(template: str) -> None:
    start = time.monotonic()
    with pytest.raises(LimitError):
        render(template, SCOPE)
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize(
    "source",
    ["'abc'|truncate(-1)", "5|reverse", "1e309", "'x'|wordwrap(0)", "[]|random", "(-8) ** 0.5", "1 / 0", "[1][5]"],
)
def test_filters_and_operators_that_raise_other_errors_are_permanent_errors(source: str) -> None:
    with pytest.raises(PermanentError):
        evaluate(source, SCOPE)


@pytest.mark.parametrize(
    "source", ["[event.data.nope]", "{'a': event.data.nope}", "[1, [2, event.data.nope]]", "[event.data.nope]|length"]
)
def test_a_missing_field_inside_a_literal_is_an_error(source: str) -> None:
    with pytest.raises(PermanentError, match="nope"):
        evaluate(source, SCOPE)


def test_a_missing_field_inside_a_literal_in_a_text_template_is_an_error() -> None:
    with pytest.raises(PermanentError, match="nope"):
        render("x {{ [event.data.nope] }}", SCOPE)


def test_expressions_nested_past_the_stack_are_expression_errors() -> None:
    for source in ["(" * 5000 + "1" + ")" * 5000, "[" * 400 + "]" * 400, "1" + " or 1" * 3000]:
        with pytest.raises(ExpressionError, match="nested too deeply"):
            check(source)


def test_an_unknown_filter_is_found_by_validation() -> None:
    with pytest.raises(ExpressionError, match="No filter named 'nosuch'"):
        check("event.data.n|nosuch")


def test_a_trigger_condition_that_raises_on_event_data_only_skips_the_circuit() -> None:
    when = '{event: lead.created, when: "event.data.n|reverse"}'
    circuit, source = load_text(GOOD.replace("{event: lead.created}", when))
    catalog = Catalog.build([(circuit, source)], REGISTRY)
    event = parse_event({"type": "lead.created", "source": "t", "data": {"n": 5}})
    assert catalog.match(event) == []


def test_limits_leave_ordinary_expressions_alone() -> None:
    assert evaluate("[100, event.data.n * 10] | min", SCOPE) == 50
    assert evaluate("'ab' * 3 ~ ('%05d' % 7)", SCOPE) == "ababab00007"
    assert render("{% for i in event.data.items %}{{ i }}{{ loop.length }},{% endfor %}", SCOPE) == "13,23,33,"
    assert evaluate("event.nope|default(3)", SCOPE) == 3


# --- events ----------------------------------------------------------------------------------------


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "a.b", "source": "s", "data": {"note": "\ud800"}}, "data.note"),
        ({"type": "a.b", "source": "\udfff"}, "source"),
        ({"type": "a.b", "source": "s", "data": {"\ud800": 1}}, "data.\ufffd"),
        ('{"type": "a.b", "source": "s", "data": "\\ud800"}', "data"),
        ({"type": "a.b", "source": "s", "data": _nested(1000)}, "data." + ".".join(["0"] * 32)),
        (json.dumps({"type": "a.b", "source": "s", "data": _nested(500)}), "data." + ".".join(["0"] * 32)),
        ('{"type": "a.b", "source": "s", "data": ' + "[" * 100_000 + "]" * 100_000 + "}", "(envelope)"),
        ('{"type": "a.b", "source": "s", "data": ' + "1" * 4301 + "}", "(envelope)"),
        ({"type": "a.b", "source": "s", "data": 10**4301}, "data"),
        ('{"type": "a.b", "source": "s", "data": 1e309}', "data"),
        ('{"type": "a.b", "source": "s", "data": NaN}', "(envelope)"),
        ({"type": "a.b", "source": "s", "data": {"x": {1, 2}}}, "data.x"),
        ({"type": "a.b", "source": "s", "data": {1: 2}}, "data"),
        ({"type": "a.b", "source": "s", "time": object()}, "time"),
        ({(1, 2): 3}, "(envelope)"),
        (b"\xff\xfe{}", "(envelope)"),
    ],
)
def test_hostile_events_are_event_errors_naming_the_field(raw: Any, field: str) -> None:
    with pytest.raises(EventError) as err:
        parse_event(raw)
    assert err.value.field == field


def test_a_cyclic_dict_is_an_event_error() -> None:
    data: dict[str, Any] = {}
    data["self"] = data
    with pytest.raises(EventError, match="nested more than 32 deep"):
        parse_event({"type": "a.b", "source": "s", "data": data})


def test_the_size_limit_is_one_measure_utf8_compact_json() -> None:
    from circuits.events import json_size

    event = parse_event({"type": "a.b", "source": "s", "data": "é" * 1000}, max_bytes=2300)
    assert json_size(event.as_context()) <= 2300  # 2,000 bytes of UTF-8, not 6,000 of \u escapes
    again = parse_event(event.as_context(), max_bytes=2300)  # what ingest receives: accepted alike
    assert again == event
    assert parse_event(json.dumps(event.as_context(), indent=4), max_bytes=2300) == event


def test_an_event_accepted_at_publish_is_accepted_at_ingest_near_the_limit() -> None:
    for n in range(DEFAULT_MAX_BYTES - 400, DEFAULT_MAX_BYTES - 100, 50):
        raw = {"type": "a.b", "source": "s", "data": "x" * n}
        try:
            event = parse_event(raw)
        except EventError:
            continue
        assert parse_event(event.as_context()) == event


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture()
def unreachable_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from workers.runtime import reset_runtime

    monkeypatch.setenv("CIRCUIT_REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    reset_runtime()
    yield
    monkeypatch.undo()  # the settings as they were, before the runtime (and the Celery app) read them again
    reset_runtime()


def test_publish_with_redis_down_is_one_quick_line_with_the_password_masked(unreachable_redis: None) -> None:
    from workers.cli import cli

    start = time.monotonic()
    result = CliRunner().invoke(cli, ["publish", "lead.created", "--data", '{"a": 1}'])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: cannot reach Redis at redis://:***@127.0.0.1:1/0"
        " (Error 111 connecting to 127.0.0.1:1. Connection refused.)"
    ]
    assert "hunter2" not in result.output and "Traceback" not in result.output
    assert time.monotonic() - start < 5


def test_a_field_error_is_reported_as_such_when_redis_is_down(unreachable_redis: None) -> None:
    from workers.cli import cli

    result = CliRunner().invoke(cli, ["publish", "lead.created", "--source", "", "--data", "{}"])
    assert result.exit_code == 1
    assert result.output.startswith("error: source: String should have at least 1 character")
    assert "Traceback" not in result.output


def test_circuits_validate_reports_a_hostile_file_without_a_traceback(tmp_path: Path) -> None:
    from workers.cli import cli

    file = tmp_path / "laughs.yaml"
    file.write_text("a: &a [x, x]\nb: [*a, *a]\n")
    result = CliRunner().invoke(cli, ["circuits", "validate", str(file)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{file}:1: anchors and aliases" in result.output
