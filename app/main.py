"""The application factory: ``create_app()`` wires settings, database, ruleset and routers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
from app.clock import Clock
from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.errors import Conflict, install_error_handlers
from app.logs import configure_logging
from app.middleware import RequestContextMiddleware
from app.migrate import head_revision
from app.responses import errors_for
from app.routers import (
    audit,
    cases,
    directory,
    fhir,
    health,
    me,
    notifications,
    oruk,
    persons,
    queues,
    referrals,
    reports,
    ruleset_replay,
    rulesets,
    self_referrals,
    signposting,
)
from app.security import ApiKeyVerifier, StaffTokenVerifier
from app.services.notifications import MessagePolicy
from app.services.rulesets import LiveRuleset, bootstrap
from app.signposting import load_signposting
from app.triage import Ruleset, load_ruleset
from app.triage.ruleset import DEFAULT_RULESET_PATH
from app.web import install as install_web
from app.worker import DeliveryWorker, run_in_process

log = structlog.get_logger(__name__)


def freeze_startup_heap() -> None:
    """Collect once, then exempt everything start-up built from the cyclic garbage collector.

    The modules, mappers, routes, schemas and the ruleset live as long as the process, yet every
    full collection would walk them all, a pause that shows in the slowest requests (measured in
    bench/RESULTS.md). Frozen, a full collection walks only what requests made. Objects are
    freed by reference counting as before; only a frozen object in a reference cycle would never
    be freed, and these live for the process anyway.
    """
    gc.collect()
    gc.freeze()


async def _bootstrap_ruleset(app: FastAPI, configured: Ruleset, text: str) -> Ruleset:
    """Store the configured file and find the version to serve (``rulesets.bootstrap``).

    Replicas starting together on a new database race to write the first activation; the loser
    sees the winner's on its second attempt.
    """
    for attempt in (1, 2):
        async with app.state.session_factory() as session:
            try:
                active = await bootstrap(session, configured, text, app.state.clock.now())
                await session.commit()
                return active
            except Conflict:
                await session.rollback()
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """Build the ASGI app. The engine is created at start-up (lifespan), not at import."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    # An invalid ruleset stops the service here, with the bad key named. The file is stored in
    # the database at start-up; which stored version is live is the database's answer
    # (app/services/rulesets.py, docs/domain/changing-rules.md).
    ruleset = load_ruleset(settings.ruleset_path)
    ruleset_text = (settings.ruleset_path or DEFAULT_RULESET_PATH).read_text(encoding="utf-8")
    # So does an invalid signposting directory (docs/domain/signposting-and-messages.md).
    signposting_directory = load_signposting(settings.signposting_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Tests may hand in their own engine and session factory; we dispose only our own.
        owned = getattr(app.state, "engine", None) is None
        engine = create_engine(settings) if owned else app.state.engine
        app.state.engine = engine
        if getattr(app.state, "session_factory", None) is None:
            app.state.session_factory = create_session_factory(engine)
        active = await _bootstrap_ruleset(app, ruleset, ruleset_text)
        app.state.live_ruleset.serve(active)
        app.state.ruleset = active
        log.info(
            "startup",
            ruleset_version=active.version,
            configured_ruleset_version=ruleset.version,
            database=engine.dialect.name,
        )
        if owned:
            freeze_startup_heap()
        # The embedded default delivers its own messages (to the local sink without a Notify
        # key); a PostgreSQL deployment runs `frontdoor worker` (app/worker.py).
        stop = asyncio.Event()
        delivery = (
            asyncio.create_task(
                DeliveryWorker(app.state.session_factory, settings, clock=app.state.clock).run(
                    stop
                ),
                name="delivery-worker",
            )
            if run_in_process(settings)
            else None
        )
        try:
            yield
        finally:
            if delivery is not None:
                stop.set()
                await delivery
            if owned:
                await engine.dispose()

    app = FastAPI(
        title="Front Door",
        version=__version__,
        summary="Single point of access for children and young people's mental health services",
        lifespan=lifespan,
        docs_url=None if settings.is_production else "/docs",
        redoc_url=None,
        # Any endpoint can meet a database outage: 503 with Retry-After (docs/hazard-log.md H8).
        responses=errors_for(500, 503),
    )
    app.state.settings = settings
    # The ruleset served until start-up has asked the database; requests use RulesetDep.
    app.state.ruleset = ruleset
    app.state.signposting = signposting_directory
    app.state.message_policy = MessagePolicy.from_settings(settings)
    app.state.clock = clock or Clock()
    app.state.live_ruleset = LiveRuleset(
        ruleset,
        settings.ruleset_check_seconds,
        seconds_now=lambda: float(app.state.clock.now().timestamp()),
    )
    app.state.token_verifier = StaffTokenVerifier(settings)
    app.state.api_key_verifier = ApiKeyVerifier()
    app.state.migration_head = head_revision()

    install_error_handlers(app)
    for module in (health, referrals, self_referrals, persons, directory, audit, queues, cases, me):
        app.include_router(module.router)
    for module in (signposting, oruk, notifications):
        app.include_router(module.router)
    # Stored rulesets: publish, list, activate (after directory's /v1/rulesets/current).
    app.include_router(rulesets.router)
    # What-if replay of a stored candidate over past referrals (admins): docs/domain/rule-replay.md.
    app.include_router(ruleset_replay.router)
    # Aggregate reports (team leads, commissioners, admins): docs/domain/reporting.md.
    app.include_router(reports.router)
    # FHIR R4 for referring clinical systems; its errors are OperationOutcomes.
    app.include_router(fhir.router)
    # The public self-referral form, the call-handler console and their static files.
    install_web(app)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "X-API-Key",
            ],
        )
    # The ORUK feed is open to any origin, as the standard requires (public data only).
    app.add_middleware(oruk.OpenCorsMiddleware)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hsts=settings.is_production,
    )
    return app
