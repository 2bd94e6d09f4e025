"""Service settings: every knob an environment variable with a typed default (the variables
shared with training in :mod:`models.settings`)."""

from __future__ import annotations

import json
from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from models.settings import SharedSettings

# What a key may do; a route names the one it needs (service.security). A new scope is a new
# name here and on its routes.
Scope = Literal["score", "decisions:read", "outcomes:write", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)


class ApiKey(BaseModel):
    """One key of ``LOANRISK_API_KEYS``: its name (recorded with every decision it asks for), the
    SHA-256 digest of its secret (64 hex digits; ``key`` instead gives the secret itself, which
    is discouraged) and its scopes (default: all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$")
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    key: str | None = Field(None, min_length=1)
    scopes: tuple[Scope, ...] = SCOPES  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKey:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError(f"API key {self.name!r} needs exactly one of sha256 or key")
        return self


_API_KEYS = TypeAdapter(list[ApiKey])


def parse_api_keys(value: str) -> list[ApiKey]:
    """``LOANRISK_API_KEYS`` as keys; raises :class:`ValueError` naming the entry at fault.

    A JSON array of :class:`ApiKey` objects (``[{"name": "los", "sha256": "…", "scopes":
    ["score"]}]``), or the older comma-separated secrets (``key-one,key-two``), each then a key of
    every scope named ``key-1``, ``key-2``, … in order. Empty: no keys (the service runs open).
    """
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            keys = _API_KEYS.validate_python(json.loads(text))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"LOANRISK_API_KEYS is not a valid list of keys: {exc}") from None
    else:
        secrets = [part.strip() for part in text.split(",") if part.strip()]
        keys = [ApiKey(name=f"key-{i}", key=secret) for i, secret in enumerate(secrets, 1)]
    names = [key.name for key in keys]
    if len(set(names)) != len(names):
        raise ValueError("LOANRISK_API_KEYS names must be unique")
    return keys


class Settings(SharedSettings):
    """Read from ``LOANRISK_*`` environment variables (and ``MLFLOW_TRACKING_URI``).

    The registered model's name and the tracking URI come from :class:`SharedSettings`, which
    training reads too.
    """

    # Model and registry
    model_alias: str = Field("champion", description="Registry alias to serve")
    reload_interval_s: float = Field(
        30.0, ge=0, description="Seconds between registry checks for a new champion; 0 disables"
    )
    registry_timeout_s: int = Field(
        10,
        ge=1,
        description="Timeout of one request to an http(s) tracking server; sets "
        "MLFLOW_HTTP_REQUEST_TIMEOUT unless that is set",
    )

    # A challenger scored in the shadow of the champion (docs/monitoring.md, "A challenger in
    # the shadow")
    shadow_alias: str = Field(
        "",
        description="Registry alias of a challenger scored beside the champion for every "
        "applicant, its probability and decision stored in the audit table shadow_scores; the "
        "answer stays the champion's. Empty: no shadow",
    )
    shadow_budget_ms: float = Field(
        50.0,
        gt=0,
        description="Longest one shadow pass (the challenger scoring one round of applicants) may "
        "take; a slower pass pauses the shadow for shadow_pause_s, its applicants counted",
    )
    shadow_pause_s: float = Field(
        60.0, ge=0, description="Seconds the shadow is paused after a pass over its budget"
    )

    # HTTP server
    host: str = Field("127.0.0.1", description="Bind address of `loanrisk serve`")
    port: int = Field(8000, ge=1, le=65535, description="Port of `loanrisk serve`")
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")
    access_log: bool = Field(False, description="uvicorn's own access log (plain text)")
    request_log: bool = Field(True, description="One structured JSON log line per request")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted; larger answers 413"
    )
    batch_max: int = Field(1000, ge=1, le=100_000, description="Most applicants in one batch")
    blas_threads: int = Field(
        1, ge=1, description="Threads for NumPy's matrix products; >1 only pays for huge batches"
    )
    explain_threads: int = Field(
        2,
        ge=1,
        description="Threads explaining a large batch's 128-applicant chunks side by side, "
        "the event loop's own included; 1 explains them on the event loop's thread alone",
    )
    keep_freed_memory_mb: int = Field(
        64,
        ge=0,
        le=2047,
        description="Freed memory (MB) the service keeps for reuse instead of returning it to "
        "the system (glibc's malloc thresholds), so a batch's large temporaries are not faulted "
        "in anew, per worker process; 0 leaves the C library's adaptive defaults",
    )

    # Connection limits, enforced before the app (service.limits); set tighter ones in the
    # reverse proxy in front too (README, "Reverse proxy").
    max_header_bytes: int = Field(
        16_384,
        ge=1024,
        le=1_048_576,
        description="Largest request head (request line and headers, bytes); larger answers 431",
    )
    max_headers: int = Field(
        100, ge=8, le=10_000, description="Most header lines in one request; more answers 431"
    )
    head_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds to receive a request's head, from the connection's opening or the "
        "head's first byte; then 408 and the connection closed (slow clients)",
    )
    keep_alive_timeout_s: int = Field(
        5, ge=1, le=600, description="Seconds an idle kept-alive connection stays open"
    )
    max_connections: int = Field(
        512,
        ge=1,
        description="Open connections (and requests in flight) one worker serves; a request "
        "beyond answers 503 server_busy; keep it below the open-file limit (ulimit -n)",
    )

    # Security
    api_keys: str = Field(
        "",
        description="API keys for the X-API-Key header: a JSON array of {name, sha256, scopes} "
        "(README, Authentication), or comma-separated secrets of every scope; empty runs open",
    )

    # Audit trail
    audit_db_url: str = Field(
        "sqlite:///loanrisk-audit.db",
        description="SQLAlchemy URL of the decision audit database (PostgreSQL in production)",
    )

    @field_validator("audit_db_url")
    @classmethod
    def _a_database_url(cls, url: str) -> str:
        """A SQLAlchemy URL: a bare path would otherwise fail deep inside SQLAlchemy."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except ArgumentError:
            raise ValueError(
                f"{url!r} is not a database URL: write sqlite:////absolute/path.db for a SQLite "
                "file, or postgresql+psycopg2://user@host/database"
            ) from None
        return url

    # Audit store availability (docs/reliability.md)
    audit_timeout_ms: int = Field(
        2000,
        ge=50,
        description="Deadline (ms) of every audit commit and decision read; past it the request "
        "answers 503 audit_unavailable and nothing is decided. The database's own statement, "
        "lock and busy timeouts are set to 80% of it",
    )
    audit_probe_interval_s: float = Field(
        2.0,
        ge=0,
        description="Seconds without a settled audit commit after which the store is probed "
        "(SELECT 1 through the writer), so /ready follows it without traffic; 0 disables",
    )

    # Decision policy
    score_base_points: float = Field(600.0, description="Score at the base odds")
    score_base_odds: float = Field(50.0, gt=0, description="Good:bad odds that earn base points")
    score_points_to_double_odds: float = Field(20.0, gt=0, description="Points to double the odds")
    risk_bands: str = Field(
        "A:0.05,B:0.10,C:0.20,D:0.35,E:1.0",
        description="Band:upper probability bound, ascending; the last bound must be 1.0",
    )
    approve_below: float = Field(0.15, gt=0, le=1, description="Approve when probability < this")
    decline_at: float = Field(0.35, gt=0, le=1, description="Decline when probability >= this")
    max_reasons: int = Field(4, ge=0, le=20, description="Reason codes per answer")
    reason_steps: int = Field(8, ge=1, le=256, description="Integrated-gradients steps")

    # Monitoring
    psi_window: int = Field(
        1000, ge=10, description="Recent applicants compared with training for PSI"
    )

    @model_validator(mode="after")
    def _check_policy(self) -> Settings:
        if self.approve_below > self.decline_at:
            raise ValueError("LOANRISK_APPROVE_BELOW must not exceed LOANRISK_DECLINE_AT")
        self.parsed_bands()  # raises on a malformed value
        self.api_key_list  # noqa: B018 (raises on a malformed value)
        return self

    @property
    def api_key_list(self) -> list[ApiKey]:
        """The configured keys (:func:`parse_api_keys`); empty when the service runs open."""
        return parse_api_keys(self.api_keys)

    def parsed_bands(self) -> list[tuple[str, float]]:
        """``"A:0.05,B:0.1,C:1.0"`` → ``[("A", 0.05), ("B", 0.1), ("C", 1.0)]``, validated."""
        bands: list[tuple[str, float]] = []
        for part in self.risk_bands.split(","):
            label, _, bound = part.strip().partition(":")
            try:
                bands.append((label.strip(), float(bound)))
            except ValueError:
                raise ValueError(f"LOANRISK_RISK_BANDS entry {part!r} is not LABEL:BOUND") from None
        bounds = [b for _, b in bands]
        if not bands or any(not label for label, _ in bands):
            raise ValueError("LOANRISK_RISK_BANDS needs LABEL:BOUND entries")
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[-1] != 1.0:
            raise ValueError("LOANRISK_RISK_BANDS bounds must rise strictly and end at 1.0")
        return bands
