"""The registry: versions and statuses in the database, verified skops files on disk."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from circuits.errors import NotFoundError, PermanentError
from intelligence.ml.artifacts import load_model, save_model
from intelligence.ml.registry import ModelRegistry


def test_register_load_round_trip(registry: ModelRegistry, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    info = registry.register("lead_score", leads_model, leads_spec)
    assert (info.version, info.status) == (1, "challenger")
    assert info.artifact_path.suffix == ".skops" and info.artifact_path.is_file()
    assert str(info.artifact_path).startswith(str(registry.models_dir))
    assert len(info.artifact_sha256) == 64 and info.fingerprint == leads_model.fingerprint
    assert info.metrics == leads_model.metrics and info.schema == leads_model.schema
    X, _ = leads_model.table.test
    loaded = registry.load(info)
    assert np.allclose(
        loaded.predict_proba(_prep(X, info))[:, 1], leads_model.pipeline.predict_proba(_prep(X, info))[:, 1]
    )
    with pytest.raises(NotFoundError, match="no champion"):
        registry.get("lead_score")
    registry.promote("lead_score", 1, "first")
    assert registry.get("lead_score").version == 1
    with registry.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"ml_model_versions", "ml_decisions", "ml_outcomes"} <= tables


def _prep(X, info):  # type: ignore[no-untyped-def]
    from intelligence.ml.features import prepare_frame

    return prepare_frame(X, info.schema)


def test_tampered_model_file_is_refused(registry: ModelRegistry, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    info = registry.register("lead_score", leads_model, leads_spec)
    data = bytearray(info.artifact_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.artifact_path.write_bytes(bytes(data))
    with pytest.raises(PermanentError, match="checksum"):
        registry.load(info)


def test_untrusted_types_in_a_model_file_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from sklearn.preprocessing import FunctionTransformer

    # a "model" that would call os.system on its input: the checksum matches, the type does not
    path, sha = save_model(FunctionTransformer(func=os.system), tmp_path, "odd")
    with pytest.raises(PermanentError, match="not trusted: posix.system"):
        load_model(path, sha)


def test_promote_and_rollback_keep_one_champion(registry: ModelRegistry, leads_model, leads_spec) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        registry.register("lead_score", leads_model, leads_spec)
    registry.promote("lead_score", 1, "first")
    registry.promote("lead_score", 2, "better")
    registry.promote("lead_score", 3, "better still")
    statuses = {v.version: v.status for v in registry.versions("lead_score")}
    assert statuses == {1: "retired", 2: "retired", 3: "champion"}

    assert registry.rollback("lead_score", "v3 misbehaves").version == 2
    statuses = {v.version: v.status for v in registry.versions("lead_score")}
    assert statuses == {1: "retired", 2: "champion", 3: "retired"}
    assert registry.get("lead_score", 3).note == "rolled back: v3 misbehaves"
    assert registry.rollback("lead_score").version == 1
    with pytest.raises(PermanentError, match="nothing to roll back"):
        registry.rollback("lead_score")
    kinds = [d["kind"] for d in registry.decisions("lead_score")]
    assert kinds == ["rollback", "rollback", "promoted", "promoted", "promoted"]
