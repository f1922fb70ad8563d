"""Read circuits from YAML files into the model, keeping line numbers for errors.

The YAML is composed into nodes first so every mapping and list item knows its
line; a pydantic error location is then mapped back to the nearest line.

Circuit files may come from anyone, so reading them is bounded: file size, nesting
depth, node count and number length; anchors, aliases and explicit tags (other
than ``!!str``) are refused, since circuits need none of them and they are how a
few hundred bytes of YAML ask for gigabytes. Every failure is a DefinitionError
naming file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from circuits.errors import DefinitionError
from circuits.model import Circuit

Path_ = tuple[str | int, ...]
_TAGS = frozenset({"action", "parallel", "if", "foreach", "wait_for", "call"})
MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 64  # lists and mappings inside one another
MAX_NODES = 20_000  # values in one file: parsing costs ~25 µs and a few hundred bytes each
MAX_NUMBER_CHARS = 100  # Python refuses int text over 4,300 digits; no circuit needs 100
_CORE = "tag:yaml.org,2002:"
_SCALARS = frozenset(_CORE + t for t in ("str", "null", "bool", "int", "float", "timestamp"))
_NUMBERS = frozenset({_CORE + "int", _CORE + "float"})


@dataclass
class Source:
    """Where a circuit came from: file name and the line of each YAML path."""

    file: str | None = None
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)

    def error(self, message: str, path: Iterable[str | int] = ()) -> DefinitionError:
        return DefinitionError(message, file=self.file, line=self.line_of(path))


class _BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """SafeLoader that composes a bounded tree: no anchors, aliases or tags, limited depth and size."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise DefinitionError("anchors and aliases (& and *) are not allowed in circuit files", line=line)
        tag = getattr(event, "tag", None)
        if tag not in (None, "!", _CORE + "str"):
            shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
            raise DefinitionError(f"the tag {shown} is not allowed; write a plain value (quote text)", line=line)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise DefinitionError(f"more than {MAX_NODES} values in one file", line=line)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise DefinitionError(f"nested more than {MAX_DEPTH} deep", line=line)
            node: yaml.Node = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    """A plain value; numbers bounded, and a value the constructor chokes on is a named error."""
    line = node.start_mark.line + 1
    if node.tag not in _SCALARS:
        return str(node.value)  # e.g. a key spelled like YAML's merge key: plain text to us
    if node.tag in _NUMBERS and len(node.value) > MAX_NUMBER_CHARS:
        raise DefinitionError(
            f"a number of {len(node.value)} characters, over the limit of {MAX_NUMBER_CHARS}", line=line
        )
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, KeyError, OverflowError, yaml.YAMLError) as exc:
        raise DefinitionError(f"cannot read the value {node.value[:40]!r}: {exc}", line=line) from None


def _to_python(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: yaml.SafeLoader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise DefinitionError(
                    "a key must be plain text, not a list or mapping", line=key_node.start_mark.line + 1
                )
            key = _scalar(key_node, loader)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise DefinitionError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, loader) for i, item in enumerate(node.value)]
    return _scalar(node, loader)


def _yaml_line(exc: yaml.YAMLError, text: str) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML does not allow
    return text.count("\n", 0, position) + 1 if isinstance(position, int) else None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return f"the character {chr(exc.character)!r} is not allowed" if isinstance(exc.character, int) else str(exc)
    return str(getattr(exc, "problem", None) or exc)


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Source]:
    """YAML text to plain data plus a :class:`Source` of line numbers.

    Raises:
        DefinitionError: with file and line, for anything that is not a bounded plain YAML document.
    """
    source = Source(file=file)
    if len(text) > MAX_FILE_BYTES:
        raise DefinitionError(f"the file is {len(text)} characters, over the limit of {MAX_FILE_BYTES}", file=file)
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # its reader refuses control characters right away
        node = loader.get_single_node()
        if node is None:
            raise source.error("the file is empty")
        data = _to_python(node, (), source.lines, loader)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"not valid YAML: {_yaml_problem(exc)}", file=file, line=_yaml_line(exc, text)) from None
    except DefinitionError as exc:
        raise DefinitionError(exc.message, file=file, line=exc.line) from None
    except RecursionError:
        raise DefinitionError("nested too deep", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, source


def _data_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """Drop pydantic's union tags from an error location, keeping the real YAML path."""
    path: list[str | int] = []
    cur = data
    for i, part in enumerate(loc):
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        if isinstance(cur, dict) and part in _TAGS and isinstance(nxt, str) and nxt.rstrip("_") in cur:
            continue  # a union tag, not a key
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
            path.append(part)
        elif isinstance(cur, dict) and isinstance(part, str) and part.rstrip("_") in cur:
            cur = cur[part.rstrip("_")]
            path.append(part.rstrip("_"))
    return tuple(path)


def build(data: Any, source: Source) -> Circuit:
    """Validate plain data into a Circuit; raises CircuitFileErrors listing every structural problem."""
    if not isinstance(data, dict):
        raise source.error("a circuit file must be a mapping with name, trigger and steps")
    try:
        return Circuit.model_validate(data)
    except (RecursionError, TypeError, KeyError, AttributeError) as exc:  # a validator that did not expect this shape
        raise source.error(f"cannot read this circuit: {type(exc).__name__}: {exc}") from None
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            path = _data_path(err["loc"], data)
            where = ".".join(str(p) for p in path) or "(circuit)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            errors.append(source.error(f"{where}: {msg}", path))
        raise CircuitFileErrors(errors) from None


class CircuitFileErrors(DefinitionError):
    """Several problems found in one circuit definition."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        super().__init__("\n".join(str(e) for e in errors), file=errors[0].file if errors else None)
        self.errors = errors

    def __str__(self) -> str:
        return self.message


def load_text(text: str, file: str | None = None) -> tuple[Circuit, Source]:
    data, source = parse_yaml(text, file)
    circuit = build(data, source)
    return circuit, source


def load_file(path: str | Path) -> tuple[Circuit, Source]:
    """Read and load one circuit file; too big or not UTF-8 is a DefinitionError with file and line."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DefinitionError(f"the file is {size} bytes, over the limit of {MAX_FILE_BYTES}", file=str(p))
        raw = p.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read: {exc.strerror or exc}", file=str(p)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DefinitionError(
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be read", file=str(p), line=line
        ) from None
    return load_text(text, file=str(p))


def circuit_files(path: str | Path) -> list[Path]:
    """The circuit files at ``path``: the file itself, or every *.yaml / *.yml in the folder tree."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DefinitionError("no such file or folder", file=str(p))
    return sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file())
