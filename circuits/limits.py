"""Resource limits for conditions and templates: size of values, loop iterations, time.

Expressions come from circuit files and are fed event data, so one of them must
not be able to stall a worker or fill its memory. Every operation that can build
a bigger value than it was given (``*``, ``+``, ``%``, ``**``, ``~``, filters and
method calls such as ``join``, ``replace`` or ``center``) is checked *before* it
runs, by estimating what it would produce; loops and calls count against a
per-evaluation budget of iterations and wall-clock time. Containers of references
are cheap, so a value is measured by its :func:`weight`: roughly the characters
it takes to print.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import Undefined
from jinja2.utils import Namespace

from circuits.errors import LimitError

MAX_SIZE = 1_000_000  # characters a value may take to print (step outputs are capped far lower)
MAX_INT_BITS = 10_000  # ~3,000 digits; Python will not even print an int over 4,300 digits
MAX_LOOP_ITERATIONS = 100_000  # loop items per evaluation, all loops together
MAX_WORK = 50_000_000  # characters all checked operations of one evaluation may read and write
TIME_BUDGET_S = 1.0  # wall-clock seconds per evaluation
_WIDTH = re.compile(r"\d+")


class _Budget(threading.local):
    active = False
    deadline = math.inf
    loops = MAX_LOOP_ITERATIONS
    work = 0


_budget = _Budget()


def begin() -> bool:
    """Start a budget unless one is running (``render`` of a dict is one evaluation)."""
    b = _budget
    if b.active:
        return False
    b.active, b.deadline, b.loops, b.work = True, time.monotonic() + TIME_BUDGET_S, MAX_LOOP_ITERATIONS, 0
    return True


def end(started: bool) -> None:
    if started:
        _budget.active, _budget.deadline = False, math.inf


def tick() -> None:
    """Called from every hook: stop an evaluation that has run past its time."""
    if time.monotonic() > _budget.deadline:
        raise LimitError(f"took over {TIME_BUDGET_S} s, the time budget of one evaluation")


def bounded_loop(iterable: Any) -> Any:
    """A loop's iterable, counted against the budget (nested loops multiply, so the count is shared).

    A sized iterable is counted up front and returned as is (no cost per item); anything
    else is counted item by item.
    """
    tick()
    try:
        n = len(iterable)
    except TypeError:
        return _counted(iterable)
    _spend_loops(n)
    return iterable


def _spend_loops(n: int) -> None:
    b = _budget
    b.loops -= n
    if b.loops < 0:
        raise LimitError(f"loops ran over {MAX_LOOP_ITERATIONS:,} iterations in one evaluation")


def _counted(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _spend_loops(1)
        tick()
        yield item


def _scalar_weight(value: Any) -> int:
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    return 8


def _other_weight(v: Any, stack: list[Any]) -> int:
    """The rarer kinds of value; containers push their items on ``stack``."""
    if isinstance(v, str):
        return len(v) + 4
    if v is None or isinstance(v, (int, float)):
        return _scalar_weight(v)
    if isinstance(v, Undefined):
        v._fail_with_undefined_error()
    if isinstance(v, (list, tuple, set, frozenset)):
        stack.extend(v)
        return 2 + 2 * len(v)
    if isinstance(v, Mapping):
        stack.extend(v.keys())
        stack.extend(v.values())
        return 2 + 4 * len(v)
    if isinstance(v, range):
        return 8 * len(v)
    if isinstance(v, (bytes, bytearray)):
        return 4 * len(v)
    if isinstance(v, Namespace):
        stack.append(v._Namespace__attrs)  # its repr prints them all
    return 16


def weight(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters ``value`` takes to print; stops counting past ``limit``.

    Raises:
        UndefinedError: if a missing name or field (Undefined) sits inside a container:
            a missing field is an error wherever it appears.
    """
    t = type(value)
    if t is str:
        return len(value)
    if t is int or t is float or t is bool or value is None or isinstance(value, Undefined):
        return 0 if isinstance(value, Undefined) else _scalar_weight(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        v = stack.pop()
        t = type(v)
        if t is str:
            total += len(v) + 4
        elif t is int or t is float or t is bool or v is None:
            total += 8
        elif t is list or t is tuple:
            total += 2 + 2 * len(v)
            if total <= limit:
                stack.extend(v)
        elif t is dict:
            total += 2 + 4 * len(v)
            if total <= limit:
                stack.extend(v.keys())
                stack.extend(v.values())
        else:
            total += _other_weight(v, stack)
    return total


def check_size(total: int, what: str) -> None:
    """One value must fit MAX_SIZE, and all of them together MAX_WORK (a map or loop of big results)."""
    if total > MAX_SIZE:
        raise LimitError(f"{what} would be over {MAX_SIZE:,} characters")
    b = _budget
    if b.active:
        b.work += total
        if b.work > MAX_WORK:
            raise LimitError(f"the evaluation would handle over {MAX_WORK:,} characters")


def _count(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return weight(value)


def _format_cost(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], marker: str) -> int:
    """``%``-formatting and ``str.format``: each placeholder may print the biggest argument, padded."""
    values = [*args, *kwargs.values()]
    for v in list(values):
        if isinstance(v, (tuple, Mapping)):
            values.extend(v.values() if isinstance(v, Mapping) else v)
    biggest = max((weight(v) for v in values), default=0)
    widths = max((int(w) for w in _WIDTH.findall(fmt) if len(w) < 12), default=0)
    if any(len(w) >= 12 for w in _WIDTH.findall(fmt)):
        widths = MAX_SIZE + 1
    return len(fmt) + fmt.count(marker) * (biggest + widths)


def _replace_cost(s: Any, old: Any, new: Any, count: Any = None) -> int:
    if not isinstance(s, str) or not isinstance(old, str) or not isinstance(new, str):
        return 0
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return hits * len(new)


def _int(value: Any) -> int:
    return abs(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _indent_cost(s: Any, *args: Any, **kwargs: Any) -> int:
    width = _arg(args, kwargs, 0, "width", 4)
    per_line = len(width) if isinstance(width, str) else _int(width)
    lines = s.count("\n") + 1 if isinstance(s, str) else weight(s)
    return per_line * lines


def _wordwrap_cost(s: Any, *args: Any, **kwargs: Any) -> int:
    width = max(_int(_arg(args, kwargs, 0, "width", 79)), 1)
    wrap = _arg(args, kwargs, 2, "wrapstring") or "\n"
    return (weight(s) // width + 1) * (weight(wrap) + width)


def _batch_cost(value: Any, *args: Any, **kwargs: Any) -> int:
    n = _int(_arg(args, kwargs, 0, "linecount", 0)) or _int(_arg(args, kwargs, 0, "slices", 0))
    return n * (weight(_arg(args, kwargs, 1, "fill_with")) + 4)


def _sum_cost(value: Any, *args: Any, **kwargs: Any) -> int:
    start = _arg(args, kwargs, 1, "start", 0)
    if not isinstance(start, (int, float)):
        raise LimitError("sum adds numbers only (a list or text start would copy quadratically)")
    return 0


def _join_cost(value: Any, *args: Any, **kwargs: Any) -> int:
    return weight(_arg(args, kwargs, 0, "d", "")) * _count(value)


def _tojson_cost(value: Any, *args: Any, **kwargs: Any) -> int:
    indent = _arg(args, kwargs, 0, "indent")
    per_level = len(indent) if isinstance(indent, str) else _int(indent)
    return weight(value) * per_level * 4


FILTER_COSTS: dict[str, Callable[..., int]] = {
    "center": lambda v, *a, **k: _int(_arg(a, k, 0, "width", 80)),
    "indent": _indent_cost,
    "wordwrap": _wordwrap_cost,
    "truncate": lambda v, *a, **k: weight(_arg(a, k, 1, "end", "...")),
    "format": lambda v, *a, **k: _format_cost(v, a, k, "%") if isinstance(v, str) else 0,
    "join": _join_cost,
    "replace": lambda v, *a, **k: _replace_cost(v, *a, **k),
    "batch": _batch_cost,
    "slice": _batch_cost,
    "sum": _sum_cost,
    "tojson": _tojson_cost,
    "urlize": lambda v, *a, **k: weight(v) * sum(weight(x) for x in (*a, *k.values()) if isinstance(x, str)),
}

_STR_METHOD_COSTS: dict[str, Callable[..., int]] = {
    "center": lambda s, *a, **k: _int(_arg(a, k, 0, "width", 0)),
    "ljust": lambda s, *a, **k: _int(_arg(a, k, 0, "width", 0)),
    "rjust": lambda s, *a, **k: _int(_arg(a, k, 0, "width", 0)),
    "zfill": lambda s, *a, **k: _int(_arg(a, k, 0, "width", 0)),
    "expandtabs": lambda s, *a, **k: s.count("\t") * _int(_arg(a, k, 0, "tabsize", 8)),
    "join": lambda s, *a, **k: len(s) * _count(_arg(a, k, 0, "iterable", ())),
    "replace": lambda s, *a, **k: _replace_cost(s, *a, **k),
    "format": lambda s, *a, **k: _format_cost(s, a, k, "{"),
    "format_map": lambda s, *a, **k: _format_cost(s, a, k, "{"),
}
REFUSED_STR_METHODS = frozenset({"translate", "maketrans"})


def _args_weight(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    total = 0
    for v in (*args, *kwargs.values()):
        total += weight(v, MAX_SIZE - total)
        if total > MAX_SIZE:
            break
    return total


def check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before a filter runs: its inputs and what it would add must fit (``args[0]`` is the value)."""
    if time.monotonic() > _budget.deadline:
        tick()
    total = _args_weight(args, kwargs)
    cost = FILTER_COSTS.get(name)
    if cost is not None and args:
        total += cost(*args, **kwargs)
    check_size(total, f"the result of |{name}")


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Before a function or method is called from an expression."""
    tick()
    total = _args_weight(args, kwargs)
    if any(_int(v) > MAX_SIZE for v in (*args, *kwargs.values())):
        raise LimitError(f"a number argument over {MAX_SIZE:,} to {getattr(obj, '__name__', 'a call')}")
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if isinstance(owner, str):
        if name in REFUSED_STR_METHODS:
            raise LimitError(f"str.{name} is not available in expressions")
        cost = _STR_METHOD_COSTS.get(name)
        total += len(owner) + (cost(owner, *args, **kwargs) if cost else 0)
    check_size(total, f"the result of {name or 'a call'}()")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Before ``*``, ``+``, ``%`` or ``**``: bound repetition, concatenation, formatting and powers."""
    tick()
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**":
        if ints and right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_INT_BITS:
            raise LimitError(f"{left} ** {right} would be over {MAX_INT_BITS:,} bits")
    elif operator == "*":
        if ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise LimitError(f"a product over {MAX_INT_BITS:,} bits")
        elif isinstance(right, int) and isinstance(left, (str, list, tuple)):
            check_size(weight(left) * max(right, 0), "a repetition")
        elif isinstance(left, int) and isinstance(right, (str, list, tuple)):
            check_size(weight(right) * max(left, 0), "a repetition")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            check_size(weight(left) + weight(right), "a concatenation")
    elif operator == "%" and isinstance(left, str):
        check_size(_format_cost(left, (right,), {}, "%"), "a formatted text")


def concat(parts: list[Any]) -> str:
    """``a ~ b``: measured before the parts are turned into text."""
    tick()
    check_size(_args_weight(tuple(parts), {}), "a ~ concatenation")
    return "".join(str(p) for p in parts)
