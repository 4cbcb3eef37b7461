"""A what-if for the intake benchmark: Front Door's intake rows written in ONE SQL statement.

Not the service: a measuring stick between the bare baseline and Front Door. It does what
Front Door's intake does on its common paths, with the same validation, authentication (staff
JWT; API key looked up per request, argon2 cached), triage engine and response shape, and
writes the same rows (person, case, referral, triage decision, case event, idempotency key,
audit events) with one multi-CTE statement through asyncpg, autocommitted: one round trip
instead of ~10, and no ORM. It simplifies what Front Door must not: people without an NHS
number are always recorded new (no demographic matching), a further referral joins the open
case without raising its urgency, a replayed Idempotency-Key is refused (409) rather than
answered, and a lost race on a new NHS number is a 409 instead of a retry.

    python bench/floor_app.py --dsn postgresql://postgres@127.0.0.1:5432/frontdoor_bench_intake \\
        --port 8104

Served like `frontdoor serve` (uvicorn, uvloop/httptools, no access log). Reads
FRONTDOOR_JWT_SECRET like the service.
"""

from __future__ import annotations

if __package__ in (None, ""):  # run as a script: make ``app`` and ``bench`` importable
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Body, FastAPI, Header, Request, Response

from app.config import Settings
from app.errors import FrontDoorError, install_error_handlers
from app.schemas.referral import ReferralCreate
from app.security import Actor, StaffTokenVerifier, _argon2_matches
from app.services.intake import facts_from, facts_snapshot, new_reference, request_fingerprint
from app.services.persons import name_key
from app.triage import evaluate, load_ruleset
from app.triage.decision import URGENCY_RANK, RouteKind
from app.triage.postcodes import postcode_district

DSN_ENV = "BENCH_FLOOR_DSN"
POOL_MAX_SIZE = 20
IDEMPOTENCY_TTL = timedelta(hours=72)

# One statement: find or insert the person, open or join the case, insert the referral, its
# decision, the case event, the idempotency key and three audit events.
INTAKE_SQL = """
WITH found AS (
    SELECT id FROM persons WHERE $2::varchar IS NOT NULL AND nhs_number = $2::varchar LIMIT 1
), ins_person AS (
    INSERT INTO persons (id, nhs_number, given_name, family_name, given_name_key,
        family_name_key, date_of_birth, postcode, postcode_district, phone, email, send,
        looked_after, created_at, updated_at)
    SELECT $1::uuid, $2::varchar, $3::varchar, $4::varchar, $5::varchar, $6::varchar,
        $7::date, $8::varchar, $9::varchar, $10::varchar, $11::varchar, $12::bool, $13::bool,
        $14::timestamptz, $14::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM found)
    ON CONFLICT (nhs_number) DO NOTHING
    RETURNING id
), person AS (
    SELECT id FROM ins_person UNION ALL SELECT id FROM found LIMIT 1
), open_case AS (
    SELECT c.id FROM cases c JOIN found f ON c.person_id = f.id WHERE c.status <> 'closed'
), ins_case AS (
    INSERT INTO cases (id, person_id, queue_id, status, urgency_code, urgency_rank,
        received_at, respond_by_at, thrive_grouping_proposed, version, created_at, updated_at)
    SELECT $15::uuid, person.id, $16::varchar, 'waiting', $17::varchar, $18::int,
        $14::timestamptz, $19::timestamptz, $20::varchar, 1, $14::timestamptz,
        $14::timestamptz
    FROM person
    WHERE $16::varchar IS NOT NULL AND NOT EXISTS (SELECT 1 FROM open_case)
    RETURNING id
), the_case AS (
    SELECT id, 'case_opened' AS disposition FROM ins_case
    UNION ALL SELECT id, 'joined_case' FROM open_case
), ins_referral AS (
    INSERT INTO referrals (id, reference, person_id, case_id, channel, site_id, referrer_type,
        request, received_at, disposition, submitted_by_kind, submitted_by_id,
        submitted_by_client_id, raw_payload, normalised, reason, created_at)
    SELECT $21::uuid, $22::varchar, person.id, (SELECT id FROM the_case), $23::varchar,
        $24::varchar, $25::varchar, $26::varchar, $14::timestamptz,
        coalesce((SELECT disposition FROM the_case), 'signposted'), $27::varchar,
        $28::varchar, $29::uuid, $30::jsonb, $31::jsonb, $32::text, $14::timestamptz
    FROM person
    RETURNING id, case_id, disposition
), ins_decision AS (
    INSERT INTO triage_decisions (id, referral_id, ruleset_version, input_snapshot, output,
        eligibility_outcome, urgency_code, thrive_grouping, route_kind, queue_id,
        respond_by_at, decided_at)
    SELECT $33::uuid, r.id, $34::varchar, $35::jsonb, $36::jsonb, $37::varchar,
        $17::varchar, $20::varchar, $38::varchar, $16::varchar, $19::timestamptz,
        $14::timestamptz
    FROM ins_referral r
), ins_event AS (
    INSERT INTO case_events (id, case_id, seq, type, actor_kind, from_status, to_status,
        reason, data, created_at)
    SELECT $39::uuid, c.id,
        coalesce((SELECT max(seq) FROM case_events WHERE case_id = c.id), 0) + 1,
        CASE c.disposition WHEN 'case_opened' THEN 'case_opened' ELSE 'referral_joined' END,
        'system', NULL, 'waiting', 'Referral received', $40::jsonb, $14::timestamptz
    FROM the_case c
), ins_key AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, referral_id, created_at,
        expires_at)
    SELECT $41::varchar, $42::varchar, $43::varchar, $21::uuid, $14::timestamptz,
        $44::timestamptz
    WHERE $42::varchar IS NOT NULL
), ins_audit AS (
    INSERT INTO audit_events (id, occurred_at, request_id, actor_kind, actor_id, actor_role,
        actor_organisation, action, resource_type, resource_id, person_id, outcome, details)
    SELECT a.id, $14::timestamptz, NULL, $27::varchar, $28::varchar, $45::varchar,
        $46::varchar, 'create', a.resource_type, a.resource_id, person.id, 'success',
        a.details
    FROM person, (VALUES ($47::uuid, 'referral', $50::varchar, $48::jsonb),
                         ($49::uuid, 'person', NULL, '{}'::jsonb)) AS a(id, resource_type,
                                                                    resource_id, details)
)
SELECT (SELECT id FROM person) AS person_id, r.case_id, r.disposition
FROM ins_referral r
"""


