"""One settings object for every entry point, read from OMNI_* environment variables."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.experiments.design import Experiment, checked, read_file
from service.storage.codec import as_utc

#: What an API key may be allowed to do.
SCOPES = ("events:write", "recommend", "churn:read", "profile:read", "marketing", "admin")


class ApiKey(BaseModel):
    """One API key: who holds it, what it may do, and optionally the one store it serves."""

    name: str
    scopes: list[str] = Field(default_factory=list)
    #: A key bound to a store (a store tablet) sees only that store's stock.
    store_id: str | None = None


class ContactCaps(BaseModel):
    """How often a customer may get marketing messages, counted over every channel
    together: at most `per_day` in any 24 hours and `per_week` in any 7 days, and none in
    the quiet hours (from `quiet_from` o'clock to `quiet_until` o'clock, local time)."""

    per_day: int = Field(default=1, ge=0)
    per_week: int = Field(default=3, ge=0)
    quiet_from: int | None = Field(default=21, ge=0, le=23)
    quiet_until: int | None = Field(default=8, ge=0, le=23)


class Settings(BaseSettings):
    """Where Omni keeps its state. Every field can be set as OMNI_<FIELD> or in `.env`."""

    model_config = SettingsConfigDict(env_prefix="OMNI_", env_file=".env", extra="ignore")

    #: The event store and online state: SQLite (WAL) by default, PostgreSQL by URL.
    database_url: str = "sqlite:///data/omni.db"
    #: MLflow tracking and registry (the plain ./mlruns file store is not used).
    mlflow_tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    #: Where MLflow writes artifacts.
    mlflow_artifact_root: Path = Path("mlruns/artifacts")
    #: Where `omni generate` writes the synthetic data set by default.
    data_dir: Path = Path("data/synthetic")
    #: Rows per chunk when events are written or read back.
    chunk_rows: int = 100_000
    #: Where the batch layer computes features: "embedded" (DuckDB in the command's
    #: process) or "spark" (the session at `spark_master`); `--engine` overrides it.
    batch_engine: Literal["embedded", "spark"] = "embedded"
    #: The working memory the embedded engine may hold (DuckDB's memory_limit); beyond
    #: it, it spills to `batch_spill_dir`.
    batch_memory: str = "4GB"
    #: Where the embedded engine spills (None: DuckDB's own choice beside the database).
    batch_spill_dir: Path | None = None
    #: The Spark master for `--engine spark`: local mode by default, a cluster by URL
    #: (spark://host:7077, yarn, k8s://...).
    spark_master: str = "local[2]"
    #: Driver memory of a local Spark session (a cluster's is set by the cluster).
    spark_driver_memory: str = "4g"
    #: The lake folder (`omni export events --format parquet`) Spark reads events from;
    #: None: the store's events are exported to a temporary lake first.
    lake_dir: Path | None = None
    #: API keys, as JSON: {"<key>": {"name": "...", "scopes": [...], "store_id": null}}.
    api_keys: dict[str, ApiKey] = Field(default_factory=dict)
    #: Signs tablet session and form tokens; set it in production (default: derived from
    #: the configured keys, so rotating a key ends every tablet session).
    session_secret: SecretStr | None = None
    #: A tablet stays signed in this long (a shift), unless signed out first.
    tablet_session_hours: float = Field(default=12, gt=0)
    #: Mark the tablet cookie Secure (sent over HTTPS only); None: when the request is.
    cookie_secure: bool | None = None
    #: Failed sign-ins and unknown API keys a client address may try per minute; more
    #: are answered 429 until the minute has passed (counted per worker process).
    auth_failures_per_minute: int = Field(default=20, ge=1)
    #: Tracking-API messages no mapping takes (`service.tracking`): "count" them (not
    #: stored) or "refuse" the batch.
    tracking_unmapped: Literal["count", "refuse"] = "count"
    #: Upgrade a store made by an earlier release to this release's schema when a command
    #: or the service opens it (False: refuse, naming `omni migrate`).
    auto_migrate: bool = True
    #: The registry alias the service serves.
    model_alias: str = "champion"
    #: `omni promote` refuses a version whose figure on its holdout (NDCG@10, churn AUC)
    #: is more than this share below the served version's on the same window.
    promote_margin: float = Field(default=0.05, ge=0, le=1)
    #: Seconds between checks of the registry for a new version (0: only on reload).
    reload_poll_seconds: float = 0
    #: Items precomputed per known customer when a recommender loads (0: score on demand).
    #: Above the offers' 100 candidates so that items the repeat policy leaves out still
    #: leave 100 (at 100, a third of the demo's customers were scored afresh per offer).
    warm_top_n: int = Field(default=128, ge=0)
    #: Answers (recommendations, churn) kept per model and process for persons with events
    #: since the batch answers, until their next event arrives (0: made on every ask).
    folded_answers: int = Field(default=20_000, ge=0)
    #: The service's clock for churn and fold-in ("now" when unset); set it to replay a
    #: historical data set as if it were live.
    clock: datetime | None = None
    #: How long a batch answer (a churn score) is served for a person with nothing new
    #: since it was made; older, the answer is computed afresh.
    answer_max_age_hours: float = Field(default=24, ge=0)
    #: Events older than this many days are deleted by `omni privacy retention`, with what
    #: only they held (None: kept for ever). Training reads at most this much history.
    retention_days: float | None = Field(default=None, gt=0)
    #: The largest request body taken (bytes); a larger one is a 413 before it is read.
    #: A full batch of 1,000 events is about 200 KB.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Requests a worker runs at once in its thread pool (every route that reads the
    #: database); more wait their turn on the event loop. Two: one slow query (a write
    #: waiting for a lock) leaves the other running, while more threads of Python fight
    #: over the interpreter lock and serve less (benchmarks/results/online_load.md:
    #: 1 worker, recommendations 359 req/s with 40 threads, 561 with 2). Scale with
    #: `--workers`, one process per core.
    request_threads: int = Field(default=2, ge=1)
    #: Milliseconds the event loop waits for a request's thread before going on with other
    #: requests (`service/handoff.py`): a request done by then pays no contention for the
    #: interpreter lock; a slower one holds the loop this long at most. 0: never waits.
    #: Default by database: 2 on SQLite (a request's reads take microseconds each), 0 on
    #: PostgreSQL (its round trips would hold the loop while other requests could run).
    request_grace_ms: float | None = Field(default=None, ge=0, le=50)
    #: The most events one commit holds: concurrent event requests of a worker are written
    #: together, up to this many events (a request's batch is never split; 1: each alone).
    commit_group_events: int = Field(default=1000, ge=1)
    #: Groups of events a worker writes at once. Default by database: one on SQLite (one
    #: writer at a time anyway); on PostgreSQL the request threads shared among the worker
    #: processes (`omni serve --workers` sets it): two writers in one process kept a
    #: second group going while the first committed; a process each for two workers
    #: kept them from waiting on each other's row locks (benchmarks/results/
    #: online_load.md, "pg-writers" and "pg-1w-ab-writers").
    commit_writers: int | None = Field(default=None, ge=1)
    #: Seconds a store's stock list is cached before it is read again.
    stock_ttl_seconds: float = 30

    # -- decisioning: next-best offer, triggers, contact policy --------------------------
    #: The contact policy for every outbound channel (email, push, sms) ...
    contact_caps: ContactCaps = Field(default_factory=lambda: ContactCaps())
    #: ... and where a channel differs, as JSON: {"push": {"per_day": 2, ...}}. An e-mail
    #: waits in the inbox until it is read, so e-mail has no quiet hours by default.
    channel_caps: dict[str, ContactCaps] = Field(
        default_factory=lambda: {"email": ContactCaps(quiet_from=None, quiet_until=None)}
    )
    #: The time zone quiet hours are read in (an IANA name).
    timezone: str = "UTC"
    #: Minutes after a cart's last change before it counts as abandoned, per channel.
    cart_windows_minutes: dict[str, int] = Field(
        default_factory=lambda: {"push": 60, "sms": 60, "email": 24 * 60}
    )
    #: A cart untouched for longer than this is no longer worth a message.
    cart_max_age_days: int = 7
    #: A cart line last added to longer ago than this is no longer shown as in the open
    #: cart (the profile, the tablet): a web cart left for a month is gone for the customer.
    cart_open_days: int = Field(default=30, ge=1)
    #: A next-best-offer decision stands at most this long (or until its offer ends).
    decision_days: int = 7
    #: When no offer is open to a customer where they are asked, the same ask answers
    #: "nothing" for this long without deciding again, unless an event of theirs arrives
    #: first (0: decide on every ask). A new offer or a restock reaches them within it.
    no_offer_seconds: float = Field(default=300, ge=0)
    #: Retention incentives go only to customers in these churn bands.
    retention_bands: list[str] = Field(default_factory=lambda: ["high", "lapsed"])
    #: While a customer has an open complaint, hold back sales offers (a retention offer
    #: may still go): a new next-best offer is decided only from retention offers.
    hold_offers_during_complaint: bool = True
    #: Loyalty: points per currency unit spent on purchases in any channel over the last
    #: `loyalty_window_days` (returns do not take points back), plus the customer record's
    #: `loyalty_points`; the tier is the highest whose threshold the points reach.
    loyalty_points_per_unit: float = Field(default=1.0, ge=0)
    loyalty_window_days: int = Field(default=365, ge=1)
    loyalty_tiers: dict[str, float] = Field(
        default_factory=lambda: {"bronze": 0.0, "silver": 1000.0, "gold": 3000.0}
    )

    # -- proof: experiments, holdouts, attribution, learned take rates -------------------
    #: Experiments, as JSON (a list; see service.experiments.design) ...
    experiments: list[Experiment] = Field(default_factory=list)
    #: ... and from a JSON or TOML file, added to them.
    experiments_file: Path | None = None
    #: The global control group: this share of customers (stable, by a hash of their
    #: person id) gets no offer and no trigger from any channel, and is recorded as held
    #: out when they would have been contacted (0: no control group).
    holdout_share: float = Field(default=0.0, ge=0, le=0.5)
    #: Changing it draws a new control group.
    holdout_salt: str = "omni-global-holdout"
    #: A purchase this many days after an exposure is attributed to it.
    attribution_days: float = Field(default=7, gt=0)
    #: Learned take rates: an offer kind's (or one offer's) rate from its outcomes is used
    #: once it has this many ...
    take_rate_min_outcomes: int = Field(default=30, ge=1)
    #: ... shrunk toward the prior as if the prior had been seen this many times.
    take_rate_prior_weight: float = Field(default=20, ge=0)
    #: Seconds the learned take rates are kept before they are read again.
    take_rate_ttl_seconds: float = Field(default=300, ge=0)

    @model_validator(mode="after")
    def _read_experiments(self) -> Self:
        if self.experiments_file is not None:
            self.experiments = [*self.experiments, *read_file(self.experiments_file)]
            self.experiments_file = None  # read once: a copy of these settings keeps them
        checked(self.experiments)
        return self

    def now(self) -> datetime:
        """The service's clock: `clock` when set (read as UTC without an offset), else now."""
        if self.clock is None:
            return datetime.now(UTC)
        return as_utc(self.clock)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests override them rather than patching the environment."""
    return Settings()
