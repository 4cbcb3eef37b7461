"""Rulesets stored and versioned in the database: publish, list, activate, roll back, start-up.

In-process, inside the test's rolled-back transaction. Two processes on one database are in
tests/test_rulesets_processes.py; docs/domain/changing-rules.md has the rules.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.cli import main as cli_main
from app.models import AuditEvent, Queue, RulesetActivation, RulesetRecord, TriageDecision
from app.services import rulesets
from app.triage import load_ruleset
from app.triage.ruleset import DEFAULT_RULESET_PATH
from tests.conftest import _running_app
from tests.factories import referral_body

DEFAULT = load_ruleset()
DEFAULT_TEXT = DEFAULT_RULESET_PATH.read_text(encoding="utf-8")
YAML = {"Content-Type": "application/yaml"}
CRISIS = {"risk": {"immediate_danger": True}}


def candidate_text(label: str = "candidate-east") -> str:
    """The default with a new label and a new county-wide crisis queue the crisis step uses:
    deciding with it is visible in the route, and needs a queue the default never had."""
    content: dict[str, Any] = copy.deepcopy(DEFAULT.content)
    content["label"] = label
    content["queues"].append(
        {"id": "crisis-east", "name": "Crisis East (24/7)", "kind": "crisis", "open_24_7": True}
    )
    content["routing"]["crisis_queue_id"] = "crisis-east"
    return yaml.safe_dump(content, sort_keys=False)


@pytest.fixture
async def live_app(migrated, engine, session_factory, clock) -> AsyncIterator[Any]:
    """The app checking the active version on every request (interval 0), so a switch is seen
    by the next request without waiting."""
    settings = migrated.model_copy(update={"ruleset_check_seconds": 0})
    app = await _running_app(settings, engine, session_factory, clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def live(live_app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=live_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def admin(staff_headers) -> dict[str, str]:
    return staff_headers("admin", subject="user-rules-admin")


async def _refer(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> Any:
    response = await client.post(
        "/v1/referrals", json=referral_body("phone", **overrides), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_packaged_default_is_the_first_stored_and_active_version(client, admin):
    response = await client.get("/v1/rulesets", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active_version"] == DEFAULT.version
    (only,) = body["versions"]
    assert only["version"] == DEFAULT.version and only["active"] is True
    assert only["published_by"] == rulesets.STARTUP_ACTOR_ID
    (first,) = body["activations"]
    assert first == {
        "seq": 1,
        "from_version": None,
        "to_version": DEFAULT.version,
        "activated_by": rulesets.STARTUP_ACTOR_ID,
        "activated_at": first["activated_at"],
    }
    stored = (await client.get(f"/v1/rulesets/{DEFAULT.version}", headers=admin)).json()
    assert stored["source_yaml"] == DEFAULT_TEXT
    assert stored["content"] == DEFAULT.content


async def test_an_invalid_candidate_is_refused_naming_the_key(client, admin, session):
    bad = candidate_text().replace("max_age_years: 25", "max_age_yeers: 25")
    response = await client.post("/v1/rulesets", content=bad, headers={**admin, **YAML})
    assert response.status_code == 422, response.text
    body = response.json()
    fields = {error["field"] for error in body["errors"]}
    assert "eligibility.max_age_yeers" in fields
    assert "eligibility.max_age_years" in fields  # and the key it should have been
    assert "eligibility.max_age_yeers" in body["detail"]
    assert len((await session.scalars(select(RulesetRecord))).all()) == 1


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("label: [unclosed", "body", "not valid YAML"),
        ("- just\n- a list\n", "body", "mapping"),
        ("label: a\nlabel: b\n", "body", "duplicate key"),
        ("version: x\n", "version", "computed"),
    ],
)
async def test_malformed_candidates_are_422_and_store_nothing(
    client, admin, session, body, field, words
):
    response = await client.post("/v1/rulesets", content=body, headers={**admin, **YAML})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert len((await session.scalars(select(RulesetRecord))).all()) == 1


async def test_a_candidate_must_be_sent_as_yaml(client, admin):
    response = await client.post("/v1/rulesets", json={"label": "x"}, headers=admin)
    assert response.status_code == 415
    assert response.json()["errors"][0]["field"] == "header:Content-Type"
    invalid = await client.post("/v1/rulesets", content=b"\xff\xfe", headers={**admin, **YAML})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "body"


async def test_an_alias_bomb_is_refused_before_it_is_hashed(client, admin):
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 8):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    response = await client.post(
        "/v1/rulesets", content="\n".join(lines), headers={**admin, **YAML}
    )
    assert response.status_code == 422
    assert "expands to more than" in response.json()["detail"]


async def test_publishing_is_idempotent_and_stores_who_and_what(client, admin, session):
    text_sent = candidate_text()
    first = await client.post("/v1/rulesets", content=text_sent, headers={**admin, **YAML})
    assert first.status_code == 201, first.text
    version = first.json()["version"]
    assert version.startswith("candidate-east+")
    assert first.headers["Location"] == f"/v1/rulesets/{version}"
    assert first.json()["active"] is False
    again = await client.post("/v1/rulesets", content=text_sent, headers={**admin, **YAML})
    assert again.status_code == 200
    assert again.json()["version"] == version and again.json()["created"] is False
    record = await session.get(RulesetRecord, version)
    assert record is not None
    assert record.source_yaml == text_sent
    assert record.published_by == "user-rules-admin"
    # Comments and layout do not make a new version; a different label does.
    commented = "# a comment\n" + text_sent
    same = await client.post("/v1/rulesets", content=commented, headers={**admin, **YAML})
    assert same.json()["version"] == version
    relabelled = await client.post(
        "/v1/rulesets", content=text_sent, params={"label": "east-2"}, headers={**admin, **YAML}
    )
    assert relabelled.status_code == 201
    assert relabelled.json()["version"].startswith("east-2+")
    listed = (await client.get("/v1/rulesets", headers=admin)).json()
    assert [v["version"] for v in listed["versions"] if v["active"]] == [DEFAULT.version]
    actions = (
        await session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "ruleset.publish")
        )
    ).all()
    assert {"created": True} in actions and {"created": False} in actions


async def test_activate_makes_it_live_every_decision_keeps_its_version_and_rollback_works(
    live, live_app, admin, session
):
    staff = {"Authorization": admin["Authorization"]}
    before = await _refer(live, staff, **CRISIS)
    assert before["decision"]["ruleset_version"] == DEFAULT.version
    assert before["decision"]["route"]["queue_id"] == "crisis"

    version = (
        await live.post("/v1/rulesets", content=candidate_text(), headers={**admin, **YAML})
    ).json()["version"]
    assert await session.get(Queue, "crisis-east") is None  # stored is not live
    activated = await live.post(f"/v1/rulesets/{version}/activate", headers=admin)
    assert activated.status_code == 200, activated.text
    assert activated.json()["changed"] is True
    assert activated.json()["activation"]["from_version"] == DEFAULT.version
    # Activation synced the directory: the new queue exists before any case goes there.
    assert (await session.get(Queue, "crisis-east")) is not None

    during = await _refer(live, staff, **CRISIS)
    assert during["decision"]["ruleset_version"] == version
    assert during["decision"]["route"]["queue_id"] == "crisis-east"
    current = (await live.get("/v1/rulesets/current", headers=staff)).json()
    assert current["version"] == version

    rolled_back = await live.post(f"/v1/rulesets/{DEFAULT.version}/activate", headers=admin)
    assert rolled_back.json()["activation"]["from_version"] == version
    after = await _refer(live, staff, **CRISIS)
    assert after["decision"]["ruleset_version"] == DEFAULT.version
    assert after["decision"]["route"]["queue_id"] == "crisis"

    # Each stored decision still names the version that made it.
    stored = dict(
        (
            await session.execute(
                select(TriageDecision.referral_id, TriageDecision.ruleset_version)
            )
        ).all()
    )
    assert stored[uuid.UUID(before["id"])] == DEFAULT.version
    assert stored[uuid.UUID(during["id"])] == version
    assert stored[uuid.UUID(after["id"])] == DEFAULT.version
    # The queue a rolled-back version added stays (its case is still in it), now inactive.
    east = await session.get(Queue, "crisis-east")
    await session.refresh(east)
    assert east is not None and east.active is False

    history = (await live.get("/v1/rulesets", headers=admin)).json()["activations"]
    assert [(h["from_version"], h["to_version"]) for h in history] == [
        (version, DEFAULT.version),
        (DEFAULT.version, version),
        (None, DEFAULT.version),
    ]
    audited = (
        await session.scalars(
            select(AuditEvent.resource_id).where(AuditEvent.action == "ruleset.activate")
        )
    ).all()
    assert version in audited and DEFAULT.version in audited


async def test_activating_the_active_version_writes_nothing(client, admin, session):
    response = await client.post(f"/v1/rulesets/{DEFAULT.version}/activate", headers=admin)
    assert response.status_code == 200
    assert response.json()["changed"] is False
    assert len((await session.scalars(select(RulesetActivation))).all()) == 1


async def test_activating_a_version_not_stored_is_404_naming_it(client, admin):
    response = await client.post("/v1/rulesets/nope+000000000000/activate", headers=admin)
    assert response.status_code == 404
    assert "nope+000000000000" in response.json()["detail"]
    assert (await client.get("/v1/rulesets/nope+000000000000", headers=admin)).status_code == 404


async def test_only_admins_manage_rulesets(client, staff_headers):
    lead = staff_headers("team_lead")
    assert (await client.get("/v1/rulesets", headers=lead)).status_code == 403
    posted = await client.post("/v1/rulesets", content=candidate_text(), headers={**lead, **YAML})
    assert posted.status_code == 403
    activate = await client.post(f"/v1/rulesets/{DEFAULT.version}/activate", headers=lead)
    assert activate.status_code == 403
    assert (await client.get("/v1/rulesets")).status_code == 401


async def test_the_activation_history_cannot_be_changed(session):
    await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, _now())
    await session.flush()
    for statement in (
        "UPDATE ruleset_activations SET to_version = to_version",
        "DELETE FROM ruleset_activations",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(statement))


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_startup_keeps_an_admins_activation_and_activates_a_new_file(session):
    now = _now()
    assert (
        await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, now)
    ).version == DEFAULT.version
    east, _ = await rulesets.publish_ruleset(
        session, candidate_text(), label=None, actor_id="user-a", now=now
    )
    await rulesets.activate_ruleset(session, east.version, actor_id="user-a", now=now)
    # A restart with the same (already stored) file leaves the admin's choice live.
    assert (await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, now)).version == east.version
    # A deployment shipping a file this database has never seen makes it live.
    shipped = rulesets.parse_candidate(candidate_text("shipped-2027.1"))
    served = await rulesets.bootstrap(session, shipped, candidate_text("shipped-2027.1"), now)
    assert served.version == shipped.version
    latest = await rulesets.latest_activation(session)
    assert latest is not None
    assert (latest.from_version, latest.to_version, latest.activated_by) == (
        east.version,
        shipped.version,
        rulesets.STARTUP_ACTOR_ID,
    )
    assert (await rulesets.active_ruleset(session)).version == shipped.version


async def test_stored_ruleset_is_the_interface_for_replay(session):
    now = _now()
    await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, now)
    east, created = await rulesets.publish_ruleset(
        session, candidate_text(), label=None, actor_id="user-a", now=now
    )
    assert created
    loaded = await rulesets.stored_ruleset(session, east.version)
    assert loaded.version == east.version
    assert loaded.compiled.step_routes  # compiled, ready to evaluate
    with pytest.raises(rulesets.RulesetNotFound, match="never-stored"):
        await rulesets.stored_ruleset(session, "never-stored+000000000000")


async def test_a_cached_version_is_still_refused_by_a_database_that_does_not_store_it(session):
    """The compiled cache is per process; whether a version is stored is the database's."""
    cached = rulesets.parse_candidate(candidate_text("cached-only"))
    rulesets._remember(cached)
    with pytest.raises(rulesets.RulesetNotFound):
        await rulesets.stored_ruleset(session, cached.version)


