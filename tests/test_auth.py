"""Staff bearer tokens (HS256 and RS256 via a JWKS URL) and referring-system API keys."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update

from app.models import ApiClient, StaffMember
from app.security import Role, issue_staff_token
from tests.conftest import TEST_JWT_SECRET, _running_app
from tests.factories import referral_body

STAFF_ONLY = "/v1/rulesets/current"


def _claims(settings: Any, now: Any, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "user-1",
        "role": "practitioner",
        "queues": ["cb-norwich"],
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["type"] == "unauthenticated"
    assert response.headers["content-type"].startswith("application/problem+json")


# HS256 (the embedded default) ------------------------------------------------------------------


async def test_a_valid_staff_token_is_accepted(client, staff_headers):
    response = await client.get(STAFF_ONLY, headers=staff_headers("practitioner"))
    assert response.status_code == 200


async def test_no_credentials_is_401_with_a_bearer_challenge(client):
    response = await client.get(STAFF_ONLY)
    _assert_401(response)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("expired", {"exp_offset": timedelta(minutes=-5)}),
        ("wrong issuer", {"iss": "someone-else"}),
        ("wrong audience", {"aud": "another-service"}),
        ("no expiry", {"exp": None}),
        ("no subject", {"sub": None}),
        ("not yet valid", {"nbf_offset": timedelta(minutes=10)}),
    ],
)
async def test_bad_hs256_claims_are_401(client, settings, clock, case, overrides):
    now = clock.now()
    exp_offset = overrides.pop("exp_offset", None)
    nbf_offset = overrides.pop("nbf_offset", None)
    claims = _claims(settings, now, **overrides)
    if exp_offset is not None:
        claims["exp"] = int((now + exp_offset).timestamp())
    if nbf_offset is not None:
        claims["nbf"] = int((now + nbf_offset).timestamp())
    token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    _assert_401(await client.get(STAFF_ONLY, headers=_bearer(token)))


async def test_expired_token_says_so(client, settings, clock):
    token = issue_staff_token(
        settings,
        subject="user-1",
        role=Role.PRACTITIONER,
        now=clock.now() - timedelta(hours=10),
        lifetime=timedelta(hours=1),
    )
    response = await client.get(STAFF_ONLY, headers=_bearer(token))
    _assert_401(response)
    assert "expired" in response.json()["detail"]


async def test_wrong_secret_is_401(client, settings, clock):
    token = jwt.encode(_claims(settings, clock.now()), "another-secret-" + "y" * 40, "HS256")
    _assert_401(await client.get(STAFF_ONLY, headers=_bearer(token)))


async def test_unsigned_token_is_401(client, settings, clock):
    token = jwt.encode(_claims(settings, clock.now()), None, algorithm="none")
    _assert_401(await client.get(STAFF_ONLY, headers=_bearer(token)))


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "Bearer", "e30.e30.e30"])
async def test_garbage_token_is_401(client, garbage):
    response = await client.get(STAFF_ONLY, headers={"Authorization": f"Bearer {garbage}"})
    _assert_401(response)


async def test_other_auth_schemes_are_401(client):
    _assert_401(await client.get(STAFF_ONLY, headers={"Authorization": "Basic dXNlcjpwYXNz"}))


@pytest.mark.parametrize("role", ["superuser", ["admin"], {"name": "admin"}, 7])
async def test_token_without_a_front_door_role_is_403(client, settings, clock, role):
    token = jwt.encode(_claims(settings, clock.now(), role=role), TEST_JWT_SECRET, "HS256")
    response = await client.get(STAFF_ONLY, headers=_bearer(token))
    assert response.status_code == 403


async def test_malformed_queues_claim_is_401(client, settings, clock):
    token = jwt.encode(_claims(settings, clock.now(), queues="cb-norwich"), TEST_JWT_SECRET)
    _assert_401(await client.get(STAFF_ONLY, headers=_bearer(token)))


async def test_token_and_api_key_together_are_401(client, staff_headers, make_client):
    _, key_headers = await make_client()
    response = await client.get(STAFF_ONLY, headers={**staff_headers(), **key_headers})
    _assert_401(response)


async def test_staff_organisation_comes_from_the_token_or_settings(settings, clock):
    from app.security import StaffTokenVerifier

    with_org = jwt.encode(_claims(settings, clock.now(), org="RMY"), TEST_JWT_SECRET, "HS256")
    assert StaffTokenVerifier(settings).verify(with_org).ods_code == "RMY"
    plain = jwt.encode(_claims(settings, clock.now()), TEST_JWT_SECRET, "HS256")
    configured = settings.model_copy(update={"service_ods_code": "RM1"})
    assert StaffTokenVerifier(configured).verify(plain).ods_code == "RM1"
    assert StaffTokenVerifier(settings).verify(plain).ods_code is None


# Remembered verifications ----------------------------------------------------------------------


def _verifier_and_token(settings: Any, now: Any, **overrides: Any) -> tuple[Any, str]:
    from app.security import StaffTokenVerifier

    claims = _claims(settings, now, **overrides)
    token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    return StaffTokenVerifier(settings), token


async def test_a_verified_token_is_not_checked_again_within_the_window(
    settings, clock, monkeypatch
):
    verifier, token = _verifier_and_token(settings, clock.now())
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    first = await verifier.authenticate(token)
    again = await verifier.authenticate(token)
    assert first == again and first.id == "user-1"
    assert len(decodes) == 1


async def test_a_remembered_token_is_checked_again_once_it_expires(settings, clock, monkeypatch):
    """Remembered no longer than its expiry plus the configured leeway: after that the full
    check runs again (and jwt refuses an expired token: test_expired_token_says_so)."""
    import time
    from types import SimpleNamespace

    from app import security

    now = clock.now()
    verifier, token = _verifier_and_token(
        settings, now, exp=int((now + timedelta(seconds=10)).timestamp())
    )
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    await verifier.authenticate(token)
    await verifier.authenticate(token)
    assert len(decodes) == 1
    later = now.timestamp() + 10 + settings.jwt_leeway_seconds + 1
    monkeypatch.setattr(
        security, "time", SimpleNamespace(time=lambda: later, monotonic=time.monotonic)
    )
    await verifier.authenticate(token)
    assert len(decodes) == 2


async def test_a_bad_token_is_never_remembered(settings, clock):
    from app.errors import Unauthenticated

    verifier, token = _verifier_and_token(settings, clock.now())
    await verifier.authenticate(token)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.authenticate(tampered)


async def test_the_remembered_tokens_are_bounded(settings, clock, monkeypatch):
    from app import security

    monkeypatch.setattr(security, "VERIFIED_TOKEN_CACHE_MAX_ENTRIES", 3)
    verifier, _ = _verifier_and_token(settings, clock.now())
    for n in range(7):
        _, token = _verifier_and_token(settings, clock.now(), sub=f"user-{n}")
        actor = await verifier.authenticate(token)
        assert actor.id == f"user-{n}"
        assert len(verifier._verified) <= 3


# RS256 with keys from a JWKS URL (a production identity provider) ------------------------------

KID = "idp-key-1"


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return _rsa_key()


@pytest.fixture(scope="module")
def jwks_url(idp_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A JWKS served over HTTP from a local thread, as an identity provider would."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(idp_key.public_key(), as_dict=True)
    document = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def rs256_client(
    migrated, engine, session_factory, clock, jwks_url
) -> AsyncIterator[httpx.AsyncClient]:
    settings = migrated.model_copy(
        update={
            "jwt_algorithm": "RS256",
            "jwt_jwks_url": jwks_url,
            "jwt_issuer": "https://idp.example.nhs.uk",
            "jwt_audience": "frontdoor-api",
        }
    )
    app = await _running_app(settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app_settings = settings  # type: ignore[attr-defined]
            yield client


def _rs256(key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str | None = KID) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


async def test_rs256_token_from_the_identity_provider_is_accepted(rs256_client, idp_key, clock):
    claims = _claims(rs256_client.app_settings, clock.now())
    response = await rs256_client.get(STAFF_ONLY, headers=_bearer(_rs256(idp_key, claims)))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "case", ["expired", "wrong issuer", "wrong audience", "unknown kid", "no kid", "forged"]
)
async def test_bad_rs256_tokens_are_401(rs256_client, idp_key, clock, case):
    settings = rs256_client.app_settings
    now = clock.now()
    key, kid = idp_key, KID
    claims = _claims(settings, now)
    if case == "expired":
        claims["exp"] = int((now - timedelta(minutes=5)).timestamp())
    elif case == "wrong issuer":
        claims["iss"] = "https://evil.example"
    elif case == "wrong audience":
        claims["aud"] = "another-api"
    elif case == "unknown kid":
        kid = "not-a-key"
    elif case == "no kid":
        kid = None
    elif case == "forged":
        key = _rsa_key()  # right kid, wrong private key
    _assert_401(await rs256_client.get(STAFF_ONLY, headers=_bearer(_rs256(key, claims, kid))))


async def test_algorithm_confusion_is_401(rs256_client, idp_key, clock):
    """An HS256 token "signed" with the public key must not pass as the identity provider's."""
    public_pem = idp_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = _claims(rs256_client.app_settings, clock.now())
    header = {"alg": "HS256", "kid": KID, "typ": "JWT"}
    # PyJWT refuses to HMAC-sign with a PEM key, so the token is assembled by hand.
    signing_input = b".".join(
        jwt.utils.base64url_encode(json.dumps(part, separators=(",", ":")).encode())
        for part in (header, claims)
    )
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = (signing_input + b"." + jwt.utils.base64url_encode(signature)).decode()
    _assert_401(await rs256_client.get(STAFF_ONLY, headers=_bearer(token)))
    # And an HS256 token with the embedded secret is no good either once RS256 is configured.
    hs = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256", headers={"kid": KID})
    _assert_401(await rs256_client.get(STAFF_ONLY, headers=_bearer(hs)))


