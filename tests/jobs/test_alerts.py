"""Webhook alerts reach a real HTTP endpoint on loopback, in each service's payload shape."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from lpbot.jobs.alerts import Alert, WebhookNotifier, webhook_payload


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/slack", received
    finally:
        server.shutdown()


def test_an_approval_alert_is_posted_to_the_webhook(
    endpoint: tuple[str, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = endpoint
    monkeypatch.setenv("LPBOT_WEBHOOK_URL", url)
    WebhookNotifier().notify(Alert("approval_needed", "rebalance abc awaits approval", "why"))
    assert received == [{"text": "[lpbot] rebalance abc awaits approval\nwhy"}]


def test_payload_shapes_for_discord_and_telegram() -> None:
    alert = Alert("failure", "job failed", "details")
    assert webhook_payload("https://discord.example/api/webhooks/1/x", alert) == {
        "content": "[lpbot] job failed\ndetails"
    }
    assert webhook_payload("https://api.telegram.org/botX/sendMessage", alert, "42") == {
        "chat_id": "42",
        "text": "[lpbot] job failed\ndetails",
    }


def test_an_unreachable_webhook_does_not_stop_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LPBOT_WEBHOOK_URL", "http://127.0.0.1:9/nothing-listens")
    WebhookNotifier(timeout=1.0).notify(Alert("failure", "x"))  # logged, not raised


def test_a_webhook_url_without_a_scheme_is_logged_without_its_token_and_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped webhook URL must not break what alerts (a takeover, a lost lock) and must
    not put the URL's token in the log."""
    monkeypatch.setenv("LPBOT_WEBHOOK_URL", "hooks.slack.com/services/T000/B000/s3cr3tT0ken")
    WebhookNotifier().notify(Alert("takeover", "lpbot run: 1@b is now active", "body"))
    assert "webhook failed" in caplog.text and "LPBOT_WEBHOOK_URL" in caplog.text
    assert "s3cr3tT0ken" not in caplog.text
