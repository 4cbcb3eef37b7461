"""Activation on one server process is seen by another on the same database, without a restart.

Two real ``uvicorn`` processes serve one database of their own (a fresh SQLite file, or a fresh
PostgreSQL database on the test server: ``FRONTDOOR_TEST_DATABASE``), each checking the active
version every second. A candidate published and activated through process A decides the next
referrals taken by process B once B has checked; the stored decision names that version; rolling
back through B is seen by A the same way; neither process restarts. Waits poll until a generous
deadline (never a timed assertion: the check interval is what bounds the switch in practice).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.migrate import upgrade
from app.security import Role, issue_staff_token
from app.triage import load_ruleset
from tests.conftest import TEST_JWT_SECRET
from tests.factories import referral_body
from tests.test_rulesets_store import candidate_text

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK_SECONDS = 1
DEADLINE_SECONDS = 30  # start-up or a switch taking this long is a failure, not slowness
DEFAULT = load_ruleset()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, name: str, database_url: str, log_dir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        env = {
            **os.environ,
            "FRONTDOOR_ENVIRONMENT": "test",
            "FRONTDOOR_DATABASE_URL": database_url,
            "FRONTDOOR_JWT_SECRET": TEST_JWT_SECRET,
            "FRONTDOOR_RULESET_CHECK_SECONDS": str(CHECK_SECONDS),
            "FRONTDOOR_LOG_JSON": "true",
        }
        env.pop("DATABASE_URL", None)
        env.pop("FRONTDOOR_RULESET_PATH", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "app.main:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def switches(self) -> list[tuple[str, str]]:
        """(from, to) of each ``ruleset_switched`` the process logged."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "ruleset_switched":
                found.append((event["from_version"], event["to_version"]))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def _until_ready(server: Server, client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.tail()
        try:
            if (await client.get(f"{server.base_url}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{server.name} did not become ready:\n{server.tail()}")


@pytest.fixture
def process_database(scratch_database_url: str) -> str:
    upgrade(Settings(environment="test", database_url=scratch_database_url))
    return scratch_database_url


@pytest.fixture
def servers(process_database: str, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    started: list[Server] = []
    try:
        # A first, so it alone writes the first activation (B then finds it: no race to test).
        started.append(Server("a", process_database, tmp_path))
        asyncio.run(_ready_one(started[0]))
        started.append(Server("b", process_database, tmp_path))
        asyncio.run(_ready_one(started[1]))
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


async def _ready_one(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await _until_ready(server, client)


def _headers(role: Role, subject: str) -> dict[str, str]:
    settings = Settings(environment="test", jwt_secret=TEST_JWT_SECRET)  # type: ignore[arg-type]
    token = issue_staff_token(
        settings, subject=subject, role=role, queue_ids=None, now=datetime.now(UTC)
    )
    return {"Authorization": f"Bearer {token}"}


ADMIN = _headers(Role.ADMIN, "user-admin-procs")
CALL_HANDLER = _headers(Role.CALL_HANDLER, "user-handler-procs")


async def _refer(client: httpx.AsyncClient, server: Server) -> dict[str, Any]:
    response = await client.post(
        f"{server.base_url}/v1/referrals",
        json=referral_body("phone", risk={"immediate_danger": True}),
        headers={**CALL_HANDLER, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _until_decides_with(
    client: httpx.AsyncClient, server: Server, version: str
) -> tuple[dict[str, Any], float]:
    """Refer through ``server`` until its decision names ``version``; the referral and how long
    that took (reported, not asserted)."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_SECONDS:
        referral = await _refer(client, server)
        if referral["decision"]["ruleset_version"] == version:
            return referral, time.monotonic() - started
        await asyncio.sleep(0.2)
    raise AssertionError(f"{server.name} still decides with another version than {version}")


async def test_activation_on_one_process_is_seen_by_another_without_restart(servers):
    a, b = servers
    pids = (a.process.pid, b.process.pid)
    async with httpx.AsyncClient(timeout=15) as client:
        first = await _refer(client, b)
        assert first["decision"]["ruleset_version"] == DEFAULT.version

        published = await client.post(
            f"{a.base_url}/v1/rulesets",
            content=candidate_text("procs-east"),
            headers={**ADMIN, "Content-Type": "application/yaml"},
        )
        assert published.status_code == 201, published.text
        version = published.json()["version"]
        activated = await client.post(f"{a.base_url}/v1/rulesets/{version}/activate", headers=ADMIN)
        assert activated.status_code == 200, activated.text

        switched, took = await _until_decides_with(client, b, version)
        assert switched["decision"]["route"]["queue_id"] == "crisis-east"
        print(f"process b decided with the activated version after {took:.2f} s")
        # The decision B made is stored with the version that made it, as A reads it back.
        read = await client.get(f"{a.base_url}/v1/referrals/{switched['id']}", headers=ADMIN)
        assert read.status_code == 200, read.text
        assert read.json()["decision"]["ruleset_version"] == version
        # A, which activated it, decides with it too (its own next check).
        await _until_decides_with(client, a, version)
        # Both processes agree on what is live.
        for server in (a, b):
            listed = (await client.get(f"{server.base_url}/v1/rulesets", headers=ADMIN)).json()
            assert listed["active_version"] == version

        # Roll back through B; A follows.
        rolled = await client.post(
            f"{b.base_url}/v1/rulesets/{DEFAULT.version}/activate", headers=ADMIN
        )
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["activation"]["from_version"] == version
        back, _ = await _until_decides_with(client, a, DEFAULT.version)
        assert back["decision"]["route"]["queue_id"] == "crisis"
        earlier = await client.get(f"{b.base_url}/v1/referrals/{switched['id']}", headers=ADMIN)
        assert earlier.json()["decision"]["ruleset_version"] == version

    # Neither process restarted.
    assert (a.process.pid, b.process.pid) == pids
    assert a.process.poll() is None and b.process.poll() is None
    # Each logged the switches it made, by version id.
    assert (DEFAULT.version, version) in b.switches()
    assert (version, DEFAULT.version) in a.switches()
