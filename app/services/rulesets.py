"""Rulesets stored, published and activated in the database, and the live ruleset each process
decides with (docs/domain/changing-rules.md).

* ``rulesets`` holds every stored version: the YAML text as published, the parsed content (which
  the version hashes), who published it and when. A version never changes.
* ``ruleset_activations`` is the append-only history of switches; its latest row (highest
  ``seq``) names the version live on every process.
* ``LiveRuleset`` is one process's view of that: it asks the database which version is active
  at most once every ``FRONTDOOR_RULESET_CHECK_SECONDS`` (one indexed single-row read) and keeps
  compiled rulesets cached by version, so a switch costs one load and a request between checks
  costs nothing. Nothing is shared only in one process's memory: every replica converges on the
  database's answer within the interval.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.errors import Conflict, NotFound
from app.models import RulesetActivation, RulesetRecord
from app.security import Actor
from app.services import audit
from app.services.directory import sync_directory
from app.triage import Ruleset, RulesetError, ruleset_from_content
from app.triage.ruleset import _StrictYamlLoader

log = structlog.get_logger(__name__)

STARTUP_ACTOR_ID = "system:startup"
"""Who stored and activated a ruleset the configured file supplied at start-up."""

MAX_YAML_CHARS = 1_000_000
"""The longest ruleset text accepted (the packaged default is about 20 000 characters)."""

MAX_EXPANDED_VALUES = 50_000
"""The most keys and values a candidate may expand to (the packaged default has about 300)."""

_CACHE_SIZE = 16


class RulesetNotFound(NotFound):
    """No stored ruleset has this version (rendered as 404 naming it)."""

    def __init__(self, version: str) -> None:
        super().__init__(
            f"No stored ruleset has version {version!r}.",
            errors=[{"field": "path:version", "message": "not stored", "type": "not_found"}],
        )
        self.version = version


class NoActiveRuleset(RuntimeError):
    """The database has no activation yet (start-up writes the first one)."""


class StoredRulesetCorrupt(RuntimeError):
    """A stored row whose content no longer hashes to its version: never decide with it."""


def parse_candidate(yaml_text: str, *, label: str | None = None) -> Ruleset:
    """Validate a candidate ruleset exactly as start-up does. Raises ``RulesetError`` naming
    each bad key. ``label``, when given, replaces the file's ``label`` (and so the version)."""
    if len(yaml_text) > MAX_YAML_CHARS:
        raise RulesetError(f"the ruleset is longer than {MAX_YAML_CHARS} characters")
    try:
        content = yaml.load(yaml_text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise RulesetError(f"not valid YAML: {exc}") from exc
    _check_expanded_size(content)
    if label is not None and isinstance(content, Mapping):
        content = {**content, "label": label}
    return ruleset_from_content(content)


def _check_expanded_size(content: Any) -> None:
    """Refuse content that expands past ``MAX_EXPANDED_VALUES`` (YAML aliases can make a short
    text expand exponentially when the version is hashed: the "billion laughs")."""
    stack = [content]
    count = 0
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_EXPANDED_VALUES:
            raise RulesetError(
                f"the ruleset expands to more than {MAX_EXPANDED_VALUES} values "
                "(check its YAML anchors and aliases)"
            )
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


# Compiled rulesets by version. A version is derived from its content, so the same version
# always means the same rules and the cache can be shared by every database this process uses.
_compiled: OrderedDict[str, Ruleset] = OrderedDict()


def _remember(ruleset: Ruleset) -> Ruleset:
    _compiled[ruleset.version] = ruleset
    _compiled.move_to_end(ruleset.version)
    while len(_compiled) > _CACHE_SIZE:
        _compiled.popitem(last=False)
    return ruleset


def _from_record(record: RulesetRecord) -> Ruleset:
    try:
        ruleset = ruleset_from_content(record.content)
    except RulesetError as exc:
        raise StoredRulesetCorrupt(
            f"stored ruleset {record.version} no longer validates: {exc}"
        ) from exc
    if ruleset.version != record.version:
        raise StoredRulesetCorrupt(
            f"stored ruleset {record.version} has content hashing to {ruleset.version}"
        )
    return ruleset


async def stored_ruleset(session: AsyncSession, version: str) -> Ruleset:
    """The stored ruleset ``version``, validated and compiled (cached by version).

    Raises ``RulesetNotFound`` (404) when no such version is stored, and
    ``StoredRulesetCorrupt`` when the stored content does not hash to its version.
    """
    cached = _compiled.get(version)
    if cached is not None:
        # The cache saves compiling, never the question whether this database stores it.
        stored = await session.scalar(
            select(RulesetRecord.version).where(RulesetRecord.version == version)
        )
        if stored is None:
            raise RulesetNotFound(version)
        _compiled.move_to_end(version)
        return cached
    record = await session.get(RulesetRecord, version)
    if record is None:
        raise RulesetNotFound(version)
    return _remember(_from_record(record))


async def latest_activation(session: AsyncSession) -> RulesetActivation | None:
    """The newest row of the activation history (None before the first start-up)."""
    row: RulesetActivation | None = await session.scalar(
        select(RulesetActivation).order_by(RulesetActivation.seq.desc()).limit(1)
    )
    return row


async def active_version(session: AsyncSession) -> str | None:
    """The version live now according to the database: one primary-key-ordered, one-row read."""
    version: str | None = await session.scalar(
        select(RulesetActivation.to_version).order_by(RulesetActivation.seq.desc()).limit(1)
    )
    return version


async def active_ruleset(session: AsyncSession) -> Ruleset:
    """The ruleset active now according to the database."""
    version = await active_version(session)
    if version is None:
        raise NoActiveRuleset("no ruleset has been activated in this database")
    return await stored_ruleset(session, version)


async def _store(
    session: AsyncSession, ruleset: Ruleset, yaml_text: str | None, actor_id: str, now: datetime
) -> bool:
    """Store ``ruleset`` unless its version is stored already; True when this call stored it."""
    if await session.get(RulesetRecord, ruleset.version) is not None:
        return False
    record = RulesetRecord(
        version=ruleset.version,
        label=ruleset.label,
        content=ruleset.content,
        first_loaded_at=now,
        source_yaml=yaml_text,
        published_by=actor_id,
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError:
        # The same content was stored a moment ago by another request or process.
        if await session.get(RulesetRecord, ruleset.version) is None:
            raise
        return False
    return True


async def publish_ruleset(
    session: AsyncSession,
    yaml_text: str,
    *,
    label: str | None,
    actor_id: str,
    now: datetime,
) -> tuple[Ruleset, bool]:
    """Validate a candidate (``RulesetError`` naming the bad key) and store it, not active.

    Publishing content already stored returns that version with ``created`` False: the version
    is derived from the content, so there is nothing new to store.
    """
    ruleset = _remember(parse_candidate(yaml_text, label=label))
    created = await _store(session, ruleset, yaml_text, actor_id, now)
    return ruleset, created


@dataclass(frozen=True)
class Activation:
    """The outcome of ``activate_ruleset``: the live ruleset and the history row (``changed``
    False when the version was already active, so nothing was written)."""

    ruleset: Ruleset
    row: RulesetActivation
    changed: bool


async def activate_ruleset(
    session: AsyncSession, version: str, *, actor_id: str, now: datetime
) -> Activation:
    """Make stored ``version`` the live one for every process, and sync the service directory
    to it (a queue the new rules route to exists before any case goes there).

    Appends one history row (from → to); activating the version already live writes nothing.
    Activating an older version is how a change is rolled back. Raises ``RulesetNotFound``, and
    ``Conflict`` when another activation was written at the same moment.
    """
    ruleset = await stored_ruleset(session, version)
    current = await latest_activation(session)
    if current is not None and current.to_version == version:
        return Activation(ruleset=ruleset, row=current, changed=False)
    row = RulesetActivation(
        seq=(current.seq + 1) if current is not None else 1,
        to_version=version,
        from_version=current.to_version if current is not None else None,
        activated_by=actor_id,
        activated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict(
            "Another activation was recorded at the same moment; list the rulesets and try again.",
        ) from None
    await sync_directory(session, ruleset, now)
    log.info(
        "ruleset_activated",
        seq=row.seq,
        from_version=row.from_version,
        to_version=row.to_version,
        actor_id=actor_id,
    )
    return Activation(ruleset=ruleset, row=row, changed=True)


@dataclass(frozen=True)
class StoredVersion:
    record: RulesetRecord
    active: bool
    last_activated_at: datetime | None


async def list_rulesets(
    session: AsyncSession, *, history_limit: int = 50
) -> tuple[list[StoredVersion], list[RulesetActivation]]:
    """Every stored version (newest first, the active one marked) and the latest activations."""
    history = list(
        await session.scalars(
            select(RulesetActivation).order_by(RulesetActivation.seq.desc()).limit(history_limit)
        )
    )
    active = history[0].to_version if history else None
    last_activated: dict[str, datetime] = {}
    for row in history:
        last_activated.setdefault(row.to_version, row.activated_at)
    records = await session.scalars(
        select(RulesetRecord).order_by(RulesetRecord.first_loaded_at.desc(), RulesetRecord.version)
    )
    versions = [
        StoredVersion(
            record=record,
            active=record.version == active,
            last_activated_at=last_activated.get(record.version),
        )
        for record in records
    ]
    return versions, history


def audit_publication(
    session: AsyncSession, actor: Actor, ruleset: Ruleset, created: bool, now: datetime
) -> None:
    audit.record(
        session,
        actor=actor,
        action="ruleset.publish",
        resource_type="ruleset",
        resource_id=ruleset.version,
        now=now,
        details={"created": created},
    )


def audit_activation(
    session: AsyncSession, actor: Actor, activation: Activation, now: datetime
) -> None:
    audit.record(
        session,
        actor=actor,
        action="ruleset.activate",
        resource_type="ruleset",
        resource_id=activation.row.to_version,
        now=now,
        details={
            "changed": activation.changed,
            "seq": activation.row.seq,
            "from_version": activation.row.from_version,
        },
    )


async def bootstrap(
    session: AsyncSession, configured: Ruleset, yaml_text: str | None, now: datetime
) -> Ruleset:
    """Start-up: store the configured ruleset file if new, and return the version to serve.

    * Nothing active yet (a new database): the configured file becomes the first active version.
    * The configured file is new to this database (a deployment shipped a changed file): it is
      activated, with ``system:startup`` in the history, and the switch is logged with both ids.
    * The configured file is already stored but another version is active (an admin activated
      or rolled back since): the admin's choice stands; a warning names both versions.

    The service directory is synced to the version served. The caller commits.
    """
    created = await _store(session, _remember(configured), yaml_text, STARTUP_ACTOR_ID, now)
    current = await active_version(session)
    if current is None or (created and current != configured.version):
        # Recorded in the activation history (activated_by system:startup) and the log, not the
        # audit trail, which records what people and referring systems did.
        activation = await activate_ruleset(
            session, configured.version, actor_id=STARTUP_ACTOR_ID, now=now
        )
        return activation.ruleset
    if current != configured.version:
        log.warning(
            "configured_ruleset_not_active",
            configured_version=configured.version,
            active_version=current,
            hint="activate it with `frontdoor rules activate <version>` if it should be live",
        )
    ruleset = await stored_ruleset(session, current)
    await sync_directory(session, ruleset, now)
    return ruleset


class LiveRuleset:
    """This process's live ruleset, kept in step with the database's active version.

    ``for_request`` answers from memory until ``check_seconds`` have passed since the last
    check, then reads the active version (one tiny query on the request's own session) and, if
    it changed, loads the new one (once per version: compiled rulesets are cached). While one
    request checks, concurrent ones use the ruleset they would have used a moment earlier. A
    failed check raises (the request answers 503) and the next request checks again, so no
    process serves a version it could not confirm for longer than the interval.

    Time is the app's clock (``seconds_now``), as for every other time rule, so a test's frozen
    clock makes the checks deterministic; a clock stepping backwards checks at once rather
    than waiting for it to catch up.
    """

    def __init__(
        self,
        ruleset: Ruleset,
        check_seconds: float,
        *,
        seconds_now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ruleset = ruleset
        self._check_seconds = check_seconds
        self._seconds_now = seconds_now
        self._checked_at = seconds_now()
        self._lock = asyncio.Lock()

    @property
    def current(self) -> Ruleset:
        return self._ruleset

    def serve(self, ruleset: Ruleset) -> None:
        """Serve ``ruleset`` from now (start-up, after ``bootstrap``)."""
        self._ruleset = ruleset
        self._checked_at = self._seconds_now()

    async def for_request(self, session: AsyncSession) -> Ruleset:
        elapsed = self._seconds_now() - self._checked_at
        if 0 <= elapsed < self._check_seconds or self._lock.locked():
            return self._ruleset
        async with self._lock:
            return await self.refresh(session)

    async def refresh(self, session: AsyncSession) -> Ruleset:
        """Check the database now; switch if another version was activated.

        When the request's session is bound to the engine (every served request), the check
        runs in a short transaction of its own, so the request's transaction does not begin
        with a read: on SQLite in WAL mode a transaction that read first cannot later write once
        another connection has committed (the rate limiter's count, another request), and
        would fail as "database is locked". A session bound to a connection (a test's
        transaction) is used as it is, so it sees what the test wrote.
        """
        bind = session.bind
        if isinstance(bind, AsyncEngine):
            async with AsyncSession(bind, expire_on_commit=False) as own:
                return await self._refresh_on(own)
        return await self._refresh_on(session)

    async def _refresh_on(self, session: AsyncSession) -> Ruleset:
        version = await active_version(session)
        if version is not None and version != self._ruleset.version:
            ruleset = await stored_ruleset(session, version)
            log.info("ruleset_switched", from_version=self._ruleset.version, to_version=version)
            self._ruleset = ruleset
        self._checked_at = self._seconds_now()
        return self._ruleset
