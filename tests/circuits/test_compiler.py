"""The canvas a circuit compiles to: chain for sequence, chord for parallel, control tasks for if/foreach."""

from __future__ import annotations

from celery.canvas import Signature

from circuits.actions import ActionRegistry
from circuits.compiler import Compiler, bind, describe
from circuits.loader import load_file, load_text
from tests.conftest import CIRCUITS

REGISTRY = ActionRegistry.from_modules(["circuits.builtin"])


def compiled(name: str) -> Signature:
    circuit, _ = load_file(CIRCUITS / name)
    return Compiler(REGISTRY).circuit(circuit)


def test_sequence_is_a_chain_of_named_action_tasks_on_their_queue() -> None:
    sig = compiled("sequence.yaml")
    assert sig["task"] == "celery.chain"
    assert [t["task"] for t in sig.tasks] == [
        "circuit.action.core.set",
        "circuit.action.core.set",
        "circuit.action.core.log",
    ]
    assert [t.options["queue"] for t in sig.tasks] == ["core"] * 3
    assert [t.kwargs["step"]["final"] for t in sig.tasks] == [False, False, True]
    assert all(t.options["ignore_result"] for t in sig.tasks)


def test_nested_parallel_is_a_chord_in_a_chord() -> None:
    outline = describe(compiled("parallel.yaml"))
    assert outline.split("\n") == [
        "chain",
        "  circuit.action.core.set [start] queue=core",
        "  chord",
        "    header",
        "      circuit.action.core.set [a] queue=core",
        "      chain",
        "        circuit.action.core.set [b1] queue=core",
        "        chord",
        "          header",
        "            circuit.action.core.set [c] queue=core",
        "            circuit.action.core.set [d] queue=core",
        "          body",
        "            circuit.join [inner] queue=core",
        "      circuit.action.core.noop [e] queue=core",
        "    body",
        "      chain",
        "        circuit.join [fan] queue=core",
        "        circuit.action.core.set [total] queue=core",
    ]


def test_if_and_foreach_carry_their_compiled_bodies() -> None:
    branch = compiled("branch.yaml").tasks[0]
    assert branch["task"] == "circuit.branch"
    step = branch.kwargs["step"]
    assert step["if"] == "event.data.score >= 80"
    assert Signature.from_dict(step["then"]).tasks[0]["task"] == "circuit.action.core.set"
    assert step["final"] is False
    loop = compiled("foreach.yaml").tasks[0].kwargs["step"]
    assert loop["body_ids"] == ["greet", "shout"] and loop["concurrency"] == 2


def test_retry_policy_and_timeout_become_task_options() -> None:
    retry = compiled("retry.yaml").tasks[0]
    assert retry.kwargs["step"]["retry"]["max"] == 4
    timeout = compiled("timeout.yaml")
    slow = timeout.tasks[0]
    assert slow.options["soft_time_limit"] == 0.5 and slow.options["time_limit"] > 0.5


def test_bind_hands_the_context_to_every_first_task() -> None:
    bound = bind(compiled("parallel.yaml"), {"ctx": 1})
    assert bound.tasks[0].args == ({"ctx": 1},)
    assert bound.tasks[1].tasks[0].args == ()  # later steps get the previous step's result


def test_steps_without_ids_get_stable_ones() -> None:
    circuit, _ = load_text(
        "name: c\ntrigger: {event: a.b}\nsteps:\n  - action: core.noop\n"
        "  - parallel: [{action: core.noop}, [{action: core.noop}, {action: core.noop}]]\n"
    )
    outline = describe(Compiler(REGISTRY).circuit(circuit))
    assert "[step1]" in outline and "[step2_b1_1]" in outline and "[step2_b2_2]" in outline


def test_python_front_end_builds_the_same_circuit_as_yaml() -> None:
    from circuits.model import ActionStep, Circuit, Trigger

    from_python = Circuit(
        name="t-sequence",
        trigger=Trigger(event="test.sequence"),
        steps=[
            ActionStep(id="first", action="core.set", with_={"doubled": "{{ event.data.n * 2 }}"}),
            ActionStep(id="second", action="core.set", with_={"plus_one": "{{ steps.first.doubled + 1 }}"}),
            ActionStep(
                id="third", action="core.log", with_={"message": "n={{ event.data.n }} -> {{ steps.second.plus_one }}"}
            ),
        ],
    )
    from_yaml, _ = load_file(CIRCUITS / "sequence.yaml")
    assert from_python == from_yaml and from_python.digest == from_yaml.digest
    assert dict(Compiler(REGISTRY).circuit(from_python)) == dict(Compiler(REGISTRY).circuit(from_yaml))
