"""A stored market regime as ``lpbot status`` and the dashboard show it (``lpbot.jobs.regime``
stores it). Light: ``status`` imports it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def regime_view(data: Any, at: Any) -> dict[str, Any] | None:
    """A stored ``risk_regime`` entry's data (a dict, or its JSON text) as ``stored_regime``
    returns it."""
    if isinstance(data, str):
        data = json.loads(data)
    if not isinstance(data, dict):
        return None
    entry_at = at.isoformat() if isinstance(at, datetime) else str(at).replace(" ", "T")
    state = data.get("state") or {}
    at = state.get("updated_at")
    since = state.get("since")
    return {
        "regime": str(state.get("level", "normal")),
        "at": _iso(at) if at is not None else entry_at,
        "since": _iso(since) if since else None,
        "reasons": [str(r) for r in state.get("reasons", [])],
        "inputs": dict(data.get("inputs") or {}),
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(float(t), UTC).isoformat()
