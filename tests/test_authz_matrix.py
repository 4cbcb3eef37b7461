"""Who may call what: every /v1 route, called as every role and as another organisation.

The table below classifies every route of the real app. A route added later without a row here
fails ``test_every_v1_route_is_classified``, so access is decided on purpose, never by default.

For each route the test builds one world (a system referral routed to a Community Base queue
and allocated to a key worker in another team, with a supporting worker; and a crisis case),
then calls the route as each caller below. A caller the policy refuses must get 403 or 404 and
a body with no person data in it; a caller it admits must get past authorisation (2xx for reads;
for actions, anything but 401/403/404, since the case's state may still say 409).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from app.config import Settings
from app.main import create_app
from app.models import Case, Notification
from app.security import Role
from app.triage import load_ruleset
from tests.conftest import TEST_JWT_SECRET
from tests.factories import referral_body, valid_test_nhs_numbers

TEAM_QUEUE = "cb-norwich"
OTHER_QUEUE = "cb-lowestoft"
KEY_WORKER = "user-keyworker"
SUPPORTER = "user-supporter"
NHS, CRISIS_NHS = valid_test_nhs_numbers(2, start=900)
PERSON = {
    "given_name": "Quinn",
    "family_name": "Matrixperson",
    "postcode": "NR2 4AA",
}


# The callers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    name: str
    role: str | None = None  # staff role; None for a system or the public
    queues: tuple[str, ...] = ()
    subject: str | None = None
    system: str | None = None  # "submitter" | "other_org"

    @property
    def is_staff(self) -> bool:
        return self.role is not None


CALLERS = [
    Caller("call_handler", Role.CALL_HANDLER, (TEAM_QUEUE,)),
    Caller("practitioner_other_team", Role.PRACTITIONER, (OTHER_QUEUE,)),
    Caller("practitioner_in_team", Role.PRACTITIONER, (TEAM_QUEUE,)),
    Caller("key_worker", Role.PRACTITIONER, (OTHER_QUEUE,), subject=KEY_WORKER),
    Caller("supporting_worker", Role.PRACTITIONER, (OTHER_QUEUE,), subject=SUPPORTER),
    Caller("duty_clinician", Role.DUTY_CLINICIAN),
    Caller("team_lead_other_queue", Role.TEAM_LEAD, (OTHER_QUEUE,)),
    Caller("team_lead_of_queue", Role.TEAM_LEAD, (TEAM_QUEUE,)),
    Caller("admin", Role.ADMIN),
    # Aggregate reports only: every route that shows anything about a person refuses it.
    Caller("commissioner", Role.COMMISSIONER),
    Caller("system_submitter", system="submitter"),
    Caller("system_other_org", system="other_org"),
]
# Staff who may see person-level records: everyone but the commissioner.
STAFF = frozenset(c.name for c in CALLERS if c.is_staff and c.role != Role.COMMISSIONER)
REPORT_READERS = frozenset({"team_lead_other_queue", "team_lead_of_queue", "admin", "commissioner"})
CASE_READERS = frozenset(
    {"practitioner_in_team", "key_worker", "supporting_worker", "team_lead_of_queue", "admin"}
)
CASE_ACTORS = frozenset({"key_worker", "team_lead_of_queue", "admin"})
QUEUE_MANAGERS = frozenset({"team_lead_of_queue", "admin"})


# The world each route is called in ------------------------------------------------------------


@dataclass
class World:
    referral_id: str
    person_id: str
    case_id: str
    crisis_case_id: str
    supporter_id: str
    now_iso: str = ""
    notification_id: str = ""
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


# The table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Who the policy admits to a route.

    ``allowed`` is the set of callers admitted, or "public"; ``refused`` lists callers that may
    be refused with 403 *or* 404 (a readable-but-not-actionable case is 403, an unreadable one
    404). ``action`` marks writes: admitted callers may still meet 409/412/422 from the state.
    """

    allowed: frozenset[str] | str
    action: bool = False
    body: Callable[[Caller, World], Any] | None = None
    params: Callable[[World], dict[str, str]] | None = None
    path: Callable[[World], dict[str, str]] | None = None
    needs_if_match: bool = False


