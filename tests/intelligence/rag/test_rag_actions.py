"""The action contract: names, queues, typed models, and an import that stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from circuits.actions import ActionRegistry
from intelligence.rag import actions
from intelligence.rag.schemas import IngestInput

ROOT = Path(__file__).resolve().parents[3]


def test_actions_are_registered_on_their_queues() -> None:
    registry = ActionRegistry.from_modules(["intelligence.rag.actions"])
    queues = {spec.name: spec.queue for spec in registry}
    assert queues == {
        "rag.ingest": "rag",
        "rag.retrieve": "rag",
        "rag.answer": "llm",
        "rag.feedback": "rag",
        "rag.flag_stale": "rag",
        "rag.refresh": "rag",
    }
    assert sorted(actions.__all__) == ["answer", "feedback", "flag_stale", "ingest", "refresh", "retrieve"]


def test_importing_the_actions_loads_no_heavy_library() -> None:
    code = (
        "import sys, intelligence.rag.actions, intelligence.rag.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'celery', 'chromadb', 'torch', 'sentence_transformers', 'anthropic', 'bm25s', 'sqlalchemy'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_inputs_are_validated() -> None:
    with pytest.raises(ValidationError, match="give documents or a path"):
        IngestInput(collection="x")
