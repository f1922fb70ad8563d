"""Dependencies point one way: workers -> intelligence/storage -> circuits.

circuits/ may build Celery signatures but never imports the app (workers); intelligence/ and
storage/ never import Celery at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "circuits": ("workers", "intelligence", "storage"),
    "storage": ("workers", "intelligence", "celery"),
    "intelligence": ("workers", "celery"),
}


def test_the_check_sees_imports() -> None:
    assert "celery.canvas" in imports(ROOT / "circuits" / "compiler.py")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package: str) -> None:
    bad = []
    files = list((ROOT / package).rglob("*.py"))
    assert len(files) > 3
    for path in files:
        for name in imports(path):
            if name.split(".")[0] in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []
