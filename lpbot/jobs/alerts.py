"""Alerts: a person should know (approval needed, a failure, a range exit, hedge margin).

``WebhookNotifier`` posts to a URL taken from the environment, in the payload shape the URL's
service expects: Slack (``{"text": ...}``), Discord (``{"content": ...}``) or Telegram
(``sendMessage`` with ``chat_id`` and ``text``). ``MemoryNotifier`` keeps them (tests, demo).
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Alert:
    # approval_needed | failure | range_exit | hedge_margin | rebalanced | price_* (stale,
    # disagree, depeg, unpriced) | ledger_outside_change | pool_unhealthy | pool_healthy |
    # risk_regime (a level change) | risk_action_refused
    kind: str
    title: str
    body: str = ""


class Notifier(Protocol):
    def notify(self, alert: Alert) -> None: ...


@dataclass
class MemoryNotifier:
    alerts: list[Alert] = field(default_factory=list)

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def webhook_payload(url: str, alert: Alert, chat_id: str | None = None) -> dict[str, str]:
    """The JSON body for ``url``'s service."""
    text = f"[lpbot] {alert.title}" + (f"\n{alert.body}" if alert.body else "")
    if "api.telegram.org" in url:
        return {"chat_id": chat_id or "", "text": text}
    if "discord" in url:
        return {"content": text[:2000]}
    return {"text": text}


@dataclass
class WebhookNotifier:
    """Posts alerts to the webhook in ``url_env`` (and ``chat_id_env`` for Telegram)."""

    url_env: str = "LPBOT_WEBHOOK_URL"
    chat_id_env: str = "LPBOT_TELEGRAM_CHAT_ID"
    timeout: float = 10.0

    def notify(self, alert: Alert) -> None:
        url = os.environ.get(self.url_env)
        if not url:
            log.warning("alert (no %s set): %s", self.url_env, alert.title)
            return
        body = json.dumps(webhook_payload(url, alert, os.environ.get(self.chat_id_env))).encode()
        try:
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except OSError as exc:  # the alert is logged either way; the job goes on
            log.error("webhook failed for alert %r: %s", alert.title, exc)
        except ValueError:  # not a URL urllib posts to (no scheme, say); it holds a token: unsaid
            log.error(
                "webhook failed for alert %r: %s is not an http(s) URL", alert.title, self.url_env
            )
