"""Web pages never commit a half-done write: a page that catches a domain error rolls the
request's transaction back before it renders the error (the API gets the same from its error
handler, which the exception reaches before the session would commit)."""

from __future__ import annotations

import ast
import inspect
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app import errors
from app.errors import FrontDoorError, IdempotencyKeyReused, Unprocessable
from app.services import intake
from app.web import console
from tests.conftest import count_rows
from tests.test_web_forms import csrf_from, phone_form, sign_in

WEB_DIR = Path(__file__).resolve().parent.parent / "app" / "web"
# The page modules checked in the source (add each new one: the case pages' casework.py too).
PAGE_MODULES = ("public.py", "console.py", "casework.py")
WRITTEN_TABLES = ("referrals", "persons", "cases", "triage_decisions", "case_events")
DOMAIN_ERRORS = {
    name
    for name, value in vars(errors).items()
    if inspect.isclass(value) and issubclass(value, FrontDoorError)
}


def _caught_names(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return set()
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {node.id if isinstance(node, ast.Name) else ast.unparse(node) for node in nodes}


def _is_session_rollback(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Await)
        and ast.unparse(statement.value.value) == "session.rollback()"
    )


def _handlers_needing_rollback() -> list[tuple[str, ast.ExceptHandler]]:
    """Each ``except`` of a domain error inside a page function that holds the request session."""
    found = []
    for path in (WEB_DIR / name for name in PAGE_MODULES):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.AsyncFunctionDef):
                continue
            if "session" not in {a.arg for a in function.args.args + function.args.kwonlyargs}:
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ExceptHandler) and _caught_names(node) & DOMAIN_ERRORS:
                    found.append((f"{path.name}:{function.name}:{node.lineno}", node))
    return found


def test_every_page_that_catches_a_domain_error_rolls_back_first() -> None:
    """Checked in the source, so a new page cannot forget it: the first thing each such
    ``except`` does is ``await session.rollback()`` (or it re-raises)."""
    handlers = _handlers_needing_rollback()
    # The self-referral form (rate limit, reused key, refusal) and the phone form at least.
    assert len(handlers) >= 5, [where for where, _ in handlers]
    for where, handler in handlers:
        first = handler.body[0]
        assert _is_session_rollback(first) or isinstance(first, ast.Raise), where


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unprocessable("refused after writing", field="person"), 422),
        (IdempotencyKeyReused("reused after writing"), 409),
    ],
    ids=["unprocessable", "idempotency-key-reused"],
)
async def test_a_phone_referral_refused_after_writing_commits_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    staff_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
    error: FrontDoorError,
    status: int,
) -> None:
    real = intake.submit_referral

    async def write_then_refuse(*args: Any, **kwargs: Any) -> Any:
        await real(*args, **kwargs)
        raise error

    monkeypatch.setattr(console, "submit_referral", write_then_refuse)
    await sign_in(client, staff_headers)
    csrf = csrf_from((await client.get("/console/referrals/new")).text)
    response = await client.post(
        "/console/referrals/new",
        data={
            "csrf_token": csrf,
            "action": "submit",
            "submission_id": str(uuid.uuid4()),
            **phone_form(),
        },
    )
    assert response.status_code == status
    # The form is shown again with the caller's answers, and nothing was stored.
    assert 'value="Consoletest"' in response.text
    for table in WRITTEN_TABLES:
        assert await count_rows(session, table) == 0, table
