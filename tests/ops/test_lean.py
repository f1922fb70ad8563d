"""Lean installs: a worker for the core, data, notify or llm queues installs without torch, chromadb,
xgboost or CUDA wheels; only the ml and rag pools carry their stacks.

A static look at pyproject.toml, then pip's own resolution of each pool's extra (``pip install
--dry-run --report``, nothing installed), then the core worker's imports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
POOLS = ("worker-core", "worker-ml", "worker-rag", "worker-graph", "worker-llm")
#: What no pool but ml and rag may carry (distribution names, normalised; nvidia-* and triton are CUDA).
HEAVY = {"torch", "chromadb", "xgboost", "xgboost-cpu", "onnxruntime", "sentence-transformers", "triton"}
LEAN = ("worker-core", "worker-graph", "worker-llm")


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def expand(extra: str) -> list[str]:
    """The requirements an extra declares, following ``circuit-os[...]`` references, base excluded."""
    out: list[str] = []
    for req in EXTRAS[extra]:
        ref = re.fullmatch(r"circuit-os\[([^\]]+)\]", req)
        if ref:
            for inner in ref.group(1).split(","):
                out += expand(inner.strip())
        else:
            out.append(req)
    return out


def test_each_pool_has_an_extra() -> None:
    assert set(POOLS) <= set(EXTRAS)


def test_one_declaration_per_package() -> None:
    declared = [name_of(r) for r in PROJECT["dependencies"]]
    for extra, reqs in EXTRAS.items():
        declared += [name_of(r) for r in reqs if not r.startswith("circuit-os[")]
        assert all(r.startswith("circuit-os[") or name_of(r) != "circuit-os" for r in reqs), extra
    twice = sorted({n for n in declared if declared.count(n) > 1})
    assert not twice, f"declared more than once: {twice}"


def test_no_extra_pulls_the_cuda_xgboost() -> None:
    every = [r for reqs in EXTRAS.values() for r in reqs] + PROJECT["dependencies"]
    assert not [r for r in every if name_of(r) == "xgboost"], "xgboost pulls nvidia-nccl: use xgboost-cpu"
    assert not [r for r in every if name_of(r) == "flaml" and "automl" in r], "flaml[automl] requires xgboost"


@pytest.mark.parametrize("pool", LEAN)
def test_lean_pools_declare_no_heavy_stack(pool: str) -> None:
    names = {name_of(r) for r in expand(pool) + PROJECT["dependencies"]}
    assert not names & HEAVY, f"{pool} declares {sorted(names & HEAVY)}"


def _resolve(extra: str, tmp_path: Path) -> set[str]:
    report = tmp_path / f"{extra}.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    out = subprocess.run(
        [*cmd, "--report", str(report), f"{ROOT}[{extra}]"], capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return {i["metadata"]["name"].lower().replace("_", "-") for i in json.loads(report.read_text())["install"]}


@pytest.mark.parametrize("pool", POOLS)
def test_pip_resolves_each_pool_without_what_it_does_not_run(pool: str, tmp_path: Path) -> None:
    names = _resolve(pool, tmp_path)
    cuda = sorted(n for n in names if n.startswith("nvidia-") or n in {"triton", "xgboost"})
    assert not cuda, f"{pool} would install CUDA wheels: {cuda}"
    if pool in LEAN:
        assert not names & HEAVY, f"{pool} would install {sorted(names & HEAVY)}"
    if pool == "worker-ml":
        assert {"flaml", "lightgbm", "xgboost-cpu", "scikit-learn"} <= names and "torch" not in names
    if pool == "worker-rag":
        assert {"torch", "chromadb", "sentence-transformers", "anthropic"} <= names


def test_the_core_worker_imports_no_heavy_library() -> None:
    """What ``celery -A workers worker`` loads: the app, every default action module (their heavy imports
    wait until an action runs), the shipped circuits and beat's schedule."""
    code = (
        "import sys, workers.app, beat_schedule\n"
        "from workers.runtime import runtime\n"
        "rt = runtime(); assert len(rt.registry) > 20; beat_schedule.build(rt.catalog)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'chromadb', 'xgboost', 'sklearn', "
        "'lightgbm', 'flaml', 'pandas', 'sentence_transformers', 'onnxruntime', 'anthropic', 'neo4j', 'mcp'}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUIT_")}
    env["CIRCUIT_HOME"] = "/nonexistent-circuit-home"  # nothing is opened at import
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
