"""The rebalance state machine, persisted through a small repository port.

PLANNED -> SIMULATED -> APPROVED -> SIGNED -> SUBMITTED -> CONFIRMED, or FAILED / EXPIRED.
Each rebalance has an idempotency key (a second plan of the same thing returns the same row);
each move is a compare-and-set on the current state, so two processes cannot both take a step.
The store (``lpbot.store``) implements ``RebalanceRepo``; ``lpbot.testing.fakes`` has an
in-memory one for unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class RebalanceState(StrEnum):
    PLANNED = "PLANNED"
    SIMULATED = "SIMULATED"
    APPROVED = "APPROVED"
    SIGNED = "SIGNED"
    SUBMITTED = "SUBMITTED"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in (RebalanceState.CONFIRMED, RebalanceState.FAILED, RebalanceState.EXPIRED)


ALLOWED: dict[RebalanceState, frozenset[RebalanceState]] = {
    RebalanceState.PLANNED: frozenset({RebalanceState.SIMULATED, RebalanceState.EXPIRED}),
    RebalanceState.SIMULATED: frozenset({RebalanceState.APPROVED, RebalanceState.EXPIRED}),
    RebalanceState.APPROVED: frozenset({RebalanceState.SIGNED, RebalanceState.EXPIRED}),
    RebalanceState.SIGNED: frozenset(
        {
            RebalanceState.SUBMITTED,
            RebalanceState.CONFIRMED,
            RebalanceState.EXPIRED,
            RebalanceState.FAILED,
        }
    ),
    RebalanceState.SUBMITTED: frozenset(
        {RebalanceState.SUBMITTED, RebalanceState.CONFIRMED, RebalanceState.FAILED}
    ),
    RebalanceState.CONFIRMED: frozenset(),
    RebalanceState.FAILED: frozenset(),
    RebalanceState.EXPIRED: frozenset(),
}


@dataclass
class RebalanceRecord:
    """One rebalance as stored: its state and what each step produced."""

    id: int
    idempotency_key: str
    state: RebalanceState
    chain_id: int
    safe: str
    token_id: int
    report_id: str | None = None
    report_hash: str | None = None
    safe_tx_hash: str | None = None
    safe_nonce: int | None = None
    approved_by: str | None = None
    signatures: list[dict[str, str]] = field(default_factory=list)
    tx_hashes: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    history: list[tuple[str, float]] = field(default_factory=list)


class RebalanceRepo(Protocol):
    """What the execution needs from storage."""

    def create(
        self,
        *,
        idempotency_key: str,
        chain_id: int,
        safe: str,
        token_id: int,
        pool: str = "",
        tick_range: tuple[int, int] = (0, 0),
        reason: str = "",
    ) -> RebalanceRecord:
        """Create in PLANNED, or return the existing row with the same key."""
        ...

    def get(self, rebalance_id: int) -> RebalanceRecord | None: ...

    def by_report(self, report_id: str) -> RebalanceRecord | None: ...

    def unfinished(self) -> list[RebalanceRecord]: ...

    def transition(
        self,
        rebalance_id: int,
        expected: RebalanceState,
        new: RebalanceState,
        **fields: Any,
    ) -> RebalanceRecord:
        """Move from ``expected`` to ``new`` and set ``fields`` atomically; raise
        ``StateConflict`` if the row is no longer in ``expected``."""
        ...


class StateConflict(Exception):
    """Another process moved the rebalance first (compare-and-set lost)."""


def check_transition(current: RebalanceState, new: RebalanceState) -> None:
    if new not in ALLOWED[current]:
        from lpbot.errors import Halt

        raise Halt(f"illegal rebalance transition {current.value} -> {new.value}")
