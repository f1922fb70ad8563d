"""The model registry: versions of each named model, which one is champion, and why.

Rows live in the database (``intelligence.ml.tables``); model files live under
``settings.home / "models" / NAME`` and are loaded only after their checksum matches.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from circuits.errors import NotFoundError, PermanentError
from intelligence.ml.spec import FeatureSchema, Metrics, TrainSpec
from intelligence.ml.tables import CHALLENGER, CHAMPION, RETIRED, Decision, ModelVersion, utcnow

if TYPE_CHECKING:
    from intelligence.ml.training import TrainedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    """A read-only snapshot of one registered model version."""

    name: str
    version: int
    status: str
    metrics: Metrics
    schema: FeatureSchema
    spec: TrainSpec
    fingerprint: str
    engine: str
    estimator: str
    artifact_path: Path
    artifact_sha256: str
    created_at: datetime
    promoted_at: datetime | None
    note: str | None
    n_rows: int
    train_seconds: float

    @classmethod
    def of(cls, row: ModelVersion) -> VersionInfo:
        return cls(
            name=row.name,
            version=row.version,
            status=row.status,
            metrics=Metrics.model_validate(row.metrics),
            schema=FeatureSchema.model_validate(row.feature_schema),
            spec=TrainSpec.model_validate(row.train_spec),
            fingerprint=row.data_fingerprint,
            engine=row.engine,
            estimator=row.estimator,
            artifact_path=Path(row.artifact_path),
            artifact_sha256=row.artifact_sha256,
            created_at=row.created_at,
            promoted_at=row.promoted_at,
            note=row.note,
            n_rows=row.n_rows,
            train_seconds=row.train_seconds,
        )


class ModelRegistry:
    """Register, look up, load, promote and roll back model versions."""

    def __init__(self, engine: Engine, models_dir: Path) -> None:
        self.engine = engine
        self.models_dir = Path(models_dir)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    # --- reading -----------------------------------------------------------------------
    def versions(self, name: str | None = None) -> list[VersionInfo]:
        query = sa.select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
        if name is not None:
            query = query.where(ModelVersion.name == name)
        with self.session() as s:
            return [VersionInfo.of(r) for r in s.scalars(query)]

    def champion(self, name: str) -> VersionInfo | None:
        with self.session() as s:
            row = self._champion_row(s, name)
            return VersionInfo.of(row) if row else None

    def champion_ref(self, name: str) -> tuple[int, str] | None:
        """(version, file sha256) of the champion: a cheap query to notice a new champion."""
        query = sa.select(ModelVersion.version, ModelVersion.artifact_sha256).where(
            ModelVersion.name == name, ModelVersion.status == CHAMPION
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (int(row[0]), str(row[1])) if row else None

    def get(self, name: str, version: int | None = None) -> VersionInfo:
        """Version ``version`` of ``name``, or its champion when ``version`` is None."""
        with self.session() as s:
            if version is None:
                row = self._champion_row(s, name)
                if row is None:
                    known = "" if self._exists(s, name) else " (no model of that name is registered)"
                    raise NotFoundError(f"model {name!r} has no champion{known}: train one with `circuit-os ml train`")
            else:
                row = s.scalar(
                    sa.select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
                )
                if row is None:
                    raise NotFoundError(f"model {name!r} has no version {version}")
            return VersionInfo.of(row)

    def by_run_key(self, name: str, run_key: str) -> VersionInfo | None:
        with self.session() as s:
            row = s.scalar(sa.select(ModelVersion).where(ModelVersion.name == name, ModelVersion.run_key == run_key))
            return VersionInfo.of(row) if row else None

    def decisions(self, name: str) -> list[dict[str, Any]]:
        """The promotion history of ``name``, newest first."""
        query = sa.select(Decision).where(Decision.name == name).order_by(Decision.id.desc())
        with self.session() as s:
            return [
                {
                    "kind": d.kind,
                    "version": d.version,
                    "champion_version": d.champion_version,
                    "reason": d.reason,
                    "details": d.details,
                    "run_key": d.run_key,
                    "created_at": d.created_at,
                }
                for d in s.scalars(query)
            ]

    def load(self, info: VersionInfo) -> Any:
        """The fitted pipeline of ``info``, after its checksum and types are verified."""
        from intelligence.ml.artifacts import load_model

        return load_model(info.artifact_path, info.artifact_sha256)

    # --- writing -----------------------------------------------------------------------
    def register(self, name: str, trained: TrainedModel, spec: TrainSpec, *, run_key: str | None = None) -> VersionInfo:
        """Store ``trained`` as the next version of ``name``, with status challenger."""
        from intelligence.ml.artifacts import save_model

        with self.session() as s, s.begin():
            latest = s.scalar(sa.select(sa.func.max(ModelVersion.version)).where(ModelVersion.name == name))
            version = (latest or 0) + 1
            path, sha = save_model(trained.pipeline, self.models_dir / name, f"v{version}-{uuid.uuid4().hex[:8]}")
            row = ModelVersion(
                name=name,
                version=version,
                status=CHALLENGER,
                created_at=utcnow(),
                engine=trained.engine,
                estimator=trained.estimator,
                metrics=trained.metrics.model_dump(),
                feature_schema=trained.schema.model_dump(mode="json"),
                train_spec=spec.model_dump(mode="json"),
                data_fingerprint=trained.fingerprint,
                n_rows=len(trained.table.y),
                train_seconds=trained.seconds,
                artifact_path=str(path.resolve()),
                artifact_sha256=sha,
                run_key=run_key,
            )
            s.add(row)
            s.flush()
            info = VersionInfo.of(row)
        log.info("registered %s v%d (%s, ROC AUC %.3f)", name, version, trained.estimator, trained.metrics.roc_auc)
        return info

    def promote(
        self,
        name: str,
        version: int,
        reason: str,
        *,
        details: dict[str, Any] | None = None,
        run_key: str | None = None,
        kind: str = "promoted",
    ) -> VersionInfo:
        """Make ``version`` the champion; the previous champion is retired."""
        with self.session() as s, s.begin():
            target = self._row(s, name, version)
            current = self._champion_row(s, name)
            if current is not None and current.id != target.id:
                current.status, current.retired_at = RETIRED, utcnow()
            target.status, target.promoted_at, target.retired_at, target.note = CHAMPION, utcnow(), None, reason
            s.add(_decision(name, kind, version, reason, details, current, run_key))
            s.flush()
            info = VersionInfo.of(target)
        log.info("%s v%d is champion: %s", name, version, reason)
        return info

    def refuse(
        self, name: str, version: int, reason: str, *, details: dict[str, Any] | None = None, run_key: str | None = None
    ) -> VersionInfo:
        """Keep the champion: retire challenger ``version`` and record why."""
        with self.session() as s, s.begin():
            target = self._row(s, name, version)
            current = self._champion_row(s, name)
            target.status, target.retired_at, target.note = RETIRED, utcnow(), f"refused: {reason}"
            s.add(_decision(name, "refused", version, reason, details, current, run_key))
            s.flush()
            info = VersionInfo.of(target)
        log.info("%s v%d refused: %s", name, version, reason)
        return info

    def rollback(self, name: str, reason: str = "rollback") -> VersionInfo:
        """Bring back the champion before the current one; the current one is retired."""
        with self.session() as s, s.begin():
            current = self._champion_row(s, name)
            if current is None:
                raise NotFoundError(f"model {name!r} has no champion to roll back")
            previous = s.scalar(
                sa.select(ModelVersion)
                .where(
                    ModelVersion.name == name,
                    ModelVersion.id != current.id,
                    ModelVersion.promoted_at.is_not(None),
                    ModelVersion.promoted_at <= current.promoted_at,
                    sa.or_(ModelVersion.note.is_(None), ModelVersion.note.not_like("rolled back%")),
                )
                .order_by(ModelVersion.promoted_at.desc(), ModelVersion.version.desc())
                .limit(1)
            )
            if previous is None:
                raise PermanentError(
                    f"model {name!r} v{current.version} is its first champion: nothing to roll back to"
                )
            current.status, current.retired_at, current.note = RETIRED, utcnow(), f"rolled back: {reason}"
            previous.status, previous.retired_at = CHAMPION, None
            s.add(_decision(name, "rollback", previous.version, reason, None, current, None))
            s.flush()
            info = VersionInfo.of(previous)
        log.info("%s rolled back from v%d to v%d", name, current.version, previous.version)
        return info

    # --- helpers -----------------------------------------------------------------------
    @staticmethod
    def _champion_row(s: Session, name: str) -> ModelVersion | None:
        return s.scalar(sa.select(ModelVersion).where(ModelVersion.name == name, ModelVersion.status == CHAMPION))

    @staticmethod
    def _exists(s: Session, name: str) -> bool:
        return s.scalar(sa.select(sa.func.count()).where(ModelVersion.name == name)) != 0

    @staticmethod
    def _row(s: Session, name: str, version: int) -> ModelVersion:
        row = s.scalar(sa.select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version))
        if row is None:
            raise NotFoundError(f"model {name!r} has no version {version}")
        return row


def _decision(
    name: str, kind: str, version: int, reason: str, details: dict[str, Any] | None, champion: Any, run_key: str | None
) -> Decision:
    """The record of a promotion, refusal or rollback, with the champion it was judged against."""
    return Decision(
        name=name,
        kind=kind,
        version=version,
        reason=reason,
        details=details or {},
        champion_version=champion.version if champion else None,
        run_key=run_key,
        created_at=utcnow(),
    )
