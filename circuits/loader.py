"""Read circuits from YAML files into the model, keeping line numbers for errors.

The YAML is composed into nodes first so every mapping and list item knows its
line; a pydantic error location is then mapped back to the nearest line.
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
_TAGS = frozenset({"action", "parallel", "if", "foreach"})


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


def _to_python(node: yaml.Node, path: Path_, lines: dict[Path_, int], loader: yaml.SafeLoader) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise DefinitionError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, Source]:
    """YAML text to plain data plus a :class:`Source` of line numbers."""
    source = Source(file=file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise source.error("the file is empty")
        data = _to_python(node, (), source.lines, loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DefinitionError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", file=file, line=mark.line + 1 if mark else None
        ) from None
    except DefinitionError as exc:
        raise DefinitionError(exc.message, file=file, line=exc.line) from None
    finally:
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
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(f"cannot read: {exc.strerror}", file=str(p)) from None
    return load_text(text, file=str(p))


def circuit_files(path: str | Path) -> list[Path]:
    """The circuit files at ``path``: the file itself, or every *.yaml / *.yml in the folder tree."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DefinitionError("no such file or folder", file=str(p))
    return sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file())