async def test_a_stored_row_whose_content_does_not_hash_to_its_version_is_never_used(session):
    content = copy.deepcopy(DEFAULT.content)
    content["eligibility"]["max_age_years"] = 24  # edited in the database behind our back
    session.add(
        RulesetRecord(
            version="tampered+000000000000",
            label="tampered",
            content=content,
            first_loaded_at=_now(),
        )
    )
    await session.flush()
    with pytest.raises(rulesets.StoredRulesetCorrupt):
        await rulesets.stored_ruleset(session, "tampered+000000000000")


async def test_racing_activations_cannot_fork_the_history(session):
    now = _now()
    await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, now)
    session.add(
        RulesetActivation(seq=1, to_version=DEFAULT.version, activated_by="x", activated_at=now)
    )
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.flush()


class _Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_process_checks_at_most_once_per_interval_and_switches_once(session):
    now = _now()
    await rulesets.bootstrap(session, DEFAULT, DEFAULT_TEXT, now)
    ticks = _Ticks()
    live = rulesets.LiveRuleset(DEFAULT, 2.0, seconds_now=ticks)
    east, _ = await rulesets.publish_ruleset(
        session, candidate_text(), label=None, actor_id="user-a", now=now
    )
    await rulesets.activate_ruleset(session, east.version, actor_id="user-a", now=now)
    ticks.now = 1.9
    assert (await live.for_request(session)).version == DEFAULT.version  # not yet checked
    ticks.now = 2.0
    switched = await live.for_request(session)
    assert switched.version == east.version
    ticks.now = 3.0
    assert await live.for_request(session) is switched  # the compiled ruleset is reused
    # A clock stepping backwards checks at once.
    await rulesets.activate_ruleset(session, DEFAULT.version, actor_id="user-a", now=now)
    ticks.now = 1.0
    assert (await live.for_request(session)).version == DEFAULT.version


