"""``RemoteSigner``: a key held by a Web3Signer-compatible JSON-RPC signing service.

Web3Signer (eth1 mode) serves ``eth_accounts``, ``eth_sign`` (EIP-191 personal message),
``eth_signTransaction`` (the transaction object with hex quantities, no ``chainId``: the service
signs for the chain id it is configured with; returns the raw signed transaction) and
``eth_signTypedData`` (``[address, <EIP-712 JSON as a string>]``; returns r||s||v). It has no call
that signs a bare 32-byte digest, so ``sign_digest`` is refused; an EIP-712 digest is signed by
sending its typed data instead (``sign_typed_data``, ``sign_safe_tx``).

Everything the service returns is checked here before use: a signed transaction must decode to
exactly the transaction asked for (chain id included) and recover to the account; a signature must
recover to the account over the digest computed here.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from typing import Any

import requests
from eth_account import Account
from eth_account._utils.typed_transactions.typed_transaction import TypedTransaction
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from rlp.exceptions import RLPException

from lpbot.errors import ConfigError, Halt, NeedsAttention, Refused, RetryLater
from lpbot.signing.base import SECP256K1_N, Signature, SignedTransaction
from lpbot.signing.mpc.safe_tx import SafeTx
from lpbot.signing.mpc.signer import unsigned_eip1559

log = logging.getLogger(__name__)

_TX_FIELDS = ("to", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "value", "data")


def _quantity(v: Any) -> str:
    return hex(int(v))


def _data(v: Any) -> str:
    if isinstance(v, bytes | bytearray):
        return "0x" + bytes(v).hex()
    return str(v)


def parse_signature(sig_hex: str) -> Signature:
    """r || s || v (65 bytes, v in 0/1/27/28) as a low-s ``Signature`` with v = 27/28."""
    raw = bytes.fromhex(sig_hex[2:] if sig_hex.startswith("0x") else sig_hex)
    if len(raw) != 65:
        raise Halt(f"remote signer returned a {len(raw)}-byte signature")
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    parity = v - 27 if v >= 27 else v
    if parity not in (0, 1):
        raise Halt(f"remote signer returned v = {v}")
    if s > SECP256K1_N // 2:
        s, parity = SECP256K1_N - s, parity ^ 1
    return Signature(r=r, s=s, v=27 + parity)


class RemoteSigner:
    """Signs through a Web3Signer-compatible endpoint with one of its accounts."""

    def __init__(self, url: str, address: str, *, timeout: float = 10.0) -> None:
        loopback = url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
        if not (url.startswith("https://") or loopback):
            raise ConfigError(f"remote signer URL must be https (or loopback http): {url}")
        self._url = url
        self._address = to_checksum_address(address)
        self._timeout = timeout
        self._http = requests.Session()
        self._ids = itertools.count(1)

    @classmethod
    def connect(
        cls, url: str, address: str | None = None, *, timeout: float = 10.0
    ) -> RemoteSigner:
        """Ask the service for its accounts; use ``address`` (it must hold it) or its only one."""
        probe = cls(url, "0x" + "00" * 20, timeout=timeout)
        accounts = [to_checksum_address(a) for a in probe._call("eth_accounts", [])]
        probe.close()
        if address is None:
            if len(accounts) != 1:
                raise ConfigError(f"remote signer holds {len(accounts)} accounts; name one")
            address = accounts[0]
        elif to_checksum_address(address) not in accounts:
            raise NeedsAttention(f"remote signer at {url} does not hold {address}")
        return cls(url, address, timeout=timeout)

    def __repr__(self) -> str:
        return f"RemoteSigner({self._address})"

    def close(self) -> None:
        self._http.close()

    @property
    def address(self) -> str:
        return self._address

    def _call(self, method: str, params: list[Any]) -> Any:
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": params,
        }
        try:
            resp = self._http.post(self._url, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            raise RetryLater(f"remote signer {method}: {exc}") from exc
        if resp.status_code >= 500:
            raise RetryLater(f"remote signer {method}: HTTP {resp.status_code}")
        try:
            reply = resp.json()
        except ValueError as exc:
            raise NeedsAttention(
                f"remote signer {method}: HTTP {resp.status_code}, not JSON"
            ) from exc
        if not isinstance(reply, dict):
            raise NeedsAttention(f"remote signer {method}: reply is not a JSON-RPC object")
        if reply.get("error"):
            err = reply["error"]
            raise Refused(f"remote signer {method}: {err.get('message')} ({err.get('code')})")
        if "result" not in reply:
            raise NeedsAttention(f"remote signer {method}: reply has no result")
        return reply["result"]

    def _checked(self, digest: bytes, sig: Signature) -> Signature:
        signer = Account._recover_hash(digest, vrs=(sig.v, sig.r, sig.s))
        if signer != self._address:
            raise Halt(f"remote signature recovers to {signer}, not {self._address}")
        return sig

    def sign_digest(self, digest: bytes) -> Signature:
        raise Refused(
            "a Web3Signer-compatible service signs no bare digest; "
            "send the typed data (sign_typed_data / sign_safe_tx)"
        )

    def sign_message(self, message: bytes) -> Signature:
        """EIP-191 personal message (``eth_sign``)."""
        result = self._call("eth_sign", [self._address, "0x" + message.hex()])
        digest = bytes(_hash_eip191_message(encode_defunct(primitive=message)))
        return self._checked(digest, parse_signature(str(result)))

    def sign_typed_data(self, typed_data: Mapping[str, Any]) -> Signature:
        """EIP-712 typed data (``eth_signTypedData``); the digest is recomputed here."""
        digest = bytes(_hash_eip191_message(encode_typed_data(full_message=dict(typed_data))))
        result = self._call("eth_signTypedData", [self._address, json.dumps(typed_data)])
        return self._checked(digest, parse_signature(str(result)))

    def sign_safe_tx(self, safe_tx: SafeTx) -> Signature:
        """A Safe owner's signature over ``safe_tx`` (its EIP-712 hash)."""
        typed = safe_tx.typed_data()
        digest = bytes(_hash_eip191_message(encode_typed_data(full_message=typed)))
        if digest != safe_tx.hash():
            raise Halt("SafeTx typed data and SafeTx hash disagree")
        return self.sign_typed_data(typed)

    def sign_transaction(self, tx: dict[str, Any]) -> SignedTransaction:
        if "from" in tx and str(tx["from"]).lower() != self._address.lower():
            raise ConfigError(f"transaction is from {tx['from']}, this signer is {self._address}")
        if tx.get("accessList"):
            raise ConfigError("Web3Signer's eth_signTransaction takes no access list")
        wanted = unsigned_eip1559(tx)
        params: dict[str, Any] = {"from": self._address}
        for key in _TX_FIELDS:
            if key in tx and tx[key] is not None:
                params[key] = _data(tx[key]) if key in ("to", "data") else _quantity(tx[key])
        raw_hex = str(self._call("eth_signTransaction", [params]))
        raw = bytes.fromhex(raw_hex[2:] if raw_hex.startswith("0x") else raw_hex)
        try:
            signed = TypedTransaction.from_bytes(HexBytes(raw))
        except (ValueError, TypeError, RLPException) as exc:
            raise NeedsAttention(
                f"remote signer returned an undecodable transaction: {exc}"
            ) from exc
        if signed.hash() != wanted.hash():
            chain = signed.as_dict().get("chainId")
            raise NeedsAttention(
                f"remote signer signed a different transaction (its chain id {chain}, "
                f"asked {tx.get('chainId')}); check its --chain-id"
            )
        sender = Account.recover_transaction(raw)
        if sender != self._address:
            raise Halt(f"remote-signed transaction recovers to {sender}, not {self._address}")
        return SignedTransaction(raw=raw, hash=keccak(raw))