def _referral_body(caller: Caller, world: World) -> dict[str, Any]:
    if caller.system:
        return referral_body("system")
    return referral_body("phone")


def _case_path(world: World) -> dict[str, str]:
    return {"case_id": world.case_id, "supporter_id": world.supporter_id}


def _case_action(body: dict[str, Any], allowed: frozenset[str] = CASE_ACTORS) -> Access:
    return Access(
        allowed=allowed,
        action=True,
        body=lambda caller, world: body,
        path=_case_path,
        needs_if_match=True,
    )


PUBLIC = "public"
ROUTES: dict[tuple[str, str], Access] = {
    ("POST", "/v1/self-referrals"): Access(
        PUBLIC, action=True, body=lambda c, w: {"referrer": {"type": "self"}}
    ),
    ("GET", "/v1/services"): Access(PUBLIC),
    ("GET", "/v1/signposting"): Access(PUBLIC, params=lambda w: {"age": 20, "postcode": "NR1"}),
    ("GET", "/v1/notifications"): Access(
        frozenset({"admin"}), params=lambda w: {"referral_id": w.referral_id}
    ),
    ("POST", "/v1/notifications/{notification_id}/retry"): Access(
        frozenset({"admin"}),
        action=True,
        path=lambda w: {"notification_id": w.notification_id},
    ),
    ("POST", "/v1/notifications/{notification_id}/cancel"): Access(
        frozenset({"admin"}),
        action=True,
        path=lambda w: {"notification_id": w.notification_id},
    ),
    ("POST", "/v1/referrals"): Access(
        STAFF | {"system_submitter", "system_other_org"}, action=True, body=_referral_body
    ),
    ("POST", "/v1/triage/evaluate"): Access(STAFF, body=lambda c, w: referral_body("phone")),
    ("GET", "/v1/referrals/{referral_id}"): Access(
        STAFF | {"system_submitter"}, path=lambda w: {"referral_id": w.referral_id}
    ),
    ("GET", "/v1/referrals"): Access(STAFF, params=lambda w: {"reference": "FD-0000-0000"}),
    ("POST", "/v1/referrals/{referral_id}/person-link"): Access(
        STAFF,
        action=True,
        body=lambda c, w: {"decision": "reject"},
        path=lambda w: {"referral_id": w.referral_id},
    ),
    ("GET", "/v1/persons"): Access(STAFF, params=lambda w: {"nhs_number": NHS}),
    ("GET", "/v1/rulesets/current"): Access(STAFF),
    # Stored rulesets (docs/domain/changing-rules.md): admins only. The world's app stored and
    # activated the packaged default; re-activating it is a no-op, and the JSON body the matrix
    # sends to the YAML endpoint is an admitted 415.
    ("GET", "/v1/rulesets"): Access(frozenset({"admin"})),
    ("POST", "/v1/rulesets"): Access(frozenset({"admin"}), action=True),
    ("GET", "/v1/rulesets/{version}"): Access(
        frozenset({"admin"}), path=lambda w: {"version": load_ruleset().version}
    ),
    ("POST", "/v1/rulesets/{version}/activate"): Access(
        frozenset({"admin"}), action=True, path=lambda w: {"version": load_ruleset().version}
    ),
    # What-if replay (docs/domain/rule-replay.md): admins only; reads, and audits the run.
    ("POST", "/v1/rulesets/replay"): Access(
        frozenset({"admin"}),
        action=True,
        body=lambda c, w: {"candidate_version": load_ruleset().version},
    ),
    ("GET", "/v1/audit"): Access(frozenset({"admin"}), params=lambda w: {"person_id": w.person_id}),
    ("GET", "/v1/queues"): Access(STAFF),
    ("GET", "/v1/queues/{queue_id}/cases"): Access(
        frozenset({"practitioner_in_team", "team_lead_of_queue", "admin"}),
        path=lambda w: {"queue_id": TEAM_QUEUE},
    ),
    ("POST", "/v1/queues/{queue_id}/claim"): Access(
        frozenset({"practitioner_in_team", "team_lead_of_queue"}),
        action=True,
        path=lambda w: {"queue_id": TEAM_QUEUE},
    ),
    ("GET", "/v1/cases/{case_id}"): Access(CASE_READERS, path=_case_path),
    ("GET", "/v1/cases/{case_id}/events"): Access(CASE_READERS, path=_case_path),
    ("POST", "/v1/cases/{case_id}/allocate"): _case_action(
        {"key_worker_id": "user-someone"}, QUEUE_MANAGERS
    ),
    ("POST", "/v1/cases/{case_id}/contact"): _case_action({"contact_type": "assessment"}),
    ("POST", "/v1/cases/{case_id}/start"): _case_action({}),
    ("POST", "/v1/cases/{case_id}/hold"): _case_action({"reason": "on_request"}),
    ("POST", "/v1/cases/{case_id}/resume"): _case_action({}),
    ("POST", "/v1/cases/{case_id}/close"): _case_action({"outcome": "declined"}),
    ("POST", "/v1/cases/{case_id}/thrive"): _case_action({"thrive_grouping": "getting_help"}),
    ("POST", "/v1/cases/{case_id}/supporters"): _case_action(
        {"kind": "worker", "worker_id": "user-new-supporter"}
    ),
    ("POST", "/v1/cases/{case_id}/supporters/{supporter_id}/remove"): _case_action({}),
    # Working a case (docs/domain/after-the-door.md). The world's case is not awaiting review,
    # so admitted reviewers meet a 409; a duty clinician cannot read a Community Base case.
    ("GET", "/v1/cases/{case_id}/contacts"): Access(CASE_READERS, path=_case_path),
    ("POST", "/v1/cases/{case_id}/contacts"): Access(
        CASE_ACTORS | {"supporting_worker"},
        action=True,
        body=lambda caller, world: {
            "occurred_at": world.now_iso,
            "mechanism": "telephone",
            "attendance": "did_not_attend",
            "with": "young_person",
        },
        path=_case_path,
        needs_if_match=True,
    ),
    ("POST", "/v1/cases/{case_id}/review"): _case_action(
        {"outcome": "signpost", "reason": "x"}, QUEUE_MANAGERS
    ),
    ("POST", "/v1/cases/{case_id}/urgency"): _case_action({"code": "D", "reason": "x"}),
    ("POST", "/v1/cases/{case_id}/transfer"): _case_action(
        {"queue_id": OTHER_QUEUE, "reason": "x"}, QUEUE_MANAGERS
    ),
    ("GET", "/v1/me/cases"): Access(STAFF - {"call_handler"}),
    # Aggregate reports (docs/domain/reporting.md): team leads (their queues), admins and
    # commissioners; nothing person-level in them, so a refusal or a report is the same check.
    ("GET", "/v1/reports/referrals"): Access(REPORT_READERS),
    ("GET", "/v1/reports/waits"): Access(REPORT_READERS),
    ("GET", "/v1/reports/waiting-list"): Access(REPORT_READERS),
    ("GET", "/v1/reports/triage-agreement"): Access(REPORT_READERS),
    ("GET", "/v1/reports/access"): Access(REPORT_READERS),
}


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every API route the app serves, hidden ones included."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before routers were included lazily: routes are flat
        contexts: Any = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    found = set()
    for context in contexts:
        original = getattr(context, "original_route", context)
        if isinstance(original, APIRoute) and context.path:
            for method in (context.methods or set()) - {"HEAD", "OPTIONS"}:
                found.add((method, context.path))
    return found


