"""The delivery worker: sends what the outbox holds through GOV.UK Notify, exactly once each.

Each round (docs/domain/signposting-and-messages.md):

1. **Claim** due messages in a short transaction of its own: rows ``pending`` (or ``sending``)
   whose ``next_attempt_at`` has come and that nobody holds. On PostgreSQL the candidates are
   locked ``FOR UPDATE SKIP LOCKED``, so workers in other processes and replicas take different
   rows without waiting; on SQLite every transaction takes the write lock (``app.db``), so
   claims are serialised. Each claim is a conditional update (``claimed_until`` past), so two
   claimers can never both win a row, and the claim lapses if its worker dies.
2. **Act** outside any transaction: send a pending message (its id is the Notify
   ``reference``), or ask Notify how a sent one is doing. A message whose claim lapsed without
   a recorded send is first looked up in Notify by reference, so a crash between sending and
   recording never sends it twice.
3. **Record** the result in another short transaction, only while the claim is still ours.

429, 5xx and lost connections are retried with exponential backoff up to
``notify_max_attempts``; any other 4xx is a ``permanent_failure``. With no Notify key the local
sink records each message as ``sink`` and sends nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock
from app.config import Settings
from app.models import Case, Notification

log = structlog.get_logger(__name__)

CLAIMABLE = ("pending", "sending")
STATUS_CHECK_INTERVAL = timedelta(seconds=60)
# Notify's statuses (GET /v2/notifications/{id}) and ours.
NOTIFY_DELIVERED = frozenset({"delivered", "sent"})  # "sent": international SMS, no receipt
NOTIFY_PERMANENT = frozenset({"permanent-failure", "validation-failed", "virus-scan-failed"})
NOTIFY_FAILED = frozenset({"temporary-failure", "technical-failure"})


class SendError(Exception):
    """Notify refused or could not be reached: the HTTP status (503 when there was none)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code} {message}")
        self.status_code = status_code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status_code == 429 or self.status_code >= 500


class Sender(Protocol):
    """How the worker reaches GOV.UK Notify (blocking calls, run in a thread)."""

    def send(
        self,
        channel: str,
        recipient: str,
        template_id: str,
        personalisation: Mapping[str, Any],
        reference: str,
    ) -> str:
        """Send one message; Notify's id for it."""
        ...

    def status(self, provider_id: str) -> str:
        """Notify's status for a message it accepted."""
        ...

    def find(self, reference: str) -> str | None:
        """Notify's id for the message sent with this reference, if it has one."""
        ...


class NotifySender:
    """``Sender`` through GOV.UK Notify's maintained client (``notifications-python-client``)."""

    def __init__(self, api_key: str, base_url: str, timeout_seconds: float = 10.0) -> None:
        from notifications_python_client.notifications import NotificationsAPIClient

        self._client = NotificationsAPIClient(  # type: ignore[no-untyped-call]
            api_key, base_url=base_url, timeout=timeout_seconds
        )

    def _call(self, method: str, **kwargs: Any) -> Any:
        from notifications_python_client.errors import APIError

        try:
            return getattr(self._client, method)(**kwargs)
        except APIError as exc:
            # The status and Notify's error class only: its message can quote the address.
            raise SendError(exc.status_code, type(exc).__name__) from None

    def send(
        self,
        channel: str,
        recipient: str,
        template_id: str,
        personalisation: Mapping[str, Any],
        reference: str,
    ) -> str:
        if channel == "sms":
            response = self._call(
                "send_sms_notification",
                phone_number=recipient,
                template_id=template_id,
                personalisation=dict(personalisation),
                reference=reference,
            )
        else:
            response = self._call(
                "send_email_notification",
                email_address=recipient,
                template_id=template_id,
                personalisation=dict(personalisation),
                reference=reference,
            )
        return str(response["id"])

    def status(self, provider_id: str) -> str:
        return str(self._call("get_notification_by_id", id=provider_id)["status"])

    def find(self, reference: str) -> str | None:
        found = self._call("get_all_notifications", reference=reference)
        notifications = found.get("notifications") or []
        return str(notifications[0]["id"]) if notifications else None


@dataclass(frozen=True, slots=True)
class Claimed:
    """What the worker holds of one claimed message (a snapshot, outside any session)."""

    id: uuid.UUID
    kind: str
    channel: str
    status: str
    recipient: str | None
    personalisation: dict[str, Any]
    details: dict[str, Any]
    case_id: uuid.UUID | None
    attempts: int
    provider_id: str | None
    claimed_until: datetime