def test_rs256_needs_a_jwks_url():
    from pydantic import ValidationError

    from app.config import Settings

    with pytest.raises(ValidationError, match="JWKS_URL"):
        Settings(environment="test", jwt_algorithm="RS256")
    with pytest.raises(ValidationError, match="https"):
        Settings(
            environment="production",
            database_url="postgresql://db/frontdoor",
            jwt_algorithm="RS256",
            jwt_jwks_url="http://idp.example/jwks.json",
        )


# Referring systems: API keys --------------------------------------------------------------------


async def test_only_an_argon2_hash_of_the_key_is_stored(make_client, session):
    client_id, headers = await make_client()
    key = headers["X-API-Key"]
    row = await session.get(ApiClient, client_id)
    assert row is not None
    assert row.key_hash.startswith("$argon2")
    secret = key.split("_", 2)[2]
    assert secret not in row.key_hash and key not in row.key_hash
    assert key.startswith(f"fdk_{row.key_prefix}_")


async def test_a_system_key_submits_a_referral(client, make_client):
    _, headers = await make_client()
    response = await client.post(
        "/v1/referrals",
        json=referral_body("system"),
        headers={**headers, "Idempotency-Key": "auth-1"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # wrong secret
        lambda key: "fdk_000000000000_" + key.split("_", 2)[2],  # unknown prefix
        lambda key: key.replace("fdk_", "xyz_", 1),
        lambda key: "fdk_only-two-parts",
        lambda key: key + "x" * 200,  # over-long: refused before hashing
        lambda key: "",
    ],
)
async def test_bad_api_keys_are_401(client, make_client, mangle):
    _, headers = await make_client()
    response = await client.get(STAFF_ONLY, headers={"X-API-Key": mangle(headers["X-API-Key"])})
    _assert_401(response)


