"""Sending transactions: pre-flight, nonces, EIP-1559 fees, private submission, replacement and
cancellation of stuck transactions, confirmations.

Each transaction's route (``submission_route``) is the private endpoint or the public mempool:
on Ethereum a transaction carrying a swap goes privately by default (Flashbots Protect, or the
configured endpoint), since a swap seen in the public mempool can be sandwiched; an endpoint
that cannot be reached never leads to a public copy unless ``public_fallback`` allows it.

Fees come from the caller (the chain's gas model) or ``eth_feeHistory`` (max fee = 2 x the next
base fee + the median priority fee of recent blocks). A transaction not mined within
``replace_after`` seconds is replaced: same nonce, both fee fields raised by at least 12.5% (nodes
refuse smaller bumps); after ``max_replacements`` it is cancelled by a zero-value self-transfer
at the same nonce. Every signed transaction is handed to ``on_sent`` (which records it, signed
bytes and all) before it is broadcast, so a crash is resumed by sending the same bytes again
(``resume_and_confirm``) or finding them mined, never by signing another transaction for the
nonce. Fresh nonces come from one ``NonceManager`` per account, backed by the store.

A node's refusal is read by its meaning (``classify_send_error``): "already known" is pending
(waited on); "nonce too low" is checked against our receipts at that nonce (ours mined: its
receipt; else ``NonceUsedElsewhere``, a person's matter); "underpriced" is re-priced from the
current fee market (at least +15%) and signed again at the same nonce.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import rlp
from eth_utils.crypto import keccak
from urllib3.exceptions import NewConnectionError
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint, TxReceipt, Wei

from lpbot.chain.registry import ETHEREUM_CHAIN_ID
from lpbot.errors import Halt, NeedsAttention, NonceTaken, Refused, RetryLater
from lpbot.signing.base import Signer

log = logging.getLogger(__name__)

MIN_BUMP_NUM, MIN_BUMP_DEN = 1125, 1000  # +12.5%
BUMP_NUM, BUMP_DEN = 115, 100  # we bump by 15%
NONCE_ATTEMPTS = 5  # a fresh nonce taken by another send this many times in a row: retry later
REPRICE_ATTEMPTS = 3  # fees refused this many times after re-pricing: retry later


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


PRIVATE_SUBMISSION_MODES = ("auto", "always", "never")


@dataclass(frozen=True, slots=True)
class SubmissionRoute:
    """Where one transaction is broadcast: the private endpoint or the public mempool (the
    chain's RPC), and why. ``endpoint`` names the private endpoint without its URL's secrets
    (the environment variable, or the chain's default)."""

    private: bool
    endpoint: str
    why: str
    public_fallback: bool = False  # the private endpoint never reached: the public mempool

    def text(self) -> str:
        if not self.private:
            return f"the public mempool through the chain's RPC ({self.why})"
        down = (
            "if it cannot be reached, the public mempool (public_fallback = true)"
            if self.public_fallback
            else "if it cannot be reached, nothing is sent (no public fallback)"
        )
        return f"privately to {self.endpoint} ({self.why}); {down}"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SubmissionRoute:
        return cls(d["route"] == "private", d["endpoint"], d["why"], bool(d["public_fallback"]))

    def to_json(self) -> dict[str, Any]:
        return {
            "route": "private" if self.private else "public",
            "endpoint": self.endpoint if self.private else "",
            "why": self.why,
            "public_fallback": self.public_fallback if self.private else False,
        }


def submission_route(
    chain_id: int,
    mode: str,
    *,
    swap: bool,
    endpoint: str | None,
    public_fallback: bool = False,
) -> SubmissionRoute:
    """The route of a transaction on chain ``chain_id`` under ``mode`` (a chain's
    ``private_submission``), ``swap``: whether it carries a swap (a sandwich's target).

    ``auto``: on Ethereum (chain 1) a swap-bearing transaction goes to the private endpoint
    (``endpoint``: the configured one, else the chain's default) and any other to the public
    mempool; on other chains every transaction goes to a configured endpoint (a sequencer, a
    protected RPC), else to the public mempool. ``always``: every transaction goes private.
    ``never``: every transaction goes public. A private route without an endpoint is refused:
    a swap never goes public because an endpoint is missing."""
    if mode not in PRIVATE_SUBMISSION_MODES:
        raise Refused(f"private_submission must be one of {PRIVATE_SUBMISSION_MODES}, got {mode!r}")
    what = "carries a swap" if swap else "carries no swap"
    if mode == "never":
        return SubmissionRoute(False, "", f"{what}; private_submission = 'never'")
    if mode == "always":
        private, why = True, f"{what}; private_submission = 'always'"
    elif chain_id == ETHEREUM_CHAIN_ID:
        private = swap
        why = f"{what} on Ethereum; private_submission = 'auto'"
    else:
        private = endpoint is not None
        why = (
            f"the chain's configured submit endpoint; private_submission = 'auto' on chain "
            f"{chain_id}"
            if private
            else f"no submit endpoint configured for chain {chain_id}; private_submission = 'auto'"
        )
    if not private:
        return SubmissionRoute(False, "", why)
    if endpoint is None:
        raise Refused(
            f"this transaction must be sent privately ({why}) and chain {chain_id} has no "
            "private endpoint: set submit_url_env, or private_submission = 'never' to send it "
            "to the public mempool"
        )
    return SubmissionRoute(True, endpoint, why, public_fallback)


def _never_reached(exc: BaseException) -> bool:
    """True when the connection itself failed (refused, unresolvable, connect timeout), so the
    request never left; False when it went out and the line dropped before the answer. The
    chain is walked: ``lpbot.chain.rpc`` re-raises requests' error without its URL."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.ConnectTimeout | NewConnectionError):
            return True
        if isinstance(seen, requests.ConnectionError) and seen.args:
            cause = getattr(seen.args[0], "reason", seen.args[0])  # urllib3's MaxRetryError
            if isinstance(cause, NewConnectionError):
                return True
        seen = seen.__cause__ or seen.__context__
    return False


class SendFault(enum.Enum):
    """What a node's refusal of ``eth_sendRawTransaction`` means for the transaction."""

    ALREADY_KNOWN = "already known"  # it is in the pool already: pending, keep waiting on it
    NONCE_TOO_LOW = "nonce too low"  # the nonce was used: by ours (mined) or someone else's
    UNDERPRICED = "underpriced"  # fees below the replacement rule or the market: re-price
    OTHER = "other"  # anything else: retry later


# the wording of geth, Erigon, Nethermind, Besu, reth, Anvil and the L2 sequencers built on them
_SEND_FAULTS: tuple[tuple[SendFault, tuple[str, ...]], ...] = (
    (
        SendFault.ALREADY_KNOWN,
        (
            "already known",  # geth, reth, Anvil
            "known transaction",  # older geth, Besu
            "alreadyknown",  # Nethermind
            "already imported",  # Parity/OpenEthereum, Anvil
            "already in the pool",
            "already exists",
        ),
    ),
    (
        SendFault.NONCE_TOO_LOW,
        ("nonce too low", "nonce is too low", "oldnonce", "nonce has already been used"),
    ),
    (
        SendFault.UNDERPRICED,
        (
            "underpriced",  # "replacement transaction underpriced", "transaction underpriced"
            "replacement fee too low",  # Besu
            "feetoolowtocompete",  # Nethermind
            "fee cap less than block base fee",
            "max fee per gas less than block base fee",
            "fee too low",
        ),
    ),
)


def classify_send_error(message: str) -> SendFault:
    """What a node's error message for ``eth_sendRawTransaction`` means (``SendFault``)."""
    text = message.lower().replace(" ", "").replace("_", "")
    for fault, phrases in _SEND_FAULTS:
        if any(p.replace(" ", "") in text for p in phrases):
            return fault
    return SendFault.OTHER


class NonceTooLow(RetryLater):
    """The node says the transaction's nonce was already used."""

    def __init__(self, nonce: int, message: str) -> None:
        super().__init__(f"nonce {nonce} was already used: {message}")
        self.nonce = nonce
        self.sent: SentTx | None = None  # the transaction refused, set by the submitter


class Underpriced(RetryLater):
    """The node refused the transaction's fees (a replacement bump too small, or the market)."""


class GasPriceTooHigh(RetryLater):
    """The max fee per gas a new transaction would be sent with is above the chain's limit
    (``max_gas_price_gwei``): nothing is signed or sent; it waits and is tried again later."""

    def __init__(self, max_fee_per_gas: int, limit: int) -> None:
        self.max_fee_per_gas, self.limit = max_fee_per_gas, limit
        super().__init__(
            f"the max fee per gas is {_gwei(max_fee_per_gas)} gwei, above the limit of "
            f"{_gwei(limit)} gwei (max_gas_price_gwei): waiting"
        )


def _gwei(wei: int) -> str:
    """Wei per gas as gwei, exact (``Decimal``), without trailing zeros."""
    from decimal import Decimal

    return f"{(Decimal(wei) / 10**9).normalize():f}"


class NonceUsedElsewhere(NeedsAttention):
    """A nonce of ours was used by a transaction lpbot did not send: nothing more is sent."""


class NonceStore(Protocol):
    """Where the nonces held by recorded, not yet mined transactions are kept (the store)."""

    def next_nonce(self, chain_id: int, address: str) -> int:
        """One past the highest nonce of ``address`` a pending transaction holds (0 if none)."""
        ...


class NonceManager:
    """The next nonce of an account: the chain's pending count, or past every nonce the store
    says a pending transaction of ours holds (one sent privately, or signed and recorded but
    not yet broadcast), whichever is higher.

    With a ``store`` this is one manager per (chain, account) for every thread and process:
    the nonce it gives is only taken when the signed transaction is recorded with ``claim``
    (``RebalanceRepo.record_transaction``), which is serialised in the store and refused
    (``NonceTaken``) if another send claimed it first; the send then signs again with the
    next one. Without a store (tests of the submitter alone) it remembers its own sends.
    """

    def __init__(self, w3: Web3, store: NonceStore | None = None) -> None:
        self.w3 = w3
        self.store = store
        self._next: dict[str, int] = {}

    def next(self, address: str) -> int:
        chain = self.w3.eth.get_transaction_count(address, "pending")  # type: ignore[arg-type]
        if self.store is not None:
            return max(chain, self.store.next_nonce(self.w3.eth.chain_id, address))
        nonce = max(chain, self._next.get(address, 0))
        self._next[address] = nonce + 1
        return nonce


@dataclass(frozen=True, slots=True)
class SentTx:
    """A signed transaction: its hash (keccak of ``raw``), nonce, fees and fields."""

    hash: str
    nonce: int
    fees: Fees
    to: str = ""
    gas: int = 0
    kind: str = "send"  # "send", "replacement" or "cancel"
    data: bytes = b""
    raw: bytes = b""
    fresh: bool = False  # its nonce came from the nonce manager: recording it claims the nonce


def decode_signed(raw: bytes) -> dict[str, Any]:
    """The fields of a signed EIP-1559 transaction: ``0x02 || rlp([chainId, nonce,
    maxPriorityFeePerGas, maxFeePerGas, gas, to, value, data, accessList, yParity, r, s])``
    (EIP-2718, EIP-1559)."""
    if not raw or raw[0] != 2:
        raise Halt("a recorded transaction is not an EIP-1559 (type 2) transaction")
    f = rlp.decode(bytes(raw[1:]))

    def num(x: bytes) -> int:
        return int.from_bytes(bytes(x), "big")

    return {
        "type": 2,
        "chainId": num(f[0]),
        "nonce": num(f[1]),
        "maxPriorityFeePerGas": num(f[2]),
        "maxFeePerGas": num(f[3]),
        "gas": num(f[4]),
        "to": Web3.to_checksum_address(bytes(f[5])),
        "value": num(f[6]),
        "data": bytes(f[7]),
    }


def sent_from_raw(raw: bytes, kind: str = "send") -> SentTx:
    """A recorded signed transaction as sent: its hash is derived from the bytes."""
    tx = decode_signed(raw)
    return SentTx(
        "0x" + keccak(bytes(raw)).hex(),
        tx["nonce"],
        Fees(tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]),
        tx["to"],
        tx["gas"],
        kind,
        tx["data"],
        bytes(raw),
    )


Check = Callable[[dict[str, Any]], None]


class Submitter:
    """Signs with ``signer`` and sends, replaces, cancels and confirms transactions.

    ``preflight`` is called with the exact transaction fields right before it is signed and
    again right before the signed bytes are sent, for every transaction (replacements and the
    cancelling self-transfer too); it raises to stop the send. The raw transaction goes to
    ``submit_w3`` (a private endpoint: Flashbots Protect-like, or an L2 sequencer) when given,
    else to ``w3``; if the private endpoint cannot be reached it falls back to ``w3`` only when
    ``public_fallback`` is set. Receipts and blocks are read from ``w3``. While waiting,
    ``on_progress`` gets one line per new block and per replacement; after ``max_replacements``
    it sends a zero-value self-transfer at the same nonce (the cancel) and waits for it.

    ``max_fee_per_gas_limit`` (wei per gas): a new transaction whose max fee per gas would be
    above it is not signed (``GasPriceTooHigh``, retried later); a replacement or the cancel
    of one already sent is exempt, so a stuck nonce can always be freed.
    """

    def __init__(
        self,
        w3: Web3,
        signer: Signer,
        *,
        preflight: Check,
        confirmations: int = 1,
        replace_after: float = 60.0,
        max_replacements: int = 3,
        poll: float = 0.05,
        nonces: NonceManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
        submit_w3: Web3 | None = None,
        public_fallback: bool = False,
        fees: Callable[[], Fees] | None = None,
        market: Callable[[], Fees] | None = None,
        on_progress: Callable[[str], None] | None = None,
        max_fee_per_gas_limit: int | None = None,
    ) -> None:
        self.w3 = w3
        self.max_fee_per_gas_limit = max_fee_per_gas_limit
        self.signer = signer
        self.preflight = preflight
        self.confirmations = confirmations
        self.replace_after = replace_after
        self.max_replacements = max_replacements
        self.poll = poll
        self.nonces = nonces or NonceManager(w3)
        self.sleep = sleep
        self.submit_w3 = submit_w3
        self.public_fallback = public_fallback
        self.fees = fees or (lambda: fetch_fees(self.w3))
        # the fee market now: what a refused ("underpriced") transaction is re-priced from
        self.market = market or (lambda: fetch_fees(self.w3))
        self.on_progress = on_progress or (lambda line: log.info("%s", line))

    def send(
        self,
        to: str,
        data: bytes,
        gas: int,
        *,
        nonce: int | None = None,
        fees: Fees | None = None,
        kind: str = "send",
        on_signed: Callable[[SentTx], None] | None = None,
    ) -> SentTx:
        """Pre-flight, sign, pre-flight again, hand the signed transaction to ``on_signed`` (its
        hash is derived from the signed bytes, so it is known before the endpoint answers),
        then broadcast.

        Without ``nonce`` the nonce manager gives one, and ``on_signed`` records the
        transaction claiming it: if another send claimed it first (``NonceTaken``), what was
        signed is dropped unsent and the send starts again with the next nonce."""
        for _attempt in range(NONCE_ATTEMPTS):
            fresh = nonce is None
            chosen = fees or self.fees()
            limit = self.max_fee_per_gas_limit
            if kind == "send" and limit is not None and chosen.max_fee_per_gas > limit:
                raise GasPriceTooHigh(chosen.max_fee_per_gas, limit)  # before a nonce is taken
            n = self.nonces.next(self.signer.address) if nonce is None else nonce
            sent = self._sign(to, data, gas, n, chosen, kind, fresh)
            if on_signed is not None:
                try:
                    on_signed(sent)  # recorded before broadcasting: a timeout cannot lose it
                except NonceTaken as exc:
                    if not fresh:
                        raise
                    log.warning("%s: signing again with the next nonce", exc)
                    continue
            sent = self._broadcast_repricing(sent, on_signed)
            log.info("sent %s nonce %d max fee %d", sent.hash, n, sent.fees.max_fee_per_gas)
            return sent
        raise RetryLater(
            f"no nonce of {self.signer.address} could be claimed in {NONCE_ATTEMPTS} attempts: "
            "other sends keep taking them"
        )

    def _sign(
        self, to: str, data: bytes, gas: int, nonce: int, fees: Fees, kind: str, fresh: bool
    ) -> SentTx:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.w3.eth.chain_id,
            "nonce": nonce,
            "from": self.signer.address,
            "to": Web3.to_checksum_address(to),
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        self.preflight(tx)  # right before signing
        unsigned = {k: v for k, v in tx.items() if k != "from"}
        signed = self.signer.sign_transaction(unsigned)
        self.preflight(tx)  # and again right before sending: signing can take a while (MPC)
        raw = bytes(signed.raw)
        return SentTx("0x" + keccak(raw).hex(), nonce, fees, tx["to"], gas, kind, data, raw, fresh)

    def rebroadcast(
        self, sent: SentTx, on_signed: Callable[[SentTx], None] | None = None
    ) -> SentTx:
        """Send ``sent``'s recorded signed bytes again, unchanged (after a crash between
        recording and the node's answer): pre-flighted first, as every send is. Returns what
        is in flight: ``sent``, or its re-priced replacement if the node refused its fees."""
        if not sent.raw:
            raise Halt(f"transaction {sent.hash} was recorded without its signed bytes")
        fields = decode_signed(sent.raw)
        self.preflight({**fields, "from": self.signer.address})
        in_flight = self._broadcast_repricing(sent, on_signed)
        log.info("sent again %s nonce %d", sent.hash, sent.nonce)
        return in_flight

    def _broadcast_repricing(
        self, sent: SentTx, on_signed: Callable[[SentTx], None] | None
    ) -> SentTx:
        """Broadcast; a refusal of the fees ("replacement transaction underpriced", or below
        the market) re-prices from the current fee market, at least 15% over the refused
        fees, and signs again at the same nonce (recorded first, like every transaction)."""
        for _attempt in range(REPRICE_ATTEMPTS):
            try:
                self._broadcast_checked(sent)
                return sent
            except NonceTooLow as exc:
                exc.sent = sent
                raise
            except Underpriced as exc:
                fees = self._repriced(sent.fees)
                limit = self.max_fee_per_gas_limit
                if sent.kind == "send" and limit is not None and fees.max_fee_per_gas > limit:
                    # the node took nothing: re-pricing a new transaction above the limit is
                    # sending it above the limit
                    raise GasPriceTooHigh(fees.max_fee_per_gas, limit) from exc
                self.on_progress(
                    f"{exc}: re-priced from the fee market to max fee "
                    f"{fees.max_fee_per_gas:,} wei (priority {fees.max_priority_fee_per_gas:,})"
                )
                kind = "cancel" if sent.kind == "cancel" else "replacement"
                sent = self._sign(sent.to, sent.data, sent.gas, sent.nonce, fees, kind, False)
                if on_signed is not None:
                    on_signed(sent)
        self._broadcast_checked(sent)  # the last re-price: its refusal is final for now
        return sent

    def _repriced(self, refused: Fees) -> Fees:
        """The current fee market's fees, and at least ``refused``'s bumped by 15%."""
        floor, market = refused.bumped(), self.market()
        return Fees(
            max(floor.max_fee_per_gas, market.max_fee_per_gas),
            max(floor.max_priority_fee_per_gas, market.max_priority_fee_per_gas),
        )

    def _nonce_used(self, ours: list[SentTx], exc: NonceTooLow) -> tuple[TxReceipt, SentTx]:
        """The node says the nonce was used: by one of ``ours`` (its receipt, to reconcile),
        or by a transaction lpbot did not send (``NonceUsedElsewhere``: alert and stop)."""
        if exc.sent is not None and exc.sent not in ours:
            ours = [*ours, exc.sent]
        found = self._wait_any(ours, 0.0)
        if found is not None:
            return found
        raise NonceUsedElsewhere(
            f"nonce {exc.nonce} of {self.signer.address} was used by a transaction lpbot did "
            f"not send ({exc}); nothing more is sent for it"
        ) from exc

    def _broadcast_checked(self, sent: SentTx) -> None:
        h = self._broadcast(sent.raw, sent.nonce)
        if "0x" + bytes(h).hex() != sent.hash:
            raise Halt(f"the node answered hash 0x{bytes(h).hex()} for {sent.hash}")

    def _broadcast(self, raw: bytes, nonce: int) -> bytes:
        if self.submit_w3 is not None:
            try:
                # straight to the provider: web3's retry middleware would re-send on errors,
                # hiding whether an earlier attempt reached the endpoint
                answer = self.submit_w3.provider.make_request(
                    RPCEndpoint("eth_sendRawTransaction"), ["0x" + bytes(raw).hex()]
                )
            except requests.ConnectionError as exc:
                if not _never_reached(exc):  # the request went out, the line dropped after
                    raise RetryLater(
                        f"the submit endpoint did not answer ({type(exc).__name__}); resume "
                        "looks the transaction up by its hash"
                    ) from exc
                if not self.public_fallback:
                    raise RetryLater(
                        f"the submit endpoint is unreachable ({type(exc).__name__}); the public "
                        "mempool is not allowed as a fallback for this chain"
                    ) from exc
                log.warning("submit endpoint unreachable: sending to the public mempool")
            except OSError as exc:  # no answer: it may have been accepted, so never re-sent
                raise RetryLater(
                    f"the submit endpoint did not answer ({type(exc).__name__}); resume looks "
                    "the transaction up by its hash"
                ) from exc
            else:
                if "error" in answer:  # the endpoint's JSON-RPC error
                    err = answer["error"]
                    said = str(err.get("message", err) if isinstance(err, dict) else err)
                    return self._refused(raw, nonce, said, "the submit endpoint")
                return bytes.fromhex(str(answer["result"]).removeprefix("0x"))
        try:
            return bytes(self.w3.eth.send_raw_transaction(raw))
        except ValueError as exc:  # the node's JSON-RPC error (web3 6: the error object)
            error: Any = exc.args[0] if exc.args else exc
            message = str(error.get("message", error) if isinstance(error, dict) else error)
            return self._refused(raw, nonce, message, "the node")

    def _refused(self, raw: bytes, nonce: int, message: str, who: str) -> bytes:
        """A refusal read by its meaning: already known is pending (its hash is returned, to
        wait on); a used nonce and refused fees raise for the caller to act on."""
        fault = classify_send_error(message)
        if fault is SendFault.ALREADY_KNOWN:
            log.info("%s already has the transaction at nonce %d: waiting on it", who, nonce)
            return keccak(bytes(raw))
        if fault is SendFault.NONCE_TOO_LOW:
            raise NonceTooLow(nonce, message)
        if fault is SendFault.UNDERPRICED:
            raise Underpriced(f"{who} refused the fees of nonce {nonce}: {message}")
        raise RetryLater(f"{who} refused transaction (nonce {nonce}): {message}")

    def _known(self, sent: SentTx) -> bool:
        """Whether the node has ``sent`` (pending or mined). Sent through a private endpoint,
        the public node cannot tell: taken as known, so a stuck nonce can always be freed."""
        if self.submit_w3 is not None:
            return True
        try:
            self.w3.eth.get_transaction(sent.hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _wait_any(self, sent: list[SentTx], timeout: float) -> tuple[TxReceipt, SentTx] | None:
        """The first of ``sent`` mined (with ``confirmations``) within ``timeout``, showing a
        line per new block; None if none was."""
        deadline = time.monotonic() + timeout
        seen = self.w3.eth.block_number
        first = seen
        while True:
            for tx in reversed(sent):
                receipt = self.receipt(tx.hash)
                if receipt is not None:
                    last_needed = receipt["blockNumber"] + self.confirmations - 1
                    while self.w3.eth.block_number < last_needed:
                        self.sleep(self.poll)
                    return receipt, tx
            block = self.w3.eth.block_number
            if block != seen:
                seen = block
                last = sent[-1]
                self.on_progress(
                    f"waiting for {last.hash[:12]} (nonce {last.nonce}, max fee "
                    f"{last.fees.max_fee_per_gas:,} wei): block {block}, "
                    f"{block - first} block(s) seen"
                )
            if time.monotonic() >= deadline:
                return None
            self.sleep(self.poll)

    def send_and_confirm(
        self,
        to: str,
        data: bytes,
        gas: int,
        *,
        on_sent: Callable[[SentTx], None],
        nonce: int | None = None,
        fees: Fees | None = None,
        regas: Callable[[], int] | None = None,
    ) -> tuple[TxReceipt, SentTx]:
        """Send, replace with bumped fees while stuck, cancel after ``max_replacements``; return
        the receipt of whichever was mined and which one it was (``kind == "cancel"``: the
        cancelling self-transfer took the nonce, the transaction itself can never run).

        Every transaction sent (replacements and the cancel too) is passed to ``on_sent``
        first. A replacement's gas limit is ``regas()`` (estimated again at the latest block)
        when given. A replacement whose pre-flight fails (``Refused``) is not sent: the
        pending one is cancelled instead.
        """
        try:
            sent = self.send(to, data, gas, nonce=nonce, fees=fees, on_signed=on_sent)
        except NonceTooLow as exc:
            return self._nonce_used([], exc)
        return self._confirm([sent], on_sent=on_sent, regas=regas)

    def resume_and_confirm(
        self,
        pending: list[SentTx],
        *,
        on_sent: Callable[[SentTx], None],
        replace_gas: int | None = None,
        regas: Callable[[], int] | None = None,
    ) -> tuple[TxReceipt, SentTx]:
        """Go on with transactions recorded at one nonce (oldest first) and not yet mined: the
        newest is sent again as it was signed (never a second signature for a nonce merely
        because the process stopped), then waited for, replaced and cancelled as
        ``send_and_confirm`` does. When the newest is a cancel, only the cancel is followed:
        the cancelled transaction is never sent again.

        ``replace_gas``: the newest would now run out of gas with its signed limit; a
        replacement with this limit (and bumped fees) is sent instead of the same bytes."""
        last = pending[-1]
        if last.kind == "cancel":
            if last.raw:
                try:
                    in_flight = self.rebroadcast(last, on_sent)
                except NonceTooLow as exc:
                    return self._nonce_used(pending, exc)
                pending = pending if in_flight is last else [*pending, in_flight]
                found = self._wait_any(pending, self.replace_after * 2)
                if found is not None:
                    return found
            return self.cancel(pending, on_sent=on_sent)
        if replace_gas is None and last.raw:
            try:
                in_flight = self.rebroadcast(last, on_sent)
            except NonceTooLow as exc:
                return self._nonce_used(pending, exc)
            pending = pending if in_flight is last else [*pending, in_flight]
            return self._confirm(pending, on_sent=on_sent, regas=regas)
        gas = replace_gas if replace_gas is not None else last.gas
        # one the node never took (its fees refused, or a crash before broadcasting) frees no
        # stuck nonce: it is a new transaction, and the gas price limit applies to it
        kind = "replacement" if any(self._known(p) for p in pending) else "send"
        self.on_progress(
            f"nonce {last.nonce}: the recorded transaction {last.hash[:12]} is replaced "
            f"(gas limit {last.gas:,} -> {gas:,})"
        )
        try:
            replacement = self.send(
                last.to,
                last.data,
                gas,
                nonce=last.nonce,
                fees=self._replacement_fees(last),
                kind=kind,
                on_signed=on_sent,
            )
        except Refused as exc:
            self.on_progress(f"not replacing nonce {last.nonce}: {exc}; cancelling it")
            return self.cancel(pending, on_sent=on_sent)
        except NonceTooLow as exc:
            return self._nonce_used(pending, exc)
        return self._confirm([*pending, replacement], on_sent=on_sent, regas=regas)

    def _replacement_fees(self, last: SentTx) -> Fees:
        """Fees for a transaction replacing ``last``: the current fee market's, and at least
        ``last``'s bumped by 15% (nodes refuse less than 12.5%)."""
        floor, market = last.fees.bumped(), self.market()
        return Fees(
            max(floor.max_fee_per_gas, market.max_fee_per_gas),
            max(floor.max_priority_fee_per_gas, market.max_priority_fee_per_gas),
        )

    def _confirm(
        self,
        all_sent: list[SentTx],
        *,
        on_sent: Callable[[SentTx], None],
        regas: Callable[[], int] | None = None,
    ) -> tuple[TxReceipt, SentTx]:
        sent = all_sent[-1]
        for _attempt in range(self.max_replacements):
            found = self._wait_any(all_sent, self.replace_after)
            if found is not None:
                return found
            bumped = sent.fees.bumped()
            try:
                gas = regas() if regas is not None else sent.gas
                replacement = self.send(
                    sent.to,
                    sent.data,
                    gas,
                    nonce=sent.nonce,
                    fees=bumped,
                    kind="replacement",
                    on_signed=on_sent,
                )
            except Refused as exc:  # the pre-flight: it would revert now
                self.on_progress(f"not replacing nonce {sent.nonce}: {exc}; cancelling it")
                break
            except NonceTooLow as exc:  # mined meanwhile: ours, or someone else's
                return self._nonce_used(all_sent, exc)
            self.on_progress(
                f"not mined after {self.replace_after:.0f} s: replaced nonce {sent.nonce} "
                f"with max fee {bumped.max_fee_per_gas:,} wei (priority "
                f"{bumped.max_priority_fee_per_gas:,}): {replacement.hash}"
            )
            sent = replacement
            all_sent = [*all_sent, sent]
        else:
            found = self._wait_any(all_sent, self.replace_after)
            if found is not None:
                return found
        return self.cancel(all_sent, on_sent=on_sent)

    def cancel(
        self, pending: list[SentTx], *, on_sent: Callable[[SentTx], None]
    ) -> tuple[TxReceipt, SentTx]:
        """Cancel ``pending`` (sent at one nonce, the last with the highest fees): a zero-value
        self-transfer at that nonce, fees bumped over the last; wait for whichever is mined."""
        last = pending[-1]
        cancel_fees = last.fees.bumped()
        me = self.signer.address
        cancel_gas = int(self.w3.eth.estimate_gas({"from": me, "to": me, "value": Wei(0)}))
        try:
            cancel = self.send(
                me,
                b"",
                cancel_gas,
                nonce=last.nonce,
                fees=cancel_fees,
                kind="cancel",
                on_signed=on_sent,
            )
        except NonceTooLow as exc:  # mined meanwhile: ours, or someone else's
            return self._nonce_used(pending, exc)
        self.on_progress(
            f"cancelling nonce {last.nonce}: a zero-value self-transfer with max fee "
            f"{cancel.fees.max_fee_per_gas:,} wei: {cancel.hash}"
        )
        all_sent = [*pending, cancel]
        found = self._wait_any(all_sent, self.replace_after * 2)
        if found is not None:
            return found
        raise RetryLater(
            f"transaction nonce {last.nonce} not mined after {len(all_sent)} attempts, the "
            "cancel included; resume will look for them"
        )