class Conflict(FrontDoorError):
    status_code = 409
    type = "conflict"
    title = "Conflict"


def create_app() -> FastAPI:
    """The floor ASGI app; reads its plain ``postgresql://`` DSN from BENCH_FLOOR_DSN."""
    dsn = os.environ[DSN_ENV]
    settings = Settings(database_url=dsn)
    ruleset = load_ruleset(settings.ruleset_path)
    verifier = StaffTokenVerifier(settings)
    verified_keys: dict[str, float] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from bench.generate_data import _sync_directory

        await _sync_directory(settings)  # queues and ruleset rows, as the service's start-up
        app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=POOL_MAX_SIZE)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="Front Door intake floor", lifespan=lifespan)
    install_error_handlers(app)

    async def authenticate(pool: Any, authorization: str | None, api_key: str | None) -> Actor:
        if authorization and authorization.startswith("Bearer "):
            return verifier.verify(authorization[7:])
        if not api_key or api_key.count("_") < 2:
            raise Conflict("no credentials")
        row = await pool.fetchrow(
            "SELECT id, name, ods_code, key_hash, revoked_at FROM api_clients "
            "WHERE key_prefix = $1",
            api_key.split("_", 2)[1],
        )
        if row is None or row["revoked_at"] is not None:
            raise Conflict("bad key")
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        if time.monotonic() - verified_keys.get(digest, -1e9) > 300:
            if not _argon2_matches(row["key_hash"], api_key):
                raise Conflict("bad key")
            verified_keys[digest] = time.monotonic()
        return Actor(
            kind="system",
            id=f"client:{row['id']}",
            name=row["name"],
            client_id=row["id"],
            ods_code=row["ods_code"],
        )

    @app.post("/v1/referrals", status_code=201)
    async def create_referral(
        request: Request,
        body: Annotated[ReferralCreate, Body()],
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        pool = request.app.state.pool
        actor = await authenticate(pool, authorization, x_api_key)
        now = datetime.now(UTC)
        facts = facts_from(body, now)
        decision = evaluate(facts, ruleset)
        who = body.person
        referral_id = uuid.uuid4()
        reference = new_reference()
        open_case = decision.route.kind is not RouteKind.SIGNPOST and decision.route.queue_id
        output = decision.to_dict()
        row = await pool.fetchrow(
            INTAKE_SQL,
            uuid.uuid4(),
            who.nhs_number,
            who.given_name,
            who.family_name,
            name_key(who.given_name),
            name_key(who.family_name),
            who.date_of_birth,
            who.postcode,
            postcode_district(who.postcode) if who.postcode else None,
            who.phone,
            who.email,
            who.send,
            who.looked_after,
            now,
            uuid.uuid4(),
            decision.route.queue_id if open_case else None,
            decision.urgency.code.value,
            URGENCY_RANK[decision.urgency.code],
            decision.urgency.respond_by_at,
            decision.thrive_grouping.value,
            referral_id,
            reference,
            facts.channel.value,
            facts.site_id,
            facts.referrer_type.value,
            facts.request.value,
            actor.kind,
            actor.id,
            actor.client_id,
            (await request.body()).decode(),
            orjson.dumps(body.model_dump(mode="json")).decode(),
            body.reason,
            uuid.uuid4(),
            decision.ruleset_version,
            orjson.dumps(facts_snapshot(facts)).decode(),
            orjson.dumps(output).decode(),
            decision.eligibility.outcome.value,
            decision.route.kind.value,
            uuid.uuid4(),
            orjson.dumps({"referral_id": str(referral_id)}).decode(),
            actor.idempotency_scope,
            idempotency_key,
            request_fingerprint(body) if idempotency_key else None,
            now + IDEMPOTENCY_TTL,
            actor.role,
            actor.ods_code,
            uuid.uuid4(),
            orjson.dumps({"channel": facts.channel.value}).decode(),
            uuid.uuid4(),
            str(referral_id),
        )
        if row is None:
            raise Conflict("a concurrent referral recorded this NHS number first")
        response = {
            "id": str(referral_id),
            "reference": reference,
            "person_id": str(row["person_id"]),
            "channel": facts.channel.value,
            "received_at": now.isoformat(),
            "status": "signposted" if row["case_id"] is None else "waiting",
            "decision": output,
            "case_id": str(row["case_id"]) if row["case_id"] else None,
        }
        return Response(orjson.dumps(response), status_code=201, media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", required=True, help="plain postgresql:// DSN")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8104)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    import uvicorn

    os.environ[DSN_ENV] = args.dsn
    uvicorn.run(
        "bench.floor_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
