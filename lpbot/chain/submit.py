"""Sending transactions: nonces, EIP-1559 fees, replacement of stuck transactions, confirmations.

Fees come from ``eth_feeHistory`` (max fee = 2 x the next base fee + the median priority fee of
recent blocks). A transaction not mined within ``replace_after`` seconds is replaced: same nonce,
both fee fields raised by at least 12.5% (nodes refuse smaller bumps). The sent hash is handed to
``on_sent`` before any waiting, so a crash after sending is resumed by looking the hash up, never
by sending something new with another nonce.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import TimeExhausted, TransactionNotFound
from web3.types import TxReceipt

from lpbot.errors import RetryLater
from lpbot.signing.base import Signer

log = logging.getLogger(__name__)

MIN_BUMP_NUM, MIN_BUMP_DEN = 1125, 1000  # +12.5%
BUMP_NUM, BUMP_DEN = 115, 100  # we bump by 15%


@dataclass(frozen=True, slots=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def bumped(self) -> Fees:
        """Both fields up by 15% (rounded up), never less than the +12.5% nodes require."""

        def up(x: int) -> int:
            return max(-(-x * BUMP_NUM // BUMP_DEN), -(-x * MIN_BUMP_NUM // MIN_BUMP_DEN), x + 1)

        return Fees(up(self.max_fee_per_gas), up(self.max_priority_fee_per_gas))


def fetch_fees(w3: Web3, blocks: int = 5, percentile: float = 50.0) -> Fees:
    """EIP-1559 fees from the fee history of the last ``blocks`` blocks."""
    history = w3.eth.fee_history(blocks, "latest", [percentile])
    next_base = int(history["baseFeePerGas"][-1])
    rewards = sorted(int(r[0]) for r in history.get("reward", []) if r)
    priority = rewards[len(rewards) // 2] if rewards else 0
    priority = max(priority, 1)
    return Fees(max_fee_per_gas=2 * next_base + priority, max_priority_fee_per_gas=priority)


class NonceManager:
    """Nonces per account: the chain's pending count, or further if we sent more since."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._next: dict[str, int] = {}

    def next(self, address: str) -> int:
        chain = self.w3.eth.get_transaction_count(address, "pending")  # type: ignore[arg-type]
        nonce = max(chain, self._next.get(address, 0))
        self._next[address] = nonce + 1
        return nonce


@dataclass(frozen=True, slots=True)
class SentTx:
    hash: str
    nonce: int
    fees: Fees


class Submitter:
    """Signs with ``signer`` and sends, replaces and confirms transactions."""

    def __init__(
        self,
        w3: Web3,
        signer: Signer,
        *,
        confirmations: int = 1,
        replace_after: float = 60.0,
        max_replacements: int = 3,
        poll: float = 0.05,
        nonces: NonceManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.w3 = w3
        self.signer = signer
        self.confirmations = confirmations
        self.replace_after = replace_after
        self.max_replacements = max_replacements
        self.poll = poll
        self.nonces = nonces or NonceManager(w3)
        self.sleep = sleep

    def send(
        self, to: str, data: bytes, gas: int, *, nonce: int | None = None, fees: Fees | None = None
    ) -> SentTx:
        nonce = self.nonces.next(self.signer.address) if nonce is None else nonce
        fees = fees or fetch_fees(self.w3)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.w3.eth.chain_id,
            "nonce": nonce,
            "to": Web3.to_checksum_address(to),
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        signed = self.signer.sign_transaction(tx)
        try:
            h = self.w3.eth.send_raw_transaction(signed.raw)
        except ValueError as exc:  # the node's JSON-RPC error
            raise RetryLater(f"node refused transaction (nonce {nonce}): {exc}") from exc
        log.info("sent %s nonce %d max fee %d", h.hex(), nonce, fees.max_fee_per_gas)
        return SentTx("0x" + bytes(h).hex(), nonce, fees)

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def wait_confirmed(self, tx_hash: str, timeout: float) -> TxReceipt | None:
        """The receipt once it has ``confirmations``; None if not mined within ``timeout``."""
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                timeout=timeout,
                poll_latency=self.poll,
            )
        except TimeExhausted:
            return None
        while self.w3.eth.block_number < receipt["blockNumber"] + self.confirmations - 1:
            self.sleep(self.poll)
        return receipt

    def send_and_confirm(
        self,
        to: str,
        data: bytes,
        gas: int,
        *,
        on_sent: Callable[[SentTx], None],
        nonce: int | None = None,
    ) -> TxReceipt:
        """Send, replace with bumped fees while stuck, and return the mined receipt.

        Every transaction sent (replacements too) is passed to ``on_sent`` first. Whichever of
        them is mined is returned; the others can no longer be (same nonce).
        """
        sent = self.send(to, data, gas, nonce=nonce)
        on_sent(sent)
        all_sent = [sent]
        for attempt in range(self.max_replacements + 1):
            receipt = self.wait_confirmed(sent.hash, self.replace_after)
            if receipt is not None:
                return receipt
            for earlier in all_sent[:-1]:
                found = self.receipt(earlier.hash)
                if found is not None:
                    return found
            if attempt == self.max_replacements:
                break
            log.warning("tx %s not mined after %.0f s: replacing", sent.hash, self.replace_after)
            sent = self.send(to, data, gas, nonce=sent.nonce, fees=sent.fees.bumped())
            on_sent(sent)
            all_sent.append(sent)
        raise RetryLater(
            f"transaction nonce {sent.nonce} not mined after {len(all_sent)} attempts; "
            "resume will look for it"
        )
