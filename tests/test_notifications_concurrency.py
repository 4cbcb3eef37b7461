"""Two delivery workers racing over the same outbox: every message is sent exactly once.

Real commits, so a scratch database of its own (a fresh PostgreSQL database, or a SQLite file).
On PostgreSQL the workers claim with ``FOR UPDATE SKIP LOCKED`` on separate connections; on
SQLite every transaction takes the write lock, so their claims are serialised.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.migrate import upgrade
from app.models import Notification
from app.worker import DeliveryWorker
from tests.fake_notify import fake_api_key, running_fake_notify

MESSAGES = 60
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def scratch_settings(scratch_database_url: str) -> Settings:
    settings = Settings(environment="test", database_url=scratch_database_url)
    upgrade(settings)
    return settings


async def test_two_workers_racing_send_each_message_exactly_once(scratch_settings: Settings):
    now = datetime.now(UTC).replace(microsecond=0)
    with running_fake_notify() as fake:
        settings = scratch_settings.model_copy(
            update={
                "notify_api_key": SecretStr(fake_api_key()),
                "notify_base_url": fake.base_url,
                "notify_templates": {"acknowledgement_email": str(uuid.uuid4())},
            }
        )
        engine = create_engine(settings)
        try:
            rows = [
                {
                    "id": uuid.uuid4(),
                    "kind": "acknowledgement",
                    "channel": "email",
                    "status": "pending",
                    "dedupe_key": f"race:{index}",
                    "recipient": f"person{index}@example.com",
                    "personalisation": {"subject": "s", "body": "b", "reference": str(index)},
                    "details": {},
                    "attempts": 0,
                    "next_attempt_at": now - timedelta(seconds=index),
                    "created_at": now,
                    "updated_at": now,
                }
                for index in range(MESSAGES)
            ]
            async with create_session_factory(engine)() as session:
                await session.execute(insert(Notification), rows)
                await session.commit()

            async def drain(worker: DeliveryWorker) -> int:
                handled = 0
                while True:
                    count = await worker.run_once()
                    if count == 0:
                        return handled
                    handled += count

            workers = [
                DeliveryWorker(create_session_factory(engine), settings, batch_size=5)
                for _ in range(2)
            ]
            handled = await asyncio.gather(*(drain(w) for w in workers))

            sends = Counter(fake.references())
            assert len(sends) == MESSAGES
            assert set(sends.values()) == {1}, "a message was sent twice"
            assert fake.posts == MESSAGES
            assert sum(handled) == MESSAGES
            async with create_session_factory(engine)() as session:
                statuses = Counter((await session.scalars(select(Notification.status))).all())
                attempts = set((await session.scalars(select(Notification.attempts))).all())
            assert statuses == {"sending": MESSAGES} and attempts == {1}
            if engine.dialect.name == "postgresql":
                # Both workers took part: SKIP LOCKED let them work side by side.
                assert all(count > 0 for count in handled), handled
        finally:
            await engine.dispose()


async def test_frontdoor_worker_delivers_and_stops_on_sigterm(scratch_settings: Settings):
    """``frontdoor worker`` in a process of its own: without a Notify key it records the
    message in the local sink, and SIGTERM stops it cleanly."""
    import os
    import signal
    import sys

    now = datetime.now(UTC)
    message_id = uuid.uuid4()
    engine = create_engine(scratch_settings)
    try:
        async with create_session_factory(engine)() as session:
            session.add(
                Notification(
                    id=message_id,
                    kind="acknowledgement",
                    channel="email",
                    status="pending",
                    dedupe_key="cli:1",
                    recipient="someone@example.com",
                    personalisation={"subject": "s", "body": "b"},
                    details={},
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
        env.update(
            DATABASE_URL=scratch_settings.database_url,
            FRONTDOOR_ENVIRONMENT="test",
            FRONTDOOR_WORKER_POLL_SECONDS="0.2",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "worker",
            cwd=REPO_ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        status = None
        for _ in range(150):
            async with create_session_factory(engine)() as session:
                status = await session.scalar(
                    select(Notification.status).where(Notification.id == message_id)
                )
            if status == "sink":
                break
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
        assert status == "sink", stderr.decode()[-2000:]
        assert process.returncode == 0, stderr.decode()[-2000:]
    finally:
        await engine.dispose()


async def test_serve_on_the_embedded_default_delivers_in_process(scratch_settings: Settings):
    """The app's lifespan runs the delivery worker (here forced on): a self-referral's
    acknowledgement reaches the local sink without any other process."""
    import httpx

    from app.main import create_app
    from tests.factories import self_referral_body

    settings = scratch_settings.model_copy(
        update={"run_worker_in_process": True, "worker_poll_seconds": 0.05}
    )
    app = create_app(settings)
    body = self_referral_body(age=16)
    body["person"]["email"] = "sam@example.com"
    status = None
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/v1/self-referrals", json=body)).status_code == 201
        for _ in range(100):
            async with app.state.session_factory() as session:
                status = await session.scalar(
                    select(Notification.status).where(Notification.kind == "acknowledgement")
                )
            if status == "sink":
                break
            await asyncio.sleep(0.05)
    assert status == "sink"
