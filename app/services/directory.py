"""Keep the database's queues and ruleset records in step with the loaded ruleset."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Queue, RulesetRecord
from app.triage import Ruleset


async def sync_directory(session: AsyncSession, ruleset: Ruleset, now: datetime) -> None:
    """Upsert every queue the ruleset lists; queues it no longer lists become inactive.

    Queues are never deleted: open cases and past decisions still name them.
    """
    localities = {loc.id: loc for loc in ruleset.localities}
    existing = {q.id: q for q in (await session.scalars(select(Queue))).all()}
    listed = set()
    for config in ruleset.queues:
        listed.add(config.id)
        locality = localities.get(config.locality_id) if config.locality_id else None
        values = {
            "name": config.name,
            "kind": config.kind,
            "locality_id": config.locality_id,
            "locality_name": locality.name if locality else None,
            "open_24_7": config.open_24_7,
            "active": True,
        }
        queue = existing.get(config.id)
        if queue is None:
            session.add(Queue(id=config.id, updated_at=now, **values))
        elif any(getattr(queue, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(queue, key, value)
            queue.updated_at = now
    for queue_id, queue in existing.items():
        if queue_id not in listed and queue.active:
            queue.active = False
            queue.updated_at = now
    if await session.get(RulesetRecord, ruleset.version) is None:
        session.add(
            RulesetRecord(
                version=ruleset.version,
                label=ruleset.label,
                content=ruleset.content,
                first_loaded_at=now,
            )
        )
    await session.flush()
