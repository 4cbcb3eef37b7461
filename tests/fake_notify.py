"""A fake GOV.UK Notify API the tests start on 127.0.0.1 (never the internet).

It answers the calls ``notifications-python-client`` makes with Notify-shaped JSON:
``POST /v2/notifications/email`` and ``/sms`` (201 with ``id``, ``reference``, ``content``,
``template``), ``GET /v2/notifications/{id}`` (the notification and its ``status``) and
``GET /v2/notifications?reference=`` (``{"notifications": [...]}``). Errors are Notify's shape:
``{"status_code": 429, "errors": [{"error": "RateLimitError", "message": "..."}]}``. A test
scripts failures (``fail_next``) and delivery statuses (``status_of``), and reads what was sent.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ERROR_NAMES = {
    400: "BadRequestError",
    403: "AuthError",
    429: "RateLimitError",
    500: "Exception",
    503: "ServiceUnavailable",
}


def fake_api_key() -> str:
    """A key in Notify's shape: name, service id (36), secret (36)."""
    return f"frontdoor_test-{uuid.uuid4()}-{uuid.uuid4()}"


@dataclass
class FakeNotify:
    base_url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)
    posts: int = 0
    fail_next: list[int] = field(default_factory=list)
    """Status codes to answer the next POSTs with, in order, before succeeding."""
    status_of: str = "delivered"
    """The delivery status GET /v2/notifications/{id} reports."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def references(self) -> list[str]:
        with self.lock:
            return [m["reference"] for m in self.sent]

    def preload(self, reference: str) -> str:
        """A notification Notify already holds (as if sent before a crash); its id."""
        notification_id = str(uuid.uuid4())
        with self.lock:
            self.sent.append({"id": notification_id, "reference": reference, "type": "email"})
        return notification_id


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNotify

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int) -> None:
        name = ERROR_NAMES.get(status, "Exception")
        self._answer(status, {"status_code": status, "errors": [{"error": name, "message": name}]})

    def do_POST(self) -> None:
        fake = self.fake
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._error(403)
            return
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        kind = self.path.rsplit("/", 1)[-1]
        with fake.lock:
            fake.posts += 1
            failure = fake.fail_next.pop(0) if fake.fail_next else None
        if failure is not None:
            self._error(failure)
            return
        if kind not in ("email", "sms"):
            self._error(400)
            return
        notification_id = str(uuid.uuid4())
        record = {
            "id": notification_id,
            "reference": payload.get("reference"),
            "type": kind,
            "to": payload.get("email_address") or payload.get("phone_number"),
            "template_id": payload.get("template_id"),
            "personalisation": payload.get("personalisation"),
        }
        with fake.lock:
            fake.sent.append(record)
        personalisation = payload.get("personalisation") or {}
        self._answer(
            201,
            {
                "id": notification_id,
                "reference": payload.get("reference"),
                "content": {
                    "body": personalisation.get("body", ""),
                    "subject": personalisation.get("subject", ""),
                    "from_email": "frontdoor@notifications.service.gov.uk",
                },
                "uri": f"{fake.base_url}/v2/notifications/{notification_id}",
                "template": {
                    "id": payload.get("template_id"),
                    "version": 1,
                    "uri": f"{fake.base_url}/v2/template/{payload.get('template_id')}",
                },
            },
        )

    def do_GET(self) -> None:
        fake = self.fake
        url = urlparse(self.path)
        if url.path == "/v2/notifications":
            reference = parse_qs(url.query).get("reference", [None])[0]
            with fake.lock:
                found = [
                    {"id": m["id"], "reference": m["reference"], "status": fake.status_of}
                    for m in fake.sent
                    if m["reference"] == reference
                ]
            self._answer(200, {"notifications": found, "links": {}})
            return
        notification_id = url.path.rsplit("/", 1)[-1]
        with fake.lock:
            match = next((m for m in fake.sent if m["id"] == notification_id), None)
        if match is None:
            self._error(400)
            return
        self._answer(
            200,
            {
                "id": notification_id,
                "reference": match["reference"],
                "type": match["type"],
                "status": fake.status_of,
            },
        )


@contextmanager
def running_fake_notify() -> Iterator[FakeNotify]:
    """The fake on a free 127.0.0.1 port, stopped afterwards."""
    fake = FakeNotify()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