class DeliveryWorker:
    """Claims, sends and records messages; ``run_once`` is one round, ``run`` loops."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        clock: Clock | None = None,
        sender: Sender | None = None,
        batch_size: int = 20,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.clock = clock or Clock()
        if sender is None and settings.notify_api_key is not None:
            sender = NotifySender(
                settings.notify_api_key.get_secret_value(), settings.notify_base_url
            )
        self.sender = sender  # None: the local sink
        self.batch_size = batch_size
        self.claim_for = timedelta(seconds=settings.worker_claim_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; a failing round is logged and the loop goes on."""
        while not stop.is_set():
            handled = 0
            try:
                handled = await self.run_once()
            except Exception as exc:  # the database may be away: try again next round
                log.warning("delivery_round_failed", error_type=type(exc).__name__)
            if handled:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.worker_poll_seconds)

    async def run_once(self) -> int:
        """One round: claim due messages, act on each, record. How many were handled."""
        claimed = await self.claim()
        for message in claimed:
            await self._handle(message)
        return len(claimed)

    # Claiming ---------------------------------------------------------------------------------

    async def claim(self) -> list[Claimed]:
        now = self.clock.now()
        until = now + self.claim_for
        async with self.session_factory() as session:
            candidates = (
                select(Notification.id)
                .where(
                    Notification.status.in_(CLAIMABLE),
                    Notification.next_attempt_at <= now,
                    or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
                )
                .order_by(Notification.next_attempt_at, Notification.id)
                .limit(self.batch_size)
            )
            if (await session.connection()).dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list((await session.scalars(candidates)).all())
            won: list[uuid.UUID] = []
            for message_id in ids:
                result = await session.execute(
                    update(Notification)
                    .where(
                        Notification.id == message_id,
                        Notification.status.in_(CLAIMABLE),
                        or_(
                            Notification.claimed_until.is_(None),
                            Notification.claimed_until < now,
                        ),
                    )
                    .values(claimed_until=until, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0) == 1:
                    won.append(message_id)
            rows = (
                (
                    await session.scalars(
                        select(Notification)
                        .where(Notification.id.in_(won))
                        .order_by(Notification.next_attempt_at, Notification.id)
                    )
                ).all()
                if won
                else []
            )
            claimed = [
                Claimed(
                    id=row.id,
                    kind=row.kind,
                    channel=row.channel,
                    status=row.status,
                    recipient=row.recipient,
                    personalisation=dict(row.personalisation),
                    details=dict(row.details or {}),
                    case_id=row.case_id,
                    attempts=row.attempts,
                    provider_id=row.provider_id,
                    claimed_until=until,
                )
                for row in rows
            ]
            await session.commit()
        return claimed

    # Acting -----------------------------------------------------------------------------------

    async def _handle(self, message: Claimed) -> None:
        if message.status == "sending" and message.provider_id is not None:
            await self._check_status(message)
            return
        if message.kind == "breach_warning":
            reason = await self._breach_warning_not_needed(message)
            if reason is not None:
                await self._record(message, status="not_sent", last_error=reason)
                return
        if message.recipient is None:
            await self._record(message, status="not_sent", last_error="no recipient")
            return
        if self.sender is None:
            # The local sink: stored and shown to admins, sent nowhere.
            now = self.clock.now()
            await self._record(
                message,
                status="sink",
                attempts=message.attempts + 1,
                sent_at=now,
                provider_status="local sink",
            )
            log.info("notification_sink", notification_id=str(message.id), kind=message.kind)
            return
        template_id = self.settings.notify_templates.get(f"{message.kind}_{message.channel}")
        if not template_id:
            await self._record(
                message,
                status="not_sent",
                last_error=f"no Notify template configured for {message.kind}_{message.channel} "
                "(FRONTDOOR_NOTIFY_TEMPLATES)",
            )
            return
        if message.status == "sending":
            # Claimed before and never recorded: did Notify get it? Never send it twice.
            try:
                provider_id = await asyncio.to_thread(self.sender.find, str(message.id))
            except SendError as exc:
                # Not known yet whether Notify has it: stay "sending" and ask again later.
                await self._retry_or_fail(message, exc, retry_status="sending")
                return
            if provider_id is not None:
                await self._record_sent(message, provider_id, attempts=message.attempts)
                return
        await self._send(message, template_id)

    async def _send(self, message: Claimed, template_id: str) -> None:
        assert self.sender is not None and message.recipient is not None
        # Mark it sending (and count the attempt) before calling Notify: a crash after this
        # point leaves a row that the next claimer first looks up in Notify by reference.
        attempts = message.attempts + 1
        if not await self._record(message, status="sending", attempts=attempts, keep_claim=True):
            return
        try:
            provider_id = await asyncio.to_thread(
                self.sender.send,
                message.channel,
                message.recipient,
                template_id,
                message.personalisation,
                str(message.id),
            )
        except SendError as exc:
            await self._retry_or_fail(message, exc, attempts=attempts)
            return
        except Exception as exc:  # a bug or an unexpected failure: retried like a 5xx
            await self._retry_or_fail(
                message, SendError(503, type(exc).__name__), attempts=attempts
            )
            return
        await self._record_sent(message, provider_id, attempts=attempts)

    async def _record_sent(self, message: Claimed, provider_id: str, *, attempts: int) -> None:
        now = self.clock.now()
        await self._record(
            message,
            status="sending",
            attempts=attempts,
            provider_id=provider_id,
            provider_status="created",
            sent_at=now,
            next_attempt_at=now + STATUS_CHECK_INTERVAL,
            last_error=None,
        )
        log.info("notification_sent", notification_id=str(message.id), kind=message.kind)

    async def _retry_or_fail(
        self,
        message: Claimed,
        error: SendError,
        *,
        attempts: int | None = None,
        retry_status: str = "pending",
    ) -> None:
        """After a failed call: retry later with backoff (429, 5xx, no answer) until the
        attempts run out (``failed``), or ``permanent_failure`` (any other 4xx)."""
        attempts = message.attempts if attempts is None else attempts
        now = self.clock.now()
        last_error = f"{error.status_code} {error.message}"[:300]
        if not error.retryable:
            await self._record(message, status="permanent_failure", last_error=last_error)
        elif retry_status == "pending" and attempts >= self.settings.notify_max_attempts:
            await self._record(message, status="failed", last_error=last_error)
        else:
            await self._record(
                message,
                status=retry_status,
                next_attempt_at=now + self.backoff(max(attempts, 1)),
                last_error=last_error,
            )
        log.info(
            "notification_attempt_failed",
            notification_id=str(message.id),
            status_code=error.status_code,
            attempts=attempts,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait before the next attempt: base * 2^(attempts-1) seconds, capped."""
        seconds = self.settings.notify_retry_base_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self.settings.notify_retry_max_seconds))

    async def _check_status(self, message: Claimed) -> None:
        assert self.sender is not None and message.provider_id is not None
        now = self.clock.now()
        try:
            status = await asyncio.to_thread(self.sender.status, message.provider_id)
        except SendError as exc:
            await self._record(
                message,
                status="sending",
                next_attempt_at=now + STATUS_CHECK_INTERVAL,
                last_error=f"status check: {exc.status_code} {exc.message}"[:300],
            )
            return
        if status in NOTIFY_DELIVERED:
            await self._record(
                message, status="delivered", provider_status=status, delivered_at=now
            )
        elif status in NOTIFY_PERMANENT:
            await self._record(
                message, status="permanent_failure", provider_status=status, last_error=status
            )
        elif status in NOTIFY_FAILED:
            await self._record(message, status="failed", provider_status=status, last_error=status)
        else:
            await self._record(
                message,
                status="sending",
                provider_status=status[:32],
                next_attempt_at=now + STATUS_CHECK_INTERVAL,
            )

    async def _breach_warning_not_needed(self, message: Claimed) -> str | None:
        """Why a breach warning is no longer owed, or None: first contact made, case closed,
        or a later respond-by time superseded it."""
        if message.case_id is None:
            return "no case"
        async with self.session_factory() as session:
            found = (
                await session.execute(
                    select(Case.status, Case.first_contact_at, Case.respond_by_at).where(
                        Case.id == message.case_id
                    )
                )
            ).first()
            await session.rollback()
        if found is None or found.status == "closed":
            return "the case is closed"
        if found.first_contact_at is not None:
            return "the case has had its first contact"
        warned_for = message.details.get("respond_by_at")
        if found.respond_by_at is None or found.respond_by_at.isoformat() != warned_for:
            return "superseded: the case's respond-by time changed"
        return None

    # Recording --------------------------------------------------------------------------------

    async def _record(
        self, message: Claimed, *, status: str, keep_claim: bool = False, **values: Any
    ) -> bool:
        """Write the outcome while the claim is still ours; whether it was."""
        now = self.clock.now()
        async with self.session_factory() as session:
            result = await session.execute(
                update(Notification)
                .where(
                    Notification.id == message.id,
                    Notification.claimed_until == message.claimed_until,
                )
                .values(
                    status=status,
                    updated_at=now,
                    claimed_until=message.claimed_until if keep_claim else None,
                    **values,
                )
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        held = getattr(result, "rowcount", 0) == 1
        if not held:
            log.warning("notification_claim_lost", notification_id=str(message.id))
        return held


def run_in_process(settings: Settings) -> bool:
    """Whether ``frontdoor serve`` delivers messages itself: by default on the embedded SQLite
    development service only (a PostgreSQL deployment runs ``frontdoor worker``)."""
    if settings.run_worker_in_process is not None:
        return settings.run_worker_in_process
    return settings.is_sqlite and settings.environment == "development"


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """``frontdoor worker``: the delivery worker against the configured database."""
    from app.db import create_engine, create_session_factory

    engine = create_engine(settings)
    try:
        worker = DeliveryWorker(create_session_factory(engine), settings)
        log.info("worker_started", sink=worker.sender is None, database=engine.dialect.name)
        await worker.run(stop)
    finally:
        await engine.dispose()
