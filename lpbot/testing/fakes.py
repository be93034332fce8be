"""In-memory implementations of lpbot's ports, for unit tests."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from lpbot.errors import NonceTaken
from lpbot.execution.state import (
    RebalanceRecord,
    RebalanceState,
    StateConflict,
    TxRecord,
    check_transition,
)


class MemoryRebalanceRepo:
    """``RebalanceRepo`` in a dict; copies in and out, as a database would."""

    def __init__(self) -> None:
        self._rows: dict[int, RebalanceRecord] = {}
        self._txs: dict[int, list[TxRecord]] = {}
        self._lock = threading.Lock()  # the nonce claim: one send at a time, as the store's

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
        for row in self._rows.values():
            if row.idempotency_key == idempotency_key:
                return copy.deepcopy(row)
        row = RebalanceRecord(
            id=len(self._rows) + 1,
            idempotency_key=idempotency_key,
            state=RebalanceState.PLANNED,
            chain_id=chain_id,
            safe=safe,
            token_id=token_id,
            history=[(RebalanceState.PLANNED.value, time.time())],
            kind=kind,
            label=label,
        )
        self._rows[row.id] = row
        return copy.deepcopy(row)

    def get(self, rebalance_id: int) -> RebalanceRecord | None:
        row = self._rows.get(rebalance_id)
        return copy.deepcopy(row) if row else None

    def by_report(self, report_id: str) -> RebalanceRecord | None:
        for row in self._rows.values():
            if row.report_id == report_id:
                return copy.deepcopy(row)
        return None

    def by_key(self, idempotency_key: str) -> RebalanceRecord | None:
        for row in self._rows.values():
            if row.idempotency_key == idempotency_key:
                return copy.deepcopy(row)
        return None

    def unfinished(self) -> list[RebalanceRecord]:
        return [copy.deepcopy(r) for r in self._rows.values() if not r.state.terminal]

    def transition(
        self, rebalance_id: int, expected: RebalanceState, new: RebalanceState, **fields: Any
    ) -> RebalanceRecord:
        row = self._rows[rebalance_id]
        if row.state != expected:
            raise StateConflict(f"rebalance {rebalance_id} is {row.state.value}, not {expected}")
        check_transition(expected, new)
        for k, v in fields.items():
            setattr(row, k, copy.deepcopy(v))
        row.state = new
        row.history.append((new.value, time.time()))
        return copy.deepcopy(row)

    def record_transaction(self, rebalance_id: int, tx: TxRecord, *, claim: bool = False) -> None:
        with self._lock:
            chain_id = self._rows[rebalance_id].chain_id
            if claim and self._next_nonce(chain_id, tx.sender) > tx.nonce:
                raise NonceTaken(f"nonce {tx.nonce} of {tx.sender} was taken by another send")
            txs = self._txs.setdefault(rebalance_id, [])
            if all(t.tx_hash != tx.tx_hash for t in txs):
                txs.append(copy.deepcopy(tx))

    def next_nonce(self, chain_id: int, address: str) -> int:
        with self._lock:
            return self._next_nonce(chain_id, address)

    def _next_nonce(self, chain_id: int, address: str) -> int:
        held = [
            t.nonce
            for rid, txs in self._txs.items()
            if self._rows[rid].chain_id == chain_id
            for t in txs
            if t.status == "PENDING" and t.sender.lower() == address.lower()
        ]
        return max(held) + 1 if held else 0

    def update_transaction(self, rebalance_id: int, tx: TxRecord) -> None:
        txs = self._txs.setdefault(rebalance_id, [])
        for i, t in enumerate(txs):
            if t.tx_hash == tx.tx_hash:
                txs[i] = copy.deepcopy(tx)
                return
        txs.append(copy.deepcopy(tx))

    def transactions(self, rebalance_id: int) -> list[TxRecord]:
        return copy.deepcopy(self._txs.get(rebalance_id, []))