def _v1_routes() -> set[tuple[str, str]]:
    settings = Settings(environment="test", jwt_secret=TEST_JWT_SECRET)  # type: ignore[arg-type]
    return {r for r in app_routes(create_app(settings)) if r[1].startswith("/v1/")}


APP_ROUTES = _v1_routes()
NON_PUBLIC = sorted(k for k, v in ROUTES.items() if v.allowed != PUBLIC and k in APP_ROUTES)


def _id(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def test_every_v1_route_is_classified():
    unclassified = sorted(APP_ROUTES - ROUTES.keys())
    assert not unclassified, f"classify these routes in ROUTES: {unclassified}"
    stale = sorted(ROUTES.keys() - APP_ROUTES)
    assert not stale, f"these classified routes no longer exist: {stale}"


# Building the world -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cheap_key_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest: this module makes hundreds of keyed calls, and key hashing has
    its own tests (tests/test_auth.py). Verification reads the parameters from the hash."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "app.security._password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
async def world(client, make_client, staff_headers, session, clock) -> World:
    from app.models import CaseSupporter

    _, submitter = await make_client(name="Riverside Surgery", ods="A81001")
    _, other_org = await make_client(name="Another school", ods="EE1234")
    body = referral_body("system", nhs=NHS, person=PERSON)
    created = await client.post(
        "/v1/referrals", json=body, headers={**submitter, "Idempotency-Key": "matrix-1"}
    )
    assert created.status_code == 201, created.text
    referral = created.json()
    assert referral["decision"]["route"]["queue_id"] == TEAM_QUEUE
    crisis = await client.post(
        "/v1/referrals",
        json=referral_body(nhs=CRISIS_NHS, risk={"immediate_danger": True}),
        headers=staff_headers(),
    )
    assert crisis.json()["decision"]["route"]["queue_id"] == "crisis"

    # The case is held by a practitioner from another team, with a supporting worker.
    case = await session.get(Case, uuid.UUID(referral["case_id"]))
    assert case is not None
    case.status = "allocated"
    case.key_worker_id = KEY_WORKER
    case.allocated_at = clock.now()
    case.version += 1
    supporter = CaseSupporter(
        case_id=case.id,
        kind="worker",
        worker_id=SUPPORTER,
        added_by_id=KEY_WORKER,
        added_at=clock.now(),
    )
    session.add(supporter)
    await session.commit()

    world = World(
        referral_id=referral["id"],
        person_id=referral["person_id"],
        case_id=referral["case_id"],
        crisis_case_id=crisis.json()["case_id"],
        supporter_id=str(supporter.id),
        now_iso=clock.now().isoformat(),
        # The case's breach warning (written with the referral).
        notification_id=str(
            await session.scalar(
                select(Notification.id).where(Notification.referral_id == uuid.UUID(referral["id"]))
            )
        ),
    )
    for caller in CALLERS:
        if caller.system == "submitter":
            world.headers[caller.name] = submitter
        elif caller.system == "other_org":
            world.headers[caller.name] = other_org
        else:
            world.headers[caller.name] = staff_headers(
                caller.role, queues=list(caller.queues), subject=caller.subject or caller.name
            )
    return world


async def _version(session, case_id: str) -> int:
    session.expire_all()
    version = await session.scalar(select(Case.version).where(Case.id == uuid.UUID(case_id)))
    assert version is not None
    return version


async def _call(client, session, key: tuple[str, str], access: Access, caller, world, headers):
    method, template = key
    path = template.format(**(access.path(world) if access.path else {}))
    headers = dict(headers)
    if access.needs_if_match:
        headers["If-Match"] = f'"{await _version(session, world.case_id)}"'
    body = access.body(caller, world) if access.body else None
    if method == "POST" and key == ("POST", "/v1/referrals"):
        headers["Idempotency-Key"] = f"matrix-{uuid.uuid4()}"
    return await client.request(
        method,
        path,
        headers=headers,
        params=access.params(world) if access.params else None,
        json=body if method == "POST" else None,
    )


def _no_person_data(text: str, world: World) -> None:
    for value in (
        NHS,
        PERSON["given_name"],
        PERSON["family_name"],
        PERSON["postcode"],
        world.person_id,
        referral_body()["person"]["date_of_birth"],
    ):
        assert value not in text, value


# The tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", NON_PUBLIC, ids=_id)
async def test_anonymous_and_bad_credentials_are_401(client, world, session, settings, key):
    access = ROUTES[key]
    expired = _expired_token(settings)
    for headers in (
        {},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": "Bearer not-a-token"},
        {"X-API-Key": "fdk_000000000000_nope"},
    ):
        response = await _call(client, session, key, access, Caller("anon"), world, headers)
        assert response.status_code == 401, (headers, response.text)
        _no_person_data(response.text, world)


def _expired_token(settings: Settings) -> str:
    from datetime import UTC, datetime

    from app.security import issue_staff_token

    return issue_staff_token(
        settings,
        subject="user-admin",
        role=Role.ADMIN,
        now=datetime.now(UTC) - timedelta(days=2),
        lifetime=timedelta(hours=1),
    )


@pytest.mark.parametrize("key", sorted(k for k in ROUTES if k in APP_ROUTES), ids=_id)
async def test_every_caller_gets_only_what_the_policy_allows(client, world, session, key):
    access = ROUTES[key]
    refused, admitted = [], []
    for caller in CALLERS:
        allowed = access.allowed == PUBLIC or caller.name in access.allowed
        (admitted if allowed else refused).append(caller)
    version_before = await _version(session, world.case_id)
    problems = []
    # Refused callers first: none of them may change anything.
    for caller in refused:
        response = await _call(
            client, session, key, access, caller, world, world.headers[caller.name]
        )
        if response.status_code not in (403, 404):
            problems.append(f"{caller.name}: expected 403/404, got {response.status_code}")
        try:
            _no_person_data(response.text, world)
        except AssertionError as exc:
            problems.append(f"{caller.name}: person data in a refusal ({exc})")
    if await _version(session, world.case_id) != version_before:
        problems.append("a refused caller changed the case")
    for caller in admitted:
        response = await _call(
            client, session, key, access, caller, world, world.headers[caller.name]
        )
        if access.action:
            ok = response.status_code not in (401, 403, 404) and response.status_code < 500
        else:
            ok = response.status_code == 200
        if not ok:
            problems.append(f"{caller.name}: admitted by the policy, got {response.status_code}")
    assert not problems, "\n".join(problems)


CRISIS_READERS = {"duty_clinician", "admin"}


@pytest.mark.parametrize("path", ["/v1/cases/{id}", "/v1/cases/{id}/events"])
async def test_duty_clinicians_see_crisis_cases_and_others_do_not(client, world, path):
    if ("GET", path.replace("{id}", "{case_id}")) not in APP_ROUTES:
        pytest.skip("case routes not present")
    for caller in CALLERS:
        response = await client.get(
            path.format(id=world.crisis_case_id), headers=world.headers[caller.name]
        )
        if caller.name in CRISIS_READERS:
            assert response.status_code == 200, caller.name
        else:
            assert response.status_code in (403, 404), (caller.name, response.status_code)
            _no_person_data(response.text, world)


async def test_duty_clinicians_work_the_crisis_and_duty_queues(client, world):
    if ("GET", "/v1/queues/{queue_id}/cases") not in APP_ROUTES:
        pytest.skip("queue routes not present")
    duty = world.headers["duty_clinician"]
    for queue in ("crisis", "duty"):
        assert (await client.get(f"/v1/queues/{queue}/cases", headers=duty)).status_code == 200
    assert (await client.get(f"/v1/queues/{TEAM_QUEUE}/cases", headers=duty)).status_code == 403


async def test_a_system_reads_its_own_organisations_referrals_only(client, make_client, world):
    """A rotated key (same ODS code, new client) still reads what the old key sent."""
    _, rotated = await make_client(name="Riverside Surgery (new key)", ods="A81001")
    own = await client.get(f"/v1/referrals/{world.referral_id}", headers=rotated)
    assert own.status_code == 200
    assert "decision" in own.json() and "reason" not in own.json()
    other = await client.get(
        f"/v1/referrals/{world.referral_id}", headers=world.headers["system_other_org"]
    )
    missing = await client.get(
        f"/v1/referrals/{uuid.uuid4()}", headers=world.headers["system_other_org"]
    )
    # Another organisation's referral looks exactly like one that does not exist.
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]
