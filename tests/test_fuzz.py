"""Schema fuzzing with schemathesis: every operation in /openapi.json, as staff (admin bearer), as
a referring system (X-API-Key) and with no credentials.

Checks: no 5xx; status codes, content types, headers and bodies conform to the schema; and
authentication is never ignored (an operation that declares security never answers 2xx without
valid credentials, and a 2xx with credentials becomes a 401 when they are removed or forged).

schemathesis generates the requests (hypothesis strategies from the schema); they are sent
through the test's own ASGI client, inside the test's rolled-back transaction, so fuzzing
touches neither the shared test database nor schemathesis's own event loop. Bounded and seeded
(``derandomize``): the same requests every run, a few per operation, so CI stays fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.config import Settings
from app.main import create_app
from tests.conftest import TEST_JWT_SECRET, _running_app
from tests.factories import referral_body

# Examples per operation and credential mode: 24 operations x 3 modes x this, plus probes.
EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
AUTH_HEADERS = {"authorization", "x-api-key"}


def _schema() -> Any:
    settings = Settings(environment="test", jwt_secret=TEST_JWT_SECRET)  # type: ignore[arg-type]
    return schemathesis.openapi.from_dict(create_app(settings).openapi())


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
SECURED = {op.label for op in OPERATIONS if op.definition.raw.get("security")}
_STRATEGIES: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}


def _strategy(operation: Any, real: dict[str, str], generation: GenerationMode) -> Any:
    """Generated requests, half of them aimed at objects that exist (so reads and case actions
    run their real code paths, not only the 404)."""
    names = {p.name for p in operation.path_parameters}
    fixed = tuple(sorted((k, v) for k, v in real.items() if k in names))
    key = (operation.label, generation.value, fixed)
    if key not in _STRATEGIES:
        strategy = operation.as_strategy(generation_mode=generation)
        if fixed:
            strategy = st.one_of(
                strategy,
                operation.as_strategy(generation_mode=generation, path_parameters=dict(fixed)),
            )
        _STRATEGIES[key] = strategy
    return _STRATEGIES[key]


@pytest.fixture
async def fuzz_client(
    migrated, engine, session_factory, clock, monkeypatch
) -> AsyncIterator[httpx.AsyncClient]:
    # The form's rate limit would answer most public requests with a (documented) 429.
    fuzz_settings = migrated.model_copy(update={"self_referral_per_address_per_minute": 100_000})
    monkeypatch.setattr(
        "app.security._password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    app = await _running_app(fuzz_settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def fuzz_world(fuzz_client, staff_headers, make_client) -> dict[str, Any]:
    """Credentials for each mode, and real ids to aim some requests at."""
    admin = staff_headers("admin", subject="user-fuzz-admin")
    _, system = await make_client(name="Fuzz GP", ods="A81001")
    created = await fuzz_client.post(
        "/v1/referrals", json=referral_body("system"), headers={**system, "Idempotency-Key": "f1"}
    )
    assert created.status_code == 201, created.text
    referral = created.json()
    return {
        "auth": {"staff": admin, "system": system, "none": {}},
        "real": {
            "referral_id": referral["id"],
            "case_id": referral["case_id"],
            "queue_id": referral["decision"]["route"]["queue_id"],
        },
    }


def _as_documented(response: httpx.Response, operation: Any) -> httpx.Response:
    """Errors are sent as ``application/problem+json`` (RFC 9457) while app/responses.py
    documents them as ``application/json`` only (reported to the lead). Until the schema names
    the problem media type, read the body as the documented JSON, so its content is still
    validated against the Problem schema. Once documented, this does nothing."""
    content_type = response.headers.get("content-type", "")
    documented = (
        operation.definition.raw.get("responses", {})
        .get(str(response.status_code), {})
        .get("content", {})
    )
    if content_type.startswith("application/problem+json") and (
        "application/problem+json" not in documented and "application/json" in documented
    ):
        response.headers["content-type"] = "application/json"
    return response


async def _send(client: httpx.AsyncClient, case: Any, headers: dict[str, str]) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    sent_headers = {
        k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() not in AUTH_HEADERS
    }
    sent_headers.update(headers)
    request: dict[str, Any] = {
        "headers": sent_headers,
        "params": kwargs.get("params") or None,
        "cookies": kwargs.get("cookies") or None,
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif "data" in kwargs:
        request["content"] = kwargs["data"]
    return await client.request(kwargs["method"], kwargs["url"], **request)


def _has_own_inputs(operation: Any) -> bool:
    """A body, or a path or query parameter: something a negative case can break (the security
    headers are replaced by each mode's credentials, so they do not count)."""
    return bool(operation.body) or any(
        p.location in ("path", "query") for p in operation.iter_parameters()
    )


# Non-conformance found in routes outside this change, reported and kept visible here until
# fixed: "<operation> <mode>[ negative]" → reason. Strict, so an entry must go once fixed.
KNOWN_GAPS: dict[str, str] = {}


def _run(op: Any, mode: str, generation: GenerationMode) -> Any:
    run_id = f"{op.label} {mode}" + (" negative" if generation is GenerationMode.NEGATIVE else "")
    marks = []
    if run_id in KNOWN_GAPS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[run_id]))
    return pytest.param(op, mode, generation, id=run_id, marks=marks)


