"""Browser tests: Debian's Chromium driven by Playwright against a real server.

The server is ``frontdoor serve`` (``python -m app.cli serve``) in a subprocess on a free
127.0.0.1 port, with its own temporary SQLite database (migrated at start-up, as the embedded
default always is). Pages are checked with axe-core and photographed at phone and desktop widths
into ``artifacts/screenshots/`` (ignored by git) for a reviewer to look at.

Needs ``/usr/bin/chromium`` (apt package ``chromium``), the ``playwright`` Python package (never
``playwright install``: no browser download) and ``node_modules/axe-core`` (``npm ci``). When one
is missing the tests are skipped locally and fail under ``CI=true``; ``.ci/setup-browser.sh``
installs them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from app.config import Settings
from app.security import Role, issue_staff_token

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
JWT_SECRET = "browser-test-secret-" + "y" * 40
SERVER_START_TIMEOUT_SECONDS = 30.0
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _missing_requirements() -> list[str]:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not AXE_SCRIPT.exists():
        missing.append(f"{AXE_SCRIPT.relative_to(ROOT)} (npm ci)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (pip install -e '.[dev]')")
    return missing


@pytest.fixture(scope="session")
def browser_requirements() -> None:
    """Skip locally, fail in CI, when something the browser tests need is not installed."""
    missing = _missing_requirements()
    if not missing:
        return
    message = "browser tests need " + ", ".join(missing) + "; run .ci/setup-browser.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def server_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    database = tmp_path_factory.mktemp("browser-db") / "frontdoor-browser.db"
    return Settings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{database}",
        jwt_secret=JWT_SECRET,
    )


@pytest.fixture(scope="session")
def live_server(
    browser_requirements: None,
    server_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``frontdoor serve`` on a free port; yields its base URL and stops it afterwards."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FRONTDOOR_") and key != "DATABASE_URL"
    }
    env.update(
        FRONTDOOR_ENVIRONMENT="test",
        FRONTDOOR_DATABASE_URL=server_settings.database_url,
        FRONTDOOR_JWT_SECRET=JWT_SECRET,
        FRONTDOOR_LOG_LEVEL="WARNING",
    )
    log_path = tmp_path_factory.mktemp("browser-server") / "server.log"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_ready(process, base_url, log_path)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited at start-up:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the server did not become ready:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def staff_token(server_settings: Settings) -> Any:
    """``staff_token(role="call_handler")`` → a bearer token the live server accepts."""

    def make(role: str = "call_handler", name: str = "Casey Caller") -> str:
        return issue_staff_token(
            server_settings,
            subject=f"browser-{role}",
            role=Role(role),
            name=name,
            now=datetime.now(UTC),
        )

    return make


@pytest.fixture(scope="module")
def browser(browser_requirements: None) -> Iterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh browser profile per test; fails the test on any console error (such as a
    Content-Security-Policy violation) or uncaught script error."""
    context = browser.new_context(base_url=live_server, viewport=DESKTOP)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A form shown again with its errors is answered 422, and Chromium logs that status for
        # the page itself; any other failed load (a script, a stylesheet) is a problem.
        if message.type != "error":
            return
        if "status of 422" in message.text and message.location.get("url") == page.url:
            return
        problems.append(f"console {message.type}: {message.text} ({message.location})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.set_default_timeout(10_000)
    try:
        yield page
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def check_page(page: Page, name: str) -> None:
    """axe-core finds nothing (WCAG 2.2 AA) at phone and desktop widths; screenshot both."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        violations = run_axe(page)
        assert not violations, f"{name} at {viewport['width']}px: " + "; ".join(violations)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport['width']}.png"), full_page=True)


def run_axe(page: Page) -> list[str]:
    """axe-core's violations on the page, one line each (rule, impact, first elements)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: an injected <script> would be blocked by the
        # page's own Content-Security-Policy, which these tests keep switched on.
        page.evaluate(AXE_SCRIPT.read_text() + "\n;undefined")
    violations: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await window.axe.run(document, {
                runOnly: {type: 'tag', values: tags},
                resultTypes: ['violations'],
            })
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
            }))
        }""",
        AXE_TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['targets'])}" for v in violations
    ]