def test_rules_check_validates_offline_naming_the_key(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(candidate_text())
    assert cli_main(["rules", "check", str(good)]) == 0
    assert rulesets.parse_candidate(candidate_text()).version in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        candidate_text().replace("crisis_queue_id: crisis-east", "crisis_queue_id: nowhere")
    )
    assert cli_main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "routing.crisis_queue_id" in err and "nowhere" in err
    assert cli_main(["rules", "check", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


async def test_an_activation_racing_another_is_409_and_writes_nothing(
    session, monkeypatch, client, admin
):
    east, _ = await rulesets.publish_ruleset(
        session, candidate_text(), label=None, actor_id="user-a", now=_now()
    )
    await session.commit()

    async def stale(_session: Any) -> None:  # as read just before another activation committed
        return None

    monkeypatch.setattr(rulesets, "latest_activation", stale)
    response = await client.post(f"/v1/rulesets/{east.version}/activate", headers=admin)
    assert response.status_code == 409, response.text
    assert "try again" in response.json()["detail"]
    history = (await session.scalars(select(RulesetActivation.to_version))).all()
    assert history == [DEFAULT.version]
    assert await session.get(Queue, "crisis-east") is None


def test_rules_publish_activate_list_through_the_cli(
    tmp_path, scratch_database_url, monkeypatch, capsys
):
    from app.config import Settings, get_settings
    from app.migrate import upgrade

    upgrade(Settings(environment="test", database_url=scratch_database_url))
    monkeypatch.setenv("FRONTDOOR_ENVIRONMENT", "test")
    monkeypatch.setenv("FRONTDOOR_DATABASE_URL", scratch_database_url)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        candidate = tmp_path / "east.yaml"
        candidate.write_text(candidate_text())
        assert cli_main(["rules", "publish", str(candidate)]) == 0
        version, state = capsys.readouterr().out.split()
        assert state == "stored" and version.startswith("candidate-east+")
        assert cli_main(["rules", "publish", str(candidate)]) == 0
        assert capsys.readouterr().out.split() == [version, "already", "stored"]
        bad = tmp_path / "bad.yaml"
        bad.write_text(candidate_text().replace("max_age_years: 25", "max_age_yeers: 25"))
        assert cli_main(["rules", "publish", str(bad)]) == 2
        assert "eligibility.max_age_yeers" in capsys.readouterr().err
        assert cli_main(["rules", "activate", "nope+000000000000"]) == 1
        assert "nope+000000000000" in capsys.readouterr().err
        assert cli_main(["rules", "activate", version]) == 0
        assert f"{version}\tactive (was none)" in capsys.readouterr().out
        assert cli_main(["rules", "list"]) == 0
        (line,) = [row for row in capsys.readouterr().out.splitlines() if row.strip()]
        assert line.startswith(f"* {version}\t")
        assert line.split("\t")[-1].startswith("cli:")  # who published it
    finally:
        get_settings.cache_clear()