async def test_revoked_key_is_refused_at_once_even_when_cached(client, make_client, session, clock):
    client_id, headers = await make_client()
    body = referral_body("system")
    first = await client.post(
        "/v1/referrals", json=body, headers={**headers, "Idempotency-Key": "rev-1"}
    )
    assert first.status_code == 201  # the key is now in the verified-key cache
    await session.execute(
        update(ApiClient).where(ApiClient.id == client_id).values(revoked_at=clock.now())
    )
    await session.commit()
    again = await client.post(
        "/v1/referrals", json=body, headers={**headers, "Idempotency-Key": "rev-2"}
    )
    _assert_401(again)
    read = await client.get(f"/v1/referrals/{first.json()['id']}", headers=headers)
    _assert_401(read)


async def test_systems_cannot_use_staff_routes(client, make_client):
    _, headers = await make_client()
    for method, path, kwargs in [
        ("GET", "/v1/persons", {"params": {"nhs_number": "9990000018"}}),
        ("GET", "/v1/rulesets/current", {}),
        ("POST", "/v1/triage/evaluate", {"json": referral_body("system")}),
        ("GET", "/v1/audit", {"params": {"person_id": str(uuid.uuid4())}}),
    ]:
        response = await client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 403, (path, response.text)


async def test_a_system_submits_only_as_a_system(client, make_client, staff_headers):
    _, headers = await make_client()
    as_phone = await client.post(
        "/v1/referrals", json=referral_body("phone"), headers={**headers, "Idempotency-Key": "k"}
    )
    assert as_phone.status_code == 403
    staff_as_system = await client.post(
        "/v1/referrals", json=referral_body("system"), headers=staff_headers()
    )
    assert staff_as_system.status_code == 403


