"""Interfaces reach the engine only through the service layer; the service layer never imports them."""

from __future__ import annotations

from tests.test_layers import ROOT, imports


def test_interfaces_import_no_workers_or_celery() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "interfaces").rglob("*.py")
        for name in imports(path)
        if name.split(".")[0] in ("workers", "celery", "storage") and name != "storage.migrate"
    ]
    assert bad == []


def test_service_imports_no_interfaces() -> None:
    bad = [str(p) for p in (ROOT / "service").rglob("*.py") if any(n.startswith("interfaces") for n in imports(p))]
    assert bad == []