# Valid requests with each kind of credentials; invalid ones (which must all be 4xx) as staff,
# the caller who gets furthest into the code.
RUNS = [
    _run(op, mode, GenerationMode.POSITIVE)
    for op in OPERATIONS
    for mode in ("staff", "system", "none")
] + [_run(op, "staff", GenerationMode.NEGATIVE) for op in OPERATIONS if _has_own_inputs(op)]


@pytest.mark.parametrize(("operation", "mode", "generation"), RUNS)
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its request
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_fuzz(data, operation, mode, generation, fuzz_client, fuzz_world):
    case = data.draw(_strategy(operation, fuzz_world["real"], generation), label="case")
    credentials = dict(fuzz_world["auth"][mode])
    if (
        generation is GenerationMode.POSITIVE
        and any(p.name == "If-Match" for p in operation.iter_parameters())
        and data.draw(st.booleans(), label="current If-Match")
    ):
        # Half the case actions carry the case's current ETag: they get past the version check
        # (a 428/412 otherwise) into the action itself.
        case_id = fuzz_world["real"]["case_id"]
        current = await fuzz_client.get(f"/v1/cases/{case_id}", headers=fuzz_world["auth"]["staff"])
        credentials["If-Match"] = current.headers["etag"]
    response = await _send(fuzz_client, case, credentials)
    checks = CHECKS
    if generation is not GenerationMode.POSITIVE and response.status_code != 412:
        # 412 (a stale or malformed If-Match) refuses the request before its body is used and
        # writes nothing: a rejection, though not one schemathesis lists. Any other answer to
        # schema-violating data must be one of the rejections it expects.
        checks = [*CHECKS, negative_data_rejection]
    case.validate_response(_as_documented(response, operation), checks=checks)
    if operation.label not in SECURED:
        return
    if mode == "none":
        assert not 200 <= response.status_code < 300, "a secured operation answered anonymously"
        assert response.status_code in (400, 401, 413, 415), response.status_code
    elif 200 <= response.status_code < 300:
        # The ignored-auth check: the same request without, or with forged, credentials.
        for forged in ({}, {"Authorization": "Bearer forged"}, {"X-API-Key": "fdk_0_forged"}):
            probe = await _send(fuzz_client, case, forged)
            assert probe.status_code in (400, 401, 413, 415), (forged, probe.status_code)


def test_every_error_response_is_documented_as_a_problem():
    """Errors are RFC 9457 problems: a documented 4xx/5xx with any other body is wrong."""
    wrong = set()
    for path, methods in SCHEMA.raw_schema["paths"].items():
        for method, operation in methods.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith(("4", "5")):
                    continue
                for media in response.get("content", {}).values():
                    if not media.get("schema", {}).get("$ref", "").endswith("/Problem"):
                        wrong.add(f"{method.upper()} {path} {status}")
    assert not wrong, wrong


def test_every_operation_is_fuzzed_and_secured_ones_declare_it():
    labels = {op.label for op in OPERATIONS}
    public = labels - SECURED
    assert public == {
        "GET /healthz",
        "GET /readyz",
        "POST /v1/self-referrals",
        "GET /v1/services",
        "GET /v1/signposting",
        "GET /oruk/",
        "GET /oruk/services",
        "GET /oruk/services/{service_id}",
    }, public
    assert len(OPERATIONS) >= 10
