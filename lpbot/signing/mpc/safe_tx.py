"""A Safe transaction as a value whose EIP-712 hash is derived from its fields (Safe 1.4.1).

Mirrors ``Safe.getTransactionHash`` / ``encodeTransactionData`` of safe-contracts v1.4.1:
``keccak256(0x19 || 0x01 || domainSeparator || keccak256(abi.encode(SAFE_TX_TYPEHASH, to, value,
keccak256(data), operation, safeTxGas, baseGas, gasPrice, gasToken, refundReceiver, nonce)))``,
with the domain ``EIP712Domain(uint256 chainId,address verifyingContract)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DOMAIN_SEPARATOR_TYPEHASH = keccak(b"EIP712Domain(uint256 chainId,address verifyingContract)")
SAFE_TX_TYPEHASH = keccak(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
    b"uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)
CALL, DELEGATECALL = 0, 1


def domain_separator(chain_id: int, safe: str) -> bytes:
    """``Safe.domainSeparator()`` (v1.3.0 and later)."""
    return keccak(
        encode(
            ["bytes32", "uint256", "address"],
            [DOMAIN_SEPARATOR_TYPEHASH, chain_id, to_checksum_address(safe)],
        )
    )


@dataclass(frozen=True, slots=True)
class SafeTx:
    """The fields a Safe's owners sign; ``hash()`` is the safeTxHash."""

    chain_id: int
    safe: str
    to: str
    value: int
    data: bytes
    operation: int
    nonce: int
    safe_tx_gas: int = 0
    base_gas: int = 0
    gas_price: int = 0
    gas_token: str = ZERO_ADDRESS
    refund_receiver: str = ZERO_ADDRESS

    def __post_init__(self) -> None:
        if self.operation not in (CALL, DELEGATECALL):
            raise ValueError(
                f"operation must be 0 (call) or 1 (delegatecall), got {self.operation}"
            )

    def struct_hash(self) -> bytes:
        return keccak(
            encode(
                [
                    "bytes32",
                    "address",
                    "uint256",
                    "bytes32",
                    "uint8",
                    "uint256",
                    "uint256",
                    "uint256",
                    "address",
                    "address",
                    "uint256",
                ],
                [
                    SAFE_TX_TYPEHASH,
                    to_checksum_address(self.to),
                    self.value,
                    keccak(self.data),
                    self.operation,
                    self.safe_tx_gas,
                    self.base_gas,
                    self.gas_price,
                    to_checksum_address(self.gas_token),
                    to_checksum_address(self.refund_receiver),
                    self.nonce,
                ],
            )
        )

    def hash(self) -> bytes:
        """The safeTxHash (``Safe.getTransactionHash``), the digest each owner signs."""
        return keccak(b"\x19\x01" + domain_separator(self.chain_id, self.safe) + self.struct_hash())

    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 typed data (``eth_signTypedData``) whose digest is ``hash()``."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "SafeTx": [
                    {"name": "to", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "data", "type": "bytes"},
                    {"name": "operation", "type": "uint8"},
                    {"name": "safeTxGas", "type": "uint256"},
                    {"name": "baseGas", "type": "uint256"},
                    {"name": "gasPrice", "type": "uint256"},
                    {"name": "gasToken", "type": "address"},
                    {"name": "refundReceiver", "type": "address"},
                    {"name": "nonce", "type": "uint256"},
                ],
            },
            "primaryType": "SafeTx",
            "domain": {
                "chainId": self.chain_id,
                "verifyingContract": to_checksum_address(self.safe),
            },
            "message": {
                "to": to_checksum_address(self.to),
                "value": self.value,
                "data": "0x" + self.data.hex(),
                "operation": self.operation,
                "safeTxGas": self.safe_tx_gas,
                "baseGas": self.base_gas,
                "gasPrice": self.gas_price,
                "gasToken": to_checksum_address(self.gas_token),
                "refundReceiver": to_checksum_address(self.refund_receiver),
                "nonce": self.nonce,
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "safe": to_checksum_address(self.safe),
            "to": to_checksum_address(self.to),
            "value": str(self.value),
            "data": "0x" + self.data.hex(),
            "operation": self.operation,
            "nonce": self.nonce,
            "safe_tx_gas": str(self.safe_tx_gas),
            "base_gas": str(self.base_gas),
            "gas_price": str(self.gas_price),
            "gas_token": to_checksum_address(self.gas_token),
            "refund_receiver": to_checksum_address(self.refund_receiver),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SafeTx:
        data = str(obj["data"])
        return cls(
            chain_id=int(obj["chain_id"]),
            safe=str(obj["safe"]),
            to=str(obj["to"]),
            value=int(obj["value"]),
            data=bytes.fromhex(data[2:] if data.startswith("0x") else data),
            operation=int(obj["operation"]),
            nonce=int(obj["nonce"]),
            safe_tx_gas=int(obj.get("safe_tx_gas", 0)),
            base_gas=int(obj.get("base_gas", 0)),
            gas_price=int(obj.get("gas_price", 0)),
            gas_token=str(obj.get("gas_token", ZERO_ADDRESS)),
            refund_receiver=str(obj.get("refund_receiver", ZERO_ADDRESS)),
        )
