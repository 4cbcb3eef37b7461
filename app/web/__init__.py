"""The web pages, served by the same app as the API: the public self-referral form and the
call-handler console (server-rendered, NHS.UK frontend, working without JavaScript)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.web import casework, console, public, reports_console, rules_console
from app.web.templating import STATIC_DIR

# Static files carry a version in their URLs (templating.static_url), so browsers may keep them:
# the form loads quickly on a phone with a poor signal.
STATIC_MAX_AGE_SECONDS = 24 * 60 * 60


class _CachedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["cache-control"] = f"public, max-age={STATIC_MAX_AGE_SECONDS}"
        return response


def install(app: FastAPI) -> None:
    """Add the web routes, their sign-in redirect and the static files to ``app``."""
    app.include_router(public.router)
    app.include_router(console.router)
    app.include_router(casework.router)
    app.include_router(reports_console.router)
    app.include_router(rules_console.router)
    console.install_handlers(app)
    app.mount("/static", _CachedStaticFiles(directory=STATIC_DIR), name="static")
