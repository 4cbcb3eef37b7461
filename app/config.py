"""Settings: one object, read from the environment (prefix ``FRONTDOOR_``; ``DATABASE_URL`` too)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The embedded default: a SQLite file under ./var, created and migrated on first run.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/frontdoor.db"
# Local-use secret for signing staff tokens; production mode refuses to start with it.
INSECURE_DEV_JWT_SECRET = "frontdoor-dev-only-insecure-secret-change-me"  # noqa: S105


def normalise_database_url(url: str) -> str:
    """Pick the async driver for plain URLs: postgresql:// → asyncpg, sqlite:// → aiosqlite."""
    for plain, async_form in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_form + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """Every setting the service reads. Defaults are the embedded, local-use ones."""

    model_config = SettingsConfigDict(
        env_prefix="FRONTDOOR_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "FRONTDOOR_DATABASE_URL"),
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Nothing waits on the database for ever (a stopped, frozen or failing-over server answers
    # 503 with Retry-After within these bounds): opening a connection; one statement (enforced
    # by PostgreSQL as statement_timeout, and by the client a little later in case the server
    # does not answer at all; on SQLite, the wait for the write lock); and waiting for a free
    # connection from the pool. Against a server that stops answering, a request ends within
    # the statement timeout + about 3 s (the client's margin and closing the broken connection).
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    database_statement_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    sql_echo: bool = False
    # A deployment's own ruleset file; None uses the packaged default (Norfolk & Waveney).
    ruleset_path: Path | None = None
    # How often each process asks the database which ruleset version is active (at most once
    # per this many seconds; 0 checks on every request). docs/domain/changing-rules.md
    ruleset_check_seconds: float = Field(default=2.0, ge=0, le=300)
    # A deployment's own signposting directory (HSDS 3 shaped YAML); None uses the packaged
    # default (app/rulesets/signposting.yaml, illustrative local entries).
    signposting_path: Path | None = None

    # Staff tokens: HS256 with a shared secret (embedded default) or RS256 via a JWKS URL.
    jwt_secret: SecretStr = SecretStr(INSECURE_DEV_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "frontdoor-local"
    jwt_audience: str = "frontdoor"
    # Signs the web pages' CSRF tokens and confirmation cookies. Unset: derived from the JWT
    # secret (fine with HS256); required in production with RS256, where that secret is unused.
    web_secret: SecretStr | None = None
    jwt_lifetime_minutes: int = Field(default=8 * 60, ge=1, le=24 * 60)
    # The longest-lived staff token accepted (exp - iat; exp - now without iat): longer ones are
    # a 401, and ``frontdoor token`` refuses to mint them.
    jwt_max_lifetime_hours: int = Field(default=12, ge=1, le=7 * 24)
    # Tolerated clock difference with the identity provider when checking exp/nbf/iat.
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # The organisation staff act for, recorded in the audit trail (a token's ``org`` claim wins).
    service_ods_code: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,10}$")
    # The MHSDS extract (docs/domain/mhsds-extract.md): the provider's ODS code (OrgIDProvider;
    # FRONTDOOR_SERVICE_ODS_CODE when unset), and the key of the HMAC-SHA256 that turns a person
    # id into LocalPatientID. The key is required to export in production; elsewhere it is
    # derived from the JWT secret (stable for one local database, never a production key).
    provider_ods: str | None = Field(default=None, pattern=r"^[A-Z0-9]{3,10}$")
    mhsds_pseudonym_key: SecretStr | None = None

    # The public self-referral form (see app/ratelimit.py): per client address and overall, per
    # fixed minute, counted in the database so every worker process and replica shares them.
    self_referral_per_address_per_minute: int = Field(default=10, ge=1, le=10_000)
    self_referral_overall_per_minute: int = Field(default=300, ge=1, le=100_000)
    # How many reverse proxies in front of the service append to X-Forwarded-For. 0 (default):
    # the header is ignored and the TCP peer is the client address (the header is client-set).
    forwarded_for_trusted_hops: int = Field(default=0, ge=0, le=5)

    # Idempotency keys are kept this long; a retry after that creates a new referral.
    idempotency_key_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    # Largest request body accepted on any endpoint (bytes).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)

    # Messages (docs/domain/signposting-and-messages.md). Without a GOV.UK Notify API key every
    # message goes to the local sink (stored, shown to admins, sent nowhere). A Notify *test*
    # key uses the real client and Notify simulates delivery.
    notify_api_key: SecretStr | None = None
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    # Notify template ids by "<kind>_<channel>" (acknowledgement_email, acknowledgement_sms,
    # referrer_outcome_email, breach_warning_email); each template shows ((subject)) and
    # ((body)). A message whose template is not configured is recorded as not sent.
    notify_templates: dict[str, str] = Field(default_factory=dict)
    # Each queue's team address for breach warnings, by queue id.
    queue_contact_emails: dict[str, str] = Field(default_factory=dict)
    # How long before a case's respond-by time its team is warned.
    breach_warning_lead_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    # Retries on 429/5xx: up to this many attempts, waiting base * 2^(n-1) seconds (capped).
    notify_max_attempts: int = Field(default=6, ge=1, le=50)
    notify_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    notify_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86400)
    # How often the worker looks for due messages, and how long its claim on one lasts.
    worker_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    worker_claim_seconds: float = Field(default=120.0, gt=0, le=3600)
    # Run the delivery worker inside `frontdoor serve`: None (default) means on the embedded
    # SQLite default only; a deployment on PostgreSQL runs `frontdoor worker` instead.
    run_worker_in_process: bool | None = None
    # Disclosure control on the reports a commissioner reads (docs/domain/reporting.md): a
    # count from 1 to report_suppress_below - 1 is suppressed (0 is shown; 1 turns it off), and
    # every other count is rounded to the nearest report_round_to (1 turns rounding off).
    report_suppress_below: int = Field(default=8, ge=1, le=1000)
    report_round_to: int = Field(default=5, ge=1, le=100)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    cors_allow_origins: list[str] = Field(default_factory=list)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @model_validator(mode="after")
    def _rs256_needs_jwks(self) -> Settings:
        # Without a JWKS URL there is no public key to check RS256 signatures against.
        if self.jwt_algorithm == "RS256" and not self.jwt_jwks_url:
            raise ValueError(
                "FRONTDOOR_JWT_JWKS_URL is required with FRONTDOOR_JWT_ALGORITHM=RS256"
            )
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if "*" in self.cors_allow_origins:
            problems.append("FRONTDOOR_CORS_ALLOW_ORIGINS must list origins, not '*'")
        if self.jwt_algorithm == "HS256":
            secret = self.jwt_secret.get_secret_value()
            if secret == INSECURE_DEV_JWT_SECRET or len(secret) < 32:
                problems.append(
                    "FRONTDOOR_JWT_SECRET must be set to a secret of at least 32 characters"
                )
        else:
            if not (self.jwt_jwks_url or "").startswith("https://"):
                problems.append("FRONTDOOR_JWT_JWKS_URL must be an https:// URL in production")
            if self.web_secret is None:
                problems.append("FRONTDOOR_WEB_SECRET is required in production with RS256")
        if self.web_secret is not None and len(self.web_secret.get_secret_value()) < 32:
            problems.append("FRONTDOOR_WEB_SECRET must be at least 32 characters")
        key = self.mhsds_pseudonym_key
        if key is not None and len(key.get_secret_value()) < 32:
            problems.append("FRONTDOOR_MHSDS_PSEUDONYM_KEY must be at least 32 characters")
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("DATABASE_URL must be set explicitly in production")
        if self.sql_echo:
            problems.append(
                "FRONTDOOR_SQL_ECHO must be off in production (it would log patient data)"
            )
        if problems:
            raise ValueError("insecure production settings: " + "; ".join(problems))
        return self

    @property
    def signing_secret(self) -> SecretStr:
        """The key behind the web pages' signed tokens and cookies."""
        return self.web_secret or self.jwt_secret

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