async def test_api_clients_table_never_holds_a_usable_key(make_client, session):
    await make_client(name="School system", ods="EE1234")
    for row in (await session.scalars(select(ApiClient))).all():
        assert not row.key_hash.startswith("fdk_")


# Token lifetime cap (FRONTDOOR_JWT_MAX_LIFETIME_HOURS, default 12) -----------------------------


@pytest.mark.parametrize(
    ("issued_hours_ago", "lives_hours", "with_iat", "accepted"),
    [
        (0, 12, True, True),
        (1, 13, True, False),  # exp - iat is 13 h, though only 12 h remain
        (0, 13, True, False),
        (0, 24 * 30, True, False),
        (None, 11, False, True),  # no iat: exp - now
        (None, 13, False, False),
    ],
)
async def test_tokens_living_longer_than_the_cap_are_401(
    client, settings, issued_hours_ago, lives_hours, with_iat, accepted
):
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    issued = now - timedelta(hours=issued_hours_ago or 0)
    claims = _claims(settings, issued, exp=int((issued + timedelta(hours=lives_hours)).timestamp()))
    if not with_iat:
        claims.pop("iat")
    token = jwt.encode(claims, TEST_JWT_SECRET, algorithm="HS256")
    response = await client.get(STAFF_ONLY, headers=_bearer(token))
    if accepted:
        assert response.status_code == 200, response.text
    else:
        _assert_401(response)
        assert "longer than the 12 hours" in response.json()["detail"]


async def test_the_lifetime_cap_is_configurable(migrated, engine, session_factory, clock):
    from datetime import UTC, datetime

    settings = migrated.model_copy(update={"jwt_max_lifetime_hours": 2})
    app = await _running_app(settings, engine, session_factory, clock)
    now = datetime.now(UTC)
    three_hours = jwt.encode(
        _claims(settings, now, exp=int((now + timedelta(hours=3)).timestamp())),
        TEST_JWT_SECRET,
        algorithm="HS256",
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(STAFF_ONLY, headers=_bearer(three_hours))
    _assert_401(response)
    assert "2 hours" in response.json()["detail"]
    with pytest.raises(ValueError, match="at most 2 h"):
        issue_staff_token(
            settings, subject="u", role=Role.ADMIN, now=now, lifetime=timedelta(hours=3)
        )


# Staff the service has seen ----------------------------------------------------------------------


async def test_a_verified_token_records_the_staff_member_once(
    client, settings, session, engine, clock
):
    from datetime import UTC, datetime

    from sqlalchemy import event

    inserts: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "staff" in statement and statement.lstrip().upper().startswith("INSERT"):
            inserts.append(statement)

    def token(queues: list[str], name: str = "Dr Seen") -> dict[str, str]:
        return _bearer(
            issue_staff_token(
                settings,
                subject="seen-1",
                role=Role.PRACTITIONER,
                queue_ids=queues,
                name=name,
                now=datetime.now(UTC),  # tokens are checked against the wall clock
            )
        )

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        for _ in range(3):
            assert (await client.get(STAFF_ONLY, headers=token(["cb-norwich"]))).is_success
        assert len(inserts) == 1  # recorded once, not on every request
        member = await session.get(StaffMember, "seen-1")
        assert member is not None
        assert (member.name, member.role, member.queue_ids) == (
            "Dr Seen",
            "practitioner",
            ["cb-norwich"],
        )
        assert member.first_seen_at == member.last_seen_at == clock.now()
        # A token describing them differently (another team now) updates the record.
        clock.set(clock.now() + timedelta(minutes=5))
        assert (await client.get(STAFF_ONLY, headers=token(["cb-lowestoft"]))).is_success
        assert len(inserts) == 2
        session.expire_all()
        member = await session.get(StaffMember, "seen-1")
        assert member is not None and member.queue_ids == ["cb-lowestoft"]
        assert member.last_seen_at > member.first_seen_at
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)


async def test_a_referring_system_is_not_recorded_as_staff(client, make_client, session):
    _, headers = await make_client()
    await client.get("/v1/referrals/" + str(uuid.uuid4()), headers=headers)
    assert (await session.scalar(select(func.count()).select_from(StaffMember))) == 0


async def test_console_sign_ins_record_the_staff_member_too(client, staff_headers, session):
    token = staff_headers("call_handler", subject="console-user")["Authorization"][7:]
    client.cookies.set("fd_staff", token, path="/console")
    response = await client.get("/console")
    assert response.status_code == 200, response.text
    member = await session.get(StaffMember, "console-user")
    assert member is not None and member.role == "call_handler"
