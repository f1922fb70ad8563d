"""`circuits validate`: every problem, with file and line, and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from circuits.actions import ActionRegistry
from circuits.catalog import check_path
from tests.conftest import ACTION_MODULES, CIRCUITS, FIXTURES, ROOT

INVALID = FIXTURES / "invalid"
REGISTRY = ActionRegistry.from_modules(ACTION_MODULES)


def problems(name: str) -> list[str]:
    _, found = check_path(INVALID / name, REGISTRY)
    return [str(p) for p in found]


def test_every_semantic_problem_is_reported_with_its_line() -> None:
    found = problems("many_problems.yaml")
    text = "\n".join(found)
    file = str(INVALID / "many_problems.yaml")
    assert all(p.startswith(file + ":") for p in found)
    assert f"{file}:4: trigger.when: bad expression" in text
    assert f"{file}:9: steps.1.id: duplicate step id 'score' (first used at line 6)" in text
    assert f"{file}:10: steps.1.action: unknown action 'core.lgo'; did you mean core.log" in text
    assert f"{file}:13: steps.2.with.seconds: input does not fit core.sleep" in text
    assert f"{file}:13: steps.2.with.snooze: core.sleep has no input 'snooze'" in text
    assert f"{file}:15: steps.3.if: refers to step 'nowhere', which does not exist" in text
    assert f"{file}:18: steps.3.then.0.with.message: bad template" in text
    assert len(found) == 7


def test_structural_problems_are_reported_with_lines() -> None:
    text = "\n".join(problems("structure.yaml"))
    assert ":1: name: String should match pattern" in text
    assert ":2: trigger: a trigger needs exactly one of event, schedule, all_of, any_of, sequence, absence" in text
    assert ":6: steps.0: a step needs one of the keys: action, parallel, if, foreach" in text
    assert ":9: steps.1.retry.max: Input should be greater than or equal to 0" in text


def test_broken_yaml_names_the_line() -> None:
    [problem] = problems("not_yaml.yaml")
    assert "not_yaml.yaml:3: not valid YAML" in problem


def test_a_reference_to_a_later_step_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "name: c\ntrigger: {event: a.b}\nsteps:\n  - {id: one, action: core.set, with: {v: '{{ steps.two.v }}'}}\n"
        "  - {id: two, action: core.set, with: {v: 1}}\n"
    )
    _, found = check_path(f, REGISTRY)
    assert [str(p) for p in found] == [f"{f}:4: steps.0.with.v: refers to step 'two', which has not run at this point"]


def test_the_shipped_and_test_circuits_are_valid() -> None:
    good, found = check_path(CIRCUITS, REGISTRY)
    assert found == [] and len(good) >= 8


def validate_cli(path: Path) -> subprocess.CompletedProcess[str]:
    """``circuit-os circuits validate PATH`` in a clean environment."""
    env = {"CIRCUIT_ACTION_MODULES": ",".join(ACTION_MODULES), "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "workers.cli", "circuits", "validate", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)


def test_cli_exits_non_zero_and_prints_every_problem() -> None:
    out = validate_cli(INVALID)
    assert out.returncode == 1, out.stderr
    assert "0 circuit(s) valid, 12 problem(s)" in out.stdout
    assert "unknown action 'core.lgo'" in out.stdout


def test_cli_accepts_a_valid_folder() -> None:
    out = validate_cli(CIRCUITS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problem(s)" in out.stdout


def test_names_are_checked_where_they_are_visible(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(
        "name: c\n"
        "trigger: {event: a.b, when: 'steps.x.v > 1'}\n"
        "steps:\n"
        "  - {id: one, action: core.set, with: {v: '{{ item }}'}}\n"
        "  - id: loop\n"
        "    foreach: event.data.items\n"
        "    do: [{id: two, action: core.set, with: {v: '{{ item }} {{ index }}', e: '{{ error }}'}}]\n"
        "on_failure:\n"
        "  - {id: alert, action: core.set, with: {why: '{{ error.message }}'}}\n"
    )
    _, found = check_path(f, REGISTRY)
    text = "\n".join(str(p) for p in found)
    assert ":2: trigger.when: name 'steps' in 'steps.x.v > 1' is only defined elsewhere; here use event" in text
    assert ":4: steps.0.with.v: name 'item' in '{{ item }}' is only defined elsewhere" in text
    assert ":7: steps.1.do.0.with.e: name 'error'" in text
    assert len(found) == 3  # item and index inside the loop and error in on_failure are fine
