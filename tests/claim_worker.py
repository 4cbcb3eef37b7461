"""A claiming worker in its own OS process (used by tests/test_claim_concurrency.py).

``python -m tests.claim_worker DATABASE_URL QUEUE_ID WORKER_ID`` opens its own engine, prints
``ready``, waits for a line on stdin (so every worker starts at once), then claims from the
queue through the service function, one committed transaction per claim, until there is
nothing left; it prints each claimed case id on its own line, then ``done <count>``.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import select, text

from app.clock import Clock
from app.config import Settings
from app.db import create_engine, create_session_factory
from app.models import Queue
from app.security import Actor, Role
from app.services.claims import NothingToClaim, claim_next


async def claim_until_empty(database_url: str, queue_id: str, worker_id: str) -> int:
    settings = Settings(environment="test", database_url=database_url)
    engine = create_engine(settings)
    factory = create_session_factory(engine)
    actor = Actor(
        kind="staff", id=worker_id, role=Role.PRACTITIONER, queue_ids=frozenset({queue_id})
    )
    clock = Clock()
    async with factory() as session:
        # Connect and read the queue before saying ready, so the race starts at the claims.
        await session.execute(text("SELECT 1"))
        queue_kind = await session.scalar(select(Queue.kind).where(Queue.id == queue_id))
        assert queue_kind is not None
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    count = 0
    try:
        while True:
            async with factory() as session:
                try:
                    claimed = await claim_next(
                        session,
                        queue_id=queue_id,
                        queue_kind=queue_kind,
                        actor=actor,
                        now=clock.now(),
                    )
                    case_id = claimed.case.id
                    await session.commit()
                except NothingToClaim:
                    break
            # Reported only once committed: a claim that did not commit is not a claim.
            print(case_id, flush=True)
            count += 1
    finally:
        await engine.dispose()
    print(f"done {count}", flush=True)
    return count


def main(argv: list[str]) -> int:
    database_url, queue_id, worker_id = argv
    asyncio.run(claim_until_empty(database_url, queue_id, worker_id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
