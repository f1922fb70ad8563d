"""Conditions and templates, evaluated in Jinja2's sandbox (never ``eval``).

* A **condition** is a Jinja2 expression: ``event.data.company_size >= 10``.
* A **template** is any string holding ``{{ ... }}``. A string that is exactly one
  ``{{ expr }}`` keeps the value's type (a dict stays a dict, 80 stays 80); any
  other template renders to text.

Names visible to both: ``event``, ``steps``, ``vars``, ``run``, and inside a
``foreach`` body ``item`` and ``index``; ``error`` in ``on_failure`` steps.

Evaluation is bounded (:mod:`circuits.limits`): value size, loop iterations and
time per evaluation. A missing name or field is an error wherever it appears,
inside a list or dict literal too. Whatever goes wrong at run time is a
PermanentError; a problem found while parsing is an ExpressionError.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from circuits import limits
from circuits.errors import ExpressionError, LimitError, PermanentError
from circuits.limits import check_size, weight

NAMES = frozenset({"event", "steps", "vars", "run", "item", "index", "error"})
MAX_SOURCE_CHARS = 20_000  # one condition or template
_SINGLE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)
_LOOP, _CONCAT = "_circuit_loop", "_circuit_concat"  # internal filters the compiler inserts
# Nodes that can build a new value (so a result must be measured and searched for Undefined).
_BUILDS = (nodes.List, nodes.Tuple, nodes.Dict, nodes.Filter, nodes.Call, nodes.BinExpr, nodes.Concat)


class _Bound(NodeTransformer):
    """Rewrites a parsed template so every loop and every ``~`` goes through a limit."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, _CONCAT, [], [], None, None, lineno=node.lineno)


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks what it would produce before it runs."""
    skip = 0 if _PassArg.from_obj(func) is None else 1  # context or environment comes first

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        limits.check_filter(name, args[skip:], kwargs)
        return func(*args, **kwargs)

    return guarded


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` output: a container is measured before it is printed."""
    if value is not None and not isinstance(value, (str, int, float)):
        check_size(weight(value), "an output")
    return value


class _Env(ImmutableSandboxedEnvironment):
    """Sandbox where ``a.b`` on a dict means the key ``b`` first, with resource limits.

    Plain Jinja2 tries the attribute first, so ``event.data.items`` would be the
    dict method rather than the field named ``items``.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}
        self.filters[_LOOP] = limits.bounded_loop
        self.filters[_CONCAT] = limits.concat
        self.globals.pop("lipsum", None)  # lorem ipsum has no place in a circuit, and n is unbounded

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limits.check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, complex):  # (-8) ** 0.5: no JSON, no circuit means it
            raise LimitError(f"{left!r} {operator} {right!r} is not a real number")
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        limits.check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        source = _Bound().visit(source)
        return super()._generate(source, name, filename, defer_init)


_env = _Env()


def _short(source: str) -> str:
    return repr(source) if len(source) <= 200 else repr(source[:200]) + "..."


def _bad(kind: str, source: str, exc: BaseException) -> ExpressionError:
    if isinstance(exc, TemplateSyntaxError):
        why = exc.message
    elif isinstance(exc, (RecursionError, MemoryError)) or "nested" in str(exc):
        why = "nested too deeply"
    else:
        why = f"{type(exc).__name__}: {exc}"
    return ExpressionError(f"bad {kind} {_short(source)}: {why}")


def _run_error(kind: str, source: str, exc: Exception) -> PermanentError:
    cls = LimitError if isinstance(exc, LimitError) else PermanentError
    message = str(exc) if isinstance(exc, PermanentError) else str(exc) or type(exc).__name__
    return cls(f"{kind} {_short(source)} failed: {message[:1000]}")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> tuple[Any, bool]:
    """The compiled expression, and whether its result must be measured (it may build a value)."""
    try:
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateSyntaxError(f"over {MAX_SOURCE_CHARS} characters", 1)
        parser = Parser(_env, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
        builds = isinstance(expr, _BUILDS) or next(expr.find_all(_BUILDS), None) is not None
        return _env.compile_expression(source, undefined_to_none=False), builds
    except Exception as exc:  # noqa: BLE001 - any failure to compile is a bad expression
        raise _bad("expression", source, exc) from None


@lru_cache(maxsize=4096)
def _compile_template(source: str) -> Any:
    try:
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateSyntaxError(f"over {MAX_SOURCE_CHARS} characters", 1)
        return _env.from_string(source)
    except Exception as exc:  # noqa: BLE001 - any failure to compile is a bad template
        raise _bad("template", source, exc) from None


def evaluate(source: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate an expression within the limits; any failure while it runs is a PermanentError.

    Raises:
        ExpressionError: if ``source`` does not compile.
        PermanentError: a missing name or field, a sandbox refusal, a limit (LimitError),
            or any error raised by an operator or filter.
    """
    compiled, builds = _compile_expression(source)
    started = limits.begin()
    try:
        result = compiled(**scope)
        if isinstance(result, Undefined):
            result._fail_with_undefined_error()  # a missing name or an attribute the sandbox hides
        if builds:
            check_size(weight(result), "the result")
        return result
    except SoftTimeLimitExceeded:
        raise  # the step's own time limit, handled by the worker
    except Exception as exc:  # noqa: BLE001 - bad input must never crash the caller
        raise _run_error("expression", source, exc) from None
    finally:
        limits.end(started)


def _render_text(source: str, scope: Mapping[str, Any]) -> str:
    template = _compile_template(source)
    started = limits.begin()
    try:
        out: list[str] = []
        size = 0
        for chunk in template.root_render_func(template.new_context(dict(scope))):
            size += len(chunk)
            if size > limits.MAX_SIZE:
                raise LimitError(f"the text would be over {limits.MAX_SIZE:,} characters")
            out.append(chunk)
        return "".join(out)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - bad input must never crash the caller
        raise _run_error("template", source, exc) from None
    finally:
        limits.end(started)


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render every template inside ``value`` (dicts and lists recursively), within one budget."""
    started = limits.begin()
    try:
        return _render(value, scope)
    finally:
        limits.end(started)


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        if not is_template(value):
            return value
        single = _SINGLE.match(value)
        if single and "{{" not in single.group(1) and "}}" not in single.group(1):
            return evaluate(single.group(1), scope)
        return _render_text(value, scope)
    if isinstance(value, dict):
        return {k: _render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, scope) for v in value]
    return value


def _parse(source: str, *, template: bool) -> nodes.Template:
    kind = "template" if template else "expression"
    try:
        if len(source) > MAX_SOURCE_CHARS:
            raise TemplateSyntaxError(f"over {MAX_SOURCE_CHARS} characters", 1)
        return _env.parse(source if template else "{{ " + source + " }}")
    except Exception as exc:  # noqa: BLE001 - a syntax error, or nesting deep enough to exhaust the stack
        raise _bad(kind, source, exc) from None


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
    try:
        assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        for name in tree.find_all(nodes.Name):
            if name.ctx == "load" and name.name not in names | assigned:
                hint = "is only defined elsewhere" if name.name in NAMES else "is unknown"
                raise ExpressionError(
                    f"name {name.name!r} in {_short(source)} {hint}; here use {', '.join(sorted(names))}"
                )
        refs = set(_step_refs(tree))
    except RecursionError:
        raise _bad("template" if template else "expression", source, RecursionError()) from None
    if template:
        _compile_template(source)  # an unknown filter or test is found now, not at run time
    else:
        _compile_expression(source)
    return refs


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
