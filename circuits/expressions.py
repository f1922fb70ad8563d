"""Conditions and templates, evaluated in Jinja2's sandbox (never ``eval``).

* A **condition** is a Jinja2 expression: ``event.data.company_size >= 10``.
* A **template** is any string holding ``{{ ... }}``. A string that is exactly one
  ``{{ expr }}`` keeps the value's type (a dict stays a dict, 80 stays 80); any
  other template renders to text.

Names visible to both: ``event``, ``steps``, ``vars``, ``run``, and inside a
``foreach`` body ``item`` and ``index``; ``error`` in ``on_failure`` steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from circuits.errors import ExpressionError, PermanentError

NAMES = frozenset({"event", "steps", "vars", "run", "item", "index", "error"})
_SINGLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)


class _Env(ImmutableSandboxedEnvironment):
    """Sandbox where ``a.b`` on a dict means the key ``b`` first.

    Plain Jinja2 tries the attribute first, so ``event.data.items`` would be the
    dict method rather than the field named ``items``.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_env = _Env(undefined=StrictUndefined, autoescape=False)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    try:
        return _env.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"bad expression {source!r}: {exc.message}") from None


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    try:
        return _env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"bad template {source!r}: {exc.message}") from None


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate an expression; a missing name or a sandbox refusal is a PermanentError."""
    try:
        result = _compile_expression(source)(**scope)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()  # a missing name or an attribute the sandbox hides
        return result
    except (UndefinedError, SecurityError, TypeError, ZeroDivisionError, ValueError) as exc:
        raise PermanentError(f"expression {source!r} failed: {exc}") from None


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render every template inside ``value`` (dicts and lists recursively)."""
    if isinstance(value, str):
        if not is_template(value):
            return value
        single = _SINGLE.match(value)
        if single and "{{" not in single.group(1) and "}}" not in single.group(1):
            return evaluate(single.group(1), scope)
        try:
            return _compile_template(value).render(**scope)
        except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
            raise PermanentError(f"template {value!r} failed: {exc}") from None
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value


def _parse(source: str, *, template: bool) -> nodes.Template:
    try:
        return _env.parse(source if template else "{{ " + source + " }}")
    except TemplateSyntaxError as exc:
        kind = "template" if template else "expression"
        raise ExpressionError(f"bad {kind} {source!r}: {exc.message}") from None


def _step_refs(tree: nodes.Node) -> Iterator[str]:
    """Step ids named as ``steps.X`` or ``steps['X']``."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if isinstance(target, nodes.Name) and target.name == "steps":
            if isinstance(node, nodes.Getattr):
                yield node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                if isinstance(node.arg.value, str):
                    yield node.arg.value


def check(source: str, *, template: bool = False, names: frozenset[str] = NAMES) -> set[str]:
    """Parse ``source`` and return the step ids it references.

    ``names`` are the names visible where the expression runs (``item`` only inside a
    foreach, ``error`` only in on_failure steps, only ``event`` in a trigger condition).

    Raises:
        ExpressionError: on a syntax error or a name that is not visible there.
    """
    tree = _parse(source, template=template)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in names | assigned:
            hint = "is only defined elsewhere" if name.name in NAMES else "is unknown"
            raise ExpressionError(f"name {name.name!r} in {source!r} {hint}; here use {', '.join(sorted(names))}")
    return set(_step_refs(tree))


def check_value(value: Any, names: frozenset[str] = NAMES) -> set[str]:
    """Check every template inside ``value``; return the step ids they reference."""
    refs: set[str] = set()
    if is_template(value):
        refs |= check(value, template=True, names=names)
    elif isinstance(value, dict):
        for v in value.values():
            refs |= check_value(v, names)
    elif isinstance(value, list):
        for v in value:
            refs |= check_value(v, names)
    return refs
