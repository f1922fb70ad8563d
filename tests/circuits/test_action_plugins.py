"""Plugins: a package adds actions through the ``circuit_os.actions`` entry point group.

The plugin here is a real distribution as importlib.metadata sees one: a module plus a
``*.dist-info`` folder with METADATA and entry_points.txt, in a folder put on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from circuits.actions import ActionRegistry, entry_point_modules

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''
from pydantic import BaseModel

from circuits.actions import ActionContext, action


class ShoutInput(BaseModel):
    text: str


class ShoutOutput(BaseModel):
    text: str


@action("acme.shout", queue="core", retries=2, timeout_s=5, side_effects=False, rate_limit="10/s")
def shout(ctx: ActionContext, inp: ShoutInput) -> ShoutOutput:
    """Upper-case a text."""
    return ShoutOutput(text=inp.text.upper())
'''


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "acme_circuit_actions.py").write_text(PLUGIN, encoding="utf-8")
    info = tmp_path / "acme_circuit_actions-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-circuit-actions\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[circuit_os.actions]\nacme = acme_circuit_actions\n")
    return tmp_path


def test_entry_points_name_modules_whose_actions_register(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "acme_circuit_actions" not in entry_point_modules()
    monkeypatch.syspath_prepend(str(plugin_dir))
    assert "acme_circuit_actions" in entry_point_modules()
    registry = ActionRegistry.from_modules(entry_point_modules())
    assert registry.get("acme.shout").retries == 2


def test_cli_lists_plugin_actions_with_options_and_input_schema(plugin_dir: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "CIRCUIT_ACTION_MODULES": "circuits.builtin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "circuits", "actions", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    actions = {a["name"]: a for a in json.loads(done.stdout)}
    assert "core.log" in actions  # CIRCUIT_ACTION_MODULES, and the plugin beside them
    shout = actions["acme.shout"]
    assert {k: shout[k] for k in ("queue", "retries", "timeout_s", "side_effects", "rate_limit")} == {
        "queue": "core",
        "retries": 2,
        "timeout_s": 5,
        "side_effects": False,
        "rate_limit": "10/s",
    }
    assert shout["description"] == "Upper-case a text."
    assert shout["input_schema"]["required"] == ["text"]
    assert shout["input_schema"]["properties"]["text"]["type"] == "string"
