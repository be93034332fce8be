"""The rebalance state machine, persisted through a small repository port.

PLANNED -> SIMULATED -> APPROVED -> SIGNED -> SUBMITTED -> CONFIRMED, or FAILED / EXPIRED, or
STALE (the pre-flight found that it would revert now, or that the price moved past the policy's
bound since the report: nothing was sent; ``replan`` writes a new report) or CANCELLED (stuck,
replaced, then cancelled by a zero-value self-transfer at its nonce: needs a person).
The same machine carries the other plans that move a Safe's tokens in and out of positions:
each record has a ``kind`` ("rebalance", "open": a new position from the Safe's capital,
"compound": the fees owed added to the same NFT, "withdraw": all the liquidity and fees
collected to the Safe, the emptied NFT kept) and, for an open, the ``label`` of the
configured position it opens.
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
    STALE = "STALE"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in (
            RebalanceState.CONFIRMED,
            RebalanceState.FAILED,
            RebalanceState.EXPIRED,
            RebalanceState.STALE,
            RebalanceState.CANCELLED,
        )


ALLOWED: dict[RebalanceState, frozenset[RebalanceState]] = {
    RebalanceState.PLANNED: frozenset({RebalanceState.SIMULATED, RebalanceState.EXPIRED}),
    RebalanceState.SIMULATED: frozenset(
        {RebalanceState.APPROVED, RebalanceState.EXPIRED, RebalanceState.STALE}
    ),
    RebalanceState.APPROVED: frozenset(
        {RebalanceState.SIGNED, RebalanceState.EXPIRED, RebalanceState.STALE}
    ),
    RebalanceState.SIGNED: frozenset(
        {
            RebalanceState.SUBMITTED,
            RebalanceState.CONFIRMED,
            RebalanceState.EXPIRED,
            RebalanceState.FAILED,
            RebalanceState.STALE,
        }
    ),
    RebalanceState.SUBMITTED: frozenset(
        {
            RebalanceState.SUBMITTED,
            RebalanceState.CONFIRMED,
            RebalanceState.FAILED,
            RebalanceState.CANCELLED,
            RebalanceState.STALE,  # sent, then dropped from every mempool, and now it would revert
        }
    ),
    RebalanceState.CONFIRMED: frozenset(),
    RebalanceState.FAILED: frozenset(),
    RebalanceState.EXPIRED: frozenset(),
    RebalanceState.STALE: frozenset(),
    RebalanceState.CANCELLED: frozenset(),
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
    kind: str = "rebalance"  # "rebalance", "open", "compound" or "withdraw"
    label: str | None = None  # an open's configured position name


@dataclass
class TxRecord:
    """One transaction sent for a rebalance (the rebalance itself, a replacement, or the
    cancelling self-transfer) and, once mined, what it cost. Wei amounts are exact integers."""

    tx_hash: str
    nonce: int
    sender: str
    to: str
    gas_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    status: str = "PENDING"  # PENDING, CONFIRMED, REVERTED, REPLACED (another took the nonce)
    block: int | None = None
    gas_used: int | None = None
    effective_gas_price: int | None = None
    raw: bytes = b""  # the signed transaction, kept before it is broadcast
    sent_as: str = "send"  # "send", "replacement" or "cancel"
    receipt_status: int | None = None  # 1 success, 0 reverted; None until mined

    @property
    def kind(self) -> str:
        return "cancel" if self.to.lower() == self.sender.lower() else "rebalance"

    @property
    def fee_wei(self) -> int:
        """What the sender paid: gas used x effective gas price (0 until mined)."""
        return (self.gas_used or 0) * (self.effective_gas_price or 0)

    @property
    def mined(self) -> bool:
        return self.status in ("CONFIRMED", "REVERTED")

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "kind": self.kind,
            "nonce": self.nonce,
            "status": self.status,
            "gas_limit": self.gas_limit,
            "max_fee_per_gas": str(self.max_fee_per_gas),
            "block": self.block,
            "gas_used": self.gas_used,
            "effective_gas_price": (
                None if self.effective_gas_price is None else str(self.effective_gas_price)
            ),
            "fee_wei": str(self.fee_wei),
        }


def wasted_gas_wei(transactions: list[TxRecord]) -> int:
    """The fees of a rebalance's transactions that did not rebalance: reverted ones and the
    cancelling self-transfer (a cost to the ledger, with nothing to show for it)."""
    return sum(t.fee_wei for t in transactions if t.status == "REVERTED" or t.kind == "cancel")


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
        kind: str = "rebalance",
        label: str | None = None,
    ) -> RebalanceRecord:
        """Create in PLANNED, or return the existing row with the same key."""
        ...

    def get(self, rebalance_id: int) -> RebalanceRecord | None: ...

    def by_report(self, report_id: str) -> RebalanceRecord | None: ...

    def by_key(self, idempotency_key: str) -> RebalanceRecord | None: ...

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

    def record_transaction(self, rebalance_id: int, tx: TxRecord, *, claim: bool = False) -> None:
        """Keep a signed transaction (once per hash), before it is broadcast. ``claim``: its
        nonce is a fresh one, claimed for (chain, sender) atomically with the row; raise
        ``NonceTaken`` when another send holds that nonce or a later one."""
        ...

    def next_nonce(self, chain_id: int, address: str) -> int:
        """One past the highest nonce of ``address`` that a pending transaction holds (0 if
        none): the store's side of the nonce manager, shared by every thread and process."""
        ...

    def update_transaction(self, rebalance_id: int, tx: TxRecord) -> None:
        """Record what the chain says of it: mined (gas used, price), reverted or replaced."""
        ...

    def transactions(self, rebalance_id: int) -> list[TxRecord]:
        """The rebalance's transactions, in the order they were sent."""
        ...


class StateConflict(Exception):
    """Another process moved the rebalance first (compare-and-set lost)."""


def check_transition(current: RebalanceState, new: RebalanceState) -> None:
    if new not in ALLOWED[current]:
        from lpbot.errors import Halt

        raise Halt(f"illegal rebalance transition {current.value} -> {new.value}")
