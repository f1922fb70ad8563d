"""The one settings object, read from ``CIRCUIT_*`` environment variables.

Read it through :func:`get_settings` (cached), never at import time, so a test or
a CLI flag can set the environment first. ``celeryconfig.py`` maps it onto Celery.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from circuits.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = PACKAGE_ROOT / "examples"

DEFAULT_ACTION_MODULES = [
    "circuits.builtin",
    "intelligence.ml.actions",
    "intelligence.rag.actions",
    "intelligence.graph.actions",
    "intelligence.llm.actions",
    "integrations.mcp.actions",
    "integrations.notify",
    "integrations.records.actions",
]


class Settings(BaseSettings):
    """Every knob of Circuit OS. Environment variable = ``CIRCUIT_`` + field name, upper case."""

    model_config = SettingsConfigDict(env_prefix="CIRCUIT_", extra="ignore")

    # --- engine -----------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Broker, result backend, event stream and ledger buffer."
    )
    database_url: str = Field(
        "sqlite:///.circuit-os/circuit_os.db", description="Run ledger and registries (any SQLAlchemy URL)."
    )
    circuits: Path = Field(EXAMPLES_DIR / "circuits", description="Folder of circuit files (*.yaml) the workers run.")
    home: Path = Field(Path(".circuit-os"), description="Folder for embedded state: SQLite, models, vector store.")
    action_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ACTION_MODULES),
        description="Comma-separated modules whose @action functions workers register.",
    )
    event_stream: str = Field("circuit:events", description="Redis Stream that other languages XADD events to.")
    publish_mode: Literal["stream", "worker", "direct"] = Field(
        "stream",
        description="stream: publish() adds events to the event stream, read in batches beside each worker's "
        "pool; worker: it hands each event to a Celery ingest task; direct: the producer matches circuits "
        "and enqueues runs itself (it needs CIRCUIT_CIRCUITS and the action modules).",
    )
    ingest_in_worker: bool = Field(
        True, description="Each worker starts an event stream reader beside its pool (else run circuit-os ingest)."
    )
    event_max_bytes: int = Field(256 * 1024, description="Largest accepted event envelope, in bytes of JSON.")
    dedupe_ttl_s: int = Field(7 * 24 * 3600, description="How long an event id or idempotency key is remembered.")
    output_max_bytes: int = Field(64 * 1024, description="Largest step output carried to later steps.")
    ledger_output_max_bytes: int = Field(4 * 1024, description="Step outputs are truncated to this in the ledger.")
    ledger_in_worker: bool = Field(
        True, description="Each worker starts a ledger writer process beside its pool (else run circuit-os ledger)."
    )
    ledger_batch: int = Field(500, description="Most ledger records written in one transaction.")
    foreach_max_items: int = Field(1000, description="Hard cap on the items one foreach step may fan out over.")
    result_expires_s: int = Field(3600, description="How long Celery keeps chord member results in Redis.")
    auto_migrate: bool = Field(True, description="Apply database migrations when a worker or the CLI starts.")
    concurrency_lease_s: float = Field(
        3600.0, gt=0, description="A run holding a per-key concurrency slot longer than this, unended, loses it."
    )

    # --- durability (issue 11) ----------------------------------------------------
    step_lease_s: float = Field(
        30.0, gt=0, description="A running step holds a lease its worker renews; a dead worker's lease ends this late."
    )
    stall_after_s: float = Field(
        45.0, gt=0, description="A run with no progress this long (and no live lease) is resumed by the watchdog."
    )
    watchdog_interval_s: float = Field(5.0, gt=0, description="How often the watchdog looks for stalled runs.")
    max_resumes: int = Field(8, ge=1, description="A run resumed this many times without ending is failed.")
    redis_wait_s: float = Field(
        60.0, ge=0, description="How long a step waits for Redis to come back before giving up on recording."
    )
    step_timeout_s: float = Field(
        900.0, gt=0, description="Longest a step without a time limit is assumed to run (sizes the visibility timeout)."
    )
    inline_steps_s: float = Field(
        0.5,
        ge=0,
        description="A step's next action on the same queue runs in the same task while the task has run "
        "less than this (0: every step is a task of its own). See workers/inline.py.",
    )
    wait_lookback_s: float = Field(
        300.0, ge=0, description="A wait_for step also takes a matching event that arrived this long before it began."
    )
    visibility_timeout_s: int | None = Field(
        None, description="Broker visibility timeout; unset = the longest step time limit plus a minute."
    )
    log_level: str = Field("INFO")

    # --- intelligence: ml (issue 2) ----------------------------------------------
    ml_promotion_margin: float = Field(0.005, description="ROC AUC a challenger must gain over the champion.")
    ml_train_budget_s: int = Field(60, description="Default AutoML time budget per training, seconds.")

    # --- intelligence: rag and graph (issue 3) -------------------------------------
    chroma_url: str | None = Field(None, description="Chroma server URL; unset = embedded PersistentClient under home.")
    neo4j_url: str | None = Field(None, description="Bolt URL of the knowledge graph; unset = embedded ArcadeDB.")
    neo4j_user: str = Field("root")
    neo4j_password: str = Field("circuit-os-graph", description="At least 8 characters (the embedded server insists).")
    neo4j_database: str | None = Field(None, description="Database name; unset = the server's default.")
    rag_value_weights: dict[str, float] | None = Field(
        None, description="JSON weights of relevance, freshness, authority, usefulness, context match."
    )

    # --- llm -------------------------------------------------------------------------
    anthropic_api_key: str | None = Field(None)
    anthropic_base_url: str | None = Field(None, description="Override the Anthropic API address (a proxy or a stub).")
    anthropic_model: str = Field("claude-sonnet-4-5")

    # --- llm and mcp (issue 7) ------------------------------------------------------
    llm_max_tokens: int = Field(1024, ge=1, description="Default max_tokens of an llm.* step.")
    llm_temperature: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Default temperature of an llm.* step; unset = not sent (newer Claude models refuse it).",
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Time limit of one Claude call, seconds.")
    llm_offline: bool = Field(
        False,
        description="With no API key, llm.* actions answer with a deterministic offline fallback (no model) "
        "instead of failing; their outputs say offline: true.",
    )
    mcp_servers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='JSON: name -> {"command": [...], "env": {...}} (stdio) or {"url": "http://.../mcp"} '
        "(streamable HTTP). Circuits name servers; they never give commands or URLs.",
    )
    mcp_timeout_s: float = Field(30.0, gt=0, description="Default time limit of one MCP step (connect and call).")

    # --- notify (issue 7) -------------------------------------------------------------
    # Circuits name a webhook or target; the URLs, passwords and HMAC secrets live only here (SecretStr
    # keeps them out of reprs and logs).
    slack_webhook_url: SecretStr | None = Field(None, description="The Slack webhook used when a step names none.")
    slack_webhooks: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON: name -> Slack incoming webhook URL, e.g. {"sales": "https://hooks..."}.',
    )
    webhook_targets: dict[str, dict[str, SecretStr]] = Field(
        default_factory=dict,
        description='JSON: name -> {"url": ..., "secret": ...} for notify.webhook (the secret signs the body).',
    )
    notify_timeout_s: float = Field(10.0, gt=0, description="Time limit of one HTTP request or SMTP exchange.")
    smtp_host: str | None = Field(None, description="SMTP server for notify.email.")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = Field(None, description="SMTP login; unset = no AUTH.")
    smtp_password: SecretStr | None = Field(None)
    smtp_from: str | None = Field(None, description="Sender address; unset = CIRCUIT_SMTP_USER.")
    smtp_starttls: bool = Field(True, description="Upgrade the connection with STARTTLS (port 587).")
    smtp_ssl: bool = Field(False, description="Implicit TLS from the first byte (port 465); wins over STARTTLS.")
    smtp_ca_file: Path | None = Field(None, description="PEM file of CAs to trust for SMTP TLS; unset = the system's.")

    # --- records (issue 7) ------------------------------------------------------------
    max_chain_depth: int = Field(
        5, ge=0, description="Record events deeper than this many circuit writes are refused (stops self-loops)."
    )
    records_query_max_limit: int = Field(1000, ge=1, description="Most records one data.query returns.")
    records_bulk_max: int = Field(1000, ge=1, description="Most records one data.*_many step writes.")
    records_custom_max_bytes: int = Field(16 * 1024, ge=64, description="Largest custom-fields JSON of one record.")
    records_outbox_sweep_after_s: float = Field(
        10.0, ge=0, description="The outbox sweep publishes record events left unsent this long."
    )

    # --- ops (issue 9) ------------------------------------------------------------------
    # Beat: run two for failover; with redbeat only the one holding the lock in Redis sends ticks.
    beat_scheduler: Literal["redbeat", "file"] = Field(
        "redbeat",
        description="redbeat: schedule and lock in Redis, so a second beat waits and takes over; "
        "file: Celery's local schedule file (run exactly one beat).",
    )
    beat_lock_timeout_s: int = Field(
        30, ge=2, description="A beat that dies loses the lock this late; keep it shorter than a schedule tick."
    )
    beat_max_interval_s: float = Field(
        5.0, gt=0, description="Longest beat sleeps between looks at the schedule (and between lock renewals)."
    )

    # --- api (issue 8) ------------------------------------------------------------------
    # The HTTP API (`circuit-os serve`). Secrets are SecretStr: never in reprs, logs or answers.
    api_allow_anonymous: bool = Field(
        False, description="Serve requests without credentials as CIRCUIT_API_ANONYMOUS_ROLE (local use only)."
    )
    api_anonymous_role: Literal["admin", "author", "operator", "producer", "viewer"] = Field(
        "admin", description="Role of an anonymous caller when CIRCUIT_API_ALLOW_ANONYMOUS is on."
    )
    api_anonymous_tenant: str = Field("default", description="Tenant of an anonymous caller.")
    api_jwt_secret: SecretStr | None = Field(None, description="Shared secret of HS256 bearer tokens.")
    api_jwt_jwks_file: Path | None = Field(None, description="JWKS file of the public keys of RS256 bearer tokens.")
    api_jwt_audience: str | None = Field(None, description="Required aud claim of bearer tokens; unset = not checked.")
    api_jwt_issuer: str | None = Field(None, description="Required iss claim of bearer tokens; unset = not checked.")
    api_key_cache_s: float = Field(
        5.0, ge=0, description="An API process trusts a checked API key this long (a revoke elsewhere lags as much)."
    )
    api_rate_per_key: float = Field(200.0, gt=0, description="Requests per second one API key or token may make.")
    api_rate_per_tenant: float = Field(1000.0, gt=0, description="Requests per second one tenant may make in all.")
    api_rate_burst_s: float = Field(1.0, gt=0, description="Bucket size of the rate limits, in seconds of rate.")
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest request body the API reads.")
    api_max_batch: int = Field(1000, ge=1, description="Most events in one batch request.")
    api_webhooks: dict[str, dict[str, SecretStr]] = Field(
        default_factory=dict,
        description='JSON: source -> {"secret": ..., "type": "event.type", "tenant": "t"}; receivers at '
        "POST /v1/webhooks/{source} check the X-Circuit-Signature HMAC with the secret.",
    )
    api_webhook_tolerance_s: float = Field(300.0, gt=0, description="How old a webhook's signed timestamp may be.")

    # --- governors (issue 8) ---------------------------------------------------------------
    # Limits that stop one run or one tenant from taking the whole engine; each failure names its setting.
    governor_max_steps: int | None = Field(
        10_000, ge=1, description="Most step executions (attempts included) one run may make; unset = no cap."
    )
    governor_max_duration_s: float | None = Field(
        7 * 24 * 3600.0, gt=0, description="Longest a run may take from acceptance to end, seconds; unset = no cap."
    )
    governor_max_llm_tokens: int | None = Field(
        None, ge=1, description="Most LLM tokens (input + output, from step outputs' usage) one run may use."
    )
    governor_max_concurrent_runs: int | None = Field(
        None, ge=1, description="Most runs of one tenant under way at once (all circuits); the rest wait in order."
    )
    governor_tenant_events_per_s: float | None = Field(
        None, gt=0, description="Events per second one tenant may publish through the service layer; unset = no cap."
    )

    # --- message signing (issue 8) -----------------------------------------------------
    # Set all three to sign every task message (Celery's auth serializer: JSON inside an RSA signature)
    # and refuse unsigned ones; `circuit-os security keys --out DIR` makes a key and certificate.
    signing_key: Path | None = Field(None, description="PEM private key (RSA) that signs task messages; mode 0600.")
    signing_cert: Path | None = Field(None, description="PEM certificate of the signing key.")
    signing_cert_store: Path | None = Field(
        None, description="Folder of the PEM certificates whose signatures are trusted (each worker's and producer's)."
    )

    # --- observability (issue 9) ----------------------------------------------------------
    # Tracing is configured by the standard OTEL_* variables (off unless an exporter or endpoint is set).
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Serve Prometheus /metrics from each worker's main process; unset = off."
    )
    metrics_host: str = Field("127.0.0.1", description="Address the worker's /metrics server binds.")
    metrics_dir: Path | None = Field(
        None, description="Where each worker start makes its fresh multiprocess metrics folder; unset = system temp."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="Worker log lines: text, or one JSON object a line with run, circuit, step, action."
    )
    flower_user: str | None = Field(None, description="Basic-auth user of `circuit-os flower`.")
    flower_password: SecretStr | None = Field(None, description="Basic-auth password of `circuit-os flower`.")
    flower_address: str = Field("127.0.0.1", description="Address `circuit-os flower` binds.")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of `circuit-os flower`.")

    @field_validator("action_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @property
    def signing(self) -> bool:
        """Whether task messages are signed (all three signing settings given)."""
        return bool(self.signing_key and self.signing_cert and self.signing_cert_store)

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings; a wrong variable raises ConfigError naming it."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CIRCUIT_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"bad configuration: {problems}") from None
